"""The ballistic motion model (native/c/motion.h): gravity with J2 in the
Earth-fixed frame, RK4 prediction of state and covariance.

Batched calls are one cffi call per batch; a track that fails comes back
with its TL_TRK_* status (STATUS_NAMES) and is left as it was.

    >>> import numpy as np
    >>> x = np.array([[6.5e6, 0, 0, 0, 7e3, 0]]); P = np.eye(6)[None] * 100.0
    >>> predict(x, P, np.zeros(1), 2.0).tolist(), bool(x[0, 4] < 7e3)
    ([0], True)
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Optional

import numpy as np

from trilink_native._arrays import dptr, inplace, iptr, rows
from trilink_native._errors import FUSION_BATCH, check
from trilink_native._kernel import ffi, lib


@dataclass(frozen=True)
class MotionModel:
    """Ballistic motion model settings (see docs/FUSION.md).

        >>> MotionModel(q=0.5).step
        1.0
    """

    q: float = 1.0  # white-acceleration spectral density, m^2/s^3 per axis
    step: float = 1.0  # RK4 step, s
    j2: bool = True  # include the J2 term of gravity


@functools.lru_cache(maxsize=64)
def _c_motion(model: Optional[MotionModel]):
    # Cached: MotionModel is frozen, and the cdata is only ever read by C.
    m = ffi.new("tl_motion *")
    lib.tl_motion_default(m)
    if model is not None:
        m.q, m.step, m.j2 = float(model.q), float(model.step), 1 if model.j2 else 0
    return m


def acceleration(x, model: Optional[MotionModel] = None) -> np.ndarray:
    """ECEF acceleration (gravity, J2, Coriolis, centrifugal) m/s^2 at one state x[6]."""
    s = rows(np.reshape(x, (1, 6)), (6,), "x")
    a = np.empty(3)
    lib.tl_motion_accel(_c_motion(model), dptr(s), dptr(a))
    return a


def jacobi(x, model: Optional[MotionModel] = None) -> np.ndarray:
    """Jacobi integral J/kg of ECEF states x[N,6] (energy in the Earth-fixed
    frame): constant in ballistic flight, rising under thrust.

        >>> e = jacobi([[6.5e6, 0, 0, 0, 7e3, 0], [6.5e6, 0, 0, 0, 7.1e3, 0]])
        >>> bool(e[1] - e[0] > 0)
        True
    """
    xs = rows(x, (6,), "x")
    out = np.empty(len(xs))
    check(lib.tl_motion_jacobi(_c_motion(model), len(xs), dptr(xs), dptr(out)), FUSION_BATCH, "jacobi")
    return out


def predict_one(x, P, dt: float, model: Optional[MotionModel] = None):
    """Propagate one track by dt >= 0 s; returns (status, x_new, P_new, Phi) (copies).

        >>> st, x1, P1, Phi = predict_one([6.5e6, 0, 0, 0, 7e3, 0], 100 * np.eye(6), 1.0)
        >>> st, Phi.shape, bool(x1[4] < 7e3)
        (0, (6, 6), True)
    """
    xs = rows(np.reshape(x, (1, 6)), (6,), "x").copy()
    Ps = None if P is None else rows(np.reshape(P, (1, 6, 6)), (6, 6), "P").copy()
    Phi = np.empty((6, 6))
    st = lib.tl_motion_predict1(_c_motion(model), dptr(xs), ffi.NULL if Ps is None else dptr(Ps), float(dt), dptr(Phi))
    return int(st), xs[0], None if Ps is None else Ps[0], Phi


def predict(x: np.ndarray, P: Optional[np.ndarray], t_from, t_to: float,
            model: Optional[MotionModel] = None) -> np.ndarray:
    """Predict N tracks in place from t_from[N] to the common time t_to.

    x is [N,6] ECEF state, P is [N,6,6] or None (state only); both must be
    writable C-contiguous float64. Returns the int32 status per track.

        >>> x = np.array([[6.5e6, 0, 0, 0, 7e3, 0]]); P = np.eye(6)[None] * 100.0
        >>> predict(x, P, np.zeros(1), 2.0).tolist()
        [0]
    """
    xs = inplace(x, (6,), "x")
    n = len(xs)
    Ps = None if P is None else inplace(P, (6, 6), "P", n)
    tf = rows(t_from, (), "t_from", n)
    status = np.zeros(n, dtype=np.int32)
    rc = lib.tl_motion_predict(_c_motion(model), n, dptr(xs), ffi.NULL if Ps is None else dptr(Ps), dptr(tf),
                               float(t_to), iptr(status))
    check(rc, FUSION_BATCH, "predict")
    return status
