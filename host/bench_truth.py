# bench_truth.py: the run's fused picture and warnings against the scenario's truth
"""Runs the boards' own truth (trilink_board.truth, the same code and
scenario) in-process and compares what the relay sent:

* fused position RMSE: every fused record sent to a nation (its ENU frame)
  against the nearest flying truth object at the record's time;
* impact-point error: each fused record's predicted impact against the
  impact point of the truth object the track follows, at fixed times before
  impact (``CHECKPOINTS_S``, those the window covers) and at the window's end;
* time to first warning per nation: launch (truth) to the first WARNING the
  nation decoded (its WARNING_ACK back at the relay, minus the ack's wire time).

Scenario time of relay time ``t_us``: ``start_s + (t_us - epoch_us) / 1e6``
(the boards fly scenario time ``start_s`` at relay time ``epoch_us``, at real speed).

    >>> tc = TruthCheck(load_scenario("boards/scenarios/default.json"), start_s=80.0, epoch_us=epoch)
    >>> tc.accuracy(cap.fused, origins)["rmse_m"]
    512.3
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Tuple

from trilink_board import geo
from trilink_board.prng import Rng
from trilink_board.truth import Truth

CHECKPOINTS_S = (1200.0, 600.0, 300.0, 120.0, 60.0, 30.0)
_ASSOC_M = 50_000.0     # a fused track farther than this from every object follows none


def _truth(scenario: Dict[str, Any]) -> Truth:
    return Truth(scenario["launches"], scenario["breakups"], Rng(scenario["seed"]))


class TruthCheck:
    """Truth of one scenario mapped onto the run's relay timebase (module docstring)."""

    def __init__(self, scenario: Dict[str, Any], start_s: float, epoch_us: int) -> None:
        self.scenario = scenario
        self.start_s = start_s
        self.epoch_us = epoch_us
        self.impacts = self._impacts()

    def scen(self, t_us: float) -> float:
        """Scenario time (s) of relay time ``t_us``."""
        return self.start_s + (t_us - self.epoch_us) / 1e6

    def _impacts(self) -> Dict[str, Tuple[float, float, float, float]]:
        """Missile name -> (launch t, impact t, lat, lon) by flying the scenario to its end."""
        tr = _truth(self.scenario)
        t = 0.0
        end = float(self.scenario["duration_s"])
        while t < end and any(o.state != 2 for o in tr.objects):
            t = min(end, t + 10.0)
            tr.advance(t)
        out = {}
        for o in tr.objects:
            if o.state == 2:
                lat, lon = tr.impact_point(o)
                out[o.name] = (o.t_launch, o.t_impact, lat, lon)
        return out

    def _positions(self, tr: Truth) -> List[Tuple[str, Tuple[float, float, float]]]:
        res = []
        for o in tr.objects:
            if o.flying():
                f = tr.frames[o.frame_index]
                res.append((o.name, f.enu_to_ecef(o.p[0], o.p[1], o.p[2])))
        return res

    def follow(self, fused: List[Any], origins: Dict[int, Tuple[float, float, float]]
               ) -> List[Tuple[Any, Optional[str], float]]:
        """Each fused record (time order) with the truth object it is nearest to and the distance (m)."""
        frames = {n: geo.LocalFrame(*o) for n, o in origins.items()}
        tr = _truth(self.scenario)
        out = []
        for rec in sorted(fused, key=lambda r: r.t_us):
            ts = self.scen(rec.t_us)
            if ts < 0:
                continue
            tr.advance(ts)
            f = frames.get(rec.dst)
            if f is None:
                continue
            best, dist = None, math.inf
            for name, (x, y, z) in self._positions(tr):
                e, n, u = f.ecef_to_enu(x, y, z)
                d = math.sqrt((e - rec.state[0]) ** 2 + (n - rec.state[1]) ** 2 + (u - rec.state[2]) ** 2)
                if d < dist:
                    best, dist = name, d
            out.append((rec, best if dist < _ASSOC_M else None, dist))
        return out

    def accuracy(self, fused: List[Any], origins: Dict[int, Tuple[float, float, float]],
                 names: Dict[int, str]) -> Dict[str, Any]:
        """``rmse_m`` (all nations), ``rmse_m_by_nation``, ``impact_error_km`` per missile and
        ``impact_checkpoints`` (see module docstring)."""
        followed = self.follow(fused, origins)
        sq: Dict[str, List[float]] = {}
        for rec, name, d in followed:
            if name is not None:
                sq.setdefault(names.get(rec.dst, str(rec.dst)), []).append(d * d)
        allsq = [v for vs in sq.values() for v in vs]
        frames = {n: geo.LocalFrame(*o) for n, o in origins.items()}
        per: Dict[str, List[Tuple[float, float, str]]] = {}   # missile -> [(scenario t, error km, nation)]
        for rec, name, _ in followed:
            if name is None or rec.impact is None or name not in self.impacts:
                continue
            f = frames[rec.dst]
            lat, lon, _ = f.enu_to_geodetic(rec.impact[0], rec.impact[1], 0.0)
            _, _, tlat, tlon = self.impacts[name]
            err = geo.great_circle_m(lat, lon, tlat, tlon) / 1000.0
            per.setdefault(name, []).append((self.scen(rec.tx_ns / 1000.0), err, names.get(rec.dst, "")))
        impact: Dict[str, Any] = {}
        checkpoints: List[Dict[str, Any]] = []
        for name, ests in per.items():
            ests.sort()
            t_imp = self.impacts[name][1]
            last = ests[-1]
            impact[name] = {"error_km": round(last[1], 2), "t_before_impact_s": round(t_imp - last[0], 1),
                            "estimates": len(ests)}
            for cp in CHECKPOINTS_S:
                before = [e for e in ests if e[0] <= t_imp - cp]
                if before and t_imp - cp - before[-1][0] < 5.0:
                    checkpoints.append({"missile": name, "t_before_impact_s": cp,
                                        "error_km": round(before[-1][1], 2)})
        return {"rmse_m": round(math.sqrt(sum(allsq) / len(allsq)), 1) if allsq else None,
                "rmse_m_by_nation": {k: round(math.sqrt(sum(v) / len(v)), 1) for k, v in sorted(sq.items())},
                "records": len(allsq), "impact_error_km": impact, "impact_checkpoints": checkpoints,
                "truth_impacts": {k: {"t_launch_s": v[0], "t_impact_s": round(v[1], 1), "lat": round(v[2], 3),
                                      "lon": round(v[3], 3)} for k, v in self.impacts.items()}}

    def first_warnings(self, cap: Any, nodes: Dict[str, int], followed_by_tid: Dict[Tuple[int, int], str],
                       baud: Optional[int]) -> Dict[str, Optional[float]]:
        """Nation -> seconds from the warned missile's launch to the first warning it decoded (None: none)."""
        out: Dict[str, Optional[float]] = {}
        for name, node in nodes.items():
            acks = {}
            for n, t_ns, wid, size in cap.acks:
                if n == node and wid not in acks:
                    acks[wid] = t_ns - (size * 10e9 / baud if baud else 0.0)
            best: Optional[float] = None
            for w in cap.warnings:
                if w.dst != node or w.status == 2:
                    continue
                decoded_ns = acks.get(w.warning_id)
                if decoded_ns is None:
                    continue
                missile = followed_by_tid.get((node, w.track_id))
                launch = (self.impacts[missile][0] if missile in self.impacts
                          else min((v[0] for v in self.impacts.values()), default=0.0))
                ttfw = self.scen(decoded_ns / 1000.0) - launch
                if best is None or ttfw < best:
                    best = ttfw
            out[name] = None if best is None else round(best, 2)
        return out
