"""Covariance intersection (native/c/ci.h): fusing estimates whose
cross-correlation is unknown (each nation's tracks share its sensors' history).

    >>> x, P, w = ci_fuse([[0.0], [1.0]], [[[1.0]], [[3.0]]], mode="naive")
    >>> round(float(P[0, 0]), 6)
    0.75
"""
from __future__ import annotations

import numpy as np

from trilink_native._arrays import dptr, f64, iptr
from trilink_native._errors import FUSION, FUSION_BATCH, check
from trilink_native._kernel import ffi, lib

CI_TRACE = int(lib.TL_CI_TRACE)
CI_LOGDET = int(lib.TL_CI_LOGDET)
CI_FAST = int(lib.TL_CI_FAST)
CI_NAIVE = int(lib.TL_CI_NAIVE)
_CI_MODES = {"trace": CI_TRACE, "logdet": CI_LOGDET, "fast": CI_FAST, "naive": CI_NAIVE}


def _ci_mode(mode: str) -> int:
    """TL_CI_* of a mode name ("trace", "logdet", "fast", "naive")."""
    if mode not in _CI_MODES:
        raise ValueError(f"mode must be one of {sorted(_CI_MODES)}")
    return _CI_MODES[mode]


def ci_fuse(xs: object, Ps: object, mode: str = "trace",
            tol: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Covariance intersection of N estimates xs[N, d], Ps[N, d, d].

    mode: "trace" or "logdet" (optimised weights), "fast" (closed-form trace
    weights), "naive" (information sum). Returns (x, P, weights).

    >>> import numpy as np
    >>> x, P, w = ci_fuse([[0.0], [1.0]], [[[1.0]], [[3.0]]])
    >>> round(float(w[0]), 6)
    1.0
    """
    x_in = f64(xs)
    if x_in.ndim != 2:
        raise ValueError("xs must be [nsrc, dim]")
    n, d = x_in.shape
    P_in = f64(Ps, (n, d, d), "Ps")
    x = np.empty(d)
    P = np.empty((d, d))
    w = np.empty(n)
    rc = lib.tl_ci_fuse(d, n, dptr(x_in), dptr(P_in), _ci_mode(mode), float(tol), dptr(x),
                        dptr(P), dptr(w))
    check(rc, FUSION, "ci_fuse")
    return x, P, w


def ci_weighted(xs: object, Ps: object, weights: object) -> tuple[np.ndarray, np.ndarray]:
    """Fuse with given weights: P^-1 = sum w_i P_i^-1 (CI with fixed omega).

    >>> ci_weighted([[0.0], [0.0]], [[[1.0]], [[3.0]]], [0.5, 0.5])[1].round(12).tolist()
    [[1.5]]
    """
    x_in = f64(xs)
    if x_in.ndim != 2:
        raise ValueError("xs must be [nsrc, dim]")
    n, d = x_in.shape
    P_in = f64(Ps, (n, d, d), "Ps")
    w = f64(weights, (n,), "weights")
    x = np.empty(d)
    P = np.empty((d, d))
    rc = lib.tl_ci_weighted(d, n, dptr(x_in), dptr(P_in), dptr(w), dptr(x), dptr(P))
    check(rc, FUSION, "ci_weighted")
    return x, P


def ci_objective(Ps: object, weights: object, criterion: str = "trace") -> float:
    """tr(P) or log det P of the CI fusion with the given weights.

    >>> round(ci_objective([[[1.0]], [[3.0]]], [0.5, 0.5]), 12)
    1.5
    """
    P_in = f64(Ps)
    if P_in.ndim != 3 or P_in.shape[1] != P_in.shape[2]:
        raise ValueError("Ps must be [nsrc, dim, dim]")
    n, d, _ = P_in.shape
    w = f64(weights, (n,), "weights")
    if criterion not in ("trace", "logdet"):
        raise ValueError("criterion must be 'trace' or 'logdet'")
    J = ffi.new("double *")
    rc = lib.tl_ci_objective(d, n, dptr(P_in), dptr(w), _ci_mode(criterion), J)
    check(rc, FUSION, "ci_objective")
    return float(J[0])


def ci_batch(xs: object, Ps: object, mode: str = "trace", tol: float = 0.0
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Many independent CI problems in one C call: xs[B, N, d], Ps[B, N, d, d].

    Returns (x[B, d], P[B, d, d], w[B, N], status[B]); a failed problem has a
    nonzero TL_TRK_* status and zeros in its outputs.

    >>> import numpy as np
    >>> ci_batch(np.zeros((1, 2, 1)), [[[[1.0]], [[3.0]]]])[3].tolist()
    [0]
    """
    x_in = f64(xs)
    if x_in.ndim != 3:
        raise ValueError("xs must be [batch, nsrc, dim]")
    b, n, d = x_in.shape
    P_in = f64(Ps, (b, n, d, d), "Ps")
    x = np.zeros((max(b, 1), d))
    P = np.zeros((max(b, 1), d, d))
    w = np.zeros((max(b, 1), n))
    st = np.zeros(max(b, 1), dtype=np.int32)
    rc = lib.tl_ci_batch(b, d, n, dptr(x_in) if b else ffi.NULL, dptr(P_in) if b else ffi.NULL,
                         _ci_mode(mode), float(tol), dptr(x), dptr(P), dptr(w), iptr(st))
    check(rc, FUSION_BATCH, "ci_batch")
    return x[:b], P[:b], w[:b], st[:b]
