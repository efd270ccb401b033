# bench_judge.py: a run's warnings, tracks and estimates judged against the simulation's truth
"""The truth-judged part of a bench report, as functions of plain
data so that tests can feed them hand-made truth and records:

* ``flights(scenario)``: each missile's truth flight (launch, burnout,
  apogee, start of the terminal phase, impact, ground track), flown by the
  boards' own ``trilink_board.truth`` code;
* ``truth_threat(flight, nation)``: what the truth says each nation should be
  told: ``territory`` (impact on its territory), ``eez`` (impact in its
  exclusive economic zone, off its territory: judged only when the nation
  file has ``eez`` polygons), ``overflight`` (the ground track crosses its
  territory, impact elsewhere) or nothing;
* ``judge_warnings(...)``: every warning the nations decoded, matched to
  the missile its track follows and to the nation it names: correct, false,
  missed, cancelled early (before the true impact), flapping (issued again
  after a cancel, or its kind changed while up); times from launch and from
  the first confirmed radar track to the launch alert and to the first
  *valid* impact warning (right kind, and its 95% ellipse holds the true
  impact point);
* ``gospa(truth, estimates, c, p, alpha)``: the generalised optimal
  sub-pattern assignment metric (Rahmathullah, Garcia-Fernandez, Svensson
  2017) with its split into localisation, missed and false parts;
* ``identity(ticks)``: identity switches and ghost / duplicate tracks, the
  tracks assigned to the missiles once a second as GOSPA assigns them;
* ``phase_rmse(samples)``: RMSE per flight phase.

Nothing here reads the system's belief about the truth (its phase flags, its
own threat decision): the truth is computed from the scenario.

    >>> fl = flights(load_scenario("boards/scenarios/srbm_korea.json"))
    >>> truth_threat(fl["SRBM-KR"], Nation.load("boards/nations/kr.json"))
    ('territory', ['overflight', 'territory'])
"""
from __future__ import annotations

import dataclasses
import json
import math
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from trilink_board import geo
from trilink_board.prng import Rng
from trilink_board.truth import CLASSES, Truth

TERMINAL_ALT_M = 100e3      # terminal phase: descending below 100 km (the whole descent of a depressed SRBM)
EARLY_CANCEL_S = 5.0        # a warning cancelled more than this before the true impact was cancelled early
CHECKPOINTS_S = (300.0, 120.0, 60.0, 30.0)   # times to go at which impact error and ellipse coverage are judged
CHECKPOINT_SLACK_S = 5.0    # the estimate judged at a checkpoint is the last one sent at most this long before it
GOSPA_C_M = 10e3            # GOSPA cut-off c: an estimate farther than 10 km from every truth is a false track
GOSPA_P = 2                 # GOSPA order p
GOSPA_ALPHA = 2             # alpha = 2: the metric splits into localisation + missed + false
KINDS = ("launch", "territory", "eez", "overflight")
PHASES = ("boost", "midcourse", "terminal")


# ---- truth -----------------------------------------------------------------

@dataclasses.dataclass
class Flight:
    """One missile's truth flight; times in scenario seconds."""

    name: str
    t_launch: float
    launch_lat: float
    launch_lon: float
    t_burnout: float
    t_apogee: float
    t_terminal: float           # first time after apogee below TERMINAL_ALT_M (the apogee itself if lower)
    t_impact: float
    impact_lat: float
    impact_lon: float
    track: List[Tuple[float, float, float, float]] = dataclasses.field(default_factory=list)  # (t, lat, lon, alt m)

    def phase(self, t: float) -> Optional[str]:
        """``boost``, ``midcourse``, ``terminal`` at scenario time ``t``, None off the flight."""
        if t < self.t_launch or t > self.t_impact:
            return None
        if t < self.t_burnout:
            return "boost"
        return "terminal" if t >= self.t_terminal else "midcourse"


def burnout_time(ln: Dict[str, Any]) -> float:
    """Scenario time (s) of a launch's burnout (a normalised launch of config.load_scenario)."""
    if "burnout" in ln and ln["burnout"] is not None:
        return float(ln["t"]) + float(ln["burnout"]["t_s"])
    c = ln["cls"]
    return float(ln["t"]) + float((CLASSES[c] if isinstance(c, str) else c)[0])


def flights(scenario: Dict[str, Any], step_s: float = 1.0) -> Dict[str, Flight]:
    """Missile name -> Flight, flying the scenario (``config.load_scenario``'s dict) to its end
    or until every missile is down. Fragments are not missiles and have no Flight."""
    tr = Truth(scenario["launches"], scenario.get("breakups", ()), Rng(scenario.get("seed", 1)))
    missiles = [o for o in tr.objects if o.parent == 0]
    tracks: Dict[str, List[Tuple[float, float, float, float]]] = {o.name: [] for o in missiles}
    end = float(scenario["duration_s"])
    t = 0.0
    while t < end and any(o.state != 2 for o in missiles):
        t = min(end, t + step_s)
        tr.advance(t)
        for o in missiles:
            if o.state == 1:
                lat, lon, h = tr.frames[o.frame_index].enu_to_geodetic(o.p[0], o.p[1], o.p[2])
                tracks[o.name].append((t, lat, lon, h))
    out = {}
    for i, o in enumerate(missiles):
        if o.state != 2:
            continue
        ln = scenario["launches"][i]
        lat, lon = tr.impact_point(o)
        trk = tracks[o.name]
        t_apo = max(trk, key=lambda s: s[3])[0] if trk else o.t_impact
        t_term = next((s[0] for s in trk if s[0] >= t_apo and s[3] < TERMINAL_ALT_M), o.t_impact)
        out[o.name] = Flight(o.name, o.t_launch, ln["lat"], ln["lon"], burnout_time(ln), t_apo, t_term,
                             o.t_impact, lat, lon, trk)
    return out


@dataclasses.dataclass
class Nation:
    """A nation's geometry for the judge: territory polygons and (when its file has them) EEZ polygons,
    each a list of [lat, lon]. ``eez`` None: the file has no EEZ, EEZ warnings are not judged."""

    name: str
    territory: List[List[List[float]]]
    eez: Optional[List[List[List[float]]]] = None

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "Nation":
        def polys(v: Any) -> List[List[List[float]]]:
            return [p["polygon"] if isinstance(p, dict) else p for p in (v or [])]
        return cls(d["name"], polys(d.get("territory")), polys(d["eez"]) if d.get("eez") else None)

    @classmethod
    def load(cls, path: str) -> "Nation":
        with open(path, encoding="utf-8") as fh:
            return cls.from_dict(json.load(fh))

    def on_territory(self, lat: float, lon: float) -> bool:
        return any(geo.point_in_polygon(lat, lon, p) for p in self.territory)

    def in_eez(self, lat: float, lon: float) -> bool:
        return any(geo.point_in_polygon(lat, lon, p) for p in (self.eez or []))


def truth_threat(f: Flight, nation: Nation) -> Tuple[Optional[str], List[str]]:
    """(the kind a nation should be warned of, every kind the truth supports): ``territory`` if the
    impact is on its territory; else ``eez`` if in its EEZ; else ``overflight`` if the ground track
    crosses its territory; else None. The list adds ``overflight`` to a territory or EEZ impact
    whose track crossed the territory on the way (a warning of that kind is not false)."""
    over = any(nation.on_territory(lat, lon) for _, lat, lon, alt in f.track if alt > 0)
    kinds = []
    primary: Optional[str] = None
    if nation.on_territory(f.impact_lat, f.impact_lon):
        primary = "territory"
    elif nation.eez is not None and nation.in_eez(f.impact_lat, f.impact_lon):
        primary = "eez"
    if over:
        kinds.append("overflight")
        primary = primary or "overflight"
    if primary and primary not in kinds:
        kinds.append(primary)
    return primary, sorted(kinds)


# ---- warnings --------------------------------------------------------------

def normalise_kind(kind: Optional[str], nation: Optional[str]) -> Optional[str]:
    """One of KINDS from a warning record's kind (today's ``impact on territory`` / ``open sea`` or the
    kinds ``launch``, ``territory``, ``eez``, ``overflight``), None for a record that warns no nation."""
    k = (kind or "").lower()
    if "launch" in k:
        return "launch"
    if "eez" in k or "economic" in k:
        return "eez"
    if "overfl" in k:
        return "overflight"
    if nation in (None, "sea", "none") or "sea" in k or k in ("none", ""):
        return None
    return "territory"


@dataclasses.dataclass
class Step:
    """One distinct content of a warning: when its nation had it (decoded, else sent), its status and
    the predicted point with its 95% ellipse (semi-major m, semi-minor m, orientation deg)."""

    t: float
    status: str                      # ACTIVE | UPDATED | OBSOLETE
    lat: Optional[float] = None
    lon: Optional[float] = None
    ellipse: Optional[Tuple[float, float, float]] = None
    kind: Optional[str] = None       # this step's kind when it differs per step, else the record's


@dataclasses.dataclass
class WarningRec:
    """A warning as its destination received it: the nation named (``named``), its kind (KINDS or
    None), the missile its track follows (truth; None: none) and its steps in time order."""

    destination: str
    named: Optional[str]
    kind: Optional[str]
    missile: Optional[str]
    steps: List[Step]

    @classmethod
    def from_record(cls, r: Dict[str, Any]) -> "WarningRec":
        """From a bench report's ``warning_records`` entry."""
        steps = []
        for i, e in enumerate(r.get("timeline") or []):
            t = e.get("t_decoded_s") if e.get("t_decoded_s") is not None else e.get("t_sent_s")
            p = e.get("predicted") or (r.get("predicted") if i == len(r["timeline"]) - 1 else None) or {}
            ell = p.get("ellipse_m")
            kind = normalise_kind(e.get("kind") or r.get("kind"), r.get("nation"))
            steps.append(Step(float(t), e["status"], p.get("lat"), p.get("lon"),
                              tuple(ell) if ell else None, kind))  # type: ignore[arg-type]
        return cls(r["destination"], r.get("nation"), normalise_kind(r.get("kind"), r.get("nation")),
                   r.get("missile"), steps)


def _up_intervals(recs: Sequence[WarningRec], t_end: float) -> List[Tuple[float, float, List[Tuple[float, str]]]]:
    """The union of the times the records were up (issued, not yet cancelled) as (from, to, [(t, kind)])."""
    spans = []
    for r in recs:
        start: Optional[float] = None
        kinds: List[Tuple[float, str]] = []
        for s in r.steps:
            if s.status != "OBSOLETE":
                if start is None:
                    start = s.t
                kinds.append((s.t, s.kind or r.kind or ""))
            elif start is not None:
                spans.append((start, s.t, kinds))
                start, kinds = None, []
        if start is not None:
            spans.append((start, t_end, kinds))
    spans.sort(key=lambda x: x[0])
    out: List[Tuple[float, float, List[Tuple[float, str]]]] = []
    for a, b, ks in spans:
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b), sorted(out[-1][2] + ks))
        else:
            out.append((a, b, list(ks)))
    # consecutive steps of one kind are one state: keep the changes only
    return [(a, b, [k for i, k in enumerate(ks) if i == 0 or k[1] != ks[i - 1][1]]) for a, b, ks in out]


def in_ellipse_deg(lat: float, lon: float, clat: float, clon: float, ellipse: Tuple[float, float, float]) -> bool:
    """(lat, lon) inside the ellipse centred at (clat, clon), (semi-major m, semi-minor m, orient deg)."""
    a, b, o = ellipse
    e, n, _ = geo.LocalFrame(clat, clon, 0.0).geodetic_to_enu(lat, lon, 0.0)
    th = math.radians(o)
    x = e * math.sin(th) + n * math.cos(th)
    y = e * math.cos(th) - n * math.sin(th)
    return a > 0 and b > 0 and (x / a) ** 2 + (y / b) ** 2 <= 1.0


def judge_warnings(fl: Dict[str, Flight], nations: Dict[str, Nation], recs: Iterable[WarningRec],
                   t_end: float, first_track: Optional[Dict[str, Optional[float]]] = None) -> Dict[str, Any]:
    """Warnings against the truth. ``recs``: what each destination received; a warning is judged at
    the nation it names when that nation is its destination (a nation's own warnings). ``t_end``: the
    run's end (scenario s): a missile not down by then is judged only on what it could have had.
    ``first_track``: missile -> scenario time of its first confirmed radar track (any nation).

    Returns ``missiles`` (missile -> nation -> verdict), ``counts`` (nation -> kind -> correct /
    false / missed / early_cancel / flaps) and ``false_records`` (warnings following no missile)."""
    first_track = first_track or {}
    recs = list(recs)
    counts: Dict[str, Dict[str, Dict[str, int]]] = {
        n: {k: {"correct": 0, "false": 0, "missed": 0, "early_cancel": 0, "flaps": 0} for k in KINDS}
        for n in nations}
    missiles: Dict[str, Dict[str, Any]] = {}
    for m, f in fl.items():
        if f.t_launch > t_end:
            continue
        per: Dict[str, Any] = {}
        for n, nat in nations.items():
            primary, ok_kinds = truth_threat(f, nat)
            own = [r for r in recs if r.destination == n and r.missile == m]
            launch = [r for r in own if r.kind == "launch"]
            threat = [r for r in own if r.kind not in (None, "launch") and r.named == n]
            v: Dict[str, Any] = {"truth": primary, "truth_kinds": ok_kinds,
                                 "warned": sorted({k for r in threat for k in _kinds(r)})}
            # launch alert: every nation is owed one for every missile launched
            t_alert = min((s.t for r in launch for s in r.steps if s.status != "OBSOLETE"), default=None)
            v["launch_alert_s"] = _since(t_alert, f.t_launch)
            v["launch_alert_from_track_s"] = _since(t_alert, first_track.get(m))
            v["launch_alerts"] = len(launch)
            seen = first_track.get(m) is not None
            if launch:
                counts[n]["launch"]["correct"] += 1
                counts[n]["launch"]["false"] += len(launch) - 1      # duplicates
            elif seen:
                counts[n]["launch"]["missed"] += 1
            # impact warnings
            ups = _up_intervals(threat, t_end)
            # Flaps per warning: the impact warning (territory / EEZ) and the overflight warning
            # have lifecycles of their own (PROTOCOL.md 4.5), so one's updates are no flap of the other.
            rises = flaps = 0
            for chan in (False, True):
                cu = _up_intervals([r for r in threat if (r.kind == "overflight") == chan], t_end)
                rises += len(cu)
                flaps += max(0, len(cu) - 1) + sum(1 for a, b, ks in cu for (_, k1), (_, k2) in zip(ks, ks[1:])
                                                   if k1 != k2)
            v["issued"] = rises
            v["flaps"] = flaps
            t_first = ups[0][0] if ups else None
            v["first_warning_s"] = _since(t_first, f.t_launch)
            valid = [s.t for r in threat for s in r.steps
                     if (s.kind or r.kind) in ok_kinds and s.status != "OBSOLETE" and s.lat is not None and s.ellipse
                     and in_ellipse_deg(f.impact_lat, f.impact_lon, s.lat, s.lon, s.ellipse)]
            t_valid = min(valid, default=None)
            v["first_valid_warning_s"] = _since(t_valid, f.t_launch)
            v["first_valid_warning_from_track_s"] = _since(t_valid, first_track.get(m))
            v["first_valid_warning_after_burnout_s"] = _since(t_valid, f.t_burnout)
            cancelled = ups[-1][1] if ups and ups[-1][1] < t_end else None
            early = (cancelled is not None and f.t_impact <= t_end + EARLY_CANCEL_S
                     and cancelled < f.t_impact - EARLY_CANCEL_S)
            v["cancelled_s_before_impact"] = None if cancelled is None else round(f.t_impact - cancelled, 1)
            v["early_cancel"] = early
            outcome: Dict[str, str] = {}
            for k in ("territory", "eez", "overflight"):
                if k == "eez" and nat.eez is None:
                    continue
                got = [r for r in threat if k in _kinds(r)]
                if got and k in ok_kinds:
                    outcome[k] = "correct"
                    counts[n][k]["correct"] += 1
                elif got:
                    outcome[k] = "false"
                    counts[n][k]["false"] += 1
                elif k == primary and f.t_impact <= t_end + EARLY_CANCEL_S:
                    outcome[k] = "missed"
                    counts[n][k]["missed"] += 1
            for k in sorted({k for r in threat for k in _kinds(r)}):
                if early and outcome.get(k) == "correct":
                    counts[n][k]["early_cancel"] += 1
                counts[n][k]["flaps"] += flaps if k == (threat[0].kind) else 0
            v["outcome"] = outcome
            per[n] = v
        missiles[m] = per
    stray = [r for r in recs if r.missile is None and r.kind is not None
             and (r.kind == "launch" or r.named == r.destination)]
    for r in stray:
        if r.destination in counts and r.kind in KINDS:
            counts[r.destination][r.kind]["false"] += 1
    return {"missiles": missiles, "counts": counts, "false_records": len(stray)}


def _kinds(r: WarningRec) -> List[str]:
    """Every kind a warning carried while up."""
    ks = {s.kind or r.kind for s in r.steps if s.status != "OBSOLETE"} | ({r.kind} if r.kind else set())
    return sorted(k for k in ks if k)


def _since(t: Optional[float], t0: Optional[float]) -> Optional[float]:
    return None if t is None or t0 is None else round(t - t0, 2)


# ---- GOSPA -----------------------------------------------------------------

def gospa(truth: Sequence[Sequence[float]], est: Sequence[Sequence[float]], c: float = GOSPA_C_M,
          p: int = GOSPA_P, alpha: int = GOSPA_ALPHA) -> Dict[str, float]:
    """GOSPA between two sets of points (any dimension, metres): ``gospa`` and, for alpha = 2, the split
    ``localisation`` (assigned pairs' distance^p, each capped at c), ``missed`` and ``false`` (how many
    truths and estimates went unassigned, each costing c^p / alpha). Optimal assignment by the
    kernel's solver (``binding.assign``, the Jonker-Volgenant-style shortest augmenting path that
    scipy's linear_sum_assignment uses, checked against scipy in tests/test_assign.py): the bench
    must run where only the package's dependencies are installed, and scipy is a test dependency."""
    import numpy as np
    from trilink_native.binding import assign as linear_sum_assignment
    nt, ne = len(truth), len(est)
    loc = 0.0
    assigned = 0
    if nt and ne:
        d = np.linalg.norm(np.asarray(truth, float)[:, None, :] - np.asarray(est, float)[None, :, :], axis=2)
        cost = np.minimum(d, c) ** p
        r, k, _ = linear_sum_assignment(cost)
        for i, j in zip(r, k):
            if d[i, j] < c:          # a pair at c or more is better counted as one missed + one false
                loc += cost[i, j]
                assigned += 1
    missed, false = nt - assigned, ne - assigned
    total = loc + (c ** p / alpha) * (missed + false)
    return {"gospa": total ** (1.0 / p), "localisation": loc ** (1.0 / p), "missed": missed, "false": false}


# ---- identity --------------------------------------------------------------

def identity(ticks: Iterable[Tuple[float, Dict[str, Sequence[float]], Dict[int, Sequence[float]]]],
             gate_m: float = GOSPA_C_M, min_ticks: int = 3, dup_ticks: int = 3) -> Dict[str, Any]:
    """Identity switches, ghosts and duplicates of one destination's picture, from ``ticks``: ``(t,
    {missile: position}, {track id: position})`` once a second (every object in flight, and each track
    of the picture that destination holds then, in one frame, metres). At each tick the tracks are
    assigned to the missiles as GOSPA pairs them (``gospa``: optimal assignment of distances capped at
    ``gate_m``; a pair at the gate or more is no pair), not each to its nearest: a salvo a few seconds
    apart flies one path a few km apart, and a track off by half of that is nearer the wrong missile
    while the assignment still gives each missile its own track. A missile's holder is the track
    assigned to it; a switch is a change of holder. A ghost is a track (held ``min_ticks`` ticks or
    more) that most of the time lies beyond the gate of every object; a duplicate is a track left
    without a missile while within the gate of one (another track holds it), ``dup_ticks`` ticks or
    more.

        >>> identity([(0.0, {"A": (0, 0, 0), "B": (3e3, 0, 0)}, {1: (1.6e3, 0, 0), 2: (3.5e3, 0, 0)})])
        {'switches': {'A': 0, 'B': 0}, 'ghosts': [], 'duplicates': []}
    """
    import numpy as np
    from trilink_native.binding import assign
    switches: Dict[str, int] = {}
    holder: Dict[str, int] = {}
    seen: Dict[int, int] = {}
    far: Dict[int, int] = {}
    near: Dict[int, int] = {}
    for _t, truth, est in sorted(ticks, key=lambda x: x[0]):
        names, tids = sorted(truth), sorted(est)
        for m in names:
            switches.setdefault(m, 0)
        held: Dict[int, str] = {}
        d = np.empty((0, 0))
        if names and tids:
            d = np.linalg.norm(np.asarray([truth[m] for m in names], float)[:, None, :]
                               - np.asarray([est[k] for k in tids], float)[None, :, :], axis=2)
            r, k, _ = assign(np.minimum(d, gate_m) ** 2)
            for i, j in zip(r, k):
                if d[i, j] < gate_m:
                    held[tids[j]] = names[i]
        for j, tid in enumerate(tids):
            seen[tid] = seen.get(tid, 0) + 1
            got = held.get(tid)
            if got is not None:
                if holder.get(got, tid) != tid:
                    switches[got] += 1
                holder[got] = tid
            elif names and float(d[:, j].min()) < gate_m:
                near[tid] = near.get(tid, 0) + 1
            else:
                far[tid] = far.get(tid, 0) + 1
    ghosts = sorted(tid for tid, n in seen.items() if n >= min_ticks and far.get(tid, 0) * 2 > n)
    dup = sorted(tid for tid, n in near.items() if n >= dup_ticks and tid not in ghosts)
    return {"switches": switches, "ghosts": ghosts, "duplicates": dup}


# ---- RMSE per phase ----------------------------------------------------------

def phase_rmse(samples: Iterable[Tuple[str, str, float]]) -> Dict[str, Dict[str, Any]]:
    """``(missile, phase, error m)`` -> missile -> phase -> {rmse_m, n}."""
    sq: Dict[str, Dict[str, List[float]]] = {}
    for m, ph, d in samples:
        sq.setdefault(m, {}).setdefault(ph, []).append(d * d)
    return {m: {ph: {"rmse_m": round(math.sqrt(sum(v) / len(v)), 1), "n": len(v)} for ph, v in phs.items()}
            for m, phs in sq.items()}


def fused_vs_best(fused: Dict[str, Dict[str, Any]], sensors: Dict[str, Dict[str, Dict[str, Any]]],
                  min_n: int = 10) -> List[Dict[str, Any]]:
    """Per missile and phase where two or more nations' own tracks have ``min_n`` records: the fused
    RMSE against the best single nation's (``ok``: fused <= best)."""
    out = []
    for m, phs in fused.items():
        for ph, fv in phs.items():
            own = {n: s[m][ph] for n, s in sensors.items() if ph in s.get(m, {}) and s[m][ph]["n"] >= min_n}
            if len(own) < 2 or fv["n"] < min_n:
                continue
            best = min(own, key=lambda n: own[n]["rmse_m"])
            out.append({"missile": m, "phase": ph, "fused_m": fv["rmse_m"], "best": best,
                        "best_m": own[best]["rmse_m"], "ok": fv["rmse_m"] <= own[best]["rmse_m"]})
    return out
