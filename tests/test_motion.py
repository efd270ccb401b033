"""Ballistic motion model in C: against scipy's solve_ivp, the numpy
reference, finite differences; batching; bad input."""
import math

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from trilink_native import binding as b
from trilink_native.reference import motion as ref

X0 = ref.irbm_burnout()  # Hwasong-12-class, Sunan -> 4,600 km east over Japan


def _ivp_impact(x0, j2=True):
    def hit(t, s):
        return ref.ecef_to_geo(s)[2]
    hit.terminal, hit.direction = True, -1
    sol = solve_ivp(lambda t, s: ref.deriv(s, j2), (0.0, 4000.0), x0, method="DOP853", rtol=1e-11,
                    atol=1e-6, events=hit, dense_output=True)
    return sol


def _impact(x0, model=None):
    return b.predict_impact(x0[None], np.eye(6)[None], 0.0, model=model)


def test_scenario_is_the_irbm_it_claims():
    imp = _impact(X0)
    sunan = np.radians(ref.SUNAN)
    lat, lon = math.radians(imp.lat[0]), math.radians(imp.lon[0])
    rng = 6371e3 * math.acos(math.sin(sunan[0]) * math.sin(lat) + math.cos(sunan[0]) * math.cos(lat) * math.cos(lon - sunan[1]))
    sol = _ivp_impact(X0)
    ts = np.linspace(0, sol.t_events[0][0], 400)
    apogee = max(ref.ecef_to_geo(sol.sol(t))[2] for t in ts)
    assert abs(rng - 4.6e6) < 50e3
    assert abs(apogee - 970e3) < 10e3
    assert 1100 < imp.t[0] < 1300  # + ~2 min boost = ~22 min


@pytest.mark.parametrize("step", [1.0, 5.0])
def test_impact_agrees_with_solve_ivp_within_a_metre(step):
    sol = _ivp_impact(X0)
    imp = _impact(X0, b.MotionModel(step=step))
    assert imp.status[0] == b.TRK_OK
    assert np.linalg.norm(imp.ecef[0] - sol.y_events[0][0][:3]) < 1.0
    assert abs(imp.t[0] - sol.t_events[0][0]) < 1e-3


def test_state_agrees_with_solve_ivp_along_the_flight():
    sol = _ivp_impact(X0)
    x = X0[None].copy()
    t = 0.0
    for t_to in (10.0, 300.5, 600.0, 1100.25):
        assert b.predict(x, None, np.array([t]), t_to).tolist() == [0]
        t = t_to
        assert np.linalg.norm(x[0, :3] - sol.sol(t)[:3]) < 1.0
        assert np.linalg.norm(x[0, 3:] - sol.sol(t)[3:]) < 1e-3


def test_j2_moves_the_impact_several_kilometres():
    with_j2 = _impact(X0).ecef[0]
    without = _impact(X0, b.MotionModel(j2=False)).ecef[0]
    sol = _ivp_impact(X0, j2=False)
    assert np.linalg.norm(without - sol.y_events[0][0][:3]) < 1.0
    assert 4e3 < np.linalg.norm(with_j2 - without) < 12e3  # ~7 km (6.9 km here)


def test_acceleration_matches_reference_and_points_down():
    a = b.acceleration(X0)
    assert np.allclose(a, ref.deriv(X0)[3:], rtol=1e-13, atol=0)
    assert np.dot(a, X0[:3]) < 0 and 7.0 < np.linalg.norm(a) < 10.0


@pytest.mark.parametrize("dt", [0.1, 1.0, 7.3, 45.0])
def test_c_matches_numpy_reference(dt):
    P = np.diag([1e4, 2e4, 3e4, 10.0, 20.0, 30.0])
    P[0, 3] = P[3, 0] = 100.0
    st, x1, P1, Phi = b.predict_one(X0, P, dt, b.MotionModel(q=2.0))
    xr, Pr, Phir = ref.predict(X0, P, dt, q=2.0)
    assert st == b.TRK_OK
    assert np.allclose(x1, xr, rtol=1e-13, atol=1e-7)
    assert np.allclose(P1, Pr, rtol=1e-11, atol=1e-9)
    assert np.allclose(Phi, Phir, rtol=1e-11, atol=1e-13)


def test_transition_matrix_matches_finite_differences():
    dt = 60.0
    st, _, _, Phi = b.predict_one(X0, None, dt)
    eps = np.array([100.0, 100.0, 100.0, 0.1, 0.1, 0.1])  # large enough to beat rounding
    fd = np.empty((6, 6))
    for j in range(6):
        d = np.zeros(6)
        d[j] = eps[j]
        fd[:, j] = (b.predict_one(X0 + d, None, dt)[1] - b.predict_one(X0 - d, None, dt)[1]) / (2 * eps[j])
    assert np.allclose(Phi, fd, rtol=1e-6, atol=1e-7)


def test_process_noise_grows_covariance_as_white_acceleration():
    q = 4.0
    P0 = np.eye(6) * 1e-6
    st, _, P1, Phi = b.predict_one(X0, P0, 1.0, b.MotionModel(q=q))
    Q = P1 - Phi @ P0 @ Phi.T
    assert np.allclose(Q, ref.process_noise(q, 1.0), atol=1e-12)


def test_batched_equals_one_at_a_time_bit_for_bit():
    rng = np.random.default_rng(7)
    n = 33
    x = X0 + rng.normal(0, [1e3, 1e3, 1e3, 10, 10, 10], (n, 6))
    L = rng.normal(0, 1, (n, 6, 6))
    P = L @ L.transpose(0, 2, 1) + np.eye(6)
    t_from = rng.uniform(0, 5, n)
    xb, Pb = x.copy(), P.copy()
    assert (b.predict(xb, Pb, t_from, 12.0) == 0).all()
    for i in range(n):
        xi, Pi = x[i:i + 1].copy(), P[i:i + 1].copy()
        b.predict(xi, Pi, t_from[i:i + 1], 12.0)
        assert xi.tobytes() == xb[i:i + 1].tobytes() and Pi.tobytes() == Pb[i:i + 1].tobytes()


def test_bad_tracks_get_codes_and_never_touch_others():
    n = 6
    x = np.tile(X0, (n, 1))
    P = np.tile(np.eye(6) * 100.0, (n, 1, 1))
    t_from = np.zeros(n)
    x[1, 2] = np.nan                       # non-finite state
    P[2, 0, 0] = -1.0                      # not positive definite
    t_from[3] = 20.0                       # after t_to: out of order
    x[4, :3] = [10.0, 0.0, 0.0]            # at the Earth's centre
    P[5, 0, 1] = 5.0                       # not symmetric
    x_in, P_in = x.copy(), P.copy()
    status = b.predict(x, P, t_from, 10.0)
    assert status.tolist() == [b.TRK_OK, b.TRK_ENONFINITE, b.TRK_ENOTPD, b.TRK_ETIME, b.TRK_EARG, b.TRK_ENOTPD]
    for i in range(1, n):
        assert np.array_equal(x[i], x_in[i], equal_nan=True) and np.array_equal(P[i], P_in[i])
    clean_x, clean_P = x_in[:1].copy(), P_in[:1].copy()
    b.predict(clean_x, clean_P, t_from[:1], 10.0)
    assert np.array_equal(clean_x, x[:1]) and np.array_equal(clean_P, P[:1])
    assert b.predict(x[:1].copy(), None, [0.0], math.nan).tolist() == [b.TRK_ENONFINITE]
    assert b.predict(x[:1].copy(), None, [0.0], 1e6).tolist() == [b.TRK_ETIME]


def test_bad_arguments_raise():
    with pytest.raises(ValueError):
        b.predict(np.zeros((2, 5)), None, np.zeros(2), 1.0)
    with pytest.raises(ValueError):  # not writable in place
        b.predict(np.zeros((2, 6), dtype=np.float32), None, np.zeros(2), 1.0)
    with pytest.raises(b.FusionArgumentError):
        b.predict(np.tile(X0, (1, 1)), None, np.zeros(1), 1.0, b.MotionModel(step=0.0))


@pytest.mark.parametrize("j2", [True, False])
def test_jacobi_integral_is_constant_along_the_flight_and_rises_under_thrust(j2):
    # Along the model's own ballistic flight the Jacobi integral stays put
    # (to the RK4 error), whatever J2 setting; a thrust a along v raises it
    # at a.v; the model without J2 has the point-mass potential alone.
    model = b.MotionModel(j2=j2, step=0.5)
    x = np.array([X0], float)
    P = np.eye(6)[None] * 1.0
    e0 = b.jacobi(x, model)[0]
    drift = []
    for _ in range(20):
        b.predict(x, P, np.zeros(1), 30.0, model)
        drift.append(b.jacobi(x, model)[0] - e0)
    assert max(abs(d) for d in drift) < 1e-6 * abs(e0)
    v = x[0, 3:]
    dt, acc = 0.01, 40.0
    pushed = x.copy()
    pushed[0, 3:] += acc * dt * v / np.linalg.norm(v)
    rate = (b.jacobi(pushed, model)[0] - b.jacobi(x, model)[0]) / dt
    assert rate == pytest.approx(acc * np.linalg.norm(v), rel=1e-3)
    r = np.linalg.norm(x[0, :3])
    pm = 0.5 * v @ v - 3.986004418e14 / r - 0.5 * 7.292115e-5 ** 2 * (x[0, 0] ** 2 + x[0, 1] ** 2)
    other = b.jacobi(x, b.MotionModel(j2=not j2, step=0.5))[0]
    assert (b.jacobi(x, model)[0] if not j2 else other) == pytest.approx(pm, rel=1e-12)


def test_jacobi_of_a_non_finite_state_is_nan_and_bad_shapes_raise():
    out = b.jacobi([[np.nan, 0, 0, 0, 0, 0], list(X0)])
    assert np.isnan(out[0]) and np.isfinite(out[1])
    with pytest.raises(ValueError):
        b.jacobi([[1.0, 2.0, 3.0]])
