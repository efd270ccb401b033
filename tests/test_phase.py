"""Flight phase (edge/phase.py) on the boards' own tracks of every shipped
scenario: each nation's radar model and local tracker (boards/, under
CPython) fly the whole scenario, and every confirmed track's estimate goes
through the relay's detector as the relay sees it (ECEF, about once a
second, with the board's boosting bit). Judged against the truth's burnout
time of the missile each track follows: never ballistic under thrust,
ballistic within a minute of burnout, and no flapping."""
from __future__ import annotations

import pytest

from trilink.phase_check import timelines
from trilink_edge import phase as ph

SCENARIOS = ["default", "salvo", "lofted", "srbm_japan", "srbm_sea", "srbm_korea_only"]
LATE_S = 60.0     # ballistic by burnout + this, for a track seen that long


@pytest.mark.parametrize("nation", ["jp", "kr"])
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_boost_and_burnout_detected_on_every_trajectory_class(scenario, nation):
    tracks = timelines(scenario, nation)
    for tid, (burnout, hist) in tracks.items():
        under_thrust = [t for t, p in hist if t < burnout and p == ph.BALLISTIC]
        assert not under_thrust, f"track {tid} ballistic at {under_thrust[0]:.0f} s, burnout {burnout:.0f} s"
        first = next((i for i, (_, p) in enumerate(hist) if p == ph.BALLISTIC), None)
        if first is not None:
            assert all(p == ph.BALLISTIC for _, p in hist[first:]), f"track {tid} flaps"
        if hist[0][0] <= burnout + 5.0 and hist[-1][0] >= burnout + LATE_S:
            assert first is not None and hist[first][0] <= burnout + LATE_S, f"track {tid}: no burnout seen"
    if scenario != "srbm_korea_only" or nation == "kr":
        assert tracks, "no track followed a missile"


def test_a_radar_gap_under_thrust_is_no_coast():
    # A booster (8e4 J/kg/s) tracked for 30 s, then a 15-s gap in the reports while it
    # still burns. The relay keeps looking once a second at the fused state, which
    # is the last report flown on ballistically: its Jacobi integral is flat. Looks
    # with the same reports behind them add nothing, so the track stays in boost;
    # judged on the flat values as if they were news, it would be called ballistic.
    def run(with_evidence):
        det = ph.FlightPhase()
        phases = []
        for t in range(46):
            fresh = t <= 30
            t_rep = min(t, 30)                                # the last report's time
            jac = -3.0e7 + 8e4 * t_rep
            key = ("kr", 13, t_rep) if with_evidence else None
            phases.append(det.update(1, float(t), jac, False, key))
            assert fresh or not with_evidence or phases[-1] == ph.BOOST
        return phases

    assert run(True)[-1] == ph.BOOST
    assert ph.BALLISTIC in run(False)[31:]
