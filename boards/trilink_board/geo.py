# geo.py: WGS-84 geodesy and local east-north-up frames for the board
"""WGS-84 geodesy and local ENU frames.

Geodetic <-> ECEF conversions run once, at start-up, in whatever precision the
interpreter has; everything done per time step works in a local
east-north-up (ENU) frame whose numbers stay below a few thousand kilometres,
so 32-bit floats (RP2040, ESP32) keep metre-level resolution.

    >>> f = LocalFrame(39.20, 125.67, 0.0)       # ENU around Sunan
    >>> e, n, u = f.geodetic_to_enu(40.89, 140.30, 0.0)
    >>> lat, lon, alt = f.enu_to_geodetic(e, n, u)
"""
import math

WGS84_A = 6378137.0
WGS84_F = 1.0 / 298.257223563
WGS84_B = WGS84_A * (1.0 - WGS84_F)
WGS84_E2 = WGS84_F * (2.0 - WGS84_F)
GM = 3.986004418e14          # m^3/s^2, WGS-84 gravitational constant
J2 = 1.08262982e-3           # Earth's second zonal harmonic (EGM2008)
OMEGA_E = 7.292115e-5        # rad/s, Earth rotation rate
MEAN_R = 6371008.8           # m, mean Earth radius (great-circle distances)
_D2R = math.pi / 180.0


def geodetic_to_ecef(lat, lon, alt):
    """(lat deg, lon deg, alt m) -> (x, y, z) ECEF metres."""
    la = lat * _D2R
    lo = lon * _D2R
    sl = math.sin(la)
    cl = math.cos(la)
    n = WGS84_A / math.sqrt(1.0 - WGS84_E2 * sl * sl)
    return ((n + alt) * cl * math.cos(lo), (n + alt) * cl * math.sin(lo),
            (n * (1.0 - WGS84_E2) + alt) * sl)


def ecef_to_geodetic(x, y, z):
    """(x, y, z) ECEF metres -> (lat deg, lon deg, alt m); Bowring's method, mm-accurate."""
    lon = math.atan2(y, x)
    p = math.sqrt(x * x + y * y)
    ep2 = (WGS84_A * WGS84_A - WGS84_B * WGS84_B) / (WGS84_B * WGS84_B)
    th = math.atan2(z * WGS84_A, p * WGS84_B)
    st = math.sin(th)
    ct = math.cos(th)
    lat = math.atan2(z + ep2 * WGS84_B * st * st * st, p - WGS84_E2 * WGS84_A * ct * ct * ct)
    for _ in range(2):
        sl = math.sin(lat)
        n = WGS84_A / math.sqrt(1.0 - WGS84_E2 * sl * sl)
        if p > 1.0:
            alt = p / math.cos(lat) - n
        else:
            alt = abs(z) - WGS84_B
        lat = math.atan2(z, p * (1.0 - WGS84_E2 * n / (n + alt)))
    sl = math.sin(lat)
    n = WGS84_A / math.sqrt(1.0 - WGS84_E2 * sl * sl)
    if abs(math.cos(lat)) > 1e-9:
        alt = p / math.cos(lat) - n
    else:
        alt = abs(z) - WGS84_B
    return lat / _D2R, lon / _D2R, alt


def ellipsoid_radius(sin_geocentric_lat):
    """Distance from the Earth's centre to the WGS-84 ellipsoid at a geocentric latitude."""
    s2 = sin_geocentric_lat * sin_geocentric_lat
    a = WGS84_A
    b = WGS84_B
    return a * b / math.sqrt(b * b * (1.0 - s2) + a * a * s2)


def great_circle_m(lat1, lon1, lat2, lon2):
    """Haversine distance in metres on the mean sphere."""
    p1 = lat1 * _D2R
    p2 = lat2 * _D2R
    dp = p2 - p1
    dl = (lon2 - lon1) * _D2R
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2.0 * MEAN_R * math.asin(min(1.0, math.sqrt(h)))


def point_in_polygon(lat, lon, poly):
    """True if (lat, lon) lies inside ``poly``, a list of [lat, lon] vertices (even-odd rule)."""
    inside = False
    n = len(poly)
    j = n - 1
    for i in range(n):
        yi = poly[i][0]
        xi = poly[i][1]
        yj = poly[j][0]
        xj = poly[j][1]
        if (yi > lat) != (yj > lat):
            if lon < (xj - xi) * (lat - yi) / (yj - yi) + xi:
                inside = not inside
        j = i
    return inside


class LocalFrame:
    """An ENU frame tangent to the ellipsoid at (lat, lon, alt).

    Holds, computed once: the ECEF origin, the rotation rows (east, north,
    up as ECEF unit vectors), the Earth's centre and rotation axis in ENU
    coordinates. ``LocalFrame(lat_deg, lon_deg, alt_m)``.
    """

    def __init__(self, lat, lon, alt):
        self.lat = lat
        self.lon = lon
        self.alt = alt
        self.origin = geodetic_to_ecef(lat, lon, alt)
        la = lat * _D2R
        lo = lon * _D2R
        sl = math.sin(la)
        cl = math.cos(la)
        so = math.sin(lo)
        co = math.cos(lo)
        self.east = (-so, co, 0.0)
        self.north = (-sl * co, -sl * so, cl)
        self.up = (cl * co, cl * so, sl)
        ox, oy, oz = self.origin
        # Earth's centre (ECEF 0,0,0) and its spin axis (ECEF z) seen from this frame.
        self.centre = self.ecef_to_enu(0.0, 0.0, 0.0)
        self.axis = (self.east[2], self.north[2], self.up[2])

    def ecef_to_enu(self, x, y, z):
        """ECEF point -> (e, n, u) metres in this frame."""
        dx = x - self.origin[0]
        dy = y - self.origin[1]
        dz = z - self.origin[2]
        e = self.east
        n = self.north
        u = self.up
        return (e[0] * dx + e[1] * dy + e[2] * dz,
                n[0] * dx + n[1] * dy + n[2] * dz,
                u[0] * dx + u[1] * dy + u[2] * dz)

    def enu_to_ecef(self, e, n, u):
        """(e, n, u) in this frame -> ECEF point."""
        E = self.east
        N = self.north
        U = self.up
        return (self.origin[0] + E[0] * e + N[0] * n + U[0] * u,
                self.origin[1] + E[1] * e + N[1] * n + U[1] * u,
                self.origin[2] + E[2] * e + N[2] * n + U[2] * u)

    def vec_enu_to_ecef(self, e, n, u):
        """Rotate a free vector from this frame to ECEF axes."""
        E = self.east
        N = self.north
        U = self.up
        return (E[0] * e + N[0] * n + U[0] * u, E[1] * e + N[1] * n + U[1] * u,
                E[2] * e + N[2] * n + U[2] * u)

    def geodetic_to_enu(self, lat, lon, alt):
        """Geodetic point -> (e, n, u) in this frame."""
        x, y, z = geodetic_to_ecef(lat, lon, alt)
        return self.ecef_to_enu(x, y, z)

    def enu_to_geodetic(self, e, n, u):
        """(e, n, u) in this frame -> (lat deg, lon deg, alt m)."""
        x, y, z = self.enu_to_ecef(e, n, u)
        return ecef_to_geodetic(x, y, z)

    def altitude(self, e, n, u):
        """Height above the ellipsoid, to metres near the surface, without leaving ENU.

        Uses the ellipsoid's geocentric radius along the line to the Earth's
        centre; cheap enough for every step and 32-bit-safe.
        """
        c = self.centre
        rx = e - c[0]
        ry = n - c[1]
        rz = u - c[2]
        r = math.sqrt(rx * rx + ry * ry + rz * rz)
        a = self.axis
        return r - ellipsoid_radius((rx * a[0] + ry * a[1] + rz * a[2]) / r)


class FrameLink:
    """The fixed transform from one LocalFrame to another: p_b = R p_a + t.

    Computed once in the interpreter's precision; applying it is 9
    multiplies and 3 adds on numbers below the frames' separation.
    ``FrameLink(frame_a, frame_b).apply(e, n, u)``.
    """

    def __init__(self, a, b):
        # Columns of R: a's unit axes expressed in b's ENU.
        cols = []
        for ax in (a.east, a.north, a.up):
            cols.append((b.east[0] * ax[0] + b.east[1] * ax[1] + b.east[2] * ax[2],
                         b.north[0] * ax[0] + b.north[1] * ax[1] + b.north[2] * ax[2],
                         b.up[0] * ax[0] + b.up[1] * ax[1] + b.up[2] * ax[2]))
        self.r = (cols[0][0], cols[1][0], cols[2][0],
                  cols[0][1], cols[1][1], cols[2][1],
                  cols[0][2], cols[1][2], cols[2][2])
        self.t = b.ecef_to_enu(a.origin[0], a.origin[1], a.origin[2])

    def apply(self, e, n, u):
        """Point in frame a -> point in frame b."""
        r = self.r
        t = self.t
        return (r[0] * e + r[1] * n + r[2] * u + t[0], r[3] * e + r[4] * n + r[5] * u + t[1],
                r[6] * e + r[7] * n + r[8] * u + t[2])

    def rotate(self, e, n, u):
        """Free vector in frame a -> frame b axes."""
        r = self.r
        return (r[0] * e + r[1] * n + r[2] * u, r[3] * e + r[4] * n + r[5] * u,
                r[6] * e + r[7] * n + r[8] * u)
