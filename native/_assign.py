"""Minimum-cost rectangular assignment (native/c/assign.h), the association step.

    >>> rows, cols, total = assign([[4.0, 2.0, 3.0], [2.0, 0.0, 5.0]])
    >>> rows.tolist(), cols.tolist(), total
    ([0, 1], [2, 1], 3.0)
"""
from __future__ import annotations

import numpy as np

from trilink_native._arrays import dptr, f64, iptr
from trilink_native._errors import ASSIGN, check
from trilink_native._kernel import ffi, lib


def assign(cost: object) -> tuple[np.ndarray, np.ndarray, float]:
    """Minimum-cost rectangular assignment; +inf marks a forbidden pair.

    Returns (rows, cols, total) like scipy's linear_sum_assignment.

    >>> assign([[4.0, 1.0], [2.0, 0.0]])[2]
    3.0
    """
    c = f64(cost)
    if c.ndim != 2:
        raise ValueError("cost must be a 2-D array")
    nr, nc = c.shape
    r2c = np.empty(nr, dtype=np.int32)
    work = np.empty(max(1, lib.tl_assign_work_doubles(nr, nc)))
    iwork = np.empty(max(1, lib.tl_assign_work_ints(nr, nc)), dtype=np.int32)
    total = ffi.new("double *")
    rc = lib.tl_assign(nr, nc, dptr(c) if c.size else ffi.NULL, iptr(r2c) if nr else ffi.NULL,
                       total, dptr(work), iptr(iwork))
    check(rc, ASSIGN, "assign")
    rows = np.flatnonzero(r2c >= 0)
    return rows, r2c[rows].astype(np.intp), float(total[0])


def assign_batch(costs: list) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Solve many assignment problems in one C call.

    Returns (row_to_col per problem (-1 = unmatched), totals, status) where
    status is 0 or a TL_ASSIGN_E* code per problem (its total is then 0).
    An infeasible single problem raises ``AssignmentInfeasible``.

    >>> assign_batch([[[1.0]], [[2.0, 0.5]]])[1].tolist()
    [1.0, 0.5]
    """
    mats = [f64(c) for c in costs]
    for m in mats:
        if m.ndim != 2:
            raise ValueError("every cost must be a 2-D array")
    shapes = np.array([m.shape for m in mats], dtype=np.int32).reshape(-1, 2)
    flat = np.concatenate([m.ravel() for m in mats]) if mats else np.empty(0)
    nrows = int(shapes[:, 0].sum()) if len(mats) else 0
    r2c = np.empty(max(1, nrows), dtype=np.int32)
    totals = np.zeros(max(1, len(mats)))
    status = np.zeros(max(1, len(mats)), dtype=np.int32)
    big = max(int(shapes.max()), 0) if len(mats) else 0   # scratch for the largest problem
    work = np.empty(max(1, lib.tl_assign_work_doubles(big, big)))
    iwork = np.empty(max(1, lib.tl_assign_work_ints(big, big)), dtype=np.int32)
    flat_c = flat if flat.size else np.zeros(1)
    rc = lib.tl_assign_batch(len(mats), iptr(shapes) if len(mats) else ffi.NULL, dptr(flat_c),
                             iptr(r2c), dptr(totals), iptr(status), dptr(work), iptr(iwork))
    check(rc, ASSIGN.but(ok=lambda rc: rc >= 0), "assign_batch")   # >= 0: how many problems failed
    out, off = [], 0
    for nr, _nc in shapes:
        out.append(r2c[off:off + nr].copy())
        off += nr
    return out, totals[:len(mats)].copy(), status[:len(mats)].copy()
