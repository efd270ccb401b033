"""Kalman filtering (native/c/kalman.h): linear predict/update, position
and range/azimuth/elevation updates of ECEF tracks, in place per batch.

Measured azimuth and elevation are in RADIANS; sites are (lat deg, lon deg, h m).

    >>> import numpy as np
    >>> x = np.zeros((1, 6)); P = np.eye(6)[None] * 100.0
    >>> update_position(x, P, [[10.0, 0, 0]], np.eye(3) * 100.0).tolist(), float(x[0, 0])
    ([0], 5.0)
"""
from __future__ import annotations

import numpy as np

from trilink_native._arrays import dptr, inplace, iptr, per_track, rows
from trilink_native._errors import FUSION, FUSION_BATCH, check
from trilink_native._kernel import ffi, lib


def kf_predict(x: np.ndarray, P: np.ndarray, F, Q) -> np.ndarray:
    """Linear Kalman predict in place for N tracks: x <- F x, P <- F P F' + Q. Returns status[N]."""
    xs = inplace(x, x.shape[1:] if getattr(x, "ndim", 0) == 2 else (-1,), "x")
    n, dx = xs.shape
    Ps = inplace(P, (dx, dx), "P", n)
    Fm = rows(np.reshape(F, (1, dx, dx)), (dx, dx), "F")
    Qm = rows(np.reshape(Q, (1, dx, dx)), (dx, dx), "Q")
    status = np.zeros(n, dtype=np.int32)
    check(lib.tl_kf_predict(n, dx, dptr(xs), dptr(Ps), dptr(Fm), dptr(Qm), iptr(status)), FUSION_BATCH, "kf_predict")
    return status


def kf_update(x: np.ndarray, P: np.ndarray, z, H, R) -> np.ndarray:
    """Linear Joseph-form update in place: z [N,dz], H [dz,dx] shared, R [N,dz,dz] or [dz,dz]. Returns status[N].

        >>> x = np.zeros((1, 2)); P = np.eye(2)[None].copy()
        >>> kf_update(x, P, [[1.0]], [[1.0, 0.0]], [[1.0]]).tolist(), round(float(x[0, 0]), 12)
        ([0], 0.5)
    """
    xs = inplace(x, x.shape[1:] if getattr(x, "ndim", 0) == 2 else (-1,), "x")
    n, dx = xs.shape
    Ps = inplace(P, (dx, dx), "P", n)
    Hm = np.ascontiguousarray(H, dtype=np.float64)
    if Hm.ndim != 2 or Hm.shape[1] != dx:
        raise ValueError(f"H must have shape (dz, {dx}), got {Hm.shape}")
    dz = Hm.shape[0]
    zs = rows(z, (dz,), "z", n)
    Rm = per_track(R, (dz, dz), "R", n)
    status = np.zeros(n, dtype=np.int32)
    check(lib.tl_kf_update(n, dx, dz, dptr(xs), dptr(Ps), dptr(zs), dptr(Hm), dptr(Rm), iptr(status)),
          FUSION_BATCH, "kf_update")
    return status


def update_position(x: np.ndarray, P: np.ndarray, z, R) -> np.ndarray:
    """Position update of N ECEF tracks in place: z [N,3] ECEF m, R [N,3,3] or [3,3] m^2. Returns status[N]."""
    xs = inplace(x, (6,), "x")
    n = len(xs)
    Ps = inplace(P, (6, 6), "P", n)
    zs = rows(z, (3,), "z", n)
    status = np.zeros(n, dtype=np.int32)
    check(lib.tl_kf_update_pos(n, dptr(xs), dptr(Ps), dptr(zs), dptr(per_track(R, (3, 3), "R", n)), iptr(status)),
          FUSION_BATCH, "update_position")
    return status


def _sites(site_llh_deg, n: int) -> np.ndarray:
    """Sites (lat deg, lon deg, h m) [n,3] or one [3] for all, as C wants them (radians)."""
    s = np.array(np.broadcast_to(np.asarray(site_llh_deg, dtype=np.float64), (n, 3)), order="C")
    s[:, :2] = np.radians(s[:, :2])
    return s


def update_rae(x: np.ndarray, P: np.ndarray, z, R, site_llh_deg) -> np.ndarray:
    """Range/azimuth/elevation EKF update in place from radar sites.

    z [N,3] = (range m, azimuth rad clockwise from north, elevation rad);
    R [N,3,3] or [3,3]; site_llh_deg [N,3] or [3] (lat deg, lon deg, h m).
    Returns status[N].
    """
    xs = inplace(x, (6,), "x")
    n = len(xs)
    Ps = inplace(P, (6, 6), "P", n)
    zs = rows(z, (3,), "z", n)
    status = np.zeros(n, dtype=np.int32)
    check(lib.tl_kf_update_rae(n, dptr(xs), dptr(Ps), dptr(zs), dptr(per_track(R, (3, 3), "R", n)),
                               dptr(_sites(site_llh_deg, n)), iptr(status)), FUSION_BATCH, "update_rae")
    return status


def rae_from_ecef(pos, site_llh_deg) -> np.ndarray:
    """(range m, azimuth rad, elevation rad) of one ECEF point seen from a site (lat deg, lon deg, h m).

        >>> from trilink_native._geo import enu_to_ecef
        >>> site = (35.0, 135.0, 0.0)
        >>> [round(float(v), 6) for v in rae_from_ecef(enu_to_ecef([[1e4, 0.0, 1e4]], site)[0], site)]
        [14142.135624, 1.570796, 0.785398]
        >>> rae_from_ecef(enu_to_ecef([[0.0, 0.0, 1e4]], site)[0], site)   # overhead: no azimuth
        Traceback (most recent call last):
        ...
        trilink_native._errors.FusionError: singular innovation or geometry (rae_from_ecef, code 6)
    """
    p = rows(np.reshape(pos, (1, 3)), (3,), "pos")
    out = np.empty(3)
    check(lib.tl_rae_from_ecef(dptr(p), dptr(_sites(site_llh_deg, 1)), dptr(out)), FUSION, "rae_from_ecef")
    return out


def kf_soak(steps: int, x: np.ndarray, P: np.ndarray, F, Q, H, R, zs, check_every: int = 1000):
    """Run `steps` linear predict+update cycles on one track in ONE C call (soak test).

    Returns (status, worst relative asymmetry seen). x [dx] and P [dx,dx] are updated in place.
    """
    xs = inplace(x, (), "x") if x.ndim == 1 else None
    if xs is None:
        raise ValueError("x must be 1-D")
    dx = len(xs)
    Ps = inplace(P, (dx,), "P", dx)
    Hm = np.ascontiguousarray(H, dtype=np.float64)
    dz = Hm.shape[0]
    zm = rows(zs, (dz,), "zs")
    worst = ffi.new("double *")
    st = lib.tl_kf_soak(int(steps), dx, dz, dptr(xs), dptr(Ps), dptr(rows(F, (dx,), "F", dx)), dptr(rows(Q, (dx,), "Q", dx)),
                        dptr(rows(Hm, (dx,), "H", dz)), dptr(rows(R, (dz,), "R", dz)), dptr(zm), len(zm),
                        int(check_every), worst)
    return int(st), float(worst[0])
