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


# ---- kinds of warning: territory, EEZ, overflight (edge/threat.py impact_kind, overflight) ----

# A 400 x 400 km "zone" around the island, land included, like the nation files' eez polygons.
ZONE = [(33.7, 137.3), (33.7, 141.7), (37.3, 141.7), (37.3, 137.3)]


def km_north(lat, km):
    return lat + km / KM_PER_DEG


def test_impact_kind_issues_only_on_a_decisive_prediction():
    land, zone = [ISLAND], [ZONE]
    assert threat.impact_kind(35.5, 139.5, 1e3, 1e3, 0.0, land, zone) == threat.TERRITORY        # inside
    assert threat.impact_kind(km_north(35.0, 1.0), 139.5, 8e3, 8e3, 0.0, land, zone) == threat.TERRITORY  # 1 km inland
    south = km_north(35.0, -5.0)                                                                   # 5 km off the coast
    # long axis north: the 95% ellipse straddles the coast, ~6% on the land: neither kind yet
    assert threat.impact_kind(south, 139.5, 8e3, 1e3, 0.0, land, zone) is None
    assert threat.impact_kind(south, 139.5, 8e3, 1e3, 90.0, land, zone) == threat.EEZ            # clear of it, in the zone
    edge = km_north(33.7, -6.0)                                                                    # 6 km outside the zone
    assert threat.impact_kind(edge, 139.5, 8e3, 1e3, 0.0, land, zone) is None
    assert threat.impact_kind(edge, 139.5, 8e3, 1e3, 0.0, land, zone, live=threat.EEZ) == threat.EEZ   # held
    assert threat.impact_kind(edge, 139.5, 8e3, 1e3, 90.0, land, zone, live=threat.EEZ) is None        # gone
    inside = km_north(33.7, 2.0)                                                                   # 2 km inside the zone
    assert threat.impact_kind(inside, 139.5, 150e3, 20e3, 90.0, land, zone) is None              # ~45% of it outside
    assert threat.impact_kind(km_north(33.7, 40.0), 139.5, 150e3, 20e3, 90.0, land, zone) == threat.EEZ
    # a young track's ellipse, 150 km long, its centre in the zone but reaching the land: no warning
    assert threat.impact_kind(km_north(35.0, -60.0), 139.5, 150e3, 20e3, 0.0, land, zone) is None
    assert threat.impact_kind(10.0, 10.0, 1e5, 1e5, 0.0, land, zone) is None
    assert threat.impact_kind(south, 139.5, 8e3, 1e3, 90.0, land, []) is None                    # a nation without eez


def test_impact_kind_holds_a_live_warning_on_the_99_percent_ellipse():
    land, zone = [ISLAND], [ZONE]
    south = km_north(35.0, -5.6)
    # a 5 km circle 5.6 km off the coast misses the land; its 99% (6.2 km) reaches it
    assert threat.impact_kind(south, 139.5, 5e3, 5e3, 0.0, land, zone) == threat.EEZ
    assert threat.impact_kind(south, 139.5, 5e3, 5e3, 0.0, land, zone, live=threat.TERRITORY) == threat.TERRITORY
    assert threat.impact_kind(south, 139.5, 4e3, 4e3, 0.0, land, zone, live=threat.TERRITORY) == threat.EEZ
    out = km_north(33.7, -4.6)
    assert threat.impact_kind(out, 139.5, 5e3, 5e3, 0.0, land, zone) is None
    assert threat.impact_kind(out, 139.5, 5e3, 5e3, 0.0, land, zone, live=threat.EEZ) == threat.EEZ
    assert threat.impact_kind(out, 139.5, 5e3, 5e3, 0.0, land, zone, live=threat.TERRITORY) == threat.EEZ
    assert threat.impact_kind(out, 139.5, 4e3, 4e3, 0.0, land, zone, live=threat.EEZ) is None


def test_no_flapping_across_a_coast():
    # A prediction wandering 1.5 km either side of the coast with a ~5 km ellipse: it is
    # on the land more likely than not now and then. Decided with the live warning, the
    # kind goes (nothing) -> TERRITORY once and never back.
    land, zone = [ISLAND], [ZONE]

    def wander(with_live):
        rng = np.random.default_rng(3)
        live, kinds = None, []
        for _ in range(300):
            lat = km_north(35.0, rng.uniform(-1.5, 1.5))
            a = 5e3 + rng.uniform(-100.0, 100.0)
            k = threat.impact_kind(lat, 139.5 + rng.uniform(-0.01, 0.01), a, a, 0.0, land, zone,
                                   live if with_live else None)
            live = k
            if not kinds or kinds[-1] != k:
                kinds.append(k)
        return kinds

    assert wander(True) in ([None, threat.TERRITORY], [threat.TERRITORY])
    assert len(wander(False)) > 20          # the same wander decided afresh each time flaps


@settings(max_examples=60, deadline=None)
@given(st.floats(-0.4, 0.4), st.floats(-0.4, 0.4), st.floats(3e3, 40e3), st.floats(0.2, 1.0), st.floats(0, 180))
def test_mass_agrees_with_monte_carlo_on_the_ellipsoid(dlat, dlon, a, ratio, orient):
    # The impact's probability of falling on a concave polygon: the classifier's quantile
    # grid against 4,000 random draws of the same Gaussian placed with pymap3d (ENU) and
    # tested with the boards' point-in-polygon.
    lat, lon = 35.2 + dlat, 139.5 + dlon
    poly = [(35.0, 139.0), (35.1, 139.6), (35.0, 140.0), (35.4, 139.8), (35.3, 139.3)]
    b = a * ratio
    rng = np.random.default_rng(11)
    u, v = rng.standard_normal((2, 4000)) / math.sqrt(threat.CHI2_2_95)
    th = math.radians(orient)
    x, y = u * a, v * b
    e, n = x * math.sin(th) + y * math.cos(th), x * math.cos(th) - y * math.sin(th)
    plat, plon, _ = pymap3d.enu2geodetic(e, n, np.zeros_like(e), lat, lon, 0.0, deg=True)
    P = [(float(p), float(q)) for p, q in poly]
    mc = float(np.mean([geo.point_in_polygon(float(p), float(q), P) for p, q in zip(plat, plon)]))
    assert abs(threat.mass(lat, lon, a, b, orient, [poly]) - mc) < 0.06


def test_overflight_crossing_grazing_and_clear():
    land = [ISLAND]
    # west to east across the island's middle, impact 200 km east of it: over it at 139.0E
    t = threat.overflight([35.5, 35.5], [137.0, 142.0], [0.0, 500.0], 2e3, land)
    assert t is not None and abs(t - 200.0) < 8.0
    # 20 km south of the south coast: clear; with a 60 km cross-track width at impact it reaches
    south = km_north(35.0, -20.0)
    assert threat.overflight([south, south], [137.0, 142.0], [0.0, 500.0], 2e3, land) is None
    assert threat.overflight([south, south], [137.0, 142.0], [0.0, 500.0], 60e3, land) is not None
    # the width grows along the flight: zero at the start, so the same corridor reversed
    # (the island near the impact end) reaches where the start would not
    near = km_north(35.0, -8.0)
    assert threat.overflight([near, near], [137.0, 139.3], [0.0, 100.0], 10e3, land) is not None
    assert threat.overflight([near, near], [139.3, 142.0], [0.0, 100.0], 10e3, land) is None
    # the 99% corridor holds a live overflight whose 95% one just misses
    # (along the parallel, sampled every 0.5 degree: a single chord would bulge 2.8 km north)
    graze = km_north(35.0, -9.0)
    lons = [137.0 + 0.5 * k for k in range(11)]
    ts = [50.0 * k for k in range(11)]
    w = 9e3 / 0.6         # at 140E (60% of the way) this 95% half-width is 9 km
    assert threat.overflight([graze] * 11, lons, ts, w * 0.9, land) is None
    assert threat.overflight([graze] * 11, lons, ts, w * 0.9, land, threat.SCALE_99) is not None
    # a ground track that starts over the land counts from its start
    assert threat.overflight([35.5, 35.5], [139.5, 143.0], [10.0, 300.0], 1e3, land) == 10.0


def test_cross_width_is_the_ellipse_across_the_track():
    C = np.array([[100e6, 0.0], [0.0, 1e6]])          # sigma 10 km east, 1 km north
    assert abs(threat.cross_width(C, 1.0, 0.0) - math.sqrt(5.9915) * 1e3) < 1.0    # heading east: north sigma
    assert abs(threat.cross_width(C, 0.0, 1.0) - math.sqrt(5.9915) * 10e3) < 1.0   # heading north: east sigma
