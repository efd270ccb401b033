# fusion_check.py: every nation's board simulation into the relay's fused picture, in-process, against the truth
"""Fly one scenario through each nation's radars and local tracker (the
board code, under CPython, each nation with its own copy of the truth as on
its board), hand every confirmed track update to the relay's fused picture
(``binding.Picture`` with the relay's default ``[fusion]`` settings, ECEF
as ``Pipeline.ingest`` stores it, one association round per scan), and
once a second give each destination's picture beside the truth: what
``bench_judge.identity`` judges. No links, no codec, no clocks: seconds,
where the bench flies the scenario in real time. ``tests/test_fusion_check.py``
holds the salvos to no identity switch.

    >>> from trilink import bench_judge
    >>> ticks = picture_ticks("salvo", until_s=300.0)
    >>> {n: bench_judge.identity(v)["switches"] for n, v in ticks.items()}["kr"]
    {'S1': 0, 'S2': 0, 'W1': 0, 'W2': 0}
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from trilink_board import config
from trilink_board.sim import Simulation
from trilink_edge.config import FusionConfig
from trilink_edge.destination import Frame6
from trilink_native.binding import Picture

Tick = Tuple[float, Dict[str, Tuple[float, float, float]], Dict[int, Tuple[float, float, float]]]

__all__ = ["picture_ticks", "Tick"]

_ROUND_S = 0.05     # association round this long after a scan (the uplink's order of magnitude)
_HOLD_S = 3.0       # a destination holds a track this long after its last update (bench_truth.picture_ticks)


def picture_ticks(scenario: str, nations: Sequence[str] = ("jp", "kr"), until_s: Optional[float] = None,
                  picture: Optional[Picture] = None) -> Dict[str, List[Tick]]:
    """Per destination nation: ``[(t, {object: ECEF}, {fused id: ECEF})]`` once a second, the fused
    tracks being those that destination is sent and holds (another nation's track in it reported within
    ``_HOLD_S``: the judge's hold, bench_truth.picture_ticks), predicted to t."""
    scen = config.load_scenario(scenario)
    nat = {n: config.load_nation(n) for n in nations}
    sims = {nat[n]["node"]: Simulation(scen, nat[n]) for n in nations}
    names = {nat[n]["node"]: n for n in nations}
    frames = {nd: Frame6((s.nation["origin"]["lat"], s.nation["origin"]["lon"], s.nation["origin"]["alt_m"]))
              for nd, s in sims.items()}
    fu = FusionConfig()
    pic = picture or Picture(gate=fu.gate, stay_bonus=fu.stay_bonus, switch_frames=fu.switch_frames,
                             timeout=fu.timeout_s, ci_mode=fu.ci_mode)
    truth = Simulation(scen, nat[nations[0]]).truth     # the judge's own copy
    end = scen["duration_s"] if until_s is None else until_s
    out: Dict[str, List[Tick]] = {n: [] for n in nations}
    last: Dict[Tuple[int, int], float] = {}      # (node, source track) -> time of its last report
    more = {nd: s.step(end) for nd, s in sims.items()}
    tick = 0.0
    while any(more.values()):
        nd = min((n for n in sims if more[n]), key=lambda n: sims[n].t)
        s = sims[nd]
        while tick <= s.t:
            _tick(pic, truth, tick, names, last, out)
            tick += 1.0
        ups = s.tracker.updated[:s.n_updated]
        if ups:
            n = len(ups)
            xe, Pe = frames[nd].to_ecef(np.array([list(u.x) for u in ups], float),
                                        np.array([list(u.P) for u in ups], float).reshape(n, 6, 6))
            pic.update(np.full(n, nd, np.uint8), [u.tid for u in ups], [u.report_id for u in ups],
                       np.full(n, s.t), xe, Pe)
            pic.associate(s.t + _ROUND_S)
            for u in ups:
                last[(nd, u.tid)] = s.t
        more[nd] = s.step(end)
    return out


def _tick(pic: Picture, truth: Any, t: float, names: Dict[int, str], last: Dict[Tuple[int, int], float],
          out: Dict[str, List[Tick]]) -> None:
    truth.advance(t)
    flying = {}
    for o in truth.objects:
        if o.flying():
            flying[o.name] = truth.frames[o.frame_index].enu_to_ecef(o.p[0], o.p[1], o.p[2])
    f = pic.fuse(t)
    for nd, name in names.items():
        est = {}
        for i, fid in enumerate(f["fused_id"].tolist()):
            k = f["nmem"][i]
            if any(m != nd and t - last.get((m, tr), -1e9) <= _HOLD_S
                   for m, tr in zip(f["node"][i][:k].tolist(), f["track"][i][:k].tolist())):
                est[fid] = tuple(f["x"][i][:3].tolist())
        if est:
            out[name].append((t, dict(flying), est))
