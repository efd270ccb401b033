"""WGS-84 geodesy (native/c/geo.h): geodetic, ECEF and local east/north/up.

Latitudes and longitudes are in DEGREES here and radians in C. geo.h also
owns the TL_TRK_* status codes every fusion header returns per track.

    >>> llh = ecef_to_geodetic(geodetic_to_ecef([[35.0, 135.0, 100.0]]))
    >>> llh.round(6).tolist()
    [[35.0, 135.0, 100.0]]
"""
from __future__ import annotations

import numpy as np

from trilink_native._arrays import dptr, rows
from trilink_native._errors import FUSION_BATCH, check
from trilink_native._kernel import ffi, lib


TRK_OK = int(lib.TL_TRK_OK)
TRK_ENONFINITE = int(lib.TL_TRK_ENONFINITE)
TRK_ENOTPD = int(lib.TL_TRK_ENOTPD)
TRK_ETIME = int(lib.TL_TRK_ETIME)
TRK_ENOIMPACT = int(lib.TL_TRK_ENOIMPACT)
TRK_EARG = int(lib.TL_TRK_EARG)
TRK_ESINGULAR = int(lib.TL_TRK_ESINGULAR)

def geodetic_to_ecef(llh_deg) -> np.ndarray:
    """WGS-84 (lat deg, lon deg, h m)[N,3] -> ECEF m [N,3]; non-finite rows give NaN.

        >>> float(geodetic_to_ecef([[0.0, 0.0, 0.0]])[0, 0])
        6378137.0
    """
    llh = rows(llh_deg, (3,), "llh_deg").copy()
    llh[:, :2] = np.radians(llh[:, :2])
    out = np.empty_like(llh)
    check(lib.tl_geo_to_ecef_n(len(llh), dptr(llh), dptr(out), ffi.NULL), FUSION_BATCH, "geodetic_to_ecef")
    return out


def ecef_to_geodetic(ecef) -> np.ndarray:
    """ECEF m [N,3] -> WGS-84 (lat deg, lon deg, h m) [N,3]; bad rows (NaN, near the centre) give NaN.

        >>> round(float(ecef_to_geodetic([[6378137.0, 0.0, 0.0]])[0, 2]), 6)
        0.0
    """
    e = rows(ecef, (3,), "ecef")
    out = np.empty_like(e)
    check(lib.tl_ecef_to_geo_n(len(e), dptr(e), dptr(out), ffi.NULL), FUSION_BATCH, "ecef_to_geodetic")
    out[:, :2] = np.degrees(out[:, :2])
    return out


def _origin(origin_llh_deg) -> np.ndarray:
    o = np.array(origin_llh_deg, dtype=np.float64).reshape(3)
    o[:2] = np.radians(o[:2])
    return o


def ecef_to_enu(ecef, origin_llh_deg) -> np.ndarray:
    """ECEF m [N,3] -> local east/north/up m around origin (lat deg, lon deg, h m).

        >>> ecef_to_enu(geodetic_to_ecef([[35.0, 135.0, 10.0]]), (35.0, 135.0, 0.0)).round(6).tolist()
        [[0.0, 0.0, 10.0]]
    """
    e = rows(ecef, (3,), "ecef")
    out = np.empty_like(e)
    check(lib.tl_ecef_to_enu_n(len(e), dptr(e), dptr(_origin(origin_llh_deg)), dptr(out), ffi.NULL), FUSION_BATCH, "ecef_to_enu")
    return out


def enu_to_ecef(enu, origin_llh_deg) -> np.ndarray:
    """Local east/north/up m [N,3] around origin (lat deg, lon deg, h m) -> ECEF m."""
    e = rows(enu, (3,), "enu")
    out = np.empty_like(e)
    check(lib.tl_enu_to_ecef_n(len(e), dptr(e), dptr(_origin(origin_llh_deg)), dptr(out), ffi.NULL), FUSION_BATCH, "enu_to_ecef")
    return out
