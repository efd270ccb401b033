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
import statistics
from typing import List, Optional, Sequence, Tuple

import numpy as np

R_M = 6371008.8             # mean Earth radius: the tangent plane's scale
CHI2_2_95 = 5.9915
SCALE_99 = math.sqrt(9.2103 / 5.9915)   # 99% ellipse over the 95% one (chi-square, 2 dof)
TERRITORY, EEZ = 0, 1       # the impact kinds (trilink_board.messages KIND_*)

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



# The impact distribution, sampled: a deterministic 16 x 16 grid of standard
# normal quantiles in the ellipse's principal frame, each point 1/256 of the
# mass (no random draws: the same prediction always gets the same answer).
_Q = np.array([statistics.NormalDist().inv_cdf((i + 0.5) / 16.0) for i in range(16)])
_GRID = np.stack(np.meshgrid(_Q, _Q, indexing="ij"), axis=-1).reshape(-1, 2)

# Thresholds of the decision (docs/FUSION.md, "The threat decision"): probabilities
# that the impact falls in the polygons, under the prediction's Gaussian whose
# 95% contour is the ellipse.
ISSUE_TERRITORY = 0.5    # a territory warning is issued when the impact is more likely on the land than not
ISSUE_EEZ = 0.9          # an EEZ warning when the impact is very likely in the zone ...
EEZ_LAND_MAX = 0.025     # ... and the 95% ellipse (nearly) misses the land: the land is a territory warning's


def mass(lat: float, lon: float, semi_major_m: float, semi_minor_m: float, orient_deg: float,
         polys: Sequence[Poly]) -> float:
    """The probability that the impact falls in any of ``polys``, under the
    Gaussian whose 95% ellipse is centred at (lat, lon) with the semi-axes
    (m) and orientation (deg from north, clockwise) given: the fraction of
    a 256-point quantile grid of that Gaussian inside the polygons.

        >>> land = [(35.0, 139.0), (35.0, 140.0), (36.0, 140.0), (36.0, 139.0)]
        >>> mass(35.5, 139.5, 1e3, 1e3, 0.0, [land])                    # well inside
        1.0
        >>> mass(35.0, 139.5, 5e3, 5e3, 0.0, [land])                    # on the coast: half
        0.5
        >>> mass(34.0, 139.5, 5e3, 5e3, 0.0, [land])                    # 111 km out
        0.0
    """
    if not polys:
        return 0.0
    s = 1.0 / math.sqrt(CHI2_2_95)
    a, b = max(semi_major_m, 1.0) * s, max(semi_minor_m, 1.0) * s     # 1-sigma semi-axes
    th = math.radians(orient_deg)
    me, mn = math.sin(th), math.cos(th)
    x, y = _GRID[:, 0] * a, _GRID[:, 1] * b
    k = math.pi / 180.0 * R_M
    c = max(math.cos(math.radians(lat)), 1e-6)
    plat = lat + (x * mn - y * me) / k
    plon = lon + (x * me + y * mn) / (k * c)
    hit = np.zeros(len(_GRID), dtype=bool)
    la0, la1 = float(plat.min()), float(plat.max())
    lo0, lo1 = float(plon.min()), float(plon.max())
    for poly in polys:
        pa0, pa1, po0, po1 = _box(poly)
        if la1 < pa0 or la0 > pa1 or not _lon_overlap(lo0, lo1, po0, po1):
            continue
        hit |= _inside_many(plat, plon, np.asarray(poly, dtype=float))
    return float(hit.mean())


def reaches_any(lat: float, lon: float, a: float, b: float, orient: float, polys: Sequence[Poly],
                scale: float = 1.0) -> bool:
    """True when the ellipse (as in ``reaches``) reaches any of ``polys``."""
    return any(reaches(lat, lon, a, b, orient, p, scale) for p in polys)


def impact_kind(lat: float, lon: float, a: float, b: float, orient: float, territory: Sequence[Poly],
                eez: Sequence[Poly], live: Optional[int] = None) -> Optional[int]:
    """What an impact means to one nation: ``TERRITORY``, ``EEZ`` or None.

    A warning is *issued* only on a decisive prediction, and *held* on the
    ellipse, so that the early, long ellipses of a young ballistic track
    (tens to a hundred km) neither warn a nation whose land or zone they
    merely graze, nor withdraw a warning as they shrink:

    * territory: issued when the impact is more likely on the land than not
      (``mass`` >= ``ISSUE_TERRITORY``); held while the 99% ellipse still
      reaches the land;
    * EEZ (the zone's polygons include the land): issued when the impact is
      in the zone with probability >= ``ISSUE_EEZ`` and the 95% ellipse
      nearly misses the land (``mass`` of the land < ``EEZ_LAND_MAX``: an
      impact that may be on the land waits to be one or the other); held,
      and a territory warning that left the land kept as an EEZ one, while
      the 95% ellipse still reaches the zone.

    ``live``: the kind of the warning already out about this impact.

        >>> land = [(35.0, 139.0), (35.0, 140.0), (36.0, 140.0), (36.0, 139.0)]
        >>> zone = [(33.0, 137.0), (33.0, 142.0), (38.0, 142.0), (38.0, 137.0)]
        >>> impact_kind(35.5, 139.5, 1e3, 1e3, 0.0, [land], [zone])
        0
        >>> impact_kind(34.0, 139.5, 1e3, 1e3, 0.0, [land], [zone])
        1
        >>> impact_kind(34.9, 139.5, 30e3, 5e3, 0.0, [land], [zone]) is None     # may be on the land: wait
        True
        >>> impact_kind(33.2, 139.5, 60e3, 5e3, 0.0, [land], [zone]) is None     # half the ellipse out of the zone
        True
        >>> impact_kind(32.9, 139.5, 12e3, 1e3, 0.0, [land], [zone], live=1)     # held: the ellipse reaches it
        1
    """
    if mass(lat, lon, a, b, orient, territory) >= ISSUE_TERRITORY:
        return TERRITORY
    if live == TERRITORY and reaches_any(lat, lon, a, b, orient, territory, SCALE_99):
        return TERRITORY
    if live is not None and reaches_any(lat, lon, a, b, orient, eez):
        return EEZ
    if (eez and mass(lat, lon, a, b, orient, eez) >= ISSUE_EEZ
            and mass(lat, lon, a, b, orient, territory) < EEZ_LAND_MAX):
        return EEZ
    return None


def cross_width(cov_en: np.ndarray, east: float, north: float) -> float:
    """Half-width (m) of the 95% impact ellipse across a ground track heading
    (``east``, ``north``): sqrt(chi2_95 n' C n), n the unit normal."""
    h = math.hypot(east, north)
    if not h > 0.0:
        return float(math.sqrt(CHI2_2_95 * max(cov_en[0, 0], cov_en[1, 1], 0.0)))
    ne, nn = -north / h, east / h
    v = ne * ne * cov_en[0, 0] + 2.0 * ne * nn * cov_en[0, 1] + nn * nn * cov_en[1, 1]
    return float(math.sqrt(CHI2_2_95 * max(v, 0.0)))


def _unit(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    la, lo = np.radians(lat), np.radians(lon)
    return np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], axis=-1)


def overflight(path_lat: Sequence[float], path_lon: Sequence[float], path_t: Sequence[float],
               width_end_m: float, polys: Sequence[Poly], scale: float = 1.0,
               step_m: float = 10000.0) -> Optional[float]:
    """The first time of ``path_t`` at which the predicted ground track (its
    points, impact last) comes over one of ``polys``, or None. The track is a
    corridor: its half-width grows linearly along the remaining flight from
    0 now to ``width_end_m`` (the 95% impact ellipse's half-width across the
    track, ``cross_width``) at impact, times ``scale`` (``SCALE_99`` to hold a
    warning already out). The impact point itself does not count (an impact
    on the polygon is an impact warning, not an overflight). Points are
    interpolated every ``step_m`` along the track; distances are chords on
    the sphere (within 0.1% of the arc at these sizes).

        >>> land = [(35.0, 139.0), (35.0, 140.0), (36.0, 140.0), (36.0, 139.0)]
        >>> abs(overflight([35.5, 35.5], [137.0, 142.0], [0.0, 500.0], 1e3, [land]) - 200.0) < 10  # at 139 E
        True
        >>> overflight([34.5, 34.5], [137.0, 142.0], [0.0, 500.0], 1e3, [land]) is None
        True
    """
    lat = np.asarray(path_lat, dtype=float)
    lon = np.asarray(path_lon, dtype=float)
    t = np.asarray(path_t, dtype=float)
    if len(lat) < 2 or not polys:
        return None
    u = _unit(lat, lon) * R_M
    seg = np.linalg.norm(np.diff(u, axis=0), axis=1)
    k = np.maximum(1, np.ceil(seg / step_m).astype(int))
    # interpolate: k[i] points on segment i (its start included), then the impact point
    idx = np.repeat(np.arange(len(seg)), k)
    frac = np.concatenate([np.arange(n) / n for n in k])
    p = u[idx] + (u[idx + 1] - u[idx]) * frac[:, None]
    pt = t[idx] + (t[idx + 1] - t[idx]) * frac
    span = t[-1] - t[0]
    w = (width_end_m * scale) * ((pt - t[0]) / span if span > 0 else np.ones_like(pt))
    w = np.maximum(w, 1.0)
    pn = p / np.linalg.norm(p, axis=1)[:, None]
    plat = np.degrees(np.arcsin(np.clip(pn[:, 2], -1.0, 1.0)))
    plon = np.degrees(np.arctan2(pn[:, 1], pn[:, 0]))
    best: Optional[float] = None
    wmax = float(w.max())
    for poly in polys:
        la0, la1, lo0, lo1 = _box(poly)
        dl = wmax / (math.pi / 180.0 * R_M)
        near = (plat >= la0 - dl) & (plat <= la1 + dl)
        if not near.any():
            continue
        q = np.asarray(poly, dtype=float)
        inside = _inside_many(plat[near], plon[near], q)
        a = _unit(q[:, 0], q[:, 1]) * R_M
        b = np.roll(a, -1, axis=0)
        pp = p[near]
        ab = b - a                                                   # E x 3
        ap = pp[:, None, :] - a[None, :, :]                          # M x E x 3
        L = np.maximum((ab * ab).sum(axis=1), 1e-9)
        tt = np.clip((ap * ab[None]).sum(axis=2) / L[None], 0.0, 1.0)
        d = np.linalg.norm(ap - tt[..., None] * ab[None], axis=2).min(axis=1)
        hit = inside | (d <= w[near])
        if hit.any():
            first = float(pt[near][np.argmax(hit)])
            best = first if best is None else min(best, first)
    return best


def _inside_many(lat: np.ndarray, lon: np.ndarray, q: np.ndarray) -> np.ndarray:
    # even-odd rule for many points against one (lat, lon) polygon (longitudes unwrapped about the points)
    inside = np.zeros(lat.shape, dtype=bool)
    m = len(q)
    for i in range(m):
        y1, x1 = q[i]
        y2, x2 = q[(i + 1) % m]
        if y1 == y2:
            continue
        dx1 = (x1 - lon + 180.0) % 360.0 - 180.0
        dx2 = dx1 + ((x2 - x1 + 180.0) % 360.0 - 180.0)
        cross = ((y1 > lat) != (y2 > lat)) & (0.0 < dx1 + (lat - y1) * (dx2 - dx1) / (y2 - y1))
        inside ^= cross
    return inside

