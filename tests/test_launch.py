"""Launch alerts' estimate and "is it one we announced" (edge/launch.py)
against the boards' own truth trajectories: the launch point and time of
every trajectory class from a state seen in boost, a salvo's next missile
from the same site told from the first, a breakup's fragments not."""
from __future__ import annotations

import math

import numpy as np
import pytest

from board_sim_helpers import geo  # noqa: F401  (puts boards/ on the path)
from trilink_board import config, messages
from trilink_board.prng import Rng
from trilink_board.truth import Truth
from trilink_edge import launch


def state(la, tau, breakups=(), which=0):
    tr = Truth([la], list(breakups), Rng(7))
    tr.advance(la["t"] + tau)
    o = tr.objects[which]
    f = tr.frames[o.frame_index]
    return np.array([*f.enu_to_ecef(*o.p), *f.vec_enu_to_ecef(*o.v)])


def km(lat1, lon1, lat2, lon2):
    e, n, _u = geo.LocalFrame(lat1, lon1, 0.0).geodetic_to_enu(lat2, lon2, 0.0)
    return math.hypot(e, n) / 1e3


@pytest.mark.parametrize("scen", ["default", "salvo", "srbm_japan", "lofted"])
def test_estimate_in_boost_within_a_few_km_and_seconds(scen):
    for la in config.load_scenario(scen)["launches"]:
        for tau in (15.0, 25.0, 40.0):
            est = launch.estimate(state(la, tau), la["t"] + tau)
            assert est is not None
            assert abs(est.t_s - la["t"]) < 3.0, (la["name"], tau, est)
            assert km(la["lat"], la["lon"], est.lat, est.lon) < 4.0, (la["name"], tau, est)
            assert km(la["lat"], la["lon"], est.lat, est.lon) * 1e3 < est.semi_major_m    # the ellipse holds it
            assert abs((est.azimuth_deg - la["az"] + 180.0) % 360.0 - 180.0) < 5.0
            assert est.class_guess in (messages.CLASS_SRBM, messages.CLASS_MRBM)


def test_not_a_missile_state():
    x = state(config.load_scenario("default")["launches"][0], 30.0)
    x[3:] = 0.0
    assert launch.estimate(x, 40.0) is None


def test_salvo_from_one_site_seconds_apart_is_two_missiles():
    la = dict(config.load_scenario("salvo")["launches"][0])
    for gap in (3.0, 5.0, 10.0):
        lb = dict(la, t=la["t"] + gap, name="next")
        for tau in (20.0, 40.0):
            # both seen at the same instant: the first tau s after its launch
            assert not launch.same_missile(state(lb, tau - gap), state(la, tau)), (gap, tau)


def test_a_breakup_fragment_and_the_same_track_again_are_one_missile():
    sc = config.load_scenario("debris")
    la = sc["launches"][0]
    b = dict(sc["breakups"][0], launch=0)
    parent = state(la, 210.0, [b], 0)
    for k in range(1, 20):
        assert launch.same_missile(state(la, 210.0, [b], k), parent), k
    assert launch.same_missile(parent + np.array([300.0, -200.0, 100.0, 5.0, -3.0, 2.0]), parent)
