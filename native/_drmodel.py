"""The dead-reckoning model both ends of a PICTURE link share (native/c/drmodel.h).

    >>> x = dr_extrapolate([0, 0, 1e5, 100.0, 0, 0], 2.0, origin_lat_deg=36.0)
    >>> round(float(x[0]), 1)   # 2 s east at 100 m/s (the Earth's curvature: a millimetre)
    200.0
"""
from __future__ import annotations

import numpy as np

from trilink_native._kernel import ffi, lib


def dr_extrapolate(x: np.ndarray, dt_s: float, origin_lat_deg: float, origin_h_m: float = 0.0,
                   step_s: float = 1.0) -> np.ndarray:
    """State x[6] (local ENU) advanced dt_s seconds by the dead-reckoning model."""
    m = ffi.new("tl_drm *")
    lib.tl_drm_init(m, origin_lat_deg, origin_h_m, step_s)
    s = np.array(x, dtype=np.float64).reshape(6)
    lib.tl_drm_extrapolate(m, ffi.cast("double *", s.ctypes.data), float(dt_s))
    return s


