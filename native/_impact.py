"""Impact prediction and territories (native/c/impact.h): where and when a
ballistic track meets the ellipsoid, its 95% ellipse, the territory it threatens.

    >>> territory_of(1.0, 1.0, [[(0, 0), (0, 2), (2, 2), (2, 0)]]), territory_of(5.0, 1.0, [[(0, 0), (0, 2), (2, 2)]])
    (0, -1)
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np

from trilink_native._arrays import dptr, iptr, rows
from trilink_native._errors import FUSION_BATCH, TERRITORY, check
from trilink_native._kernel import ffi, lib
from trilink_native._motion import MotionModel, _c_motion


def _c_territories(territories: Optional[Sequence]) -> Tuple[int, np.ndarray, np.ndarray]:
    """Pack polygons (each a sequence of (lat deg, lon deg)) into C offsets + radians."""
    if not territories:
        return 0, np.zeros(1, dtype=np.int32), np.zeros(2)
    polys = [np.radians(rows(p, (2,), "territory polygon")) for p in territories]
    offsets = np.zeros(len(polys) + 1, dtype=np.int32)
    offsets[1:] = np.cumsum([len(p) for p in polys])
    if any(len(p) < 3 for p in polys):
        raise ValueError("every territory polygon needs at least 3 vertices")
    return len(polys), offsets, np.ascontiguousarray(np.concatenate(polys))


def territory_of(lat_deg: float, lon_deg: float, territories: Sequence) -> int:
    """Index of the first polygon (lat/lon degree vertex lists) containing the point, or -1.

        >>> territory_of(1.0, 1.0, [[(0, 0), (0, 2), (2, 2), (2, 0)]])
        0
    """
    nt, off, verts = _c_territories(territories)
    return check(lib.tl_territory_of(math.radians(lat_deg), math.radians(lon_deg), nt, iptr(off), dptr(verts)),
                 TERRITORY, "territory_of")


@dataclass
class Impacts:
    """Impact predictions for N tracks (failed tracks: NaN, territory -1, status != 0)."""

    t: np.ndarray  # impact time [N], same timebase as t0
    lat: np.ndarray  # deg [N]
    lon: np.ndarray  # deg [N]
    ecef: np.ndarray  # m [N,3]
    cov_en: np.ndarray  # (east, north) covariance m^2 [N,2,2]
    semi_major: np.ndarray  # 95% ellipse semi-axes, m [N]
    semi_minor: np.ndarray
    orient: np.ndarray  # major-axis azimuth, deg clockwise from north in [0, 180) [N]
    sigma_t: np.ndarray  # 1-sigma impact time, s [N]
    territory: np.ndarray  # int32 [N], -1 none
    status: np.ndarray  # int32 [N], TRK_* codes


def _impact_dtype() -> np.dtype:
    off = lambda f: ffi.offsetof("tl_impact", f)  # noqa: E731
    return np.dtype({
        "names": ["t_impact", "lat", "lon", "ecef", "cov_en", "semi_major", "semi_minor", "orient", "sigma_t", "territory"],
        "formats": ["<f8", "<f8", "<f8", ("<f8", 3), ("<f8", 4), "<f8", "<f8", "<f8", "<f8", "<i4"],
        "offsets": [off(f) for f in ("t_impact", "lat", "lon", "ecef", "cov_en", "semi_major", "semi_minor", "orient",
                                     "sigma_t", "territory")],
        "itemsize": ffi.sizeof("tl_impact"),
    })


_IMPACT_DTYPE = _impact_dtype()


def predict_impact(x, P, t0, territories: Optional[Sequence] = None,
                   model: Optional[MotionModel] = None) -> Impacts:
    """Impact time, point, 95% ellipse and threatened territory for N tracks (inputs not modified).

        >>> from trilink_native._geo import geodetic_to_ecef
        >>> pos = geodetic_to_ecef([[35.0, 135.0, 1e5]])[0]
        >>> x = np.concatenate([pos, -pos / np.linalg.norm(pos) * 2e3])[None]   # falling at 2 km/s
        >>> imp = predict_impact(x, np.eye(6)[None] * 100.0, 0.0, territories=[[(30, 130), (30, 140), (40, 140), (40, 130)]])
        >>> imp.status.tolist(), imp.territory.tolist(), bool(40 < imp.t[0] < 50)
        ([0], [0], True)
    """
    xs = rows(x, (6,), "x")
    n = len(xs)
    Ps = rows(P, (6, 6), "P", n)
    ts = rows(np.broadcast_to(np.asarray(t0, dtype=np.float64), (n,)), (), "t0", n)
    nt, off, verts = _c_territories(territories)
    out = ffi.new("tl_impact[]", max(n, 1))
    status = np.zeros(n, dtype=np.int32)
    check(lib.tl_impact_predict(_c_motion(model), n, dptr(xs), dptr(Ps), dptr(ts), nt, iptr(off), dptr(verts), out,
                                iptr(status)), FUSION_BATCH, "predict_impact")
    rec = np.frombuffer(ffi.buffer(out, n * _IMPACT_DTYPE.itemsize), dtype=_IMPACT_DTYPE, count=n).copy()
    return Impacts(
        t=rec["t_impact"].copy(), lat=np.degrees(rec["lat"]), lon=np.degrees(rec["lon"]), ecef=rec["ecef"].copy(),
        cov_en=rec["cov_en"].reshape(n, 2, 2).copy(), semi_major=rec["semi_major"].copy(),
        semi_minor=rec["semi_minor"].copy(), orient=np.degrees(rec["orient"]), sigma_t=rec["sigma_t"].copy(),
        territory=rec["territory"].astype(np.int32), status=status,
    )
