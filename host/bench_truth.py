# bench_truth.py: the run's fused picture and warnings against the scenario's truth
"""Runs the boards' own truth (trilink_board.truth, the same code and
scenario) in-process and compares what the relay sent:

* fused position RMSE per destination: every fused record sent to a nation (its
  ENU frame) against the nearest flying truth object at the record's time; and
  per sensor nation: every track report a nation's board sent (its own frame);
* impact-point error: each fused record's predicted impact against the
  impact point of the truth object the track follows, at fixed times before
  impact (``CHECKPOINTS_S``, those the window covers) and at the window's end.
  A PICTURE impact is (east, north) of the point on the WGS-84 ellipsoid in the
  destination's ENU frame (PROTOCOL.md 5.5): ``impact_point`` finds the up
  coordinate that puts it on the ellipsoid (a point at u = 0 is d^2/2R above it,
  d from the frame's origin: ~500 km off at 3,500 km), and the error is the
  straight line between the two surface points (ECEF);
* time to first warning per nation: from the warned missile's launch (truth)
  to the first WARNING *naming that nation* that the nation decoded (its
  WARNING_ACK back at the relay, minus the ack's wire time); None when none did;
* per-warning records: destination, nation named, kind, status timeline,
  predicted point and ellipse, the truth's impact and whether the ellipse holds it.

Scenario time of relay time ``t_us``: ``start_s + (t_us - epoch_us) / 1e6``
(the boards fly scenario time ``start_s`` at relay time ``epoch_us``, at real speed).

    >>> tc = TruthCheck(load_scenario("boards/scenarios/default.json"), start_s=80.0, epoch_us=epoch)
    >>> tc.accuracy(cap.fused, origins)["rmse_m"]
    512.3
"""
from __future__ import annotations

import bisect
import math
from typing import Any, Dict, Iterator, List, Optional, Tuple

from trilink_board import geo
from trilink_board.prng import Rng
from trilink_board.truth import Truth

CHECKPOINTS_S = (1200.0, 600.0, 300.0, 120.0, 60.0, 30.0)
STATUS = ("ACTIVE", "UPDATED", "OBSOLETE")
SEA = 0xFF              # WARNING nation of an impact outside every territory


def impact_point(frame: geo.LocalFrame, e: float, n: float) -> Tuple[float, float]:
    """(lat, lon) deg of the PICTURE impact (east ``e``, north ``n`` m in ``frame``): the point
    of the ellipsoid (height 0) with those ENU east/north, found by Newton steps on up."""
    u = 0.0
    lat, lon = frame.lat, frame.lon
    for _ in range(10):
        lat, lon, h = frame.enu_to_geodetic(e, n, u)
        if abs(h) < 1e-4:
            break
        la, lo = math.radians(lat), math.radians(lon)
        normal = (math.cos(la) * math.cos(lo), math.cos(la) * math.sin(lo), math.sin(la))
        # dh/du: the frame's up axis against the ellipsoid's normal at the point
        u -= h / sum(a * b for a, b in zip(normal, frame.up))
    return lat, lon


def surface_distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Straight-line (ECEF) distance of two points on the ellipsoid; within 1e-6 of the
    geodesic below 60 km, no sphere assumed."""
    return math.dist(geo.geodetic_to_ecef(lat1, lon1, 0.0), geo.geodetic_to_ecef(lat2, lon2, 0.0))


def in_ellipse(lat: float, lon: float, clat: float, clon: float, a_m: float, b_m: float,
               orient_deg: float) -> bool:
    """True if (lat, lon) lies in the ellipse centred on (clat, clon), semi-axes ``a_m`` (along
    ``orient_deg`` from north) and ``b_m``, on the tangent plane at its centre."""
    e, n, _ = geo.LocalFrame(clat, clon, 0.0).geodetic_to_enu(lat, lon, 0.0)
    o = math.radians(orient_deg)
    x = e * math.sin(o) + n * math.cos(o)       # along the major axis
    y = e * math.cos(o) - n * math.sin(o)
    if a_m <= 0 or b_m <= 0:
        return False
    return (x / a_m) ** 2 + (y / b_m) ** 2 <= 1.0


PRED_EVERY_S = 10.0     # the judge keeps one impact prediction per missile and destination this often (the PNG)
_ASSOC_M = 50_000.0     # a fused track farther than this from every object follows none
SEEN_WITHIN_S = 2.0     # a nation "sees" a missile at t if one of its own reports of it lies within this of t


def seen_by(times: List[float], t: float, within: float = SEEN_WITHIN_S) -> bool:
    """True if a time of the sorted list ``times`` lies within ``within`` of ``t``."""
    i = bisect.bisect_left(times, t - within)
    return i < len(times) and times[i] <= t + within


def two_nations(samples: List[Tuple[float, str, str, float]], seen: Dict[Tuple[str, str], List[float]],
                nation: Optional[str] = None) -> List[Tuple[str, str, float]]:
    """The ``(t, missile, phase, error)`` samples taken while two or more nations' own reports
    follow the missile (``seen[(missile, nation)]``: sorted report times), as ``(missile, phase,
    error)``. ``nation``: a sensor's own samples, kept when another nation sees it then. The fused
    picture is compared with each nation on these times only: outside them it holds what one
    nation alone saw (a worse radar before the better one sees the missile), which no fusion
    could improve (docs/FUSION.md, "Fused against the best nation")."""
    nats = sorted({n for _m, n in seen})
    out = []
    for t, m, ph, d in samples:
        k = sum(1 for n in nats if n != nation and seen_by(seen.get((m, n), []), t))
        if k + (nation is not None) >= 2:
            out.append((m, ph, d))
    return out


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

    def follow(self, fused: List[Any], origins: Dict[int, Tuple[float, float, float]], node: str = "dst",
               time: str = "t_us") -> List[Tuple[Any, Optional[str], float]]:
        """Each record (time order: ``state``, relay time in attribute ``time``, its frame's node in ``node``)
        with the truth object it is nearest to and the distance (m)."""
        frames = {n: geo.LocalFrame(*o) for n, o in origins.items()}
        tr = _truth(self.scenario)
        out = []
        for rec in sorted(fused, key=lambda r: getattr(r, time)):
            ts = self.scen(getattr(rec, time))
            if ts < 0:
                continue
            tr.advance(ts)
            f = frames.get(getattr(rec, node))
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
                 names: Dict[int, str], reports: Optional[List[Any]] = None) -> Dict[str, Any]:
        """``rmse_m`` (all fused records), ``rmse_m_by_destination`` (the fused picture each
        nation received), ``rmse_m_by_sensor`` (each nation's own track reports, from
        ``reports``: bench_capture.Report with a state on the relay timebase),
        ``impact_error_km`` per missile and ``impact_checkpoints`` (module docstring)."""
        followed = self.follow(fused, origins)
        sq: Dict[str, List[float]] = {}
        for rec, name, d in followed:
            if name is not None:
                sq.setdefault(names.get(rec.dst, str(rec.dst)), []).append(d * d)
        allsq = [v for vs in sq.values() for v in vs]
        sensor: Dict[str, List[float]] = {}
        own = [r for r in (reports or []) if r.relay_time and r.state is not None]
        for rec, name, d in self.follow(own, origins, node="src", time="t_meas_us"):
            if name is not None:
                sensor.setdefault(names.get(rec.src, str(rec.src)), []).append(d * d)
        frames = {n: geo.LocalFrame(*o) for n, o in origins.items()}
        per: Dict[str, List[Tuple[float, float, str]]] = {}   # missile -> [(scenario t, error km, nation)]
        for rec, name, _ in followed:
            if name is None or rec.impact is None or name not in self.impacts:
                continue
            lat, lon = impact_point(frames[rec.dst], rec.impact[0], rec.impact[1])
            _, _, tlat, tlon = self.impacts[name]
            err = surface_distance_m(lat, lon, tlat, tlon) / 1000.0
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

        def rms(v: List[float]) -> float:
            return round(math.sqrt(sum(v) / len(v)), 1)
        return {"rmse_m": rms(allsq) if allsq else None,
                "rmse_m_by_destination": {k: rms(v) for k, v in sorted(sq.items())},
                "rmse_m_by_sensor": {k: rms(v) for k, v in sorted(sensor.items())},
                "records": len(allsq), "sensor_records": sum(len(v) for v in sensor.values()),
                "impact_error_km": impact, "impact_checkpoints": checkpoints,
                "truth_impacts": {k: {"t_launch_s": v[0], "t_impact_s": round(v[1], 1), "lat": round(v[2], 3),
                                      "lon": round(v[3], 3)} for k, v in self.impacts.items()}}

    def _decoded(self, cap: Any, node: int, baud: Optional[int]) -> Dict[int, float]:
        """warning_id -> relay ns at which ``node`` decoded it (its first WARNING_ACK, minus the ack's wire time)."""
        acks: Dict[int, float] = {}
        for n, t_ns, wid, size in cap.acks:
            if n == node and wid not in acks:
                acks[wid] = t_ns - (size * 10e9 / baud if baud else 0.0)
        return acks

    def first_warnings(self, cap: Any, nodes: Dict[str, int], followed_by_tid: Dict[Tuple[int, int], str],
                       baud: Optional[int]) -> Dict[str, Dict[str, Any]]:
        """Nation -> the first threat warning (launch alerts aside) naming it that it decoded: ``s``
        (from the warned missile's launch; None: no warning named it), ``missile``, ``track_id``, ``warning_id``,
        ``t_decoded_s`` (scenario time) and ``at_window_start`` (decoded in the window's first
        5 s, of a missile launched before it: a bound set by the window, not a measurement)."""
        out: Dict[str, Dict[str, Any]] = {}
        for name, node in nodes.items():
            acks = self._decoded(cap, node, baud)
            best: Optional[Dict[str, Any]] = None
            for w in cap.warnings:
                if w.dst != node or w.nation != node or w.status == 2 or getattr(w, "kind", "") == "launch":
                    continue
                decoded_ns = acks.get(w.warning_id)
                if decoded_ns is None:
                    continue
                missile = followed_by_tid.get((node, w.track_id))
                t_dec = self.scen(decoded_ns / 1000.0)
                launch = self.impacts[missile][0] if missile in self.impacts else None
                if best is None or t_dec < best["t_decoded_s"]:
                    best = {"s": None if launch is None else round(t_dec - launch, 2), "missile": missile,
                            "track_id": w.track_id, "warning_id": w.warning_id, "t_decoded_s": round(t_dec, 2),
                            "at_window_start": launch is not None and launch < self.start_s
                            and t_dec < self.start_s + 5.0}
            out[name] = best or {"s": None, "missile": None, "track_id": None, "warning_id": None,
                                 "t_decoded_s": None, "at_window_start": False}
        return out

    def warning_records(self, cap: Any, nodes: Dict[str, int], followed_by_tid: Dict[Tuple[int, int], str],
                        baud: Optional[int]) -> List[Dict[str, Any]]:
        """One record per (destination, warning_id): nation named, kind, the status timeline
        (each distinct content sent: scenario time, status, decoded time), the last predicted
        point and ellipse, and against the truth of the missile its track follows: the impact
        error and whether the ellipse holds the true impact point."""
        names = {v: k for k, v in nodes.items()}
        groups: Dict[Tuple[int, int], List[Any]] = {}
        for w in sorted(cap.warnings, key=lambda w: w.tx_ns):
            groups.setdefault((w.dst, w.warning_id), []).append(w)
        decoded = {node: self._decoded(cap, node, baud) for node in nodes.values()}
        out = []
        for (dst, wid), ws in groups.items():
            timeline: List[Dict[str, Any]] = []
            for w in ws:
                key = (w.status, w.lat, w.lon, w.impact_us, getattr(w, "kind", None))
                if timeline and timeline[-1]["_key"] == key:
                    continue       # a retransmission
                timeline.append({"_key": key, "t_sent_s": round(self.scen(w.tx_ns / 1000.0), 2),
                                 "status": STATUS[w.status] if w.status < 3 else str(w.status),
                                 **({"kind": w.kind} if getattr(w, "kind", None) else {}),
                                 "predicted": {"lat": round(w.lat, 4), "lon": round(w.lon, 4),
                                               "ellipse_m": [w.semi_major_m, w.semi_minor_m,
                                                             round(w.orient_deg, 2)]}})
            dec = decoded.get(dst, {}).get(wid)
            for e in timeline:
                del e["_key"]
            if timeline and dec is not None:
                timeline[0]["t_decoded_s"] = round(self.scen(dec / 1000.0), 2)
            last = ws[-1]
            live = [w for w in ws if w.status != 2] or ws
            p = live[-1]
            missile = followed_by_tid.get((dst, last.track_id))
            if missile is None:
                # fused track ids are the relay's, one per track for every destination: a track
                # sent to no one but named to this one (its own radar's, a launch alert) is
                # followed through another destination's records of it
                missile = next((m for (d, t), m in followed_by_tid.items() if t == last.track_id and m), None)
            rec: Dict[str, Any] = {
                "destination": names.get(dst, str(dst)), "warning_id": wid, "track_id": last.track_id,
                "nation": "sea" if last.nation == SEA else names.get(last.nation, str(last.nation)),
                "kind": getattr(last, "kind", None) or ("open sea" if last.nation == SEA else "impact on territory"),
                "timeline": timeline, "final_status": STATUS[last.status] if last.status < 3 else str(last.status),
                "predicted": {"lat": round(p.lat, 4), "lon": round(p.lon, 4),
                              "t_impact_s": round(self.scen(p.impact_us), 1),
                              "ellipse_m": [p.semi_major_m, p.semi_minor_m, round(p.orient_deg, 2)]},
                "missile": missile}
            if getattr(last, "kind", None) == "launch":
                # a launch alert's point and time are the estimated launch (PROTOCOL.md 4.5, kind 3)
                rec["launch"] = {"lat": round(p.lat, 4), "lon": round(p.lon, 4),
                                 "t_launch_s": round(self.scen(p.impact_us), 2),
                                 "sigma_t_s": getattr(p, "sigma_t_s", None),
                                 "ellipse_m": [p.semi_major_m, p.semi_minor_m, round(p.orient_deg, 2)],
                                 "azimuth_deg": round(getattr(p, "azimuth_deg", 0.0), 2),
                                 "class_guess": getattr(p, "class_guess", 0)}
            site = next((la for la in self.scenario["launches"] if la.get("name") == missile), None)
            if getattr(last, "kind", None) == "launch" and site is not None:
                # judged against the launch: its site and time
                rec["truth"] = {"lat": round(site["lat"], 4), "lon": round(site["lon"], 4), "t_launch_s": site["t"]}
                rec["error_km"] = round(surface_distance_m(p.lat, p.lon, site["lat"], site["lon"]) / 1000.0, 2)
                rec["launch"]["t_error_s"] = round(rec["launch"]["t_launch_s"] - site["t"], 2)
                rec["ellipse_holds_truth"] = in_ellipse(site["lat"], site["lon"], p.lat, p.lon, p.semi_major_m,
                                                        p.semi_minor_m, p.orient_deg)
            elif missile in self.impacts:
                _, t_imp, tlat, tlon = self.impacts[missile]
                rec["truth"] = {"lat": round(tlat, 4), "lon": round(tlon, 4), "t_impact_s": round(t_imp, 1)}
                rec["error_km"] = round(surface_distance_m(p.lat, p.lon, tlat, tlon) / 1000.0, 2)
                rec["ellipse_holds_truth"] = in_ellipse(tlat, tlon, p.lat, p.lon, p.semi_major_m, p.semi_minor_m,
                                                        p.orient_deg)
            out.append(rec)
        return out

    def judge(self, cap: Any, nodes: Dict[str, int], origins: Dict[int, Tuple[float, float, float]],
              nation_files: Dict[str, str], warning_records: List[Dict[str, Any]],
              t_end_s: float) -> Dict[str, Any]:
        """The truth-judged report (bench_judge.py; docs/BENCH.md "Judged against the truth"): per missile
        and nation the launch alert and first valid warning times, warnings correct / false / missed,
        impact error and ellipse coverage at T-300/-120/-60/-30 s, launch-point error, fused vs each
        nation's RMSE per phase, identity switches and ghosts, GOSPA, and the sharing gain."""
        from trilink import bench_judge as bj
        names = {v: k for k, v in nodes.items()}
        fl = bj.flights(self.scenario)
        nations = {n: bj.Nation.load(nation_files[n]) for n in nodes}
        frames = {n: geo.LocalFrame(*o) for n, o in origins.items()}
        # first confirmed radar track of each missile: the first report of a board's track following it
        own = [r for r in cap.reports.values() if r.relay_time and r.state is not None]
        first_by: Dict[Tuple[str, str], float] = {}
        sensor_samples: Dict[str, List[Tuple[float, str, str, float]]] = {}   # nation -> (t, missile, phase, error)
        seen: Dict[Tuple[str, str], List[float]] = {}     # (missile, nation) -> own report times
        reported: Dict[str, List[Tuple[float, int]]] = {}      # object -> [(t, source node)]
        for rec, m, d in self.follow(own, origins, node="src", time="t_meas_us"):
            if m is not None:
                reported.setdefault(m, []).append((self.scen(rec.t_meas_us), rec.src))
            if m is None or m not in fl:
                continue
            t = self.scen(rec.t_meas_us)
            n = names.get(rec.src, str(rec.src))
            first_by[(m, n)] = min(first_by.get((m, n), t), t)
            ph = fl[m].phase(t)
            seen.setdefault((m, n), []).append(t)
            if ph:
                sensor_samples.setdefault(n, []).append((t, m, ph, d))
        first_track = {m: min((t for (mm, _), t in first_by.items() if mm == m), default=None) for m in fl}
        recs = [bj.WarningRec.from_record(r) for r in warning_records or []]
        wj = bj.judge_warnings(fl, nations, recs, t_end_s, first_track)
        # fused records: phase RMSE, impact checkpoints with ellipse, first picture per nation
        fused_samples: Dict[str, List[Tuple[float, str, str, float]]] = {}    # destination -> (t, missile, phase, error)
        first_pic: Dict[Tuple[str, str], float] = {}
        ests: Dict[Tuple[str, str], List[Tuple[float, float, bool]]] = {}   # (missile, dst) -> (t, km, holds)
        preds: Dict[str, Dict[str, List[List[float]]]] = {}     # missile -> dst -> [t, lat, lon, a, b, orient]
        last_pred: Dict[Tuple[str, str], float] = {}
        followed = self.follow(cap.fused, origins)
        for rec, m, d in followed:
            dst = names.get(rec.dst, str(rec.dst))
            t = self.scen(rec.t_us)
            t_tx = self.scen(rec.tx_ns / 1000.0)
            if m is None or m not in fl:
                continue
            first_pic[(m, dst)] = min(first_pic.get((m, dst), t_tx), t_tx)
            ph = fl[m].phase(t)
            if ph:
                fused_samples.setdefault(dst, []).append((t, m, ph, d))
            if rec.impact is not None and rec.dst in frames:
                lat, lon = impact_point(frames[rec.dst], rec.impact[0], rec.impact[1])
                f = fl[m]
                err = surface_distance_m(lat, lon, f.impact_lat, f.impact_lon) / 1000.0
                holds = bool(getattr(rec, "ellipse", None)) and bj.in_ellipse_deg(
                    f.impact_lat, f.impact_lon, lat, lon, rec.ellipse)
                ests.setdefault((m, dst), []).append((t_tx, err, holds))
                if getattr(rec, "ellipse", None):
                    pk = (m, dst)
                    if t_tx - last_pred.get(pk, -1e9) >= PRED_EVERY_S:
                        last_pred[pk] = t_tx
                        preds.setdefault(m, {}).setdefault(dst, []).append(
                            [round(t_tx, 1), round(lat, 4), round(lon, 4), round(rec.ellipse[0]),
                             round(rec.ellipse[1]), round(rec.ellipse[2], 1)])
        checkpoints = []
        first_valid_pred: Dict[Tuple[str, str], float] = {}
        for (m, dst), es in sorted(ests.items()):
            es.sort()
            f = fl[m]
            tv = next((t for t, _, h in es if h), None)
            if tv is not None:
                first_valid_pred[(m, dst)] = tv
            for cp in bj.CHECKPOINTS_S:
                tc = f.t_impact - cp
                before = [e for e in es if e[0] <= tc]
                if not before or tc - before[-1][0] > bj.CHECKPOINT_SLACK_S:
                    continue
                checkpoints.append({"missile": m, "destination": dst, "t_to_go_s": cp,
                                    "error_km": round(before[-1][1], 3), "ellipse_holds_truth": before[-1][2]})
        fused_t = [x for v in fused_samples.values() for x in v]
        fused_ph = {dst: bj.phase_rmse([x[1:] for x in v]) for dst, v in fused_samples.items()}
        sensor_ph = {n: bj.phase_rmse([x[1:] for x in v]) for n, v in sensor_samples.items()}
        all_fused = bj.phase_rmse([x[1:] for x in fused_t])
        for v in seen.values():
            v.sort()
        fused_two = bj.phase_rmse(two_nations(fused_t, seen))
        sensor_two = {n: bj.phase_rmse(two_nations(v, seen, nation=n)) for n, v in sensor_samples.items()}
        per_missile: Dict[str, Any] = {}
        for m, f in fl.items():
            if f.t_launch > t_end_s:
                continue
            e: Dict[str, Any] = {
                "t_launch_s": f.t_launch, "t_burnout_s": f.t_burnout, "t_impact_s": round(f.t_impact, 1),
                "impact": {"lat": round(f.impact_lat, 4), "lon": round(f.impact_lon, 4)},
                "launch_site": {"lat": f.launch_lat, "lon": f.launch_lon},
                "first_track_s": _r(first_track.get(m), f.t_launch),
                "first_track_by_nation_s": {n: _r(first_by.get((m, n)), f.t_launch) for n in nodes},
                "rmse_m_by_phase": {"fused": all_fused.get(m, {}),
                                    **{n: v.get(m, {}) for n, v in sensor_ph.items()}},
                "rmse_m_by_phase_two_nations": {"fused": fused_two.get(m, {}),
                                                **{n: v.get(m, {}) for n, v in sensor_two.items()}},
                "fused_vs_best": bj.fused_vs_best({m: fused_two.get(m, {})}, sensor_two),
                "impact_checkpoints": [c for c in checkpoints if c["missile"] == m],
                "nations": wj["missiles"].get(m, {})}
            # launch point: from a launch alert's point, when the alerts carry one
            lp = [r for r in warning_records or [] if r.get("missile") == m
                  and bj.normalise_kind(r.get("kind"), r.get("nation")) == "launch"]
            if lp:
                p = lp[0].get("launch") or lp[0].get("predicted") or {}
                if p.get("lat") is not None:
                    e["launch_point_error_km"] = round(
                        surface_distance_m(p["lat"], p["lon"], f.launch_lat, f.launch_lon) / 1000.0, 2)
                if p.get("t_launch_s") is not None:
                    e["launch_time_error_s"] = round(p["t_launch_s"] - f.t_launch, 2)
            gain = {}
            for n in nodes:
                own_t = first_by.get((m, n))
                relay_t = first_pic.get((m, n))
                v = wj["missiles"].get(m, {}).get(n, {})
                warn_t = None if v.get("first_valid_warning_s") is None else f.t_launch + v["first_valid_warning_s"]
                fo = fused_ph.get(n, {}).get(m, {})
                so = sensor_ph.get(n, {}).get(m, {})
                err = {ph: {"fused_m": fo[ph]["rmse_m"], "own_m": so[ph]["rmse_m"],
                            "ratio": round(fo[ph]["rmse_m"] / so[ph]["rmse_m"], 3) if so[ph]["rmse_m"] else None}
                       for ph in bj.PHASES if ph in fo and ph in so}
                gain[n] = {"own_first_track_s": _r(own_t, f.t_launch),
                           "relay_first_picture_s": _r(relay_t, f.t_launch),
                           # own radar alone cannot learn of the launch before its own first track
                           "launch_s": (None if relay_t is None else round(own_t - relay_t, 2) if own_t is not None
                                        else "own radar never saw it"),
                           # ... nor be warned before it: a lower bound of the threat's gain
                           "threat_at_least_s": (None if warn_t is None else round(own_t - warn_t, 2)
                                                 if own_t is not None else "own radar never saw it"),
                           "error_by_phase": err}
            e["sharing_gain"] = gain
            e["first_valid_prediction_s"] = {n: _r(first_valid_pred.get((m, n)), f.t_launch) for n in nodes}
            e["ground_track"] = [[round(la, 3), round(lo, 3)] for i, (_, la, lo, _h) in enumerate(f.track)
                                 if i % 5 == 0 or i == len(f.track) - 1]
            e["predictions"] = preds.get(m, {})
            per_missile[m] = e
        return {"missiles": per_missile, "warning_counts": wj["counts"], "false_records": wj["false_records"],
                "identity": self.identity(cap, origins, names), "gospa": self.gospa(cap, origins, names, reported),
                "eez_judged": {n: nat.eez is not None for n, nat in nations.items()},
                "geometry": {n: {"territory": nat.territory, "eez": nat.eez} for n, nat in nations.items()},
                "params": {"gospa_c_m": bj.GOSPA_C_M, "gospa_p": bj.GOSPA_P, "gospa_alpha": bj.GOSPA_ALPHA,
                           "terminal_alt_m": bj.TERMINAL_ALT_M, "early_cancel_s": bj.EARLY_CANCEL_S,
                           "checkpoints_s": list(bj.CHECKPOINTS_S)}}

    def picture_ticks(self, cap: Any, origins: Dict[int, Tuple[float, float, float]], names: Dict[int, str],
                      step_s: float = 1.0, hold_s: float = 3.0
                      ) -> Iterator[Tuple[float, int, List[Tuple[str, Tuple[float, float, float]]], Dict[int, List[float]]]]:
        """Once a second over the run, per destination node: ``(t, node, [(object, position)], {track id:
        position})``: every object in flight (its frame), and the picture the destination holds: each
        track's latest fused record of the last ``hold_s``, moved on by its velocity to the tick."""
        frames = {n: geo.LocalFrame(*o) for n, o in origins.items()}
        recs = sorted(cap.fused, key=lambda r: r.t_us)
        if not recs:
            return
        t = max(0.0, self.scen(recs[0].t_us))
        t1 = self.scen(recs[-1].t_us)
        tr = _truth(self.scenario)
        i = 0
        latest: Dict[Tuple[int, int], Any] = {}
        while t <= t1:
            tr.advance(t)
            us = self.epoch_us + (t - self.start_s) * 1e6
            while i < len(recs) and recs[i].t_us <= us:
                latest[(recs[i].dst, recs[i].tid)] = recs[i]
                i += 1
            flying = self._positions(tr)
            for node, f in frames.items():
                if node not in names:
                    continue
                est = {}
                for (dst, tid), r in latest.items():
                    dt = (us - r.t_us) / 1e6
                    if dst == node and 0 <= dt <= hold_s:
                        est[tid] = [r.state[k] + r.state[k + 3] * dt for k in range(3)]
                yield t, node, [(name, f.ecef_to_enu(*xyz)) for name, xyz in flying], est
            t += step_s

    def identity(self, cap: Any, origins: Dict[int, Tuple[float, float, float]],
                 names: Dict[int, str]) -> Dict[str, Any]:
        """``bench_judge.identity`` of each destination's picture (``picture_ticks``)."""
        from trilink import bench_judge as bj
        ticks: Dict[int, List[Any]] = {}
        for t, node, flying, est in self.picture_ticks(cap, origins, names):
            if est:
                ticks.setdefault(node, []).append((t, dict(flying), est))
        return {names[node]: bj.identity(v) for node, v in ticks.items()}

    def gospa(self, cap: Any, origins: Dict[int, Tuple[float, float, float]], names: Dict[int, str],
              reported: Dict[str, List[Tuple[float, int]]], hold_s: float = 3.0) -> Dict[str, Any]:
        """GOSPA of the picture each destination received, once a second over the run (``picture_ticks``).
        The truth = every object in flight that another nation's board reported in the last ``hold_s``
        (what the relay can and should send that destination: it sends a nation nothing its own board
        alone holds); the estimates = the destination's picture at the tick. Mean, max, and the mean
        missed / false counts."""
        from trilink import bench_judge as bj
        out: Dict[str, Any] = {}
        acc: Dict[int, List[Dict[str, float]]] = {}
        for t, node, flying, est in self.picture_ticks(cap, origins, names, hold_s=hold_s):
            tpts = [p for name, p in flying
                    if any(src != node and t - hold_s <= tr_t <= t for tr_t, src in reported.get(name, ()))]
            if tpts or est:
                acc.setdefault(node, []).append(bj.gospa(tpts, list(est.values())))
        for node, v in acc.items():
            out[names[node]] = {"mean_m": round(sum(x["gospa"] for x in v) / len(v), 1),
                                "max_m": round(max(x["gospa"] for x in v), 1),
                                "mean_localisation_m": round(sum(x["localisation"] for x in v) / len(v), 1),
                                "mean_missed": round(sum(x["missed"] for x in v) / len(v), 3),
                                "mean_false": round(sum(x["false"] for x in v) / len(v), 3), "ticks": len(v)}
        return out


def _r(t: Optional[float], t0: float) -> Optional[float]:
    return None if t is None else round(t - t0, 2)
