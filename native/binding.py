"""The one binding module: the only Python that touches cffi's ``ffi``/``lib``.

Each wrapper checks sizes and return codes and raises a clear exception;
everything above this module is strictly typed and never sees a cdata.

    >>> from trilink_native import binding
    >>> binding.abi_version()
    1
"""
from __future__ import annotations

from trilink_native._kernel import ffi, lib  # noqa: F401  (ffi used by sections below)

ABI_VERSION = 1


class KernelError(Exception):
    """A C kernel call returned an error code."""


def abi_version() -> int:
    """ABI version of the compiled kernel."""
    return int(lib.tl_abi_version())


if abi_version() != ABI_VERSION:  # a stale build next to new Python code
    raise ImportError(
        f"trilink_native._kernel has ABI {abi_version()}, binding expects {ABI_VERSION}; "
        "reinstall with `pip install -e .`"
    )

# ---------------------------------------------------------------- wire ----

# --------------------------------------------------------------- codec ----

# ------------------------------------------- fusion: geodesy and motion ----
# Angles: latitudes/longitudes (sites, impact points, territories) are in
# DEGREES here and radians in C; measured azimuth/elevation are in RADIANS.
# Batched calls are one cffi call per batch; per-track failures come back in
# a status array (TRK_* codes, see STATUS_NAMES) and leave that track as it was.

import functools as _functools
import math as _math
from dataclasses import dataclass as _dataclass
from typing import Optional as _Optional, Sequence as _Sequence, Tuple as _Tuple

import numpy as _np

TRK_OK = int(lib.TL_TRK_OK)
TRK_ENONFINITE = int(lib.TL_TRK_ENONFINITE)
TRK_ENOTPD = int(lib.TL_TRK_ENOTPD)
TRK_ETIME = int(lib.TL_TRK_ETIME)
TRK_ENOIMPACT = int(lib.TL_TRK_ENOIMPACT)
TRK_EARG = int(lib.TL_TRK_EARG)
TRK_ESINGULAR = int(lib.TL_TRK_ESINGULAR)
STATUS_NAMES = {
    TRK_OK: "ok",
    TRK_ENONFINITE: "non-finite input or result",
    TRK_ENOTPD: "covariance not symmetric positive definite",
    TRK_ETIME: "time out of order or step too long",
    TRK_ENOIMPACT: "no impact within the search horizon (or already below the surface)",
    TRK_EARG: "degenerate geometry",
    TRK_ESINGULAR: "singular innovation or geometry",
}


class FusionArgumentError(KernelError, ValueError):
    """A fusion kernel call rejected its arguments as a whole (returned -1)."""


@_dataclass(frozen=True)
class MotionModel:
    """Ballistic motion model settings (see docs/FUSION.md).

        >>> MotionModel(q=0.5).step
        1.0
    """

    q: float = 1.0  # white-acceleration spectral density, m^2/s^3 per axis
    step: float = 1.0  # RK4 step, s
    j2: bool = True  # include the J2 term of gravity


@_functools.lru_cache(maxsize=64)
def _gm_motion(model: _Optional[MotionModel]):
    # Cached: MotionModel is frozen, and the cdata is only ever read by C.
    m = ffi.new("tl_motion *")
    lib.tl_motion_default(m)
    if model is not None:
        m.q, m.step, m.j2 = float(model.q), float(model.step), 1 if model.j2 else 0
    return m


def _gm_f64(a, shape_tail: _Tuple[int, ...], name: str, n: _Optional[int] = None) -> _np.ndarray:
    """A read-only input as a C-contiguous float64 array of shape (n,) + shape_tail."""
    arr = _np.ascontiguousarray(a, dtype=_np.float64)
    if arr.shape[1:] != shape_tail or arr.ndim != 1 + len(shape_tail) or (n is not None and arr.shape[0] != n):
        want = ("N" if n is None else str(n),) + tuple(str(s) for s in shape_tail)
        raise ValueError(f"{name} must have shape ({', '.join(want)}), got {arr.shape}")
    return arr


def _gm_inplace(a: _np.ndarray, shape_tail: _Tuple[int, ...], name: str, n: _Optional[int] = None) -> _np.ndarray:
    """An in-place argument: must already be writable C-contiguous float64."""
    if not isinstance(a, _np.ndarray) or a.dtype != _np.float64 or not a.flags.c_contiguous or not a.flags.writeable:
        raise ValueError(f"{name} must be a writable C-contiguous float64 numpy array (it is updated in place)")
    return _gm_f64(a, shape_tail, name, n)


def _gm_dbl(arr: _np.ndarray):
    return ffi.from_buffer("double[]", arr)


def _gm_check_call(rc: int, what: str) -> None:
    if rc < 0:
        raise FusionArgumentError(f"{what}: arguments rejected by the kernel")


def geodetic_to_ecef(llh_deg) -> _np.ndarray:
    """WGS-84 (lat deg, lon deg, h m)[N,3] -> ECEF m [N,3]; non-finite rows give NaN.

        >>> geodetic_to_ecef([[0.0, 0.0, 0.0]])[0, 0]
        6378137.0
    """
    llh = _gm_f64(llh_deg, (3,), "llh_deg").copy()
    llh[:, :2] = _np.radians(llh[:, :2])
    out = _np.empty_like(llh)
    _gm_check_call(lib.tl_geo_to_ecef_n(len(llh), _gm_dbl(llh), _gm_dbl(out), ffi.NULL), "geodetic_to_ecef")
    return out


def ecef_to_geodetic(ecef) -> _np.ndarray:
    """ECEF m [N,3] -> WGS-84 (lat deg, lon deg, h m) [N,3]; bad rows (NaN, near the centre) give NaN.

        >>> round(float(ecef_to_geodetic([[6378137.0, 0.0, 0.0]])[0, 2]), 6)
        0.0
    """
    e = _gm_f64(ecef, (3,), "ecef")
    out = _np.empty_like(e)
    _gm_check_call(lib.tl_ecef_to_geo_n(len(e), _gm_dbl(e), _gm_dbl(out), ffi.NULL), "ecef_to_geodetic")
    out[:, :2] = _np.degrees(out[:, :2])
    return out


def _gm_origin(origin_llh_deg) -> _np.ndarray:
    o = _np.array(origin_llh_deg, dtype=_np.float64).reshape(3)
    o[:2] = _np.radians(o[:2])
    return o


def ecef_to_enu(ecef, origin_llh_deg) -> _np.ndarray:
    """ECEF m [N,3] -> local east/north/up m around origin (lat deg, lon deg, h m).

        >>> ecef_to_enu(geodetic_to_ecef([[35.0, 135.0, 10.0]]), (35.0, 135.0, 0.0)).round(6).tolist()
        [[0.0, 0.0, 10.0]]
    """
    e = _gm_f64(ecef, (3,), "ecef")
    out = _np.empty_like(e)
    _gm_check_call(lib.tl_ecef_to_enu_n(len(e), _gm_dbl(e), _gm_dbl(_gm_origin(origin_llh_deg)), _gm_dbl(out), ffi.NULL), "ecef_to_enu")
    return out


def enu_to_ecef(enu, origin_llh_deg) -> _np.ndarray:
    """Local east/north/up m [N,3] around origin (lat deg, lon deg, h m) -> ECEF m."""
    e = _gm_f64(enu, (3,), "enu")
    out = _np.empty_like(e)
    _gm_check_call(lib.tl_enu_to_ecef_n(len(e), _gm_dbl(e), _gm_dbl(_gm_origin(origin_llh_deg)), _gm_dbl(out), ffi.NULL), "enu_to_ecef")
    return out


def acceleration(x, model: _Optional[MotionModel] = None) -> _np.ndarray:
    """ECEF acceleration (gravity, J2, Coriolis, centrifugal) m/s^2 at one state x[6]."""
    s = _gm_f64(_np.reshape(x, (1, 6)), (6,), "x")
    a = _np.empty(3)
    lib.tl_motion_accel(_gm_motion(model), _gm_dbl(s), _gm_dbl(a))
    return a


def predict_one(x, P, dt: float, model: _Optional[MotionModel] = None):
    """Propagate one track by dt >= 0 s; returns (status, x_new, P_new, Phi) (copies).

        >>> st, x1, P1, Phi = predict_one([6.5e6, 0, 0, 0, 7e3, 0], 100 * np.eye(6), 1.0)
    """
    xs = _gm_f64(_np.reshape(x, (1, 6)), (6,), "x").copy()
    Ps = None if P is None else _gm_f64(_np.reshape(P, (1, 6, 6)), (6, 6), "P").copy()
    Phi = _np.empty((6, 6))
    st = lib.tl_motion_predict1(_gm_motion(model), _gm_dbl(xs), ffi.NULL if Ps is None else _gm_dbl(Ps), float(dt), _gm_dbl(Phi))
    return int(st), xs[0], None if Ps is None else Ps[0], Phi


def predict(x: _np.ndarray, P: _Optional[_np.ndarray], t_from, t_to: float,
            model: _Optional[MotionModel] = None) -> _np.ndarray:
    """Predict N tracks in place from t_from[N] to the common time t_to.

    x is [N,6] ECEF state, P is [N,6,6] or None (state only); both must be
    writable C-contiguous float64. Returns the int32 status per track.

        >>> x = np.array([[6.5e6, 0, 0, 0, 7e3, 0]]); P = np.eye(6)[None] * 100.0
        >>> predict(x, P, np.zeros(1), 2.0).tolist()
        [0]
    """
    xs = _gm_inplace(x, (6,), "x")
    n = len(xs)
    Ps = None if P is None else _gm_inplace(P, (6, 6), "P", n)
    tf = _gm_f64(t_from, (), "t_from", n)
    status = _np.zeros(n, dtype=_np.int32)
    rc = lib.tl_motion_predict(_gm_motion(model), n, _gm_dbl(xs), ffi.NULL if Ps is None else _gm_dbl(Ps), _gm_dbl(tf),
                               float(t_to), ffi.from_buffer("int32_t[]", status))
    _gm_check_call(rc, "predict")
    return status


def kf_predict(x: _np.ndarray, P: _np.ndarray, F, Q) -> _np.ndarray:
    """Linear Kalman predict in place for N tracks: x <- F x, P <- F P F' + Q. Returns status[N]."""
    xs = _gm_inplace(x, x.shape[1:] if getattr(x, "ndim", 0) == 2 else (-1,), "x")
    n, dx = xs.shape
    Ps = _gm_inplace(P, (dx, dx), "P", n)
    Fm = _gm_f64(_np.reshape(F, (1, dx, dx)), (dx, dx), "F")
    Qm = _gm_f64(_np.reshape(Q, (1, dx, dx)), (dx, dx), "Q")
    status = _np.zeros(n, dtype=_np.int32)
    _gm_check_call(lib.tl_kf_predict(n, dx, _gm_dbl(xs), _gm_dbl(Ps), _gm_dbl(Fm), _gm_dbl(Qm), ffi.from_buffer("int32_t[]", status)),
                "kf_predict")
    return status


def kf_update(x: _np.ndarray, P: _np.ndarray, z, H, R) -> _np.ndarray:
    """Linear Joseph-form update in place: z [N,dz], H [dz,dx] shared, R [N,dz,dz] or [dz,dz]. Returns status[N].

        >>> x = np.zeros((1, 2)); P = np.eye(2)[None].copy()
        >>> kf_update(x, P, [[1.0]], [[1.0, 0.0]], [[1.0]]).tolist(), x[0, 0]
        ([0], 0.5)
    """
    xs = _gm_inplace(x, x.shape[1:] if getattr(x, "ndim", 0) == 2 else (-1,), "x")
    n, dx = xs.shape
    Ps = _gm_inplace(P, (dx, dx), "P", n)
    Hm = _np.ascontiguousarray(H, dtype=_np.float64)
    if Hm.ndim != 2 or Hm.shape[1] != dx:
        raise ValueError(f"H must have shape (dz, {dx}), got {Hm.shape}")
    dz = Hm.shape[0]
    zs = _gm_f64(z, (dz,), "z", n)
    Rm = _np.asarray(R, dtype=_np.float64)
    Rm = _gm_f64(_np.broadcast_to(Rm, (n, dz, dz)) if Rm.ndim == 2 else Rm, (dz, dz), "R", n)
    status = _np.zeros(n, dtype=_np.int32)
    _gm_check_call(lib.tl_kf_update(n, dx, dz, _gm_dbl(xs), _gm_dbl(Ps), _gm_dbl(zs), _gm_dbl(Hm), _gm_dbl(Rm),
                                 ffi.from_buffer("int32_t[]", status)), "kf_update")
    return status


def _gm_per_track_R(R, n: int) -> _np.ndarray:
    Rm = _np.asarray(R, dtype=_np.float64)
    return _gm_f64(_np.broadcast_to(Rm, (n, 3, 3)) if Rm.ndim == 2 else Rm, (3, 3), "R", n)


def update_position(x: _np.ndarray, P: _np.ndarray, z, R) -> _np.ndarray:
    """Position update of N ECEF tracks in place: z [N,3] ECEF m, R [N,3,3] or [3,3] m^2. Returns status[N]."""
    xs = _gm_inplace(x, (6,), "x")
    n = len(xs)
    Ps = _gm_inplace(P, (6, 6), "P", n)
    zs = _gm_f64(z, (3,), "z", n)
    status = _np.zeros(n, dtype=_np.int32)
    _gm_check_call(lib.tl_kf_update_pos(n, _gm_dbl(xs), _gm_dbl(Ps), _gm_dbl(zs), _gm_dbl(_gm_per_track_R(R, n)),
                                     ffi.from_buffer("int32_t[]", status)), "update_position")
    return status


def _gm_sites(site_llh_deg, n: int) -> _np.ndarray:
    s = _np.array(_np.broadcast_to(_np.asarray(site_llh_deg, dtype=_np.float64), (n, 3)), order="C")
    s[:, :2] = _np.radians(s[:, :2])
    return s


def update_rae(x: _np.ndarray, P: _np.ndarray, z, R, site_llh_deg) -> _np.ndarray:
    """Range/azimuth/elevation EKF update in place from radar sites.

    z [N,3] = (range m, azimuth rad clockwise from north, elevation rad);
    R [N,3,3] or [3,3]; site_llh_deg [N,3] or [3] (lat deg, lon deg, h m).
    Returns status[N].
    """
    xs = _gm_inplace(x, (6,), "x")
    n = len(xs)
    Ps = _gm_inplace(P, (6, 6), "P", n)
    zs = _gm_f64(z, (3,), "z", n)
    status = _np.zeros(n, dtype=_np.int32)
    _gm_check_call(lib.tl_kf_update_rae(n, _gm_dbl(xs), _gm_dbl(Ps), _gm_dbl(zs), _gm_dbl(_gm_per_track_R(R, n)),
                                     _gm_dbl(_gm_sites(site_llh_deg, n)), ffi.from_buffer("int32_t[]", status)), "update_rae")
    return status


def rae_from_ecef(pos, site_llh_deg) -> _np.ndarray:
    """(range m, azimuth rad, elevation rad) of one ECEF point seen from a site (lat deg, lon deg, h m)."""
    p = _gm_f64(_np.reshape(pos, (1, 3)), (3,), "pos")
    out = _np.empty(3)
    st = lib.tl_rae_from_ecef(_gm_dbl(p), _gm_dbl(_gm_sites(site_llh_deg, 1)), _gm_dbl(out))
    if st != TRK_OK:
        raise KernelError(f"rae_from_ecef: {STATUS_NAMES.get(st, st)}")
    return out


def kf_soak(steps: int, x: _np.ndarray, P: _np.ndarray, F, Q, H, R, zs, check_every: int = 1000):
    """Run `steps` linear predict+update cycles on one track in ONE C call (soak test).

    Returns (status, worst relative asymmetry seen). x [dx] and P [dx,dx] are updated in place.
    """
    xs = _gm_inplace(x, (), "x") if x.ndim == 1 else None
    if xs is None:
        raise ValueError("x must be 1-D")
    dx = len(xs)
    Ps = _gm_inplace(P, (dx,), "P", dx)
    Hm = _np.ascontiguousarray(H, dtype=_np.float64)
    dz = Hm.shape[0]
    zm = _gm_f64(zs, (dz,), "zs")
    worst = ffi.new("double *")
    st = lib.tl_kf_soak(int(steps), dx, dz, _gm_dbl(xs), _gm_dbl(Ps), _gm_dbl(_gm_f64(F, (dx,), "F", dx)), _gm_dbl(_gm_f64(Q, (dx,), "Q", dx)),
                        _gm_dbl(_gm_f64(Hm, (dx,), "H", dz)), _gm_dbl(_gm_f64(R, (dz,), "R", dz)), _gm_dbl(zm), len(zm),
                        int(check_every), worst)
    return int(st), float(worst[0])


def _gm_territories(territories: _Optional[_Sequence]) -> _Tuple[int, _np.ndarray, _np.ndarray]:
    """Pack polygons (each a sequence of (lat deg, lon deg)) into C offsets + radians."""
    if not territories:
        return 0, _np.zeros(1, dtype=_np.int32), _np.zeros(2)
    polys = [_np.radians(_gm_f64(p, (2,), "territory polygon")) for p in territories]
    offsets = _np.zeros(len(polys) + 1, dtype=_np.int32)
    offsets[1:] = _np.cumsum([len(p) for p in polys])
    if any(len(p) < 3 for p in polys):
        raise ValueError("every territory polygon needs at least 3 vertices")
    return len(polys), offsets, _np.ascontiguousarray(_np.concatenate(polys))


def territory_of(lat_deg: float, lon_deg: float, territories: _Sequence) -> int:
    """Index of the first polygon (lat/lon degree vertex lists) containing the point, or -1.

        >>> territory_of(1.0, 1.0, [[(0, 0), (0, 2), (2, 2), (2, 0)]])
        0
    """
    nt, off, verts = _gm_territories(territories)
    r = int(lib.tl_territory_of(_math.radians(lat_deg), _math.radians(lon_deg), nt,
                                ffi.from_buffer("int32_t[]", off), _gm_dbl(verts)))
    if r == -2:
        raise ValueError("malformed territory polygons")
    return r


@_dataclass
class Impacts:
    """Impact predictions for N tracks (failed tracks: NaN, territory -1, status != 0)."""

    t: _np.ndarray  # impact time [N], same timebase as t0
    lat: _np.ndarray  # deg [N]
    lon: _np.ndarray  # deg [N]
    ecef: _np.ndarray  # m [N,3]
    cov_en: _np.ndarray  # (east, north) covariance m^2 [N,2,2]
    semi_major: _np.ndarray  # 95% ellipse semi-axes, m [N]
    semi_minor: _np.ndarray
    orient: _np.ndarray  # major-axis azimuth, deg clockwise from north in [0, 180) [N]
    sigma_t: _np.ndarray  # 1-sigma impact time, s [N]
    territory: _np.ndarray  # int32 [N], -1 none
    status: _np.ndarray  # int32 [N], TRK_* codes


def _gm_impact_dtype() -> _np.dtype:
    off = lambda f: ffi.offsetof("tl_impact", f)  # noqa: E731
    return _np.dtype({
        "names": ["t_impact", "lat", "lon", "ecef", "cov_en", "semi_major", "semi_minor", "orient", "sigma_t", "territory"],
        "formats": ["<f8", "<f8", "<f8", ("<f8", 3), ("<f8", 4), "<f8", "<f8", "<f8", "<f8", "<i4"],
        "offsets": [off(f) for f in ("t_impact", "lat", "lon", "ecef", "cov_en", "semi_major", "semi_minor", "orient",
                                     "sigma_t", "territory")],
        "itemsize": ffi.sizeof("tl_impact"),
    })


_gm_IMPACT_DTYPE = _gm_impact_dtype()


def predict_impact(x, P, t0, territories: _Optional[_Sequence] = None,
                   model: _Optional[MotionModel] = None) -> Impacts:
    """Impact time, point, 95% ellipse and threatened territory for N tracks (inputs not modified).

        >>> imp = predict_impact(x, P, t0, territories=[japan_latlon_deg])   # doctest: +SKIP
        >>> imp.lat, imp.lon, imp.semi_major, imp.territory                  # doctest: +SKIP
    """
    xs = _gm_f64(x, (6,), "x")
    n = len(xs)
    Ps = _gm_f64(P, (6, 6), "P", n)
    ts = _gm_f64(_np.broadcast_to(_np.asarray(t0, dtype=_np.float64), (n,)), (), "t0", n)
    nt, off, verts = _gm_territories(territories)
    out = ffi.new("tl_impact[]", max(n, 1))
    status = _np.zeros(n, dtype=_np.int32)
    _gm_check_call(lib.tl_impact_predict(_gm_motion(model), n, _gm_dbl(xs), _gm_dbl(Ps), _gm_dbl(ts), nt,
                                      ffi.from_buffer("int32_t[]", off), _gm_dbl(verts), out,
                                      ffi.from_buffer("int32_t[]", status)), "predict_impact")
    rec = _np.frombuffer(ffi.buffer(out, n * _gm_IMPACT_DTYPE.itemsize), dtype=_gm_IMPACT_DTYPE, count=n).copy()
    return Impacts(
        t=rec["t_impact"].copy(), lat=_np.degrees(rec["lat"]), lon=_np.degrees(rec["lon"]), ecef=rec["ecef"].copy(),
        cov_en=rec["cov_en"].reshape(n, 2, 2).copy(), semi_major=rec["semi_major"].copy(),
        semi_minor=rec["semi_minor"].copy(), orient=_np.degrees(rec["orient"]), sigma_t=rec["sigma_t"].copy(),
        territory=rec["territory"].astype(_np.int32), status=status,
    )


# ----------------------------- fusion: association, CI and track picture ----
# Owned by the association/CI/picture part of issue 4 (native/c/assign.h,
# ci.h, picture.h). Every wrapper makes one C call per batch or frame.

import numpy as _np


class AssignmentInfeasible(KernelError):
    """Forbidden pairs leave no complete matching of the smaller side."""


class FusionError(KernelError):
    """A fusion kernel call rejected its input; ``code`` is the TL_* code."""

    def __init__(self, code: int, what: str) -> None:
        super().__init__(f"{what}: {_FUSION_ERRORS.get(code, 'error')} (code {code})")
        self.code = code


_FUSION_ERRORS = {
    1: "NaN or inf in the input",
    2: "covariance not symmetric positive definite",
    3: "time out of order",
    4: "no impact",
    5: "invalid argument",
    6: "singular",
}

CI_TRACE, CI_LOGDET, CI_FAST, CI_NAIVE = 0, 1, 2, 3
_CI_MODES = {"trace": CI_TRACE, "logdet": CI_LOGDET, "fast": CI_FAST, "naive": CI_NAIVE}


def _f64(a: object, shape: tuple | None = None, what: str = "array") -> _np.ndarray:
    arr = _np.ascontiguousarray(a, dtype=_np.float64)
    if shape is not None and arr.shape != shape:
        raise ValueError(f"{what} must have shape {shape}, got {arr.shape}")
    return arr


def _dptr(a: _np.ndarray):
    return ffi.cast("double *", ffi.from_buffer(a))


def _iptr(a: _np.ndarray):
    return ffi.cast("int32_t *", ffi.from_buffer(a))


def assign(cost: object) -> tuple[_np.ndarray, _np.ndarray, float]:
    """Minimum-cost rectangular assignment; +inf marks a forbidden pair.

    Returns (rows, cols, total) like scipy's linear_sum_assignment.

    >>> assign([[4.0, 1.0], [2.0, 0.0]])[2]
    3.0
    """
    c = _f64(cost)
    if c.ndim != 2:
        raise ValueError("cost must be a 2-D array")
    nr, nc = c.shape
    r2c = _np.empty(nr, dtype=_np.int32)
    work = _np.empty(max(1, lib.tl_assign_work_doubles(nr, nc)))
    iwork = _np.empty(max(1, lib.tl_assign_work_ints(nr, nc)), dtype=_np.int32)
    total = ffi.new("double *")
    rc = lib.tl_assign(nr, nc, _dptr(c) if c.size else ffi.NULL, _iptr(r2c) if nr else ffi.NULL,
                       total, _dptr(work), _iptr(iwork))
    if rc == lib.TL_ASSIGN_EINFEASIBLE:
        raise AssignmentInfeasible("cost matrix is infeasible")
    if rc != lib.TL_ASSIGN_OK:
        raise ValueError("cost contains NaN or -inf" if rc == lib.TL_ASSIGN_ECOST else "bad arguments")
    rows = _np.flatnonzero(r2c >= 0)
    return rows, r2c[rows].astype(_np.intp), float(total[0])


def assign_batch(costs: list) -> tuple[list[_np.ndarray], _np.ndarray, _np.ndarray]:
    """Solve many assignment problems in one C call.

    Returns (row_to_col per problem (-1 = unmatched), totals, status) where
    status is 0 or a TL_ASSIGN_E* code per problem (its total is then 0).

    >>> assign_batch([[[1.0]], [[2.0, 0.5]]])[1].tolist()
    [1.0, 0.5]
    """
    mats = [_f64(c) for c in costs]
    for m in mats:
        if m.ndim != 2:
            raise ValueError("every cost must be a 2-D array")
    shapes = _np.array([m.shape for m in mats], dtype=_np.int32).reshape(-1, 2)
    flat = _np.concatenate([m.ravel() for m in mats]) if mats else _np.empty(0)
    nrows = int(shapes[:, 0].sum()) if len(mats) else 0
    r2c = _np.empty(max(1, nrows), dtype=_np.int32)
    totals = _np.zeros(max(1, len(mats)))
    status = _np.zeros(max(1, len(mats)), dtype=_np.int32)
    big_r = int(shapes[:, 0].max()) if len(mats) else 0
    big_c = int(shapes[:, 1].max()) if len(mats) else 0
    big = max(big_r, big_c)
    work = _np.empty(max(1, 3 * big))
    iwork = _np.empty(max(1, 6 * big), dtype=_np.int32)
    flat_c = flat if flat.size else _np.zeros(1)
    rc = lib.tl_assign_batch(len(mats), _iptr(shapes) if len(mats) else ffi.NULL, _dptr(flat_c),
                             _iptr(r2c), _dptr(totals), _iptr(status), _dptr(work), _iptr(iwork))
    if rc < 0:
        raise ValueError("bad arguments to assign_batch")
    out, off = [], 0
    for nr, _nc in shapes:
        out.append(r2c[off:off + nr].copy())
        off += nr
    return out, totals[:len(mats)].copy(), status[:len(mats)].copy()


def _ci_mode(mode: str) -> int:
    if mode not in _CI_MODES:
        raise ValueError(f"mode must be one of {sorted(_CI_MODES)}")
    return _CI_MODES[mode]


def ci_fuse(xs: object, Ps: object, mode: str = "trace",
            tol: float = 0.0) -> tuple[_np.ndarray, _np.ndarray, _np.ndarray]:
    """Covariance intersection of N estimates xs[N, d], Ps[N, d, d].

    mode: "trace" or "logdet" (optimised weights), "fast" (closed-form trace
    weights), "naive" (information sum). Returns (x, P, weights).

    >>> import numpy as np
    >>> x, P, w = ci_fuse([[0.0], [1.0]], [[[1.0]], [[3.0]]])
    >>> round(float(w[0]), 6)
    1.0
    """
    x_in = _f64(xs)
    if x_in.ndim != 2:
        raise ValueError("xs must be [nsrc, dim]")
    n, d = x_in.shape
    P_in = _f64(Ps, (n, d, d), "Ps")
    x = _np.empty(d)
    P = _np.empty((d, d))
    w = _np.empty(n)
    rc = lib.tl_ci_fuse(d, n, _dptr(x_in), _dptr(P_in), _ci_mode(mode), float(tol), _dptr(x),
                        _dptr(P), _dptr(w))
    if rc != 0:
        raise FusionError(rc, "ci_fuse")
    return x, P, w


def ci_weighted(xs: object, Ps: object, weights: object) -> tuple[_np.ndarray, _np.ndarray]:
    """Fuse with given weights: P^-1 = sum w_i P_i^-1 (CI with fixed omega).

    >>> ci_weighted([[0.0], [0.0]], [[[1.0]], [[3.0]]], [0.5, 0.5])[1].round(12).tolist()
    [[1.5]]
    """
    x_in = _f64(xs)
    if x_in.ndim != 2:
        raise ValueError("xs must be [nsrc, dim]")
    n, d = x_in.shape
    P_in = _f64(Ps, (n, d, d), "Ps")
    w = _f64(weights, (n,), "weights")
    x = _np.empty(d)
    P = _np.empty((d, d))
    rc = lib.tl_ci_weighted(d, n, _dptr(x_in), _dptr(P_in), _dptr(w), _dptr(x), _dptr(P))
    if rc != 0:
        raise FusionError(rc, "ci_weighted")
    return x, P


def ci_objective(Ps: object, weights: object, criterion: str = "trace") -> float:
    """tr(P) or log det P of the CI fusion with the given weights.

    >>> round(ci_objective([[[1.0]], [[3.0]]], [0.5, 0.5]), 12)
    1.5
    """
    P_in = _f64(Ps)
    if P_in.ndim != 3 or P_in.shape[1] != P_in.shape[2]:
        raise ValueError("Ps must be [nsrc, dim, dim]")
    n, d, _ = P_in.shape
    w = _f64(weights, (n,), "weights")
    if criterion not in ("trace", "logdet"):
        raise ValueError("criterion must be 'trace' or 'logdet'")
    J = ffi.new("double *")
    rc = lib.tl_ci_objective(d, n, _dptr(P_in), _dptr(w), _ci_mode(criterion), J)
    if rc != 0:
        raise FusionError(rc, "ci_objective")
    return float(J[0])


def ci_batch(xs: object, Ps: object, mode: str = "trace", tol: float = 0.0
             ) -> tuple[_np.ndarray, _np.ndarray, _np.ndarray, _np.ndarray]:
    """Many independent CI problems in one C call: xs[B, N, d], Ps[B, N, d, d].

    Returns (x[B, d], P[B, d, d], w[B, N], status[B]); a failed problem has a
    nonzero TL_TRK_* status and zeros in its outputs.

    >>> import numpy as np
    >>> ci_batch(np.zeros((1, 2, 1)), [[[[1.0]], [[3.0]]]])[3].tolist()
    [0]
    """
    x_in = _f64(xs)
    if x_in.ndim != 3:
        raise ValueError("xs must be [batch, nsrc, dim]")
    b, n, d = x_in.shape
    P_in = _f64(Ps, (b, n, d, d), "Ps")
    x = _np.zeros((max(b, 1), d))
    P = _np.zeros((max(b, 1), d, d))
    w = _np.zeros((max(b, 1), n))
    st = _np.zeros(max(b, 1), dtype=_np.int32)
    rc = lib.tl_ci_batch(b, d, n, _dptr(x_in) if b else ffi.NULL, _dptr(P_in) if b else ffi.NULL,
                         _ci_mode(mode), float(tol), _dptr(x), _dptr(P), _dptr(w), _iptr(st))
    if rc < 0:
        raise ValueError("bad arguments to ci_batch")
    return x[:b], P[:b], w[:b], st[:b]


class PictureError(KernelError):
    """A picture call failed; ``code`` is TL_PIC_E* or TL_TRK_E*."""

    def __init__(self, code: int, what: str) -> None:
        names = {16: "table full", 17: "unknown track", 18: "node id above 63"}
        super().__init__(f"{what}: {names.get(code) or _FUSION_ERRORS.get(code, 'error')} "
                         f"(code {code})")
        self.code = code


PIC_MAX_MEMBERS = 8


class Picture:
    """The relay's fused track picture (native/c/picture.h): source tracks in,
    association with persistence, per-destination CI fusion out.

    >>> import numpy as np
    >>> pic = Picture()
    >>> x = np.array([7.0e6, 0.0, 0.0, 0.0, 7.0e3, 0.0]); P = np.eye(6) * 100.0
    >>> pic.update([1], [10], [500], [0.0], [x], [P]).tolist()
    [0]
    >>> pic.associate(0.0)
    >>> pic.fuse(0.0, sources=[1])["fused_id"].tolist()
    [1]
    """

    def __init__(self, gate: float = 22.46, stay_bonus: float = 4.0, switch_frames: int = 3,
                 timeout: float = 12.0, ci_mode: str = "trace", q: float | None = None,
                 step: float | None = None, j2: bool = True) -> None:
        cfg = ffi.new("tl_picture_config *")
        lib.tl_picture_config_default(cfg)
        cfg.gate, cfg.stay_bonus, cfg.switch_frames = gate, stay_bonus, switch_frames
        cfg.timeout, cfg.ci_mode = timeout, _ci_mode(ci_mode)
        if q is not None:
            cfg.motion.q = q
        if step is not None:
            cfg.motion.step = step
        cfg.motion.j2 = 1 if j2 else 0
        size = lib.tl_picture_size()
        self._mem = ffi.new("char[]", size)
        self._pic = ffi.cast("tl_picture *", self._mem)
        rc = lib.tl_picture_init(self._pic, size, cfg)
        if rc != 0:
            raise ValueError("invalid picture configuration")
        cap = lib.TL_PIC_MAX_FUSED
        self._out = {
            "fused_id": _np.empty(cap, dtype=_np.uint32), "x": _np.empty((cap, 6)),
            "P": _np.empty((cap, 6, 6)), "nmem": _np.empty(cap, dtype=_np.int32),
            "node": _np.empty((cap, PIC_MAX_MEMBERS), dtype=_np.uint8),
            "track": _np.empty((cap, PIC_MAX_MEMBERS), dtype=_np.uint32),
            "report": _np.empty((cap, PIC_MAX_MEMBERS), dtype=_np.uint32),
            "weight": _np.empty((cap, PIC_MAX_MEMBERS)),
        }

    def update(self, node: object, track_id: object, report_id: object, t: object,
               x: object, P: object) -> _np.ndarray:
        """Store a batch of source track records; returns the status per record
        (0, or the TL_* code of a refused record, which changed nothing)."""
        nd = _np.ascontiguousarray(node, dtype=_np.uint8)
        n = nd.shape[0]
        tid = _np.ascontiguousarray(track_id, dtype=_np.uint32)
        rid = _np.ascontiguousarray(report_id, dtype=_np.uint32)
        tt = _f64(t, (n,), "t")
        xx = _f64(x, (n, 6), "x")
        PP = _f64(P).reshape(n, 36) if _np.size(P) == n * 36 else None
        if PP is None or tid.shape != (n,) or rid.shape != (n,):
            raise ValueError("node, track_id, report_id, t, x[n,6], P[n,6,6] must agree in n")
        st = _np.zeros(max(n, 1), dtype=_np.int32)
        if n == 0:
            return st[:0]
        rc = lib.tl_picture_update(
            self._pic, n, ffi.cast("uint8_t *", ffi.from_buffer(nd)),
            ffi.cast("uint32_t *", ffi.from_buffer(tid)), ffi.cast("uint32_t *", ffi.from_buffer(rid)),
            _dptr(tt), _dptr(xx), _dptr(_np.ascontiguousarray(PP)), _iptr(st))
        if rc < 0:
            raise ValueError("bad arguments to Picture.update")
        return st

    def drop(self, node: int, track_id: int) -> None:
        """Remove a source track now; PictureError(17) if unknown."""
        rc = lib.tl_picture_drop(self._pic, node, track_id)
        if rc != 0:
            raise PictureError(rc, "drop")

    def associate(self, t: float) -> None:
        """One association round at time t (prediction, gating, assignment)."""
        rc = lib.tl_picture_associate(self._pic, float(t))
        if rc != 0:
            raise PictureError(rc, "associate")

    def lookup(self, node: int, track_id: int) -> int:
        """Fused id holding a source track (0 = none yet); PictureError(17) if unknown."""
        out = ffi.new("uint32_t *")
        rc = lib.tl_picture_lookup(self._pic, node, track_id, out)
        if rc != 0:
            raise PictureError(rc, "lookup")
        return int(out[0])

    def fuse(self, t: float, sources: object = None, mask: int | None = None) -> dict:
        """The picture at time t from the given source node ids (or a raw
        64-bit mask; default all). Returns a dict of arrays over fused tracks:
        fused_id, x[k,6], P[k,6,6], nmem, node/track/report/weight[k, 8]."""
        if mask is None:
            mask = (1 << 64) - 1 if sources is None else 0
            for nd in ([] if sources is None else sources):
                if not 0 <= int(nd) <= lib.TL_PIC_MAX_NODE:
                    raise ValueError("source node ids are 0..63")
                mask |= 1 << int(nd)
        o = self._out
        cap = o["fused_id"].shape[0]
        k = lib.tl_picture_fuse(
            self._pic, float(t), mask, cap, ffi.cast("uint32_t *", ffi.from_buffer(o["fused_id"])),
            _dptr(o["x"]), _dptr(o["P"]), _iptr(o["nmem"]),
            ffi.cast("uint8_t *", ffi.from_buffer(o["node"])),
            ffi.cast("uint32_t *", ffi.from_buffer(o["track"])),
            ffi.cast("uint32_t *", ffi.from_buffer(o["report"])), _dptr(o["weight"]))
        if k < 0:
            raise ValueError("bad arguments to Picture.fuse")
        return {name: arr[:k].copy() for name, arr in o.items()}

    def stats(self) -> dict:
        """Counters: tracks, fused, initiated, joined, merged, switched, split,
        timed_out, deleted, sat_out."""
        s = ffi.new("tl_picture_stats *")
        lib.tl_picture_get_stats(self._pic, s)
        return {f: int(getattr(s, f)) for f in ("tracks", "fused", "initiated", "joined", "merged",
                                                "switched", "split", "timed_out", "deleted",
                                                "sat_out")}
