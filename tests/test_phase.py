"""Flight phase (edge/phase.py) on the boards' own tracks of every shipped
scenario: each nation's radar model and local tracker (boards/, under
CPython) fly the whole scenario, and every confirmed track's estimate goes
through the relay's detector as the relay sees it (ECEF, about once a
second, with the board's boosting bit). Judged against the truth's burnout
time of the missile each track follows: never ballistic under thrust,
ballistic within a minute of burnout, and no flapping."""
from __future__ import annotations

import pytest

from board_sim_helpers import load, truth_positions
from trilink_board.truth import CLASSES
from trilink_edge import phase as ph
from trilink_native import binding

SCENARIOS = ["default", "salvo", "lofted", "srbm_japan", "srbm_sea", "srbm_korea_only"]
LATE_S = 60.0     # ballistic by burnout + this, for a track seen that long


def flights(scenario: str, nation: str):
    """(burnout s, [(t, phase)]) per confirmed track that follows a missile."""
    sim = load(scenario, nation)
    # missiles are truth objects 1..n in launch order; fragments come after
    burn = {i + 1: ln["t"] + CLASSES[ln["cls"]][0] for i, ln in enumerate(sim.scenario["launches"])}
    det, last, out = ph.FlightPhase(), {}, {}
    while sim.step():
        for tr in sim.tracker.updated[:sim.n_updated]:
            if tr.t - last.get(tr.tid, -9.0) < 1.0:
                continue      # the relay judges phases once a second
            last[tr.tid] = tr.t
            pos = truth_positions(sim)
            missiles = {oid: p for oid, p in pos.items() if oid in burn}
            if not missiles:
                continue
            near = min(missiles, key=lambda o: sum((a - b) ** 2 for a, b in zip(missiles[o], tr.x[:3])))
            x = list(sim.frame.enu_to_ecef(tr.x[0], tr.x[1], tr.x[2])) + list(
                sim.frame.vec_enu_to_ecef(tr.x[3], tr.x[4], tr.x[5]))
            p = det.update(tr.tid, tr.t, float(binding.jacobi([x])[0]), bool(tr.man))
            out.setdefault(tr.tid, (burn[near], []))[1].append((tr.t, p))
    return out


@pytest.mark.parametrize("nation", ["jp", "kr"])
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_boost_and_burnout_detected_on_every_trajectory_class(scenario, nation):
    tracks = flights(scenario, nation)
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
