# coast.py: ballistic tracks every source has lost, flown on the model to their predicted impact
"""A descending missile drops below every radar's horizon tens of seconds
before it lands. Its sources stop reporting, the boards and the fused
picture drop their tracks about 12 s later (``coast_s``, ``[fusion]
timeout_s``), and without this module the destination's picture would lose
the track, its impact estimate and (after ``ORPHAN_GRACE_S``) its warnings
while the missile still falls.

``Coast`` (one per destination, ``Destination.coast``) keeps such a track
in the destination's picture, on the ballistic model, until its predicted
impact plus ``margin_s``:

* a fused track of the destination's picture whose members' newest report
  is ``stale_s`` old is *coasting* once the destination judges it ballistic
  (edge/phase.py) with a valid impact prediction; while the fused picture
  still holds it, its row is the picture's own prediction;
* when the fused picture drops it, ``extend`` appends its row itself,
  predicted from its last state (``binding.predict``: the motion model's
  process noise grows the covariance), so the impact job goes on
  predicting its impact from the propagated state and the warning rule
  goes on deciding on it (a warning stays up while the predicted impact is
  ahead, and is made obsolete once it has passed);
* ``offer`` sends the destination a coasted update at most every
  ``period_s`` (quality flag FLAG_COASTING, no source reports: PROTOCOL.md
  5.5), with its impact;
* past the predicted impact plus ``margin_s`` the track leaves the
  destination's picture (a DROP);
* a new fused track within the picture's gate (d^2 on the 6-state, the
  covariances summed) of a coasting track that the fused picture has
  dropped *is* that track re-acquired: it keeps the coasting track's id in
  this destination's picture (``alias``), so no new id, no second launch
  alert, and its warnings carry on.

    >>> c = Coast(1)
    >>> c.active, c.ids()
    (False, set())
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

import numpy as np

from trilink_native import binding
from trilink_edge import phase as _phase

STALE_S = 3.0       # s without a member report: the fused track is coasting
MARGIN_S = 3.0      # s past the predicted impact a coasted track stays, then it is dropped
PERIOD_S = 1.0      # s between coasted updates offered to the destination
GATE = 22.46        # d^2, 6 dof, 99.9% (the picture's own gate): a new track this close is the lost one

_MEMBER_FIELDS = ("node", "track", "report", "weight")


class _Coasted:
    __slots__ = ("x", "P", "t", "t_impact", "nations", "others", "lost", "offered_ns")

    def __init__(self, x: np.ndarray, P: np.ndarray, t: float, t_impact: float, nations: int,
                 others: bool) -> None:
        self.x = np.array(x, dtype=float)
        self.P = np.array(P, dtype=float)
        self.t = t
        self.t_impact = t_impact
        self.nations = nations
        self.others = others       # held another nation's data: the destination is sent it
        self.lost = False          # the fused picture no longer holds it: its row is ours
        self.offered_ns = -(1 << 62)


class Coast:
    """The coasting tracks of one destination (node ``node``) and the ids
    re-acquired tracks take (module docstring)."""

    def __init__(self, node: int, stale_s: float = STALE_S, margin_s: float = MARGIN_S,
                 period_s: float = PERIOD_S, gate: float = GATE, counters: Any = None) -> None:
        self.node = node
        self.counters = counters             # also counted there (the relay's PictureStats: coasted, reacquired)
        self.stale_ns = int(stale_s * 1e9)
        self.margin_s = margin_s
        self.period_ns = int(period_s * 1e9)
        self.gate = gate
        self.tracks: Dict[int, _Coasted] = {}
        self.alias: Dict[int, int] = {}      # fused picture id -> the coasting id it re-acquired
        self.impacted: Set[int] = set()      # past impact + margin, still in the fused picture: left out
        self.reacquired = 0
        self.coasted = 0                     # tracks that started coasting

    @property
    def active(self) -> bool:
        """Whether this destination's picture differs from the fused one."""
        return bool(self.tracks or self.alias or self.impacted)

    def ids(self) -> Set[int]:
        """Fused ids coasting now."""
        return set(self.tracks)

    def extend(self, out: dict, t: float, before: Optional[Tuple[float, dict]], phase: _phase.FlightPhase,
               impact: Dict[int, Tuple[float, ...]], report_rx: Dict[Tuple[int, int], int], now_ns: int,
               scan: bool = True) -> dict:
        """This destination's picture at ``t``: the fused picture ``out``
        (``Picture.fuse`` for its mask; not modified) with re-acquired
        tracks under their coasting ids, coasting tracks the fused picture
        dropped appended, and tracks past their impact left out.
        ``before`` is the destination's previous (t, picture). Which rows
        are stale is looked at with ``scan`` (the relay's once-a-second
        round) or when the fused ids changed; other rounds (a report in, on
        the latency path) cost nothing here while nothing coasts."""
        if not (self.active or before is not None and len(before[1]["fused_id"])):
            return out
        same = before is not None and np.array_equal(before[1]["fused_id"], out["fused_id"])
        if not scan and not self.active and same:
            return out
        scan = scan or not same
        raw = out["fused_id"].tolist()
        present = set(raw)
        for n in [n for n in self.alias if n not in present]:
            del self.alias[n]
        self.impacted &= present
        prev = before[1]["fused_id"].tolist() if before is not None else []
        ids = [self.alias.get(f, f) for f in raw]
        # Lost now: coasting, or ballistic with an impact ahead, and gone from the fused picture.
        shown = set(ids)
        gone = [i for i, f in enumerate(prev) if f not in shown]
        for i in gone:
            f = prev[i]
            if f in self.tracks:
                self.tracks[f].lost = True
            elif self._eligible(f, phase, impact, t):
                o = before[1]                                  # type: ignore[index]
                self.tracks[f] = _Coasted(o["x"][i], o["P"][i], before[0], impact[f][0],  # type: ignore[index]
                                          _nations(o, i), _others(o, i, self.node))
                self.tracks[f].lost = True
                self._count("coasted")
        lost = [f for f, c in self.tracks.items() if c.lost and f not in shown]
        self._propagate(lost, t)
        # A new fused track where a lost one flies: that one re-acquired.
        for i, f in enumerate(ids):
            if f in prev or f in self.tracks or not lost:
                continue
            best = self._match(out["x"][i], out["P"][i], lost)
            if best is not None:
                self.alias[raw[i]] = best
                ids[i] = best
                lost.remove(best)
                self._count("reacquired")
        # Rows of the fused picture: coasting while their members are stale.
        nm = out["nmem"].tolist()
        nodes, tracks = out["node"].tolist(), out["track"].tolist()
        # The fused picture's own row of a track re-acquired under another id is left out.
        targets = set(self.alias.values())
        keep: List[int] = []
        for i, f in enumerate(ids):
            if (raw[i] in targets and raw[i] not in self.alias) or raw[i] in self.impacted:
                continue
            if not scan:
                keep.append(i)
                continue
            newest = max((report_rx.get((nodes[i][j], tracks[i][j]), 0) for j in range(nm[i])), default=0)
            c = self.tracks.get(f)
            if now_ns - newest <= self.stale_ns:
                self.tracks.pop(f, None)                   # a source reports it
                keep.append(i)
                continue
            if c is not None or self._eligible(f, phase, impact, t):
                if c is None:
                    c = self.tracks[f] = _Coasted(out["x"][i], out["P"][i], t, impact[f][0], 0, False)
                    self._count("coasted")
                c.x, c.P, c.t, c.lost = np.array(out["x"][i]), np.array(out["P"][i]), t, False
                c.nations |= _nations(out, i)
                c.others = c.others or _others(out, i, self.node)
                imp = impact.get(f)
                if imp is not None:
                    c.t_impact = imp[0]
                if t > c.t_impact + self.margin_s:
                    del self.tracks[f]
                    self.impacted.add(raw[i])
                    continue
            keep.append(i)
        for f in lost:
            c = self.tracks[f]
            imp = impact.get(f)
            if imp is not None:
                c.t_impact = imp[0]
            if t > c.t_impact + self.margin_s:
                del self.tracks[f]
        lost = [f for f in lost if f in self.tracks]
        if not lost and len(keep) == len(raw) and ids == raw:
            return out
        res = {k: v[keep] for k, v in out.items()}
        res["fused_id"] = np.array([ids[i] for i in keep], dtype=out["fused_id"].dtype)
        if lost:
            extra = {k: np.zeros((len(lost),) + v.shape[1:], dtype=v.dtype) for k, v in out.items()}
            extra["fused_id"][:] = lost
            extra["x"][:] = [self.tracks[f].x for f in lost]
            extra["P"][:] = [self.tracks[f].P for f in lost]
            res = {k: np.concatenate([res[k], extra[k]]) for k in res}
        return res

    def offer(self, out: dict, t_us: int, now_ns: int, sent: Dict[int, Any],
              pending: Dict[int, Any]) -> List[Tuple[int, int, int]]:
        """Coasting tracks of ``out`` (this destination's picture) due a
        coasted update: (row, fused id, nations) for each, those the
        destination holds (``sent``), with no update already waiting
        (``pending``), and whose predicted impact is ahead."""
        t = t_us / 1e6
        due = []
        for i, f in enumerate(out["fused_id"].tolist()):
            c = self.tracks.get(f)
            if (c is None or not c.others or f not in sent or f in pending or t > c.t_impact
                    or now_ns - c.offered_ns < self.period_ns):
                continue
            c.offered_ns = now_ns
            due.append((i, f, c.nations))
        return due

    # ---- helpers ----

    def _count(self, name: str) -> None:
        setattr(self, name, getattr(self, name) + 1)
        if self.counters is not None:
            setattr(self.counters, name, getattr(self.counters, name) + 1)

    def _eligible(self, fid: int, phase: _phase.FlightPhase, impact: Dict[int, Tuple[float, ...]],
                  t: float) -> bool:
        imp = impact.get(fid)
        return phase.phase(fid) == _phase.BALLISTIC and imp is not None and imp[0] + self.margin_s > t

    def _propagate(self, fids: Sequence[int], t: float) -> None:
        todo = [f for f in fids if self.tracks[f].t < t]
        if not todo:
            return
        x = np.array([self.tracks[f].x for f in todo])
        P = np.array([self.tracks[f].P for f in todo])
        st = binding.predict(x, P, np.array([self.tracks[f].t for f in todo]), t).tolist()
        for k, f in enumerate(todo):
            c = self.tracks[f]
            if st[k] == binding.TRK_OK:
                c.x, c.P, c.t = x[k], P[k], t

    def _match(self, x: np.ndarray, P: np.ndarray, lost: Sequence[int]) -> Optional[int]:
        best, best_d2 = None, self.gate
        for f in lost:
            c = self.tracks[f]
            d = x - c.x
            try:
                d2 = float(d @ np.linalg.solve(P + c.P, d))
            except np.linalg.LinAlgError:
                continue
            if d2 < best_d2:
                best, best_d2 = f, d2
        return best


def _nations(o: dict, i: int) -> int:
    n = 0
    for nd in o["node"][i][:int(o["nmem"][i])].tolist():
        if nd < 32:
            n |= 1 << nd
    return n


def _others(o: dict, i: int, me: int) -> bool:
    return any(nd != me for nd in o["node"][i][:int(o["nmem"][i])].tolist())
