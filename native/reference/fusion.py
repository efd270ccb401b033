"""THE NUMPY REFERENCE of the fusion kernel's association, covariance
intersection and track picture (``native/c/assign.c``, ``ci.c``,
``picture.c``). Readable and slow: for tests and benchmarks only; the relay
runs the C kernel through ``trilink_native.binding``.

    >>> import numpy as np
    >>> from trilink_native.reference import fusion
    >>> x, P, w = fusion.ci_fuse(np.zeros((2, 1)), np.array([[[1.0]], [[3.0]]]))
    >>> float(P[0, 0])
    1.0
"""
from __future__ import annotations

import math

import numpy as np

GOLD = (math.sqrt(5.0) - 1.0) / 2.0
GATE_6DOF_999 = 22.46  # chi-square 99.9% quantile, 6 degrees of freedom


# ------------------------------------------------------------ assignment ----

def assign(cost: np.ndarray) -> tuple[np.ndarray, float]:
    """Minimum-cost assignment by shortest augmenting paths (Crouse 2016).

    Returns (row_to_col with -1 for unmatched rows, total). +inf forbids a
    pair; raises ValueError when the smaller side cannot be fully matched.
    """
    c = np.asarray(cost, dtype=float)
    transposed = c.shape[0] > c.shape[1]
    if transposed:
        c = c.T
    n, m = c.shape
    u, v = np.zeros(n), np.zeros(m)
    col4row, row4col = np.full(n, -1), np.full(m, -1)
    path = np.full(m, -1)
    for r in range(n):
        spc = np.full(m, np.inf)
        SR, SC = np.zeros(n, bool), np.zeros(m, bool)
        i, minval, sink = r, 0.0, -1
        while sink < 0:
            SR[i] = True
            free = ~SC
            red = minval + c[i] - u[i] - v
            better = free & (red < spc)
            path[better] = i
            spc[better] = red[better]
            cand = np.where(free, spc, np.inf)
            lowest = cand.min()
            if not np.isfinite(lowest):
                raise ValueError("cost matrix is infeasible")
            ties = np.flatnonzero(cand == lowest)
            unassigned = ties[row4col[ties] < 0]
            j = int(unassigned[0] if unassigned.size else ties[0])
            minval = lowest
            SC[j] = True
            if row4col[j] < 0:
                sink = j
            else:
                i = int(row4col[j])
        u[r] += minval
        others = SR.copy()
        others[r] = False
        u[others] += minval - spc[col4row[others]]
        v[SC] -= minval - spc[SC]
        j = sink
        while True:
            i = int(path[j])
            row4col[j] = i
            col4row[i], j = j, col4row[i]
            if i == r:
                break
    if transposed:
        r2c = np.full(m, -1)
        for j in range(m):
            if row4col[j] >= 0:
                r2c[j] = row4col[j]
        c = c.T
    else:
        r2c = col4row
    rows = np.flatnonzero(r2c >= 0)
    return r2c, float(c[rows, r2c[rows]].sum())


# ------------------------------------------------ covariance intersection ----

def _criterion(M: np.ndarray, criterion: str) -> float:
    try:
        L = np.linalg.cholesky(M)
    except np.linalg.LinAlgError:
        return math.inf
    if criterion == "logdet":
        return float(-2.0 * np.log(np.diag(L)).sum())
    Li = np.linalg.inv(L)
    return float((Li * Li).sum())  # tr(M^-1) = ||L^-1||_F^2


def ci_objective(Ps: np.ndarray, w: np.ndarray, criterion: str = "trace") -> float:
    """tr(P) or log det P of P = (sum_i w_i P_i^-1)^-1."""
    M = sum(wi * np.linalg.inv(Pi) for wi, Pi in zip(w, Ps) if wi != 0.0)
    return _criterion(np.asarray(M), criterion)


def golden(f, tol: float = 1e-10) -> float:
    """argmin of f on [0, 1] by golden section, then compared with both ends."""
    a, b = 0.0, 1.0
    c, d = b - GOLD * (b - a), a + GOLD * (b - a)
    fc, fd = f(c), f(d)
    while b - a > tol:
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - GOLD * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + GOLD * (b - a)
            fd = f(d)
    t = 0.5 * (a + b)
    ft, f0, f1 = f(t), f(0.0), f(1.0)
    if f0 <= ft and f0 <= f1:
        return 0.0
    if f1 < ft:
        return 1.0
    return t


def fast_weights(Ps: np.ndarray) -> np.ndarray:
    """Closed-form trace weights w_i = (1/tr P_i) / sum_j 1/tr P_j (Niehsen 2002)."""
    inv_tr = 1.0 / np.trace(Ps, axis1=1, axis2=2)
    return inv_tr / inv_tr.sum()


def ci_weights(Ps: np.ndarray, mode: str = "trace", tol: float = 1e-10) -> np.ndarray:
    """The weights the kernel uses for `mode` (trace, logdet, fast, naive)."""
    Ps = np.asarray(Ps, dtype=float)
    n = len(Ps)
    if n == 1:
        return np.ones(1)
    if mode == "naive":
        return np.ones(n)
    if mode == "fast":
        return fast_weights(Ps)
    infos = [np.linalg.inv(P) for P in Ps]

    def J(w):
        return _criterion(sum(wi * Ii for wi, Ii in zip(w, infos)), mode)

    if n == 2:
        om = golden(lambda t: J((t, 1.0 - t)), tol)
        return np.array([om, 1.0 - om])
    w = fast_weights(Ps)
    for _sweep in range(100):  # line searches from w towards each vertex
        moved = 0.0
        for k in range(n):
            rest = 1.0 - w[k]
            base = w / rest if rest > 0 else np.full(n, 1.0 / (n - 1))
            base[k] = 0.0
            e = np.zeros(n)
            e[k] = 1.0
            t = golden(lambda tt: J(tt * e + (1.0 - tt) * base), tol)
            new = t * e + (1.0 - t) * base
            moved = max(moved, float(np.abs(new - w).max()))
            w = new
        if moved <= 1e-9:
            break
    return w


def ci_fuse(xs: np.ndarray, Ps: np.ndarray, mode: str = "trace", tol: float = 1e-10,
            weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Covariance intersection: P^-1 = sum w_i P_i^-1, P^-1 x = sum w_i P_i^-1 x_i.

    Sources are sorted by trace first (as the C kernel does), so the result
    does not depend on the order given. Returns (x, P, w) in the given order.
    """
    xs, Ps = np.asarray(xs, float), np.asarray(Ps, float)
    order = sorted(range(len(Ps)), key=lambda k: (np.trace(Ps[k]), Ps[k].tobytes(), xs[k].tobytes()))
    xs_c, Ps_c = xs[order], Ps[order]
    w_c = ci_weights(Ps_c, mode, tol) if weights is None else np.asarray(weights, float)[order]
    nz = np.flatnonzero(w_c)
    if len(nz) == 1 and w_c[nz[0]] == 1.0:
        x, P = xs_c[nz[0]].copy(), Ps_c[nz[0]].copy()
    else:
        infos = [np.linalg.inv(P) for P in Ps_c]
        M = sum(w_c[k] * infos[k] for k in nz)
        y = sum(w_c[k] * infos[k] @ xs_c[k] for k in nz)
        P = np.linalg.inv(M)
        P = 0.5 * (P + P.T)
        x = P @ y
    w = np.empty_like(w_c)
    w[order] = w_c
    return x, P, w


# ------------------------------------------------------------------ gating ----

def gate_d2(xa: np.ndarray, Pa: np.ndarray, xb: np.ndarray, Pb: np.ndarray) -> np.ndarray:
    """Mahalanobis d^2 of every difference xa[i] - xb[j] under Pa[i] + Pb[j].

    The sum ignores the unknown cross-covariance; correlated errors make the
    true difference covariance smaller, so the gate errs on the side of
    accepting the same target. Returns an [na, nb] matrix.
    """
    diff = xa[:, None, :] - xb[None, :, :]
    S = Pa[:, None, :, :] + Pb[None, :, :, :]
    sol = np.linalg.solve(S, diff[..., None])[..., 0]
    return np.einsum("ijk,ijk->ij", diff, sol)


# ------------------------------------------------------------ one frame ----

def frame(xa: np.ndarray, Pa: np.ndarray, xb: np.ndarray, Pb: np.ndarray,
          gate: float = GATE_6DOF_999, mode: str = "trace", assign_fn=None) -> list:
    """One association + fusion round of two sources' tracks at a common time:
    the first round of the C picture (no earlier associations).

    Cost d^2 gated at `gate`, one "no match" column per row at cost `gate`,
    optimal assignment (``assign_fn(cost) -> (rows, cols)``, default this
    module's `assign`), then CI of every matched pair. Returns a list of
    (index in a or None, index in b or None, x, P) in a's order, then b's
    unmatched tracks.
    """
    na, nb = len(xa), len(xb)
    d2 = gate_d2(xa, Pa, xb, Pb) if na and nb else np.zeros((na, nb))
    cost = np.full((na, nb + na), np.inf)
    cost[:, :nb] = np.where(d2 <= gate, d2, np.inf)
    cost[np.arange(na), nb + np.arange(na)] = gate
    if assign_fn is None:
        r2c = assign(cost)[0]
    else:
        rows, cols = assign_fn(cost)
        r2c = np.full(na, -1)
        r2c[rows] = cols
    out, used_b = [], set()
    for i in range(na):
        j = int(r2c[i])
        if 0 <= j < nb:
            x, P, _ = ci_fuse(np.stack([xa[i], xb[j]]), np.stack([Pa[i], Pb[j]]), mode)
            out.append((i, j, x, P))
            used_b.add(j)
        else:
            out.append((i, None, xa[i], Pa[i]))
    out += [(None, j, xb[j], Pb[j]) for j in range(nb) if j not in used_b]
    return out
