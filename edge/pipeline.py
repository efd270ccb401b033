# pipeline.py: track reports in, fused pictures and impact warnings out, per destination
"""The relay's processing between the sessions and the scheduler:

1. ``ingest``: decode a verified TRACK_REPORT (C codec, one call per
   frame, against the copies held for that board), map its times onto the
   relay timebase, convert each record from the board's local ENU frame to
   ECEF with the board's origin, and store it in the fused picture
   (``binding.Picture``). On the hot path all of it is one C call, which
   in the relay is also the frame's verification (``rx_verifier``,
   ``binding.RxFrames``); ``ingest`` then keeps the per-record bookkeeping.
2. ``round``: one association round at the relay's now, then, for every
   destination, CI fusion over only the sources releasable to it (the
   release policy), conversion to the destination's ENU frame, and the
   latest update per fused track left pending for the scheduler.
3. ``Destination.take`` (called by the link scheduler when the link can
   send): the pending tracks in priority order (soonest predicted impact,
   then oldest) through the destination's dead-reckoning sender (C
   ``tl_dr``) into PICTURE payloads. Every update offered carries a
   source report the destination has not had, so with the default
   ``[deadreckoning] position_m = 0`` the sender suppresses none of them
   (a positive threshold would hold such a report until the next one:
   counted in ``dr_suppressed``); it still codes them as deltas.
4. ``impact_job`` / ``apply_impacts``: impact prediction
   (``binding.predict_impact`` with every nation's territory) and the
   predicted ground track of each ballistic track from each destination's
   own releasable picture, at most every ``impact_period_s`` (it runs in a
   worker thread: the C calls release the GIL), and the WARNING messages,
   delivered reliably by ``WarningDesk``: a launch alert for each new
   missile (edge/launch.py), and per nation an impact warning (its
   territory or its EEZ) and an overflight warning (edge/threat.py;
   docs/FUSION.md, "Warnings").
5. Coasting (edge/coast.py, ``Destination.coast``): a ballistic track
   every source lost stays in each destination's picture, flown on the
   model to its predicted impact (``round`` extends the fused picture with
   it; its impact and warnings go on from the propagated state).

Timebase: report times are board times unless the frame carries
RELAY_TIME; unsynchronised reports are mapped with the offset that makes
their newest record's time equal to the frame's arrival (the board's
uplink delay is ignored, a few ms). Fused times are relay µs
(``session.relay_now_us``), and PICTURE frames carry RELAY_TIME.

    >>> geo = {1: NodeGeo(1, "jp", (38.0, 138.0, 0.0), []), 2: NodeGeo(2, "kr", (36.9, 127.4, 0.0), [])}
    >>> p = Pipeline(geo, release={1: {2}, 2: {1}})
    >>> sorted(p.destinations), p.destinations[1].sources
    ([1, 2], (1, 2))
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple

import numpy as np

from trilink_native import binding
from trilink_edge import launch as _launch
from trilink_edge import phase as _phase
from trilink_edge import threat as _threat
from trilink_edge.scheduler import TRACK, WARNING, Item
from trilink_edge.session import relay_now_ns, relay_now_us
from trilink_board import messages as _msgs
from trilink_edge import coast as _coast

INF = float("inf")
DEFAULT_PER_FRAME = 8          # tracks per PICTURE frame: small frames, low latency
DEFAULT_IMPACT_PERIOD_S = 1.0
MAX_RECORD_BYTES = 140
WARN_MOVE_M = 10_000.0         # an impact point moved this far (and half its 95% semi-major) is an update
WARN_MOVE_S = 10.0             # ... or an impact time moved this far (and 3 sigma)
# A Pipeline built without a config (tests, tools): first retransmission after 0.25 s, doubling
# to 2 s. The relay passes its [scheduler] warning_retry_s, warning_retry_max_s (0.5 s, 4 s by default).
WARN_BACKOFF_S = (0.25, 2.0)
WARN_KEEP_S = 60.0             # stop retransmitting this long after the predicted impact
ORPHAN_GRACE_S = 10.0          # a warning whose track is gone stays up this long past its predicted impact
MAX_NODES = 64                 # source node ids the picture keeps (0..63)
MEMBER_SLOTS = np.arange(binding.PIC_MAX_MEMBERS)
FEW_ROWS = 8                   # up to this many fused tracks a round walks every row
_IMPACT_FIELDS = ("t", "lat", "lon", "ecef", "cov_en", "semi_major", "semi_minor", "orient", "sigma_t",
                  "territory", "status")
# Picture counters whose change means the association changed (a round must fuse every destination).
_STRUCTURE = ("tracks", "fused", "initiated", "joined", "merged", "switched", "split", "timed_out", "deleted")
EYE6 = np.eye(6)
WARNING_SIZE = _msgs.WARNING_SIZE
STATUS_ACTIVE, STATUS_UPDATED, STATUS_OBSOLETE = _msgs.STATUS_ACTIVE, _msgs.STATUS_UPDATED, _msgs.STATUS_OBSOLETE
KIND_TERRITORY, KIND_EEZ, KIND_OVERFLIGHT, KIND_LAUNCH = (_msgs.KIND_TERRITORY, _msgs.KIND_EEZ,
                                                          _msgs.KIND_OVERFLIGHT, _msgs.KIND_LAUNCH)
# A track's warnings to one destination: per nation one impact warning (its
# kind territory or EEZ, an upgrade or downgrade an update) and one
# overflight warning; and one launch alert naming the destination.
CH_IMPACT, CH_OVERFLIGHT, CH_LAUNCH = 0, 1, 2
CHANNEL = {KIND_TERRITORY: CH_IMPACT, KIND_EEZ: CH_IMPACT, KIND_OVERFLIGHT: CH_OVERFLIGHT, KIND_LAUNCH: CH_LAUNCH}
LAUNCH_KEEP_S = 60.0           # a launch alert is retransmitted until acked, at most this long
LAUNCH_MEMORY_S = 600.0        # an announced track gone this long no longer stands for its missile
PATH_STEP_S = 10.0             # ground-track samples (then interpolated every 10 km)
PATH_MAX_S = 3600.0


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


@dataclass
class WarningState:
    warning_id: int
    dest: int
    fused_id: int
    status: int
    payload: bytes
    impact_t_s: float
    lat: float
    lon: float
    nation: int = -1               # the nation it names (WARNING's nation field)
    kind: int = KIND_TERRITORY
    keep_until_s: float = 0.0      # retransmitted (if unacknowledged) and remembered until then
    t_cross_s: float = INF         # overflight: when the track comes over the territory
    semi_major_m: float = 0.0      # its 95% ellipse and impact-time sigma: how far it may move unannounced
    sigma_t_s: float = 0.0
    acked: bool = False
    superseded: bool = False
    queued: bool = False
    sends: int = 0
    next_tx_ns: int = 0
    backoff_s: float = WARN_BACKOFF_S[0]


class WarningDesk:
    """Reliable WARNING delivery: every warning is sent with ACK_REQ|URGENT,
    and again with RETRANSMIT after ``retry_s[0]``, doubling up to ``retry_s[1]`` apart (the
    relay's [scheduler] warning_retry_s/_max_s: 0.5 s, 1 s, 2 s, 4 s, 4 s ... by default)
    until the board acknowledges it, a newer warning about the same track,
    nation and channel (impact, overflight, launch) supersedes it (status
    updated or obsolete), or its impact is ``WARN_KEEP_S`` in the past (a
    launch alert: ``LAUNCH_KEEP_S`` after it was issued). A warning whose
    track left the picture (``orphan``) stands on its last prediction until
    that impact is ``ORPHAN_GRACE_S`` past, then is made obsolete.
    ``push(item)`` hands frames to the scheduler of the destination's link.
    ``current[(dest, fused id)]`` maps (nation, channel) to the latest."""

    def __init__(self, push: Callable[[Item], None], stats: PictureStats,
                 retry_s: Tuple[float, float] = WARN_BACKOFF_S) -> None:
        self.push = push
        self.retry_s = retry_s
        self.stats = stats
        self.next_id = 1
        self.by_id: Dict[int, WarningState] = {}
        self.current: Dict[Tuple[int, int], Dict[Tuple[int, int], WarningState]] = {}
        self.orphans: Dict[Tuple[int, int], None] = {}             # (dest, fused id) whose track is gone

    def get(self, dest: int, fid: int, nation: int, channel: int) -> Optional[WarningState]:
        """The latest warning about track ``fid`` to ``dest`` naming ``nation`` on ``channel``."""
        return self.current.get((dest, fid), {}).get((nation, channel))

    def live(self, dest: int, fid: int) -> List[WarningState]:
        """The warnings about ``fid`` to ``dest`` still up (launch alerts aside)."""
        return [w for (_n, ch), w in self.current.get((dest, fid), {}).items()
                if ch != CH_LAUNCH and w.status != STATUS_OBSOLETE]

    def orphan(self, dest: int, fid: int) -> None:
        """Fused track ``fid`` left ``dest``'s picture: its live warnings
        (if any) stay up until its predicted impact has passed."""
        if self.live(dest, fid):
            self.orphans[(dest, fid)] = None

    def issue(self, dest: int, fid: int, status: int, nation: int, t_s: float, lat: float, lon: float,
              a: float, b: float, orient: float, now_ns: int, kind: int = KIND_TERRITORY,
              class_guess: int = 0, azimuth: float = 0.0, sigma_t: float = 0.0,
              t_cross_s: float = INF) -> WarningState:
        wid = self.next_id
        self.next_id = (self.next_id % 0xFFFFFFFF) + 1
        payload = _msgs.encode(binding.MSG_WARNING, {
            "warning_id": wid, "track_id": fid, "status": status, "nation": nation,
            "impact_us": max(0, int(t_s * 1e6)),
            "lat_e7": int(round(max(-90.0, min(90.0, lat)) * 1e7)),
            "lon_e7": int(round(((lon + 180.0) % 360.0 - 180.0) * 1e7)),
            "semi_major_m": min(int(a), 0xFFFFFFFF), "semi_minor_m": min(int(b), 0xFFFFFFFF),
            "orient_cdeg": int(round(orient * 100.0)) % 36000, "kind": kind, "class_guess": class_guess,
            "azimuth_cdeg": int(round(azimuth * 100.0)) % 36000,
            "sigma_t_ds": min(0xFFFF, int(round(sigma_t * 10.0))) if sigma_t == sigma_t else 0xFFFF})
        slot = self.current.setdefault((dest, fid), {})
        key = (nation, CHANNEL[kind])
        old = slot.get(key)
        if old is not None:
            old.superseded = True
        keep = now_ns / 1e9 + LAUNCH_KEEP_S if kind == KIND_LAUNCH else t_s + WARN_KEEP_S
        w = WarningState(wid, dest, fid, status, payload, t_s, lat, lon, nation, kind, keep,
                         t_cross_s=t_cross_s, semi_major_m=a, sigma_t_s=sigma_t if sigma_t == sigma_t else 0.0,
                         backoff_s=self.retry_s[0])
        self.by_id[wid] = w
        slot[key] = w
        self.stats.warnings_issued += 1
        self._send(w, now_ns)
        return w

    def _send(self, w: WarningState, now_ns: int) -> None:
        flags = binding.FLAG_ACK_REQ | binding.FLAG_URGENT
        if w.sends:
            flags |= binding.FLAG_RETRANSMIT
            self.stats.warnings_retransmitted += 1
        w.queued = True

        def sent(item: Item, t_ns: int, w: WarningState = w) -> None:
            w.queued = False
            w.sends += 1
            w.next_tx_ns = t_ns + int(w.backoff_s * 1e9)
            w.backoff_s = min(self.retry_s[1], w.backoff_s * 2)

        def dropped(item: Item, w: WarningState = w) -> None:
            # Not sent (queue full or no longer needed): the next tick decides again.
            w.queued = False
            if not w.sends:
                w.sends = 1   # a first transmission is never dropped while needed; count it as tried
        self.push(Item(WARNING, w.dest, binding.MSG_WARNING, w.payload, flags, created_ns=now_ns,
                       tag=w.warning_id, on_sent=sent, on_dropped=dropped,
                       stale=lambda w=w: w.acked or w.superseded))

    def ack(self, node: int, warning_id: int) -> bool:
        w = self.by_id.get(warning_id)
        if w is None or w.dest != node:
            return False
        if not w.acked:
            w.acked = True
            self.stats.warnings_acked += 1
        return True

    def tick(self, now_ns: int) -> None:
        """Retransmit what is due; cancel orphans past their impact; forget
        finished warnings."""
        now_s = now_ns / 1e9
        for key in list(self.orphans):
            up = self.live(*key)
            if not up:
                del self.orphans[key]
                continue
            for cur in up:
                if now_s > cur.impact_t_s + ORPHAN_GRACE_S:
                    self.issue(key[0], key[1], STATUS_OBSOLETE, cur.nation, cur.impact_t_s, cur.lat, cur.lon,
                               0, 0, 0, now_ns, cur.kind)
        for wid in list(self.by_id):
            w = self.by_id[wid]
            slot = self.current.get((w.dest, w.fused_id), {})
            key = (w.nation, CHANNEL[w.kind])
            done = w.acked or w.superseded or now_s > w.keep_until_s
            if done and not w.queued:
                if slot.get(key) is not w or now_s > w.keep_until_s:
                    del self.by_id[wid]
                    if slot.get(key) is w:
                        del slot[key]
                        if not slot:
                            del self.current[(w.dest, w.fused_id)]
                continue
            if not done and not w.queued and w.sends and now_ns >= w.next_tx_ns:
                self._send(w, now_ns)

    def outstanding(self) -> int:
        return sum(1 for w in self.by_id.values() if not (w.acked or w.superseded))


class Pipeline:
    """Reports in, per-destination pictures and warnings out (see the
    module docstring). ``release[d]`` is the set of source nodes whose
    data may reach destination ``d`` (its own is always included);
    ``push_control(node, mtype, payload)`` sends a KEYFRAME_REQ;
    ``push_warning(item)`` queues a warning."""

    def __init__(self, nodes: Dict[int, NodeGeo], release: Dict[int, Set[int]],
                 picture: Optional[dict] = None, max_age_s: float = 2.0,
                 impact_period_s: float = DEFAULT_IMPACT_PERIOD_S, per_frame: int = DEFAULT_PER_FRAME,
                 dr_config: Optional[dict] = None, warn_horizon_s: float = 1800.0, warn_partners: bool = True,
                 warning_retry_s: Tuple[float, float] = WARN_BACKOFF_S,
                 push_warning: Optional[Callable[[Item], None]] = None,
                 push_control: Optional[Callable[[int, int, bytes], None]] = None,
                 remote: Iterable[int] = (),
                 on_stored: Optional[Callable[..., None]] = None) -> None:
        self.nodes = nodes
        self.stats = PictureStats()
        self.picture = binding.Picture(**(picture or {}))
        self.frames = {n: Frame6(g.origin) for n, g in nodes.items()}
        # Remote sources (another hub's boards, edge/federation.py): reports
        # only, already in ECEF; never destinations.
        self.remote = frozenset(remote) - set(nodes)
        self.destinations: Dict[int, Destination] = {
            n: Destination(g, release.get(n, set()) & (set(nodes) | self.remote), self.stats, max_age_s,
                           per_frame=per_frame, dr_config=dr_config)
            for n, g in nodes.items()}
        # on_stored(node, tids, report_ids, t_us, xe, Pe, flags): the records
        # of a local board's report just stored (the federation forwards them)
        self.on_stored = on_stored
        self.held = {n: binding.CodecTable() for n in nodes}
        # The receive hot path (issue 13): one C call per report decodes into
        # arrays allocated once per source, rotates the records to ECEF, maps
        # their times and stores them in the picture (a clean frame: every
        # record OK, no DROP). hot_path False is the Python path it replaced
        # (kept to compare).
        self.hot_path = True
        self.rx = {n: binding.RxPath(f.R, f.p0, node=n) for n, f in self.frames.items()}
        self.rx_frames: Optional[binding.RxFrames] = None   # rx_verifier's: verify and ingest in one call
        self.report_rx: Dict[Tuple[int, int], int] = {}   # (node, source track) -> rx ns of its last report
        self.report_flags: Dict[Tuple[int, int], int] = {}  # (node, source track) -> quality flags of its last report
        self.dirty = False
        self._changed = 0                  # mask of source nodes that reported since the last round
        self._structure: Tuple[int, ...] = ()
        self.offered_to: Set[int] = set()  # destinations offered updates by the last round
        self.impact_period_ns = int(impact_period_s * 1e9)
        self._last_impact_ns = -self.impact_period_ns
        polys, owners = [], []
        for n, g in sorted(nodes.items()):
            for poly in g.territory:
                polys.append(np.asarray(poly, dtype=float))
                owners.append(n)
        self.territories = polys
        self.owners = owners
        # Per nation (node id): its territory and EEZ polygons, for the kinds of warning.
        self.land: Dict[int, List[np.ndarray]] = {n: [np.asarray(p, dtype=float) for p in g.territory]
                                                  for n, g in nodes.items() if g.territory}
        self.eez: Dict[int, List[np.ndarray]] = {n: [np.asarray(p, dtype=float) for p in g.eez]
                                                 for n, g in nodes.items()}
        # Launch alerts: per destination, the fused tracks announced to it
        # (fused id -> (t s, ECEF state) of its last look), and every track
        # judged already (announced, or a piece of an announced missile).
        self.announced: Dict[int, Dict[int, Tuple[float, np.ndarray]]] = {n: {} for n in nodes}
        self.launch_seen: Dict[int, Set[int]] = {n: set() for n in nodes}
        self.push_control = push_control or (lambda node, mtype, payload: None)
        self.warn_horizon_s = warn_horizon_s
        # A threat to one nation is news to every partner the picture reaches
        # (the WARNING names the threatened nation); False: only that nation.
        self.warn_partners = warn_partners
        self.desk = WarningDesk(push_warning or (lambda item: None), self.stats, warning_retry_s)

    # ---- uplink ----

    def ingest(self, node: int, frame: binding.Frame, rx_ns: int) -> int:
        """Decode one verified TRACK_REPORT from ``node`` into the picture;
        returns the records stored. A bad payload is counted (malformed)."""
        self.stats.reports_in += 1
        rx = self.rx[node] if self.hot_path else None
        try:
            if rx is not None:   # arrays reused per source: views below live until the next report
                count = self.rx_frames.take(frame) if self.rx_frames is not None else None
                if count is None:   # not ingested by the call that verified it
                    count = rx.ingest(frame.payload, self.held[node], self.picture,
                                      bool(frame.flags & binding.FLAG_RELAY_TIME), rx_ns // 1000)
                if rx.stored:
                    return self._stored(node, rx, count, rx_ns)
                b, clean = rx.batch, rx.clean
            else:
                _hdr, b = binding.codec_decode(frame.payload, self.held[node])
                count = b.n
                clean = all(st == binding.REC_OK for st in b.status.tolist()) and binding.REC_DROP not in b.rtype.tolist()
        except binding.CodecError:
            self.stats.decode_errors += 1
            return 0
        if clean:
            keep: object = slice(0, count)   # the usual frame: every record stored, no copies
            n = count
        else:
            status, rtype, btid = b.status[:count], b.rtype[:count], b.tid[:count]
            ok = status == binding.REC_OK
            nobase = status == binding.REC_NO_BASE
            if nobase.any():
                self.stats.no_base += int(nobase.sum())
                tids = btid[nobase].tolist()[:255]
                payload = _msgs.encode(binding.MSG_KEYFRAME_REQ, {"track_ids": tids})
                self.push_control(node, binding.MSG_KEYFRAME_REQ, payload)
            for tid in btid[(rtype == binding.REC_DROP) & (status == binding.REC_GONE)].tolist():
                try:
                    self.picture.drop(node, tid)
                    self._touch(node)
                except binding.PictureError:
                    pass
                self.report_rx.pop((node, tid), None)
                self.report_flags.pop((node, tid), None)
            mask = ok & (rtype != binding.REC_DROP)
            keep = np.flatnonzero(mask)
            n = len(keep)
        if n == 0:
            return 0
        t_us = b.t_us[keep].astype(np.int64)
        if not frame.flags & binding.FLAG_RELAY_TIME:
            t_us = t_us + (rx_ns // 1000 - int(t_us.max()))
        # A measurement cannot postdate its own receipt: a record stamped in
        # the future comes from a board clock stepped ahead. Left as is it
        # would drag the fused picture's time forward, and every other
        # source's (correctly stamped) reports would then be refused as out
        # of order until the step is undone. Clamp it to the receipt time.
        ahead = t_us > rx_ns // 1000
        if ahead.any():
            self.stats.future_stamped += int(ahead.sum())
            t_us = np.minimum(t_us, rx_ns // 1000)
        if rx is not None:
            xe, Pe = rx.xe[keep], rx.Pe[keep]
        else:
            xe, Pe = self.frames[node].to_ecef(b.x[keep], b.P[keep])
        tids = b.tid[keep]
        rids = b.report_id[keep]
        flags = b.flags[keep]
        st = self._store(node, tids, rids, t_us, xe, Pe, flags, rx_ns)
        if self.on_stored is not None and st.any():
            ok = st != 0
            self.on_stored(node, tids[ok], rids[ok], t_us[ok], xe[ok], Pe[ok], flags[ok])
        return int(st.sum())

    def rx_verifier(self, keyring: binding.Keyring, relay_node: int) -> Callable[..., binding.Frame]:
        """``verify(raw, link, ingest, t_ns)`` for ``Sessions.verify``: the
        keyring's check of a raw frame and, for a TRACK_REPORT to the relay
        when ``ingest`` (the session layer will take the frame as it is) and
        ``hot_path``, its ingest in the same C call (``binding.RxFrames``);
        ``ingest(node, frame, rx_ns)`` then only does the bookkeeping."""
        rf = self.rx_frames = binding.RxFrames(keyring, relay_node, self.rx, self.held, self.picture)

        def verify(raw: bytes, link: Tuple[int, ...], ingest: bool, t_ns: int) -> binding.Frame:
            return rf.verify(raw, link, ingest and self.hot_path, t_ns // 1000)
        return verify

    def _stored(self, node: int, rx: binding.RxPath, n: int, rx_ns: int) -> int:
        """The bookkeeping of a clean report that ``RxPath.ingest`` stored
        (what ``_store`` does after its ``Picture.update``)."""
        refused = rx.refused
        self.stats.records_in += n
        self.stats.records_refused += refused
        self.stats.future_stamped += rx.ahead
        b = rx.batch
        tids, flags, st = b.tid[:n].tolist(), b.flags[:n].tolist(), rx.status[:n].tolist()
        rxd, fl = self.report_rx, self.report_flags
        for tid, code, f in zip(tids, st, flags):
            if code == 0:
                rxd[(node, tid)] = rx_ns
                fl[(node, tid)] = f
        self._touch(node)
        if refused == n:
            return 0
        if self.on_stored is not None:
            ok = rx.status[:n] == 0
            self.on_stored(node, b.tid[:n][ok], b.report_id[:n][ok], rx.t_us[:n][ok], rx.xe[:n][ok],
                           rx.Pe[:n][ok], b.flags[:n][ok])
        return n - refused

    def _store(self, node: int, tids: np.ndarray, rids: np.ndarray, t_us: np.ndarray, xe: np.ndarray,
               Pe: np.ndarray, flags: np.ndarray, rx_ns: int) -> np.ndarray:
        """Records of one source into the picture; returns a bool array: stored."""
        n = len(tids)
        st = self.picture.update(np.full(n, node, np.uint8), tids, rids, t_us / 1e6, xe, Pe).tolist()
        refused = n - st.count(0)
        self.stats.records_in += n
        self.stats.records_refused += refused
        rx, fl = self.report_rx, self.report_flags
        for tid, code, f in zip(tids.tolist(), st, flags.tolist()):
            if code == 0:
                rx[(node, tid)] = rx_ns
                fl[(node, tid)] = f
        self._touch(node)
        return np.array([c == 0 for c in st], dtype=bool)

    def ingest_remote(self, node: int, tids: np.ndarray, rids: np.ndarray, t_us: np.ndarray, xe: np.ndarray,
                      Pe: np.ndarray, flags: np.ndarray, rx_ns: int) -> int:
        """Records of a remote board (another hub's, already authenticated
        and in ECEF, times in relay µs) into the picture, clamped to their
        receipt like a local board's; never handed to ``on_stored`` (what
        came from the federation is not forwarded again). Returns the
        records stored."""
        if node not in self.remote:
            return 0
        self.stats.reports_in += 1
        t_us = np.minimum(np.asarray(t_us, dtype=np.int64), rx_ns // 1000)
        return int(self._store(node, tids, rids, t_us, xe, Pe, flags, rx_ns).sum())

    def _touch(self, node: int) -> None:
        # The next round must look at every destination that may see ``node``.
        self.dirty = True
        self._changed |= 1 << node if node < MAX_NODES else 0

    def keyframe_request(self, node: int, payload: bytes, now_ns: Optional[int] = None) -> int:
        """A board's KEYFRAME_REQ (u8 n, n x u32; none listed: every track):
        resend those tracks as keyframes, offered now from the destination's
        last round. Returns the updates offered (the caller pumps the link)."""
        try:
            tids = _msgs.decode(binding.MSG_KEYFRAME_REQ, payload)["track_ids"]
        except ValueError:
            self.stats.decode_errors += 1
            return 0
        d = self.destinations.get(node)
        if d is None:
            return 0
        d.keyframe_request(tids)
        return self._reoffer(d, tids, relay_now_ns() if now_ns is None else now_ns)

    def _reoffer(self, d: Destination, tids: Sequence[int], now_ns: int) -> int:
        # A board asks after a delta it could not apply (the one before it was
        # lost on the wire): that delta's reports reached it in nothing. Left
        # to the next round, the keyframe would wait for the next report of
        # the track (0.5-1 s, and that report's delta is the one refused);
        # the last round's state of the track, with the reports it holds, is
        # sent as the keyframe now instead.
        if d.snapshot is None:
            return 0
        t, out = d.snapshot
        want = set(tids) if tids else None
        rows = [i for i, fid in enumerate(out["fused_id"].tolist())
                if fid in d.sent and fid not in d.pending and (want is None or fid in want)]
        if not rows:
            return 0
        xl, Pl = d.frame.from_ecef(out["x"][rows], out["P"][rows])
        fids = out["fused_id"][rows].tolist()
        nmem = out["nmem"][rows].tolist()
        nodes = out["node"][rows].tolist()
        for k, fid in enumerate(fids):
            srcs = [(nd, rid) for nd, rid in d.sent[fid].items() if nd != d.node]
            nations = 0
            for nd in nodes[k][:nmem[k]]:
                if nd < 32:
                    nations |= 1 << nd
            d.offer(fid, Pending(xl[k], Pl[k], int(round(t * 1e6)), srcs, nations, now_ns, now_ns))
        return len(rows)

    def warning_ack(self, node: int, payload: bytes) -> None:
        try:
            self.desk.ack(node, _msgs.decode(binding.MSG_WARNING_ACK, payload)["warning_id"])
        except ValueError:
            self.stats.decode_errors += 1

    # ---- fusion round ----

    def round(self, now_ns: int, refresh: bool = False) -> int:
        """Associate and fuse at now; leave per-destination updates pending.
        Returns the number of updates offered; ``offered_to`` holds the
        destinations that got any.

        Work is skipped where nothing can be offered: a destination is
        fused only when another source it may see reported since the last
        round (its own reports bring it nothing new), or when the
        association itself changed (tracks initiated, joined, merged,
        switched, split, timed out or deleted), or with ``refresh`` (the
        relay's once-a-second housekeeping round, which also keeps every
        destination's snapshot for the impact prediction current);
        destinations with the same releasable sources share one fuse call."""
        self.offered_to = set()
        if not self.dirty:
            return 0
        self.dirty = False
        changed, self._changed = self._changed, 0
        t_us = now_ns // 1000
        t = t_us / 1e6
        self.picture.associate(t)
        st = self.picture.stats()
        sig = tuple(st[k] for k in _STRUCTURE)
        structural = sig != self._structure
        self._structure = sig
        self.stats.rounds += 1
        offered = 0
        fused: Dict[int, dict] = {}
        for d in self.destinations.values():
            if not (structural or refresh or changed & d.mask & ~(1 << d.node)):
                continue
            out = fused.get(d.mask)
            if out is None:
                out = fused[d.mask] = self.picture.fuse(t, mask=d.mask)
            before = d.snapshot[1] if d.snapshot is not None else None
            mine = d.coast.extend(out, t, d.snapshot, d.phase, d.impact, self.report_rx, now_ns, refresh)
            d.snapshot = (t, mine)
            k = self._offer(d, mine, t_us, now_ns, before) + self._offer_coasted(d, mine, t_us, now_ns)
            if before is not None and len(before["fused_id"]) and self.desk.current:
                # Tracks gone from its picture (a coasted track past its impact,
                # one lost before it was judged ballistic): a warning still up
                # stands on its last prediction until that impact has passed,
                # then it is cancelled (reliably).
                for fid in set(before["fused_id"].tolist()).difference(mine["fused_id"].tolist()):
                    self.desk.orphan(d.node, fid)
            if k:
                offered += k
                self.offered_to.add(d.node)
        return offered

    def _offer(self, d: Destination, out: dict, t_us: int, now_ns: int, before: Optional[dict] = None) -> int:
        """Offer ``d`` the fused tracks of ``out`` that carry a source report
        it has not been sent; drop the tracks it holds that are gone.
        ``before`` is the fuse output of d's previous round: when it has the
        same fused ids (the usual case) and more than ``FEW_ROWS`` of them,
        only the rows whose members or report ids differ are looked at,
        found with a few whole-array comparisons; otherwise every row is."""
        fids = out["fused_id"]
        # A few rows are cheaper to walk than to diff with numpy.
        full = before is None or len(fids) <= FEW_ROWS or not np.array_equal(before["fused_id"], fids)
        if full or before is None:
            rows_in = None
        else:
            nmem = out["nmem"]
            valid = MEMBER_SLOTS < nmem[:, None]
            diff = (valid & ((out["report"] != before["report"]) | (out["node"] != before["node"]))).any(axis=1)
            rows_in = np.flatnonzero(diff | (nmem != before["nmem"]))
            if not len(rows_in):
                return 0
        # Plain Python over the rows' lists: a few microseconds per row,
        # where vectorising the per-source bookkeeping costs ~80 us of numpy
        # call overhead even for one row.
        me = d.node
        pick = (lambda a: a) if full else (lambda a: a[rows_in])
        fl = pick(fids).tolist()
        nm = pick(out["nmem"]).tolist()
        nodes = pick(out["node"]).tolist()
        reps = pick(out["report"]).tolist()
        tracks = pick(out["track"]).tolist()
        sent = d.sent
        seen: Set[int] = set()
        rows: List[int] = []
        offers: List[Tuple[int, List[Tuple[int, int]], int, int]] = []
        report_rx = self.report_rx
        for i, fid in enumerate(fl):
            m = nm[i]
            nd_i = nodes[i][:m]
            if all(nd == me for nd in nd_i):
                continue   # only the destination's own data: nothing for it (dropped below if it had it)
            seen.add(fid)
            prev = sent.get(fid)
            cur = dict(zip(nd_i, reps[i][:m]))
            sent[fid] = cur
            # New = a report of another releasable source not yet offered on
            # this fused track (the destination's own reports bring it nothing new).
            new = [(nd, rid) for nd, rid in cur.items() if nd != me and (prev is None or prev.get(nd) != rid)]
            if not new:
                continue
            tr = tracks[i]
            rx = min(report_rx.get((nd, tr[j]), now_ns) for j, nd in enumerate(nd_i)
                     if nd != me and (nd, cur[nd]) in new)
            nations = 0
            for nd in nd_i:
                if nd < 32:
                    nations |= 1 << nd
            rows.append(i if rows_in is None else int(rows_in[i]))
            offers.append((fid, new, nations, rx))
        if rows:
            xl, Pl = d.frame.from_ecef(out["x"][rows], out["P"][rows])
            for i, (fid, new, nations, rx) in enumerate(offers):
                d.offer(fid, Pending(xl[i], Pl[i], t_us, new, nations, now_ns, rx))
        if full:
            gone = [fid for fid in sent if fid not in seen and fid not in d.coast.tracks]
        else:
            gone = [fid for fid in fl if fid not in seen and fid in sent]
        for fid in gone:
            del sent[fid]
            d.impact.pop(fid, None)
            d.offer(fid, Pending(np.zeros(6), EYE6, t_us, [], 0, now_ns, now_ns, drop=True))
        return len(rows) + len(gone)

    def _offer_coasted(self, d: Destination, out: dict, t_us: int, now_ns: int) -> int:
        """Offer ``d`` its coasting tracks' updates that are due
        (edge/coast.py): no source report, flagged coasting."""
        due = d.coast.offer(out, t_us, now_ns, d.sent, d.pending) if d.coast.tracks else []
        if not due:
            return 0
        rows = [i for i, _f, _n in due]
        xl, Pl = d.frame.from_ecef(out["x"][rows], out["P"][rows])
        for k, (_i, fid, nations) in enumerate(due):
            d.offer(fid, Pending(xl[k], Pl[k], t_us, [], nations, now_ns, now_ns, flags=_phase.FLAG_COASTING))
        return len(due)

    # ---- impacts and warnings ----

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
                    self._cancel(node, fid, now_ns)
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
                    self._decide(node, fid, n, CH_IMPACT, kind, cur, args, st[i], az)
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
                    self._decide(node, fid, n, CH_OVERFLIGHT, over, cur, args, st[i], az, t_cross)

    def _decide(self, node: int, fid: int, nation: int, channel: int, kind: Optional[int],
                cur: Optional[WarningState], args: tuple, sigma_t: float, az: float, t_cross: float = INF) -> None:
        # One warning's next step: issue, update (moved, or another kind), cancel, or nothing.
        live = cur is not None and cur.status != STATUS_OBSOLETE
        t_s, la, lo, a, b, o, now_ns = args
        extra = {"sigma_t": sigma_t, "azimuth": az, "t_cross_s": t_cross}
        if kind is not None and not live:
            self.desk.issue(node, fid, STATUS_ACTIVE, nation, *args, kind=kind, **extra)
        elif kind is not None and cur is not None and (cur.kind != kind or self._moved(cur, t_s, la, lo)):
            self.desk.issue(node, fid, STATUS_UPDATED, nation, *args, kind=kind, **extra)
        elif kind is None and live and cur is not None:
            self.desk.issue(node, fid, STATUS_OBSOLETE, nation, *args, kind=cur.kind, **extra)

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

    @staticmethod
    def _moved(w: WarningState, t_s: float, lat: float, lon: float) -> bool:
        # Moved: by more than 10 km and half the 95% semi-major axis the board
        # was given, or the time by more than 10 s and 3 sigma (a far impact's
        # point wanders tens of km a second within its ellipse: news only
        # once it has gone a good way across it).
        dlat = math.radians(lat - w.lat) * 6371e3
        dlon = math.radians(lon - w.lon) * 6371e3 * math.cos(math.radians(w.lat))
        return (math.hypot(dlat, dlon) > max(WARN_MOVE_M, 0.5 * w.semi_major_m)
                or abs(t_s - w.impact_t_s) > max(WARN_MOVE_S, 3.0 * w.sigma_t_s))

    def _cancel(self, node: int, fid: int, now_ns: int) -> None:
        for cur in self.desk.live(node, fid):
            self.desk.issue(node, fid, STATUS_OBSOLETE, cur.nation, cur.impact_t_s, cur.lat, cur.lon, 0, 0, 0,
                            now_ns, cur.kind)


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
