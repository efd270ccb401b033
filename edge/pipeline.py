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
4. ``impact_job`` / ``apply_impacts`` (edge/impacts.py): impact prediction
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

from typing import Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple

import numpy as np

from trilink_native import binding
from trilink_edge import phase as _phase
from trilink_edge.impacts import ImpactSide
from trilink_edge.scheduler import Item
from trilink_edge.session import relay_now_ns
from trilink_board import messages as _msgs
from trilink_edge.destination import DEFAULT_PER_FRAME, EYE6, Destination, Frame6, NodeGeo, Pending, PictureStats
from trilink_edge.warning import WARN_BACKOFF_S, WarningDesk

DEFAULT_IMPACT_PERIOD_S = 1.0
MAX_NODES = 64                 # source node ids the picture keeps (0..63)
MEMBER_SLOTS = np.arange(binding.PIC_MAX_MEMBERS)
FEW_ROWS = 8                   # up to this many fused tracks a round walks every row
# Picture counters whose change means the association changed (a round must fuse every destination).
_STRUCTURE = ("tracks", "fused", "initiated", "joined", "merged", "switched", "split", "timed_out", "deleted")


class Pipeline(ImpactSide):
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
        self.territories = [np.asarray(poly, dtype=float) for _n, g in sorted(nodes.items()) for poly in g.territory]
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
