"""The threat classifier (edge/threat.py): 95% impact ellipses against
territory polygons, on hand-made cases (inside, straddling a coast, clear
of it, the hysteresis of a live warning, a polygon across the antimeridian)
and against an independent brute force: points on the ellipse placed on
the ellipsoid with pymap3d, tested with the boards' point-in-polygon."""
from __future__ import annotations

import math

import numpy as np
import pymap3d
import pytest
from hypothesis import given, settings, strategies as st

from board_sim_helpers import geo
from trilink_edge import threat

# A 1 x 1 degree "island" around 35.5N 139.5E and a coast-like strip.
ISLAND = [(35.0, 139.0), (35.0, 140.0), (36.0, 140.0), (36.0, 139.0)]
KM_PER_DEG = math.pi / 180.0 * threat.R_M / 1e3


def test_inside_straddling_and_outside():
    assert threat.reaches(35.5, 139.5, 100.0, 100.0, 0.0, ISLAND)                 # inside, tiny ellipse
    south = 35.0 - 5.0 / KM_PER_DEG                                                # mean 5 km off the south coast
    assert threat.reaches(south, 139.5, 8e3, 1e3, 0.0, ISLAND)                    # long axis north: straddles
    assert not threat.reaches(south, 139.5, 8e3, 1e3, 90.0, ISLAND)               # long axis east: clear
    assert not threat.reaches(south, 139.5, 4e3, 4e3, 0.0, ISLAND)                # a 4 km circle: clear
    assert threat.reaches(south, 139.5, 6e3, 6e3, 0.0, ISLAND)                    # a 6 km circle: reaches
    assert not threat.reaches(10.0, 10.0, 1e6, 1e6, 0.0, ISLAND)                  # far away


def test_territory_prefers_the_mean_then_a_live_warning_then_the_first_reached():
    other = [(34.0, 139.0), (34.0, 140.0), (34.9, 140.0), (34.9, 139.0)]
    polys = [ISLAND, other]
    lat = 34.95
    # the mean between the two; a 7 km circle reaches both (5.6 km each way)
    assert threat.territory(lat, 139.5, 7e3, 7e3, 0.0, polys) == 0
    assert threat.territory(lat, 139.5, 7e3, 7e3, 0.0, polys, mean_in=1) == 1
    assert threat.territory(lat, 139.5, 7e3, 7e3, 0.0, polys, keep=[1]) == 1
    # hysteresis: a 5 km circle misses (5.6 km), yet its 99% (6.2 km) still reaches a kept one
    assert threat.territory(lat, 139.5, 5e3, 5e3, 0.0, polys) == -1
    assert threat.territory(lat, 139.5, 5e3, 5e3, 0.0, polys, keep=[0]) == 0
    assert threat.territory(lat, 139.5, 4e3, 4e3, 0.0, polys, keep=[0]) == -1


def test_polygon_across_the_antimeridian():
    fiji = [(-17.0, 179.5), (-17.0, -179.5), (-16.0, -179.5), (-16.0, 179.5)]
    assert threat.reaches(-16.5, 179.9, 1e3, 1e3, 0.0, fiji)
    assert threat.reaches(-16.5, -179.9, 1e3, 1e3, 0.0, fiji)
    west = -16.5, 179.5 - 10.0 / (KM_PER_DEG * math.cos(math.radians(16.5)))  # 10 km west of it
    assert threat.reaches(*west, 12e3, 1e3, 90.0, fiji) and not threat.reaches(*west, 12e3, 1e3, 0.0, fiji)


def brute(lat, lon, a, b, orient, poly, scale):
    """Reaches by sampling: ellipse boundary and centre inside the polygon,
    or a polygon vertex inside the ellipse (ENU from pymap3d)."""
    th = math.radians(orient)
    t = np.linspace(0, 2 * math.pi, 721)
    u, v = a * scale * np.cos(t), b * scale * np.sin(t)
    e, n = u * math.sin(th) + v * math.cos(th), u * math.cos(th) - v * math.sin(th)
    plat, plon, _ = pymap3d.enu2geodetic(e, n, np.zeros_like(e), lat, lon, 0.0, deg=True)
    P = [(float(p), float(q)) for p, q in poly]
    if geo.point_in_polygon(lat, lon, P) or any(geo.point_in_polygon(float(p), float(q), P) for p, q in zip(plat, plon)):
        return True
    for vlat, vlon in P:
        ve, vn, _ = pymap3d.geodetic2enu(vlat, vlon, 0.0, lat, lon, 0.0, deg=True)
        x = (ve * math.sin(th) + vn * math.cos(th)) / (a * scale)
        y = (ve * math.cos(th) - vn * math.sin(th)) / (b * scale)
        if x * x + y * y <= 1.0:
            return True
    return False


@settings(max_examples=150, deadline=None)
@given(st.floats(-0.6, 0.6), st.floats(-0.6, 0.6), st.floats(2e3, 60e3), st.floats(0.1, 1.0), st.floats(0, 180))
def test_agrees_with_a_brute_force_on_the_ellipsoid(dlat, dlon, a, ratio, orient):
    lat, lon = 35.5 + dlat, 139.5 + dlon
    poly = [(35.0, 139.0), (35.1, 139.6), (35.0, 140.0), (35.4, 139.8), (35.3, 139.3)]   # concave
    got = threat.reaches(lat, lon, a, a * ratio, orient, poly)
    # where sampling is clear either way (1% margins for the tangent plane)
    if brute(lat, lon, a, a * ratio, orient, poly, 0.99):
        assert got
    elif not brute(lat, lon, a, a * ratio, orient, poly, 1.01):
        assert not got
