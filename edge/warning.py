# warning.py: the relay's WARNING messages, decided per track and delivered reliably
"""Warnings (launch alerts, impact and overflight warnings; PROTOCOL.md
4.5) from the pipeline's decisions (edge/impacts.py ``apply_impacts``,
edge/threat.py) to each destination board: ``WarningDesk.decide`` takes
one warning to its next step (issue, update, cancel), ``issue`` builds the
message and hands it to the scheduler, and the desk retransmits it until
the board acknowledges it (docs/FUSION.md, "Warnings")."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Tuple

from trilink_native import binding
from trilink_board import messages as _msgs
from trilink_edge.scheduler import WARNING, Item

if TYPE_CHECKING:
    from trilink_edge.destination import PictureStats

INF = float("inf")
WARN_MOVE_M = 10_000.0         # an impact point moved this far (and half its 95% semi-major) is an update
WARN_MOVE_S = 10.0             # ... or an impact time moved this far (and 3 sigma)
# A desk built without a config (tests, tools): first retransmission after 0.25 s, doubling
# to 2 s. The relay passes its [scheduler] warning_retry_s, warning_retry_max_s (0.5 s, 4 s by default).
WARN_BACKOFF_S = (0.25, 2.0)
WARN_KEEP_S = 60.0             # stop retransmitting this long after the predicted impact
ORPHAN_GRACE_S = 10.0          # a warning whose track is gone stays up this long past its predicted impact
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

    def decide(self, node: int, fid: int, nation: int, channel: int, kind: Optional[int],
                cur: Optional[WarningState], args: tuple, sigma_t: float, az: float, t_cross: float = INF) -> None:
        """One warning's next step, given the kind the prediction now says
        (None: none): issue, update (moved, or another kind), cancel, or
        nothing. ``args``: (impact t s, lat, lon, a m, b m, orient deg, now ns)."""
        live = cur is not None and cur.status != STATUS_OBSOLETE
        t_s, la, lo, a, b, o, now_ns = args
        extra = {"sigma_t": sigma_t, "azimuth": az, "t_cross_s": t_cross}
        if kind is not None and not live:
            self.issue(node, fid, STATUS_ACTIVE, nation, *args, kind=kind, **extra)
        elif kind is not None and cur is not None and (cur.kind != kind or self.moved(cur, t_s, la, lo)):
            self.issue(node, fid, STATUS_UPDATED, nation, *args, kind=kind, **extra)
        elif kind is None and live and cur is not None:
            self.issue(node, fid, STATUS_OBSOLETE, nation, *args, kind=cur.kind, **extra)

    @staticmethod
    def moved(w: WarningState, t_s: float, lat: float, lon: float) -> bool:
        # Moved: by more than 10 km and half the 95% semi-major axis the board
        # was given, or the time by more than 10 s and 3 sigma (a far impact's
        # point wanders tens of km a second within its ellipse: news only
        # once it has gone a good way across it).
        dlat = math.radians(lat - w.lat) * 6371e3
        dlon = math.radians(lon - w.lon) * 6371e3 * math.cos(math.radians(w.lat))
        return (math.hypot(dlat, dlon) > max(WARN_MOVE_M, 0.5 * w.semi_major_m)
                or abs(t_s - w.impact_t_s) > max(WARN_MOVE_S, 3.0 * w.sigma_t_s))

    def cancel(self, node: int, fid: int, now_ns: int) -> None:
        """Make every live warning about ``fid`` to ``node`` obsolete."""
        for cur in self.live(node, fid):
            self.issue(node, fid, STATUS_OBSOLETE, cur.nation, cur.impact_t_s, cur.lat, cur.lon, 0, 0, 0,
                            now_ns, cur.kind)
