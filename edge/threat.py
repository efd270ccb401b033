# threat.py: is a nation's territory threatened by a predicted impact's 95% ellipse
"""The threat decision on the impact's uncertainty, not its mean point: a
nation is threatened when the 95% impact ellipse reaches its territory (a
lat/lon polygon). The mean point alone flaps as it crosses a coastline;
the ellipse straddles it and holds. A warning already out stays while the
99% ellipse still reaches the territory, so a shrinking ellipse that grazes
a coast does not flap either (docs/FUSION.md).

The test runs in the impact point's tangent plane (east, north metres):
the polygon is mapped there, then into the frame where the ellipse is the
unit circle, and the circle meets the polygon when its centre is inside or
an edge passes within 1. Fine for ellipses and polygons up to a few
hundred kilometres across, away from the poles.

    >>> square = [(35.0, 139.0), (35.0, 140.0), (36.0, 140.0), (36.0, 139.0)]
    >>> reaches(35.5, 139.5, 1e3, 1e3, 0.0, square)          # inside
    True
    >>> reaches(34.95, 139.5, 10e3, 2e3, 0.0, square)        # 5.5 km off the coast, 10 km along north
    True
    >>> reaches(34.95, 139.5, 10e3, 2e3, 90.0, square)       # the same ellipse lying east-west
    False
"""
from __future__ import annotations

import math
from typing import Sequence, Tuple

R_M = 6371008.8             # mean Earth radius: the tangent plane's scale
SCALE_99 = math.sqrt(9.2103 / 5.9915)   # 99% ellipse over the 95% one (chi-square, 2 dof)

Poly = Sequence[Tuple[float, float]]


def reaches(lat: float, lon: float, semi_major_m: float, semi_minor_m: float, orient_deg: float,
            poly: Poly, scale: float = 1.0) -> bool:
    """True when the ellipse centred at (lat, lon) deg, with semi-axes in m
    (times ``scale``) and its major axis at ``orient_deg`` from north
    (clockwise), reaches the polygon of (lat, lon) vertices."""
    a = max(semi_major_m * scale, 1.0)
    b = max(semi_minor_m * scale, 1.0)
    k = math.pi / 180.0 * R_M
    c = math.cos(math.radians(lat))
    # Cheap reject first: the polygon's box against the ellipse's (this runs
    # once a second per ballistic track and destination on the relay's loop).
    la0, la1, lo0, lo1 = _box(poly)
    dlat, dlon = a / k, a / (k * max(c, 1e-6))
    if lat + dlat < la0 or lat - dlat > la1 or not _lon_overlap(lon - dlon, lon + dlon, lo0, lo1):
        return False
    th = math.radians(orient_deg)
    me, mn = math.sin(th), math.cos(th)        # major axis, east and north components
    pts = []
    for plat, plon in poly:
        dlon = (plon - lon + 180.0) % 360.0 - 180.0
        e, n = dlon * k * c, (plat - lat) * k
        pts.append(((e * me + n * mn) / a, (e * mn - n * me) / b))
    if _inside(pts):
        return True
    m = len(pts)
    return any(_seg_dist2(pts[i], pts[(i + 1) % m]) <= 1.0 for i in range(m))


def territory(lat: float, lon: float, semi_major_m: float, semi_minor_m: float, orient_deg: float,
              polys: Sequence[Poly], mean_in: int = -1, keep: Sequence[int] = ()) -> int:
    """The index of the territory the impact threatens, or -1: the one the
    mean point is in (``mean_in``), else one of ``keep`` (those of the
    nation a live warning names) while the 99% ellipse still reaches it,
    else the first the 95% ellipse reaches."""
    if mean_in >= 0:
        return mean_in
    for i in keep:
        if reaches(lat, lon, semi_major_m, semi_minor_m, orient_deg, polys[i], SCALE_99):
            return i
    for i, poly in enumerate(polys):
        if reaches(lat, lon, semi_major_m, semi_minor_m, orient_deg, poly):
            return i
    return -1


_BOXES: dict = {}


def _box(poly: Poly) -> Tuple[float, float, float, float]:
    """(lat min, lat max, lon min, lon max) of a polygon, cached by identity
    (the relay's polygons live as long as its config)."""
    key = id(poly)
    hit = _BOXES.get(key)
    if hit is None or hit[0] is not poly:
        lats = [float(p[0]) for p in poly]
        lons = [float(poly[0][1])]
        for p in poly[1:]:   # unwrapped vertex to vertex: a polygon across +-180 stays one interval
            lons.append(lons[-1] + (float(p[1]) - lons[-1] + 180.0) % 360.0 - 180.0)
        hit = _BOXES[key] = (poly, (min(lats), max(lats), min(lons), max(lons)))
    return hit[1]


def _lon_overlap(a0: float, a1: float, b0: float, b1: float) -> bool:
    # intervals on the circle of longitudes (either may cross +-180)
    for shift in (-360.0, 0.0, 360.0):
        if a0 + shift <= b1 and a1 + shift >= b0:
            return True
    return False


def _inside(pts) -> bool:
    # even-odd ray cast of the origin
    inside = False
    m = len(pts)
    for i in range(m):
        (x1, y1), (x2, y2) = pts[i], pts[(i + 1) % m]
        if (y1 > 0.0) != (y2 > 0.0) and x1 + (0.0 - y1) * (x2 - x1) / (y2 - y1) > 0.0:
            inside = not inside
    return inside


def _seg_dist2(p: Tuple[float, float], q: Tuple[float, float]) -> float:
    # squared distance from the origin to the segment p-q
    dx, dy = q[0] - p[0], q[1] - p[1]
    L = dx * dx + dy * dy
    t = 0.0 if L == 0.0 else max(0.0, min(1.0, -(p[0] * dx + p[1] * dy) / L))
    x, y = p[0] + t * dx, p[1] + t * dy
    return x * x + y * y

