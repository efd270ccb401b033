"""Impact prediction in C: accuracy 60 s out from a noisy fused-track state,
an honest 95% ellipse, the numpy reference, territory polygons, bad input."""
import math

import numpy as np
import pytest

from trilink_native import binding as b
from trilink_native.reference import motion as ref

X0 = ref.irbm_burnout()
# Rough outlines (lat, lon deg), for tests only.
KOREA = [(38.6, 124.6), (38.6, 128.4), (35.1, 129.6), (34.3, 126.4), (37.0, 126.0)]
JAPAN = [(45.5, 141.6), (43.3, 146.0), (41.3, 141.5), (35.0, 140.9), (33.0, 136.0), (30.9, 130.6),
         (33.9, 129.6), (35.6, 133.2), (37.8, 138.7), (40.7, 139.8), (42.2, 139.8)]
PACIFIC_DATELINE = [(25.0, 170.0), (25.0, -170.0), (40.0, -170.0), (40.0, 170.0)]
TERRITORIES = [KOREA, JAPAN, PACIFIC_DATELINE]


def _truth_60s_out():
    imp = b.predict_impact(X0[None], np.eye(6)[None], 0.0, model=b.MotionModel(q=0.0))
    T = imp.t[0]
    _, x, _, _ = b.predict_one(X0, None, T - 60.0)
    return x, imp.ecef[0], T


def _fused_cov():
    # ~100 m / ~5 m/s per axis with position-velocity correlation: what two
    # radars fused by CI give in the terminal phase.
    P = np.diag([100.0 ** 2] * 3 + [5.0 ** 2] * 3)
    for i in range(3):
        P[i, i + 3] = P[i + 3, i] = 0.5 * 100.0 * 5.0
    P[0, 1] = P[1, 0] = 0.3 * 100.0 ** 2
    return P


def _en_error(imp_ecef, truth_ecef, lat, lon):
    R = ref.enu_basis(math.radians(lat), math.radians(lon))
    return (R @ (truth_ecef - imp_ecef))[:2]


def test_impact_60s_out_from_noisy_state_within_5km_and_ellipse_honest():
    x_true, impact_true, T = _truth_60s_out()
    P = _fused_cov()
    rng = np.random.default_rng(2024)
    n = 500
    xs = x_true + rng.multivariate_normal(np.zeros(6), P, n)
    imp = b.predict_impact(xs, np.tile(P, (n, 1, 1)), T - 60.0, territories=TERRITORIES, model=b.MotionModel(q=0.0))
    assert (imp.status == 0).all()
    miss = np.linalg.norm(imp.ecef - impact_true, axis=1)
    assert miss.mean() < 5e3  # acceptance: within 5 km on average (it is ~0.3 km here)
    assert abs(imp.t - T).mean() < 5.0
    # the 95% ellipse contains the truth about 95% of the time
    inside = 0
    for i in range(n):
        e = _en_error(imp.ecef[i], impact_true, imp.lat[i], imp.lon[i])
        inside += e @ np.linalg.solve(imp.cov_en[i], e) <= 5.991464547107979
    assert 0.92 <= inside / n <= 0.98, inside / n
    # the semi-axes and the covariance describe the same ellipse
    lam = np.linalg.eigvalsh(imp.cov_en)
    assert np.allclose(imp.semi_major, np.sqrt(5.991464547107979 * lam[:, 1]))
    assert np.allclose(imp.semi_minor, np.sqrt(5.991464547107979 * lam[:, 0]))
    assert (imp.territory == 2).all()  # lands in the open Pacific box near the dateline


def test_process_noise_widens_the_ellipse():
    x_true, _, T = _truth_60s_out()
    P = _fused_cov()[None]
    quiet = b.predict_impact(x_true[None], P, 0.0, model=b.MotionModel(q=0.0))
    noisy = b.predict_impact(x_true[None], P, 0.0, model=b.MotionModel(q=10.0))
    assert noisy.semi_major[0] > quiet.semi_major[0] and noisy.sigma_t[0] > quiet.sigma_t[0]
    assert np.array_equal(noisy.ecef, quiet.ecef)


def test_c_matches_numpy_reference():
    P = _fused_cov()
    x_true, _, T = _truth_60s_out()
    for x, t0 in ((X0, 0.0), (x_true, T - 60.0)):
        imp = b.predict_impact(x[None], P[None], t0, territories=TERRITORIES, model=b.MotionModel(q=0.5))
        r = ref.impact(x, P, t0, q=0.5, territories=[np.radians(p) for p in TERRITORIES])
        assert abs(imp.t[0] - r["t"]) < 1e-9
        assert np.linalg.norm(imp.ecef[0] - r["ecef"]) < 1e-6
        assert np.allclose(imp.cov_en[0], r["cov_en"], rtol=1e-9)
        assert imp.semi_major[0] == pytest.approx(r["semi_major"], rel=1e-9)
        assert imp.semi_minor[0] == pytest.approx(r["semi_minor"], rel=1e-9)
        assert math.radians(imp.orient[0]) == pytest.approx(r["orient"], abs=1e-9)
        assert imp.sigma_t[0] == pytest.approx(r["sigma_t"], rel=1e-9)
        assert imp.territory[0] == r["territory"]


def test_impact_point_is_on_the_ellipsoid():
    imp = b.predict_impact(X0[None], np.eye(6)[None], 100.0)
    assert abs(b.ecef_to_geodetic(imp.ecef)[0, 2]) < 1e-3
    assert np.allclose(b.ecef_to_geodetic(imp.ecef)[0, :2], [imp.lat[0], imp.lon[0]])
    assert imp.t[0] > 100.0


def test_territory_polygons():
    assert b.territory_of(35.68, 139.77, TERRITORIES) == 1  # Tokyo
    assert b.territory_of(37.57, 126.98, TERRITORIES) == 0  # Seoul
    assert b.territory_of(39.02, 125.75, TERRITORIES) == -1  # Pyongyang
    assert b.territory_of(30.0, 150.0, TERRITORIES) == -1  # open ocean
    assert b.territory_of(30.0, 179.5, TERRITORIES) == 2  # across the antimeridian
    assert b.territory_of(30.0, -179.5, TERRITORIES) == 2
    assert b.territory_of(30.0, -160.0, TERRITORIES) == -1
    assert b.territory_of(35.68, 139.77, []) == -1
    with pytest.raises(ValueError):
        b.territory_of(0.0, 0.0, [[(0, 0), (1, 1)]])


def test_territory_against_reference_on_random_points():
    rng = np.random.default_rng(3)
    polys = [np.radians(p) for p in TERRITORIES]
    for lat, lon in zip(rng.uniform(25, 47, 400), rng.uniform(120, 200, 400)):
        lon = (lon + 180.0) % 360.0 - 180.0
        want = next((i for i, p in enumerate(polys) if ref.point_in_polygon(math.radians(lat), math.radians(lon), p)), -1)
        assert b.territory_of(lat, lon, TERRITORIES) == want


def test_bad_tracks_get_codes_and_never_touch_others():
    n = 7
    x = np.tile(X0, (n, 1))
    P = np.tile(np.eye(6) * 100.0, (n, 1, 1))
    t0 = np.zeros(n)
    x[1, 0] = np.nan                                     # non-finite
    P[2] = -P[2]                                         # not PD
    x[3, :3] = b.geodetic_to_ecef([[10.0, 10.0, -50.0]])[0]  # already below the surface
    x[4, 3:] = x[4, :3] / np.linalg.norm(x[4, :3]) * 12e3    # escape velocity: never lands
    x[5, :3] = [1.0, 2.0, 3.0]                           # the Earth's centre
    t0[6] = np.inf
    x_in, P_in = x.copy(), P.copy()
    imp = b.predict_impact(x, P, t0, territories=TERRITORIES)
    assert imp.status.tolist() == [0, b.TRK_ENONFINITE, b.TRK_ENOTPD, b.TRK_ENOIMPACT, b.TRK_ENOIMPACT,
                                   b.TRK_EARG, b.TRK_ENONFINITE]
    assert np.array_equal(x, x_in, equal_nan=True) and np.array_equal(P, P_in)
    assert np.isnan(imp.t[1:]).all() and (imp.territory[1:] == -1).all()
    alone = b.predict_impact(x[:1], P[:1], t0[:1], territories=TERRITORIES)
    assert alone.t[0] == imp.t[0] and np.array_equal(alone.ecef[0], imp.ecef[0])
    assert np.array_equal(alone.cov_en[0], imp.cov_en[0])
