# phase_check.py: the relay's flight-phase detector on a nation's own tracks, against the truth
"""Fly one scenario through one nation's radar model and local tracker
(the board code, under CPython), feed every confirmed track's estimate to
the relay's detector (``trilink_edge.phase``) as the relay would (ECEF,
about once a second, with the board's boosting bit unless
``board_bits=False``), and pair each track with the burnout time of the
missile it follows. ``tools/phase_detection.py`` prints the table;
``tests/test_phase.py`` holds it to the truth.

    >>> tl = timelines("srbm_sea", "jp")
    >>> burnout, hist = next(iter(tl.values()))
    >>> burnout, hist[-1][1] == BALLISTIC
    (70.0, True)
"""
from __future__ import annotations

from typing import Dict, List, Tuple

from trilink_board import config, geo
from trilink_board.sim import Simulation
from trilink.bench_judge import burnout_time
from trilink_edge.phase import BALLISTIC, FlightPhase
from trilink_native import binding

Timeline = Tuple[float, List[Tuple[float, int]]]     # (burnout s, [(t s, phase)])

__all__ = ["timelines", "BALLISTIC", "Timeline"]


def timelines(scenario: str, nation: str, board_bits: bool = True,
              detector: "FlightPhase | None" = None) -> Dict[int, Timeline]:
    """{track id: (burnout of its missile, [(t, phase)])} for the confirmed
    tracks that follow a missile (fragments are paired with their missile)."""
    sim = Simulation(config.load_scenario(scenario), config.load_nation(nation))
    # missiles are truth objects 1..n in launch order; fragments come after
    burn = {i + 1: burnout_time(ln) for i, ln in enumerate(sim.scenario["launches"])}
    links = [geo.FrameLink(f, sim.frame) for f in sim.truth.frames]
    det = detector or FlightPhase()
    last: Dict[int, float] = {}
    out: Dict[int, Timeline] = {}
    while sim.step():
        for tr in sim.tracker.updated[:sim.n_updated]:
            if tr.t - last.get(tr.tid, -9.0) < 1.0:
                continue      # the relay judges phases once a second
            last[tr.tid] = tr.t
            near, best = None, 1e30
            for ob in sim.truth.objects:
                if ob.state == 1 and ob.oid in burn:
                    p = links[ob.frame_index].apply(ob.p[0], ob.p[1], ob.p[2])
                    d = sum((a - b) ** 2 for a, b in zip(p, tr.x[:3]))
                    if d < best:
                        near, best = ob.oid, d
            if near is None:
                continue
            x = list(sim.frame.enu_to_ecef(tr.x[0], tr.x[1], tr.x[2])) + list(
                sim.frame.vec_enu_to_ecef(tr.x[3], tr.x[4], tr.x[5]))
            p = det.update(tr.tid, tr.t, float(binding.jacobi([x])[0]), bool(tr.man) and board_bits)
            out.setdefault(tr.tid, (burn[near], []))[1].append((tr.t, p))
    return out
