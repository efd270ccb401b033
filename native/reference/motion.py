"""THE NUMPY REFERENCE for native/c/{geo,motion,kalman,impact}.c: readable,
slow, for tests and benchmarks only (the relay runs the C kernel).

Same math, same step policy, same formula order as the C:

* WGS-84 geodetic <-> ECEF (Heikkinen closed form) <-> local ENU.
* ECEF ballistic dynamics: point-mass + J2 gravity, Coriolis and centrifugal
  terms; fixed-step RK4 (``floor(dt/step)`` full steps, then one for the
  remainder) with the exact Jacobian of each RK4 step; white-acceleration
  process noise added per step.
* Kalman predict and Joseph-form update (FilterPy's ordering), position and
  range/azimuth/elevation EKF updates.
* Impact: march whole steps to the first ellipsoid crossing, Illinois regula
  falsi on the last step, covariance carried to impact and projected onto
  the tangent plane along the velocity.

    >>> from trilink_native.reference import motion as ref
    >>> x = ref.predict(np.array([6.5e6, 0, 0, 0, 7e3, 0]), np.eye(6) * 100, 2.0)[0]
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import numpy as np

A = 6378137.0
F = 1.0 / 298.257223563
B = A * (1.0 - F)
E2 = F * (2.0 - F)
GM = 3.986004418e14
OMEGA = 7.292115e-5
J2 = 1.08262998905e-3
CHI2_2_95 = 5.991464547107979
IMPACT_MAX_T = 14400.0


# ---------------------------------------------------------------- geodesy --
def geo_to_ecef(lat: float, lon: float, h: float) -> np.ndarray:
    """Geodetic (rad, rad, m) -> ECEF m."""
    n = A / math.sqrt(1.0 - E2 * math.sin(lat) ** 2)
    return np.array([(n + h) * math.cos(lat) * math.cos(lon),
                     (n + h) * math.cos(lat) * math.sin(lon),
                     (n * (1.0 - E2) + h) * math.sin(lat)])


def ecef_to_geo(r: np.ndarray) -> Tuple[float, float, float]:
    """ECEF m -> geodetic (rad, rad, m), Heikkinen (1982)."""
    x, y, z = (float(v) for v in r[:3])
    a2, b2 = A * A, B * B
    ep2 = (a2 - b2) / b2
    p = math.hypot(x, y)
    Fh = 54.0 * b2 * z * z
    G = p * p + (1.0 - E2) * z * z - E2 * (a2 - b2)
    c = E2 * E2 * Fh * p * p / G ** 3
    s = np.cbrt(1.0 + c + math.sqrt(c * c + 2.0 * c))
    k = s + 1.0 + 1.0 / s
    P = Fh / (3.0 * k * k * G * G)
    Q = math.sqrt(1.0 + 2.0 * E2 * E2 * P)
    t = 0.5 * a2 * (1.0 + 1.0 / Q) - P * (1.0 - E2) * z * z / (Q * (1.0 + Q)) - 0.5 * P * p * p
    r0 = -(P * E2 * p) / (1.0 + Q) + math.sqrt(max(t, 0.0))
    V = math.sqrt((p - E2 * r0) ** 2 + (1.0 - E2) * z * z)
    z0 = b2 * z / (A * V)
    lat = math.atan2(z + ep2 * z0, p)
    h = p * math.cos(lat) + z * math.sin(lat) - A * math.sqrt(1.0 - E2 * math.sin(lat) ** 2)
    return lat, math.atan2(y, x), h


def enu_basis(lat: float, lon: float) -> np.ndarray:
    """Rows: east, north, up unit vectors in ECEF."""
    sl, cl, so, co = math.sin(lat), math.cos(lat), math.sin(lon), math.cos(lon)
    return np.array([[-so, co, 0.0], [-sl * co, -sl * so, cl], [cl * co, cl * so, sl]])


def ecef_to_enu(r: np.ndarray, lat0: float, lon0: float, h0: float) -> np.ndarray:
    return enu_basis(lat0, lon0) @ (np.asarray(r) - geo_to_ecef(lat0, lon0, h0))


def enu_to_ecef(enu: np.ndarray, lat0: float, lon0: float, h0: float) -> np.ndarray:
    return geo_to_ecef(lat0, lon0, h0) + enu_basis(lat0, lon0).T @ np.asarray(enu)


# ----------------------------------------------------------------- motion --
def deriv(s: np.ndarray, j2: bool = True) -> np.ndarray:
    """d/dt [r, v] in the rotating ECEF frame."""
    r, v = s[:3], s[3:]
    rn = np.linalg.norm(r)
    g = -GM * r / rn ** 3
    if j2:
        q = 5.0 * r[2] ** 2 / rn ** 2
        g = g - 1.5 * J2 * GM * A * A / rn ** 5 * r * np.array([1.0 - q, 1.0 - q, 3.0 - q])
    w = np.array([0.0, 0.0, OMEGA])
    a = g - 2.0 * np.cross(w, v) - np.cross(w, np.cross(w, r))
    return np.concatenate([v, a])


def jacobian(s: np.ndarray, j2: bool = True) -> np.ndarray:
    """A = d deriv / d s (6x6)."""
    r = s[:3]
    x, y, z = r
    rn = np.linalg.norm(r)
    G = -GM / rn ** 3 * (np.eye(3) - 3.0 * np.outer(r, r) / rn ** 2)
    if j2:
        c = -1.5 * J2 * GM * A * A
        r5, r7, r9 = rn ** -5, rn ** -7, rn ** -9
        Gj = np.empty((3, 3))
        Gj[0, 0] = r5 - 5 * x * x * r7 - 5 * z * z * r7 + 35 * x * x * z * z * r9
        Gj[1, 1] = r5 - 5 * y * y * r7 - 5 * z * z * r7 + 35 * y * y * z * z * r9
        Gj[2, 2] = 3 * r5 - 30 * z * z * r7 + 35 * z ** 4 * r9
        Gj[0, 1] = Gj[1, 0] = -5 * x * y * r7 + 35 * x * y * z * z * r9
        Gj[0, 2] = Gj[2, 0] = -15 * x * z * r7 + 35 * x * z ** 3 * r9
        Gj[1, 2] = Gj[2, 1] = -15 * y * z * r7 + 35 * y * z ** 3 * r9
        G = G + c * Gj
    G = G + np.diag([OMEGA ** 2, OMEGA ** 2, 0.0])
    Am = np.zeros((6, 6))
    Am[:3, 3:] = np.eye(3)
    Am[3:, :3] = G
    Am[3, 4], Am[4, 3] = 2.0 * OMEGA, -2.0 * OMEGA
    return Am


def rk4_step(s: np.ndarray, h: float, j2: bool = True) -> Tuple[np.ndarray, np.ndarray]:
    """One RK4 step; returns (new state, exact Jacobian of the step)."""
    I = np.eye(6)
    k1 = deriv(s, j2)
    t2 = s + 0.5 * h * k1
    k2 = deriv(t2, j2)
    t3 = s + 0.5 * h * k2
    k3 = deriv(t3, j2)
    t4 = s + h * k3
    k4 = deriv(t4, j2)
    F1 = jacobian(s, j2)
    F2 = jacobian(t2, j2) @ (I + 0.5 * h * F1)
    F3 = jacobian(t3, j2) @ (I + 0.5 * h * F2)
    F4 = jacobian(t4, j2) @ (I + h * F3)
    return s + h / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4), I + h / 6.0 * (F1 + 2 * F2 + 2 * F3 + F4)


def process_noise(q: float, h: float) -> np.ndarray:
    """Discrete white-acceleration noise over h for density q per axis."""
    I = np.eye(3)
    return q * np.block([[h ** 3 / 3 * I, h ** 2 / 2 * I], [h ** 2 / 2 * I, h * I]])


def steps(dt: float, step: float) -> list:
    n = math.floor(dt / step)
    tail = dt - n * step
    return [step] * n + ([tail] if tail > 0 else [])


def predict(x: np.ndarray, P: Optional[np.ndarray], dt: float, q: float = 1.0, step: float = 1.0,
            j2: bool = True) -> Tuple[np.ndarray, Optional[np.ndarray], np.ndarray]:
    """Propagate (x, P) by dt >= 0; returns (x, P, Phi over dt)."""
    s = np.array(x, dtype=float)
    Pw = None if P is None else np.array(P, dtype=float)
    Phi = np.eye(6)
    for h in steps(dt, step):
        s, Ph = rk4_step(s, h, j2)
        if Pw is not None:
            Pw = Ph @ Pw @ Ph.T + process_noise(q, h)
            Pw = 0.5 * (Pw + Pw.T)
        Phi = Ph @ Phi
    return s, Pw, Phi


# ----------------------------------------------------------------- kalman --
def kf_predict(x: np.ndarray, P: np.ndarray, F: np.ndarray, Q: np.ndarray):
    P = F @ P @ F.T + Q
    return F @ x, 0.5 * (P + P.T)


def kf_update_innov(x: np.ndarray, P: np.ndarray, y: np.ndarray, H: np.ndarray, R: np.ndarray):
    """Joseph-form update with innovation y (FilterPy's order)."""
    PHT = P @ H.T
    S = H @ PHT + R
    K = PHT @ np.linalg.inv(S)
    x = x + K @ y
    IKH = np.eye(len(x)) - K @ H
    P = IKH @ P @ IKH.T + K @ R @ K.T
    return x, 0.5 * (P + P.T)


def kf_update(x, P, z, H, R):
    return kf_update_innov(x, P, z - H @ x, H, R)


def rae(pos: np.ndarray, site: Sequence[float]) -> np.ndarray:
    """(range, azimuth clockwise from north in [0, 2pi), elevation) from site (rad, rad, m)."""
    e, n, u = ecef_to_enu(pos[:3], *site)
    return np.array([math.sqrt(e * e + n * n + u * u), math.atan2(e, n) % (2 * math.pi),
                     math.atan2(u, math.hypot(e, n))])


def rae_jacobian(pos: np.ndarray, site: Sequence[float]) -> np.ndarray:
    e, n, u = ecef_to_enu(pos[:3], *site)
    s2 = e * e + n * n
    s, r2 = math.sqrt(s2), s2 + u * u
    rho = math.sqrt(r2)
    Henu = np.array([[e / rho, n / rho, u / rho], [n / s2, -e / s2, 0.0],
                     [-u * e / (s * r2), -u * n / (s * r2), s / r2]])
    H = np.zeros((3, 6))
    H[:, :3] = Henu @ enu_basis(site[0], site[1])
    return H


def update_rae(x, P, z, R, site):
    y = np.asarray(z, dtype=float) - rae(x, site)
    y[1] = (y[1] + math.pi) % (2 * math.pi) - math.pi
    return kf_update_innov(x, P, y, rae_jacobian(x, site), R)


# ----------------------------------------------------------------- impact --
def point_in_polygon(lat: float, lon: float, poly: np.ndarray) -> bool:
    """Even-odd test; poly [k,2] (lat, lon) rad, longitudes unwrapped around the point."""
    inside = False
    k = len(poly)
    for i in range(k):
        j = i - 1
        yi, yj = poly[i, 0], poly[j, 0]
        xi = math.remainder(poly[i, 1] - lon, 2 * math.pi)
        xj = math.remainder(poly[j, 1] - lon, 2 * math.pi)
        if (yi > lat) != (yj > lat) and 0.0 < xi + (xj - xi) * (lat - yi) / (yj - yi):
            inside = not inside
    return inside


def impact(x: np.ndarray, P: np.ndarray, t0: float, q: float = 1.0, step: float = 1.0, j2: bool = True,
           territories: Sequence[np.ndarray] = ()) -> dict:
    """Impact time/point (rad), (E, N) covariance, 95% ellipse, territory index."""
    height = lambda s: ecef_to_geo(s)[2]  # noqa: E731
    s = np.array(x, dtype=float)
    h, k = height(s), 0
    if not h > 0:
        raise ValueError("already below the ellipsoid")
    while True:
        sp, hp = s, h
        s = rk4_step(s, step, j2)[0]
        h = height(s)
        if h <= 0:
            break
        k += 1
        if k >= math.ceil(IMPACT_MAX_T / step):
            raise ValueError("no impact")
    lo, flo, hi, fhi, side, tau = 0.0, hp, step, h, 0, step
    for _ in range(100):
        tau = (lo * fhi - hi * flo) / (fhi - flo)
        f = height(rk4_step(sp, tau, j2)[0])
        if abs(f) < 1e-6 or hi - lo < 1e-12:
            break
        if f > 0:
            lo, flo = tau, f
            if side == -1:
                fhi *= 0.5
            side = -1
        else:
            hi, fhi = tau, f
            if side == 1:
                flo *= 0.5
            side = 1
    s, Pw, _ = predict(x, P, k * step + tau, q, step, j2)
    lat, lon, _ = ecef_to_geo(s)
    R = enu_basis(lat, lon)
    n, v = R[2], s[3:]
    proj = np.eye(3) - np.outer(v, n) / (n @ v)
    J = np.zeros((2, 6))
    J[:, :3] = R[:2] @ proj
    C = J @ Pw @ J.T
    a = np.zeros(6)
    a[:3] = -n / (n @ v)
    lam, vec = np.linalg.eigh(C)
    major = vec[:, 1]
    orient = math.atan2(major[0], major[1]) % math.pi
    terr = next((i for i, p in enumerate(territories) if point_in_polygon(lat, lon, np.asarray(p))), -1)
    return dict(t=t0 + k * step + tau, lat=lat, lon=lon, ecef=s[:3], cov_en=C,
                semi_major=math.sqrt(CHI2_2_95 * max(lam[1], 0.0)), semi_minor=math.sqrt(CHI2_2_95 * max(lam[0], 0.0)),
                orient=orient, sigma_t=math.sqrt(max(a @ Pw @ a, 0.0)), territory=terr)


# --------------------------------------------------------------- scenario --
SUNAN = (39.20, 125.67)  # launch site, deg (public reporting, approximate)


def irbm_burnout(speed: float = 5412.01057918, gamma_deg: float = 33.85082035, az_deg: float = 80.0,
                 alt: float = 120e3, downrange_km: float = 150.0) -> np.ndarray:
    """A Hwasong-12-class burnout state (ECEF) from Sunan, eastward over northern Japan.

    Defaults were solved so that the ballistic flight (J2 on) reaches apogee
    970 km and lands 4,600 km from Sunan after 1,200 s (~22 min with boost).
    """
    lat0, lon0 = math.radians(SUNAN[0]), math.radians(SUNAN[1])
    az, d = math.radians(az_deg), downrange_km * 1e3 / 6371e3
    lat = math.asin(math.sin(lat0) * math.cos(d) + math.cos(lat0) * math.sin(d) * math.cos(az))
    lon = lon0 + math.atan2(math.sin(az) * math.sin(d) * math.cos(lat0), math.cos(d) - math.sin(lat0) * math.sin(lat))
    g = math.radians(gamma_deg)
    enu = speed * np.array([math.cos(g) * math.sin(az), math.cos(g) * math.cos(az), math.sin(g)])
    return np.concatenate([geo_to_ecef(lat, lon, alt), enu_basis(lat, lon).T @ enu])
