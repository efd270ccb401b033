"""Each nation's board simulation in-process, CI-fused at the scan times, against the truth.

    $ python tools/fusion_vs_truth.py salvo --q 2.0,0.5          # q_accel of the boards' trackers
    $ python tools/fusion_vs_truth.py default --ci logdet

No links, no relay timing: every nation's Simulation (its truth, radars and
local tracker, boards/trilink_board/sim.py) runs to the last impact, its
confirmed tracks go into one binding.Picture in time order, and after each
record the fused track holding it is compared with the truth. Per missile
and phase (bench_judge.flights): the fused RMSE where two nations' tracks
are members against the best nation's own RMSE over the same times (each
nation's tracks within 2 s), each nation's mean NEES (6 dof) over them, and
the impact error (km) of the fused track's kernel prediction from the last
record before T-60 s and T-30 s. docs/FUSION.md, "Fused against the best nation".
"""
from __future__ import annotations

import argparse
import bisect
import collections
import sys
from typing import Dict, List, Sequence, Tuple

import numpy as np

from trilink import bench_judge
from trilink.bench_truth import surface_distance_m
from trilink_board import config
from trilink_board.sim import Simulation
from trilink_edge.destination import Frame6
from trilink_native import binding

Rec = Tuple[int, float, int, np.ndarray, np.ndarray, str, float, np.ndarray]   # node, t, tid, x, P, missile, err, truth


def simulate(scen: dict, nations: Sequence[str], q: float, t_end: float) -> List[Rec]:
    """Every confirmed track update of every nation (ECEF), with the truth object nearest it."""
    out: List[Rec] = []
    for nat in nations:
        n = config.load_nation(nat)
        n["tracker"]["q_accel"] = q
        sim = Simulation(scen, n)
        o = n["origin"]
        fr = Frame6((o["lat"], o["lon"], o["alt_m"]))
        while sim.step(until=t_end):
            for tr in sim.tracker.updated[:sim.n_updated]:
                xe, Pe = fr.to_ecef(np.array(tr.x[:], dtype=float)[None],
                                    np.array(tr.P[:], dtype=float).reshape(1, 6, 6))
                best, bd, bs = "", np.inf, np.zeros(6)
                for ob in sim.truth.objects:
                    if ob.flying():
                        f = sim.truth.frames[ob.frame_index]
                        p = np.array(f.enu_to_ecef(*ob.p))
                        d = float(np.linalg.norm(p - xe[0, :3]))
                        if d < bd:
                            pv = np.array(f.enu_to_ecef(ob.p[0] + ob.v[0], ob.p[1] + ob.v[1], ob.p[2] + ob.v[2]))
                            best, bd, bs = ob.name, d, np.concatenate([p, pv - p])
                out.append((n["node"], sim.t, tr.tid, xe[0], Pe[0], best, bd, bs))
    out.sort(key=lambda r: r[1])
    return out


def judge(recs: List[Rec], fl: Dict[str, bench_judge.Flight], ci: str) -> Dict[str, dict]:
    seen: Dict[Tuple[str, int], List[float]] = collections.defaultdict(list)
    for node, t, _tid, _x, _P, m, d, _s in recs:
        if m in fl and d < 50e3:
            seen[(m, node)].append(t)
    nodes = sorted({r[0] for r in recs})

    def both(m: str, t: float) -> bool:
        k = 0
        for nd in nodes:
            ts = seen.get((m, nd), [])
            i = bisect.bisect_left(ts, t - 2.0)
            k += i < len(ts) and ts[i] <= t + 2.0
        return k >= 2

    own: Dict[Tuple[str, str, int], List[Tuple[float, float]]] = collections.defaultdict(list)
    fused: Dict[Tuple[str, str], List[float]] = collections.defaultdict(list)
    impact: Dict[str, Dict[float, float]] = collections.defaultdict(dict)
    pic = binding.Picture(ci_mode=ci)
    for node, t, tid, x, P, m, d, s in recs:
        pic.update([node], [tid], [0], [t], [x], [P])
        pic.associate(t)
        if m not in fl or d > 50e3:
            continue
        ph = fl[m].phase(t)
        if both(m, t):
            e = x - s
            own[(m, ph, node)].append((d, float(e @ np.linalg.solve(P, e))))
        out = pic.fuse(t)
        k = np.flatnonzero(out["fused_id"] == pic.lookup(node, tid))
        if not len(k):
            continue
        xf, Pf = out["x"][k[0]], out["P"][k[0]]
        if out["nmem"][k[0]] >= 2:
            fused[(m, ph)].append(float(np.linalg.norm(xf[:3] - s[:3])))
        for cp in (60.0, 30.0):
            if t <= fl[m].t_impact - cp:
                imp = binding.predict_impact(xf[None], Pf[None], 0.0)
                impact[m][cp] = surface_distance_m(imp.lat[0], imp.lon[0], fl[m].impact_lat,
                                                   fl[m].impact_lon) / 1e3
    res: Dict[str, dict] = {}
    for (m, ph), v in sorted(fused.items()):
        nat = {nd: own[(m, ph, nd)] for nd in nodes if own.get((m, ph, nd))}
        rm = {nd: float(np.sqrt(np.mean([a * a for a, _ in v2]))) for nd, v2 in nat.items()}
        res.setdefault(m, {})[ph] = {
            "fused_m": float(np.sqrt(np.mean(np.square(v)))),
            "own_m": rm, "nees": {nd: float(np.mean([b for _, b in v2])) for nd, v2 in nat.items()}}
    for m, e in impact.items():
        res.setdefault(m, {})["impact_km"] = e
    return res


def main(argv: Sequence[str] = ()) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("scenario")
    p.add_argument("--nations", default="jp,kr")
    p.add_argument("--q", default="0.5", help="q_accel values (m/s^2), comma-separated")
    p.add_argument("--ci", default="trace", choices=("trace", "logdet", "fast", "naive"))
    a = p.parse_args(list(argv) or None)
    scen = config.load_scenario(a.scenario)
    fl = bench_judge.flights(scen)
    t_end = max(f.t_impact for f in fl.values()) + 2.0
    for q in (float(v) for v in a.q.split(",")):
        res = judge(simulate(scen, a.nations.split(","), q, t_end), fl, a.ci)
        for m, phs in res.items():
            cells = []
            for ph, r in phs.items():
                if ph == "impact_km":
                    continue
                own = "/".join(f"{nd}:{v:.0f}" for nd, v in r["own_m"].items())
                nees = "/".join(f"{v:.1f}" for v in r["nees"].values())
                cells.append(f"{ph} fused {r['fused_m']:.0f} m, own {own}, NEES {nees}")
            imp = phs.get("impact_km", {})
            cells.append("impact T-60 " + (f"{imp[60.0]:.2f} km" if 60.0 in imp else "-")
                         + ", T-30 " + (f"{imp[30.0]:.2f} km" if 30.0 in imp else "-"))
            print(f"q {q:g} {m}: " + "; ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
