# impacts.py: the pipeline's once-a-second side: flight phase, impact prediction, launch alerts, warnings
"""The part of ``Pipeline`` (edge/pipeline.py) that runs off the latency
path, once every ``impact_period_s``: ``impact_job`` predicts the impact
and the ground track of every destination's releasable picture in a worker
thread, and ``apply_impacts`` judges each track's flight phase
(edge/phase.py), announces new missiles (edge/launch.py) and decides each
nation's impact and overflight warnings (edge/threat.py), which the
pipeline's ``WarningDesk`` (edge/warning.py) delivers. A mixin: the state
it reads (destinations, polygons, the desk) is the pipeline's."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable, Dict, List, Set, Tuple

import numpy as np

from trilink_native import binding
from trilink_edge import launch as _launch
from trilink_edge import phase as _phase
from trilink_edge import threat as _threat
from trilink_edge.warning import (CH_IMPACT, CH_OVERFLIGHT, INF, KIND_EEZ, KIND_LAUNCH, KIND_OVERFLIGHT,
                                  KIND_TERRITORY, STATUS_ACTIVE, STATUS_OBSOLETE)

if TYPE_CHECKING:
    from trilink_edge.destination import Destination
    from trilink_edge.warning import WarningDesk

_IMPACT_FIELDS = ("t", "lat", "lon", "ecef", "cov_en", "semi_major", "semi_minor", "orient", "sigma_t",
                  "territory", "status")
LAUNCH_MEMORY_S = 600.0        # an announced track gone this long no longer stands for its missile
PATH_STEP_S = 10.0             # ground-track samples (then interpolated every 10 km)
PATH_MAX_S = 3600.0


class ImpactSide:
    """Impact prediction and warnings for ``Pipeline`` (a mixin; the module docstring). Not
    ``binding.Impacts``, the C prediction's result arrays."""

    destinations: Dict[int, "Destination"]
    desk: "WarningDesk"
    impact_period_ns: int
    _last_impact_ns: int

    def impact_due(self, now_ns: int) -> bool:
        return now_ns - self._last_impact_ns >= self.impact_period_ns

    def impact_job(self, now_ns: int) -> Callable[[], list]:
        """A callable (safe in a worker thread: it uses only copies) that
        predicts the impacts of every destination's releasable picture.

        It reuses each destination's last round (``Destination.snapshot``:
        no fusing here, so nothing of it runs on the latency path but this
        bookkeeping), and predicts the snapshots of all destinations in one
        C call (distinct source masks only: destinations that see the same
        sources share their rows)."""
        self._last_impact_ns = now_ns
        groups: Dict[Tuple[int, int], Tuple[float, dict, List[int]]] = {}
        for d in self.destinations.values():
            if d.snapshot is None or not len(d.snapshot[1]["fused_id"]):
                continue
            key = (d.mask, d.node if d.coast.active else -1)   # a coasted picture is its own
            g = groups.get(key)
            if g is None:
                groups[key] = (d.snapshot[0], d.snapshot[1], [d.node])
            else:
                g[2].append(d.node)
        if not groups:
            return lambda: []
        parts = list(groups.values())
        x = np.concatenate([o["x"] for _t, o, _n in parts])
        P = np.concatenate([o["P"] for _t, o, _n in parts])
        t0 = np.concatenate([np.full(len(o["fused_id"]), t) for t, o, _n in parts])
        terr = list(self.territories)
        # Ground tracks for the rows already judged ballistic by a destination of the group.
        ballistic = [[fid for fid in o["fused_id"].tolist()
                      if any(self.destinations[n].phase.phase(fid) == _phase.BALLISTIC for n in nodes)]
                     for _t, o, nodes in parts]
        # Evidence of thrust per row (edge/phase.py): its members' boosting bits.
        flags = self.report_flags
        boosting = [[any(flags.get((nd, tr), 0) & _phase.FLAG_BOOSTING
                         for nd, tr in zip(nds[:m], trs[:m]))
                     for nds, trs, m in zip(o["node"].tolist(), o["track"].tolist(), o["nmem"].tolist())]
                    for _t, o, _n in parts]
        # The reports behind each row (its members' node, track and report ids): a
        # row with none new since the last look is no evidence of its phase.
        evidence = [[tuple(zip(nds[:m], trs[:m], rps[:m]))
                     for nds, trs, rps, m in zip(o["node"].tolist(), o["track"].tolist(), o["report"].tolist(),
                                                 o["nmem"].tolist())]
                    for _t, o, _n in parts]

        def job() -> list:
            imp = binding.predict_impact(x, P, t0, territories=terr or None)
            jac = binding.jacobi(x)
            res, k = [], 0
            for (t, o, nodes), boost, bal, why in zip(parts, boosting, ballistic, evidence):
                m = len(o["fused_id"])
                sl = slice(k, k + m)
                part = binding.Impacts(**{f: getattr(imp, f)[sl] for f in _IMPACT_FIELDS})
                paths = ground_tracks(o["x"], o["fused_id"], part, t, set(bal))
                ev = (t, jac[sl].tolist(), boost, o["x"], paths, why)
                res += [(node, o["fused_id"], part, ev) for node in nodes]
                k += m
            return res
        return job

    def apply_impacts(self, results: list, now_ns: int) -> None:
        """Judge each track's flight phase, announce new missiles (launch
        alerts), store impacts for the scheduler's priorities and the
        PICTURE records, and issue / update / cancel warnings. Only a
        ballistic track has an impact: a boosting one's ballistic
        extrapolation falls far short (docs/FUSION.md). Tracks that left the
        destination's picture since the job's snapshot are skipped."""
        now_s = now_ns / 1e9
        for node, fids, imp, (t_snap, jac, boost, xs, paths, why) in results:
            d = self.destinations[node]
            current = set(d.snapshot[1]["fused_id"].tolist()) if d.snapshot is not None else set()
            for gone in [f for f in d.phase.tracks if f not in current]:
                d.phase.forget(gone)
                d.flags.pop(gone, None)
            ok = (imp.status == binding.TRK_OK).tolist()
            en = d.frame.point_en(np.nan_to_num(imp.ecef)).tolist()
            tt, lat, lon = imp.t.tolist(), imp.lat.tolist(), imp.lon.tolist()
            a, b, o = imp.semi_major.tolist(), imp.semi_minor.tolist(), imp.orient.tolist()
            st = imp.sigma_t.tolist()
            fl = fids.tolist()
            self._announce(node, fl, xs, t_snap, current, now_ns)
            for i, fid in enumerate(fl):
                if fid not in current:
                    continue
                # The phase learns from reported states only (edge/phase.py, ``evidence``): a
                # prediction without reports is calm whatever the missile does.
                ph = d.phase.update(fid, t_snap, jac[i], boost[i], why[i])
                d.flags[fid] = _phase.PHASE_FLAGS[ph]
                if ph != _phase.BALLISTIC:
                    # No prediction yet; a warning already out stays until a
                    # ballistic prediction says otherwise (no flapping).
                    d.impact.pop(fid, None)
                    continue
                if not ok[i]:
                    d.impact.pop(fid, None)
                    self.desk.cancel(node, fid, now_ns)
                    continue
                d.impact[fid] = (tt[i], en[i][0], en[i][1], a[i], b[i], o[i])
                horizon = now_s < tt[i] < now_s + self.warn_horizon_s
                az = _launch.azimuth(xs[i])
                args = (tt[i], lat[i], lon[i], a[i], b[i], o[i], now_ns)
                path = paths.get(fid)
                for n in self.land:
                    if not (self.warn_partners or n == node):
                        continue
                    # Impact on the nation's territory or in its EEZ: issued on a decisive
                    # prediction, held on the ellipse (edge/threat.py impact_kind).
                    cur = self.desk.get(node, fid, n, CH_IMPACT)
                    live = cur is not None and cur.status != STATUS_OBSOLETE
                    kind = None
                    if horizon:
                        k = _threat.impact_kind(lat[i], lon[i], a[i], b[i], o[i], self.land[n], self.eez.get(n, ()),
                                                cur.kind if live and cur is not None else None)
                        kind = None if k is None else (KIND_TERRITORY if k == _threat.TERRITORY else KIND_EEZ)
                    self.desk.decide(node, fid, n, CH_IMPACT, kind, cur, args, st[i], az)
                    # Overflight: the ground track's corridor comes over the territory
                    # before an impact elsewhere; held once the track is over it.
                    cur = self.desk.get(node, fid, n, CH_OVERFLIGHT)
                    live = cur is not None and cur.status != STATUS_OBSOLETE
                    over = None
                    t_cross = INF
                    if horizon and kind != KIND_TERRITORY and path is not None:
                        if live and cur is not None and now_s >= cur.t_cross_s:
                            over, t_cross = KIND_OVERFLIGHT, cur.t_cross_s
                        else:
                            tc = _threat.overflight(path[0], path[1], path[2], path[3], self.land[n],
                                                    _threat.SCALE_99 if live else 1.0)
                            if tc is not None:
                                over, t_cross = KIND_OVERFLIGHT, tc
                    self.desk.decide(node, fid, n, CH_OVERFLIGHT, over, cur, args, st[i], az, t_cross)

    def _announce(self, node: int, fids: List[int], xs: np.ndarray, t_snap: float, current: Set[int],
                  now_ns: int) -> None:
        """Launch alerts to ``node``: one per new missile in its releasable
        picture (edge/launch.py: a new track that is no piece of a missile
        announced already), naming ``node``, with the estimated launch."""
        seen, known = self.launch_seen[node], self.announced[node]
        for fid in [f for f in known if f not in current and t_snap - known[f][0] > LAUNCH_MEMORY_S]:
            del known[fid]
        new = []
        for i, fid in enumerate(fids):
            if fid not in current:
                continue
            if fid in known:
                known[fid] = (t_snap, xs[i].copy())
            elif fid not in seen:
                new.append(i)
        if not new:
            return
        # the announced tracks' states at t_snap (those gone, flown on ballistically)
        ref = [(f, x if t == t_snap else None, t) for f, (t, x) in known.items()]
        stale = [k for k, (_f, x, _t) in enumerate(ref) if x is None]
        if stale:
            xa = np.array([known[ref[k][0]][1] for k in stale])
            binding.predict(xa, None, np.array([ref[k][2] for k in stale]), t_snap)
            for j, k in enumerate(stale):
                ref[k] = (ref[k][0], xa[j], t_snap)
        for i in new:
            fid = fids[i]
            est = _launch.estimate(xs[i], t_snap)
            if est is None:
                continue                       # not a missile's state (yet): judged again next time
            seen.add(fid)
            if any(_launch.same_missile(xs[i], x) for _f, x, _t in ref):
                continue                       # a fragment, a re-initiated or split-off track
            known[fid] = (t_snap, xs[i].copy())
            ref.append((fid, xs[i], t_snap))
            self.desk.issue(node, fid, STATUS_ACTIVE, node, est.t_s, est.lat, est.lon, est.semi_major_m,
                            est.semi_minor_m, est.orient_deg, now_ns, kind=KIND_LAUNCH,
                            class_guess=est.class_guess, azimuth=est.azimuth_deg, sigma_t=est.sigma_t_s)


def ground_tracks(x: np.ndarray, fids: np.ndarray, imp: binding.Impacts, t0: float,
                  want: Set[int]) -> Dict[int, Tuple[List[float], List[float], List[float], float]]:
    """Predicted ground tracks of the rows of ``x`` (ECEF states at ``t0``)
    whose fused id is in ``want`` and whose impact is predicted: fused id ->
    (lats, lons, times, half-width m of the 95% impact ellipse across the
    track at impact), sampled every ``PATH_STEP_S`` and ending at the
    impact point. One ``binding.predict`` call per sample for all rows."""
    fl = fids.tolist()
    ok = (imp.status == binding.TRK_OK).tolist()
    tt = imp.t.tolist()
    rows = [i for i, f in enumerate(fl) if f in want and ok[i] and tt[i] > t0]
    if not rows:
        return {}
    xs = np.ascontiguousarray(x[rows], dtype=float)
    ends = np.minimum(np.array([tt[i] for i in rows]), t0 + PATH_MAX_S)
    g = binding.ecef_to_geodetic(xs[:, :3])
    lats, lons, times = [[g[:, 0]], [g[:, 1]], [t0]]
    t = t0
    while t + PATH_STEP_S < ends.max():
        t_next = t + PATH_STEP_S
        binding.predict(xs, None, np.full(len(rows), t), t_next)
        g = binding.ecef_to_geodetic(xs[:, :3])
        lats.append(g[:, 0])
        lons.append(g[:, 1])
        times.append(t_next)
        t = t_next
    la, lo, tm = np.array(lats), np.array(lons), np.array(times)
    out = {}
    for j, i in enumerate(rows):
        keep = tm < ends[j]
        plat = la[keep, j].tolist() + [float(imp.lat[i])]
        plon = lo[keep, j].tolist() + [float(imp.lon[i])]
        pt = tm[keep].tolist() + [float(ends[j])]
        # heading at impact, from the last leg
        de = ((plon[-1] - plon[-2] + 180.0) % 360.0 - 180.0) * math.cos(math.radians(plat[-1]))
        dn = plat[-1] - plat[-2]
        out[fl[i]] = (plat, plon, pt, _threat.cross_width(imp.cov_en[i], de, dn))
    return out
