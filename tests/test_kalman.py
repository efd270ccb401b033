"""Kalman predict/update in C: FilterPy agreement, batching, 10^6-step
covariance health, the range/azimuth/elevation EKF, bad input."""
import math

import numpy as np
import pytest
from filterpy.kalman import KalmanFilter

from trilink_native import binding as b
from trilink_native.reference import motion as ref

SITE = (40.89, 140.30, 50.0)  # AN/TPY-2 Shariki (approximate, public)


def _cv_model(dt=0.5, q=0.3):
    F = np.eye(6)
    F[:3, 3:] = dt * np.eye(3)
    Q = ref.process_noise(q, dt)
    H = np.zeros((3, 6))
    H[:, :3] = np.eye(3)
    R = np.array([[25.0, 3.0, 0.0], [3.0, 16.0, -2.0], [0.0, -2.0, 36.0]])
    return F, Q, H, R


def _rel(a, b_):
    return np.max(np.abs(a - b_)) / np.max(np.abs(b_))


def test_matches_filterpy_over_1000_steps():
    F, Q, H, R = _cv_model()
    rng = np.random.default_rng(42)
    x0 = np.array([1000.0, -2000.0, 500.0, 10.0, 5.0, -3.0])
    P0 = np.diag([400.0, 400.0, 400.0, 25.0, 25.0, 25.0])
    P0[0, 3] = P0[3, 0] = 30.0
    kf = KalmanFilter(dim_x=6, dim_z=3)
    kf.x, kf.P, kf.F, kf.Q, kf.H, kf.R = x0.reshape(6, 1).copy(), P0.copy(), F, Q, H, R
    x, P = x0[None].copy(), P0[None].copy()
    truth = x0.copy()
    worst_x = worst_P = 0.0
    for _ in range(1000):
        truth = F @ truth
        z = H @ truth + rng.multivariate_normal(np.zeros(3), R)
        kf.predict()
        assert b.kf_predict(x, P, F, Q).tolist() == [0]
        worst_x = max(worst_x, _rel(x[0], kf.x[:, 0]))
        worst_P = max(worst_P, _rel(P[0], kf.P))
        kf.update(z)
        assert b.kf_update(x, P, z[None], H, R).tolist() == [0]
        worst_x = max(worst_x, _rel(x[0], kf.x[:, 0]))
        worst_P = max(worst_P, _rel(P[0], kf.P))
    assert worst_x <= 1e-12 and worst_P <= 1e-12, (worst_x, worst_P)


def test_position_update_is_the_linear_update_with_h_position():
    F, Q, H, R = _cv_model()
    x = np.array([[6.4e6, 1e5, 2e5, 100.0, 2000.0, 50.0]])
    P = np.diag([1e4, 1e4, 1e4, 100.0, 100.0, 100.0])[None].copy()
    z = x[:, :3] + [[30.0, -20.0, 10.0]]
    x2, P2 = x.copy(), P.copy()
    assert b.update_position(x, P, z, R).tolist() == [0]
    assert b.kf_update(x2, P2, z, H, R).tolist() == [0]
    assert np.array_equal(x, x2) and np.array_equal(P, P2)
    xr, Pr = ref.kf_update(x2[0] * 0 + np.array([6.4e6, 1e5, 2e5, 100.0, 2000.0, 50.0]),
                           np.diag([1e4, 1e4, 1e4, 100.0, 100.0, 100.0]), z[0], H, R)
    assert np.allclose(x[0], xr, rtol=1e-14) and np.allclose(P[0], Pr, rtol=1e-12, atol=1e-12)


def _random_tracks(n, seed):
    rng = np.random.default_rng(seed)
    x = ref.irbm_burnout() + rng.normal(0, [2e4, 2e4, 2e4, 50, 50, 50], (n, 6))
    L = rng.normal(0, 1, (n, 6, 6)) * [30.0, 30.0, 30.0, 1.0, 1.0, 1.0]
    return x, L @ L.transpose(0, 2, 1) + np.eye(6)


def test_batched_and_one_at_a_time_are_bit_identical():
    n = 64
    F, Q, H, R = _cv_model()
    x, P = _random_tracks(n, 3)
    rng = np.random.default_rng(4)
    z = x[:, :3] + rng.normal(0, 5, (n, 3))
    rae = np.array([ref.rae(xi, (math.radians(SITE[0]), math.radians(SITE[1]), SITE[2])) for xi in x])
    rae += rng.normal(0, [20.0, 1e-3, 1e-3], (n, 3))
    Rr = np.diag([400.0, 1e-6, 1e-6])
    runs = {
        "kf_predict": lambda xs, Ps, i: b.kf_predict(xs, Ps, F, Q),
        "kf_update": lambda xs, Ps, i: b.kf_update(xs, Ps, z[i], H, R),
        "update_position": lambda xs, Ps, i: b.update_position(xs, Ps, z[i], R),
        "update_rae": lambda xs, Ps, i: b.update_rae(xs, Ps, rae[i], Rr, SITE),
    }
    for name, run in runs.items():
        xb, Pb = x.copy(), P.copy()
        assert (run(xb, Pb, slice(None)) == 0).all(), name
        for i in range(n):
            xi, Pi = x[i:i + 1].copy(), P[i:i + 1].copy()
            run(xi, Pi, slice(i, i + 1))
            assert xi.tobytes() == xb[i:i + 1].tobytes() and Pi.tobytes() == Pb[i:i + 1].tobytes(), name


def test_covariance_stays_symmetric_and_pd_over_a_million_steps_from_ill_conditioned_start():
    F, Q, H, R = _cv_model(dt=0.1, q=1e-3)
    rng = np.random.default_rng(5)
    # condition number ~1e12 with strong correlations
    U, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    P = U @ np.diag([1e8, 1e5, 1e2, 1.0, 1e-2, 1e-4]) @ U.T
    P = 0.5 * (P + P.T)
    assert np.linalg.cond(P) > 1e11
    x = np.zeros(6)
    zs = rng.normal(0, 5, (997, 3))
    st, worst = b.kf_soak(1_000_000, x, P, F, Q, H, R, zs, check_every=1000)
    assert st == b.TRK_OK
    assert worst <= 1e-12
    assert np.max(np.abs(P - P.T)) <= 1e-12 * np.max(np.abs(P))
    assert np.linalg.eigvalsh(P).min() > 0
    np.linalg.cholesky(P)
    # and it settled where the steady-state filter is: one more step changes nothing much
    P_before = P.copy()
    b.kf_soak(1, x, P, F, Q, H, R, zs[:1])
    assert np.allclose(P, P_before, rtol=1e-6)


def test_rae_measurement_and_jacobian():
    site = (math.radians(SITE[0]), math.radians(SITE[1]), SITE[2])
    x, _ = _random_tracks(5, 8)
    for xi in x:
        z = b.rae_from_ecef(xi[:3], SITE)
        assert np.allclose(z, ref.rae(xi, site), rtol=1e-13)
        H = ref.rae_jacobian(xi, site)
        for j in range(3):
            d = np.zeros(6)
            d[j] = 1.0
            fd = (ref.rae(xi + d, site) - ref.rae(xi - d, site)) / 2.0
            assert np.allclose(H[:, j], fd, rtol=1e-5, atol=1e-12)


def test_rae_update_matches_reference_and_wraps_azimuth():
    site_r = (math.radians(SITE[0]), math.radians(SITE[1]), SITE[2])
    # a target due north of the site, so the azimuth sits at the 0 / 2 pi seam
    tgt = b.enu_to_ecef([[0.5, 400e3, 300e3]], SITE)[0]
    x = np.concatenate([tgt, [100.0, -3000.0, 200.0]])[None].copy()
    P = np.diag([1e6, 1e6, 1e6, 1e3, 1e3, 1e3])[None].copy()
    z = b.rae_from_ecef(tgt, SITE)
    z[1] = (z[1] - 2e-4) % (2 * math.pi)  # measured just west of north: near 2 pi
    R = np.diag([100.0, 1e-8, 1e-8])
    xr, Pr = ref.update_rae(x[0].copy(), P[0].copy(), z, R, site_r)
    assert b.update_rae(x, P, z[None], R, SITE).tolist() == [0]
    assert np.allclose(x[0], xr, rtol=1e-12) and np.allclose(P[0], Pr, rtol=1e-9, atol=1e-9)
    # the wrapped innovation moved the track ~80 m west, not round the circle
    east = b.ecef_to_enu(x[:, :3], SITE)[0, 0]
    assert -150.0 < east < -20.0


def test_rae_ekf_tracks_a_ballistic_target():
    site_r = (math.radians(SITE[0]), math.radians(SITE[1]), SITE[2])
    truth = ref.irbm_burnout()
    rng = np.random.default_rng(11)
    # fly to where Shariki sees it, then start a crude track
    _, truth, _, _ = b.predict_one(truth, None, 250.0)
    x = (truth + rng.normal(0, [3e3, 3e3, 3e3, 100, 100, 100]))[None].copy()
    P = np.diag([9e6, 9e6, 9e6, 1e4, 1e4, 1e4])[None].copy()
    R = np.diag([50.0 ** 2, 1e-3 ** 2, 1e-3 ** 2])
    t = 0.0
    for _ in range(60):
        _, truth, _, _ = b.predict_one(truth, None, 1.0)
        assert b.predict(x, P, [t], t + 1.0, b.MotionModel(q=0.01)).tolist() == [0]
        t += 1.0
        z = ref.rae(truth, site_r) + rng.multivariate_normal(np.zeros(3), R)
        assert b.update_rae(x, P, z[None], R, SITE).tolist() == [0]
    err = x[0] - truth
    nees = err @ np.linalg.solve(P[0], err)
    assert np.linalg.norm(err[:3]) < 500.0 and nees < 30.0


def test_bad_input_codes_and_isolation():
    F, Q, H, R = _cv_model()
    n = 6
    x, P = _random_tracks(n, 9)
    z = x[:, :3] + 1.0
    Rs = np.tile(R, (n, 1, 1))
    z[1, 0] = np.inf                        # non-finite measurement
    P[2, 3, 3] = -5.0                       # covariance not PD
    Rs[3] = -R                              # R not PD
    x[4, 5] = np.nan                        # non-finite state
    x_in, P_in = x.copy(), P.copy()
    status = b.update_position(x, P, z, Rs)
    assert status.tolist() == [0, b.TRK_ENONFINITE, b.TRK_ENOTPD, b.TRK_ENOTPD, b.TRK_ENONFINITE, 0]
    for i in (1, 2, 3, 4):
        assert np.array_equal(x[i], x_in[i], equal_nan=True) and np.array_equal(P[i], P_in[i])
    x5, P5 = x_in[5:6].copy(), P_in[5:6].copy()
    b.update_position(x5, P5, z[5:6], Rs[5:6])
    assert np.array_equal(x5, x[5:6]) and np.array_equal(P5, P[5:6])
    # a target straight above the radar has no azimuth
    over = b.enu_to_ecef([[0.0, 0.0, 500e3]], SITE)[0]
    xo = np.concatenate([over, [0, 0, 0]])[None].copy()
    Po = np.eye(6)[None].copy()
    assert b.update_rae(xo, Po, [[500e3, 0.0, 1.5]], np.eye(3), SITE).tolist() == [b.TRK_ESINGULAR]
    assert b.kf_predict(np.array([[np.nan, 0.0]]), np.eye(2)[None].copy(), np.eye(2), np.eye(2)).tolist() == [1]
    with pytest.raises(ValueError):
        b.kf_update(x, P, z[:, :2], H, R)
