# destination.py: what the relay holds per destination board (its frame, pending updates, sender)
"""A destination board's side of the pipeline (edge/pipeline.py): its
geography (``NodeGeo``), its ENU frame (``Frame6``), the fused tracks
pending for it in priority order and its dead-reckoning sender
(``Destination``), and the pipeline's counters (``PictureStats``)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from trilink_native import binding
from trilink_edge import coast as _coast
from trilink_edge import phase as _phase
from trilink_edge.scheduler import TRACK, Item

INF = float("inf")
DEFAULT_PER_FRAME = 8          # tracks per PICTURE frame: small frames, low latency
MAX_RECORD_BYTES = 140
EYE6 = np.eye(6)


@dataclass(frozen=True)
class NodeGeo:
    """A nation's board: node id, name, ENU origin (lat deg, lon deg, h m),
    territory polygons and (approximate) EEZ polygons, each a list of
    [lat, lon] degrees."""

    node: int
    name: str
    origin: Tuple[float, float, float]
    territory: Sequence[Sequence[Sequence[float]]] = ()
    eez: Sequence[Sequence[Sequence[float]]] = ()


def enu_rotation(lat_deg: float, lon_deg: float) -> np.ndarray:
    """R (3x3) with enu = R @ (ecef - origin_ecef)."""
    la, lo = math.radians(lat_deg), math.radians(lon_deg)
    sl, cl, so, co = math.sin(la), math.cos(la), math.sin(lo), math.cos(lo)
    return np.array([[-so, co, 0.0], [-sl * co, -sl * so, cl], [cl * co, cl * so, sl]])


class Frame6:
    """ENU <-> ECEF for 6-states and their covariances around one origin."""

    def __init__(self, origin: Tuple[float, float, float]) -> None:
        self.origin = origin
        self.p0 = binding.geodetic_to_ecef(np.array([origin], dtype=float))[0]
        self.R = enu_rotation(origin[0], origin[1])
        T = np.zeros((6, 6))
        T[:3, :3] = self.R
        T[3:, 3:] = self.R
        self.T = T

    def to_ecef(self, x: np.ndarray, P: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        xe = x @ self.T  # rows: T^T x
        xe[:, :3] += self.p0
        # matmul over the batch: ~8x faster than the equivalent einsum
        Pe = self.T.T @ P @ self.T
        return xe, 0.5 * (Pe + Pe.transpose(0, 2, 1))

    def from_ecef(self, x: np.ndarray, P: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        d = x.copy()
        d[:, :3] -= self.p0
        xl = d @ self.T.T
        Pl = self.T @ P @ self.T.T
        return xl, 0.5 * (Pl + Pl.transpose(0, 2, 1))

    def point_en(self, ecef: np.ndarray) -> np.ndarray:
        """(east, north) of ECEF points [n,3]."""
        return ((ecef - self.p0) @ self.R.T)[:, :2]


@dataclass
class Pending:
    """The latest update of one fused track waiting for the link."""

    x: np.ndarray
    P: np.ndarray
    t_us: int
    sources: List[Tuple[int, int]]
    nations: int
    created_ns: int
    rx_ns: int            # arrival of the oldest report this update carries
    drop: bool = False
    flags: int = 0        # quality flags beyond the phase's (FLAG_COASTING: edge/coast.py)


@dataclass
class PictureStats:
    reports_in: int = 0
    records_in: int = 0
    records_refused: int = 0
    future_stamped: int = 0        # records stamped after their own receipt (a board clock stepped ahead), clamped
    no_base: int = 0
    decode_errors: int = 0
    rounds: int = 0
    dropped_stale: int = 0
    dropped_queue: int = 0
    warnings_issued: int = 0
    warnings_acked: int = 0
    warnings_retransmitted: int = 0
    dr_suppressed: int = 0         # offered updates (each with a new report) the dead-reckoning sender held back
    coasted: int = 0               # tracks coasted to their impact once every source lost them (edge/coast.py)
    reacquired: int = 0            # coasting tracks a source found again (they kept their fused id)


class Destination:
    """Everything the relay sends one board about tracks: its releasable
    sources, its ENU frame, the pending updates and the dead-reckoning
    sender (a ``scheduler.TrackSource``)."""

    def __init__(self, geo: NodeGeo, sources: Iterable[int], stats: PictureStats, max_age_s: float,
                 max_pending: int = 256, per_frame: int = DEFAULT_PER_FRAME,
                 dr_config: Optional[dict] = None) -> None:
        self.geo = geo
        self.node = geo.node
        self.sources = tuple(sorted(set(sources) | {geo.node}))
        self.mask = 0
        for s in self.sources:
            self.mask |= 1 << s
        self.frame = Frame6(geo.origin)
        # Threshold 0 unless configured: every offered update is news (the
        # C sender's own default, 50 m, would hold reports; module docstring).
        self.dr = binding.DeadReckoner(binding.CODEC_PICTURE, geo.origin[0], geo.origin[2],
                                       **{"threshold_m": 0.0, **(dr_config or {})})
        self.pending: Dict[int, Pending] = {}
        # fused id -> {source node: report id last offered}, for the fused
        # tracks this destination holds (the ones with another nation's data).
        self.sent: Dict[int, Dict[int, int]] = {}
        self.impact: Dict[int, Tuple[float, ...]] = {}       # fused id -> (t_s, e, n, a, b, orient)
        # Flight phase of each fused track (boost / ballistic, edge/phase.py)
        # and its PICTURE quality flags: no impact is predicted before the
        # track is ballistic.
        self.phase = _phase.FlightPhase()
        self.flags: Dict[int, int] = {}
        # Ballistic tracks every source lost, flown on to their predicted impact (edge/coast.py).
        self.coast = _coast.Coast(geo.node, counters=stats)
        self.snapshot: Optional[Tuple[float, dict]] = None   # (t s, Picture.fuse output) of the last round
        self.stats = stats
        self.max_age_ns = int(max_age_s * 1e9)
        self.max_pending = max_pending
        self.per_frame = per_frame
        self._batches: Dict[int, binding.TrackBatch] = {}    # n -> a reused batch of n records
        self.dropped_stale = 0

    def _key(self, fid: int, p: Pending) -> Tuple[float, int]:
        imp = self.impact.get(fid)
        return (imp[0] if imp is not None else INF, p.created_ns)

    def _expire(self, now_ns: int) -> None:
        old = [fid for fid, p in self.pending.items() if not p.drop and now_ns - p.created_ns > self.max_age_ns]
        for fid in old:
            del self.pending[fid]
            self.stats.dropped_stale += 1
            self.dropped_stale += 1

    def priority(self, now_ns: int) -> Optional[Tuple[float, int]]:
        self._expire(now_ns)
        if not self.pending:
            return None
        return min(self._key(fid, p) for fid, p in self.pending.items())

    def offer(self, fid: int, p: Pending) -> None:
        """Leave the newest update of fused track ``fid`` pending (an older
        pending one is replaced; its sources and age carry over)."""
        old = self.pending.get(fid)
        if old is not None and not old.drop:
            seen = {s for s in p.sources}
            p.sources = [s for s in old.sources if s not in seen and s[0] not in {n for n, _ in p.sources}] + p.sources
            p.sources = p.sources[-binding.CODEC_MAX_SOURCES:]
            p.created_ns = min(p.created_ns, old.created_ns)
            p.rx_ns = min(p.rx_ns, old.rx_ns)
        self.pending[fid] = p
        if len(self.pending) > self.max_pending:
            # Bounded: drop the least urgent pending update.
            worst = max(self.pending, key=lambda f: self._key(f, self.pending[f]))
            del self.pending[worst]
            self.stats.dropped_queue += 1

    def take(self, max_payload: int, now_ns: int) -> Optional[Item]:
        """Encode the most urgent pending tracks into one PICTURE item."""
        self._expire(now_ns)
        if not self.pending:
            return None
        order = sorted(self.pending, key=lambda f: self._key(f, self.pending[f]))
        # A PICTURE record is at most ~140 bytes (keyframe, impact, a few
        # sources), so this many always fit the payload the link allows.
        per = max(1, min(self.per_frame, (max_payload - 16) // MAX_RECORD_BYTES))
        while order:
            chosen = order[:per]
            order = order[per:]
            items = [(fid, self.pending.pop(fid)) for fid in chosen]
            payloads, rx_ns = self._encode(items)
            if payloads:
                payload = payloads[0]
                # the codec splits only above 1024 bytes; per_frame keeps us far below
                return Item(TRACK, self.node, binding.MSG_PICTURE, payload, binding.FLAG_RELAY_TIME,
                            created_ns=rx_ns, tag=[fid for fid, _ in items])
        return None

    def _batch(self, n: int) -> binding.TrackBatch:
        # A zeroed batch of n records, reused: building one (16 arrays and
        # their C view) costs more than encoding it.
        b = self._batches.get(n)
        if b is None:
            b = self._batches[n] = binding.TrackBatch.empty(n)
        else:
            for name in ("rtype", "send", "status", "nations", "n_src", "has_impact"):
                getattr(b, name).fill(0)
        return b

    def _encode(self, items: List[Tuple[int, Pending]]) -> Tuple[List[bytes], int]:
        n = len(items)
        b = self._batch(n)
        for i, (fid, p) in enumerate(items):
            b.tid[i] = fid
            b.t_us[i] = p.t_us
            if p.drop:
                b.rtype[i] = binding.DR_DROP
                b.P[i] = EYE6
                b.flags[i] = 0
                continue
            b.rtype[i] = binding.DR_UPDATE
            b.x[i] = p.x
            b.P[i] = p.P
            b.nations[i] = p.nations
            fused = _phase.FLAG_FUSED if p.nations & (p.nations - 1) else 0   # two or more nations
            b.flags[i] = self.flags.get(fid, 0) | fused | p.flags
            srcs = p.sources[-binding.CODEC_MAX_SOURCES:]
            b.n_src[i] = len(srcs)
            if srcs:
                nd, rid = zip(*srcs)
                b.src_node[i, :len(srcs)] = nd
                b.src_rid[i, :len(srcs)] = rid
            imp = self.impact.get(fid)
            if imp is not None:
                b.has_impact[i] = 1
                b.impact[i] = imp[1:6]
                b.impact_t_us[i] = int(imp[0] * 1e6)
        base = int(min(b.t_us)) if n else 0
        try:
            payloads = self.dr.encode(b, base_us=base)
        except binding.CodecError:
            # A value the format cannot carry (a diverged track): count and
            # resend these tracks as keyframes next time.
            self.stats.records_refused += n
            for fid, _ in items:
                self.dr.request_keyframe(fid)
            return [], 0
        # A suppressed record's reports ride on the track's next update sent
        # (PROTOCOL 5.6): late news. Counted so that a threshold that holds
        # reports shows in the relay's stats.
        held = int(np.count_nonzero((b.rtype == binding.REC_NONE) & (b.n_src > 0)))
        if held:
            self.stats.dr_suppressed += held
        return payloads, min(p.rx_ns for _, p in items)

    def keyframe_request(self, tids: Sequence[int]) -> None:
        if not tids:
            self.dr.request_keyframe(None)
        for t in tids:
            self.dr.request_keyframe(t)
