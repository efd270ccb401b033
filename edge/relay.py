# relay.py: the relay daemon's object: config, links, sessions, pipeline, scheduler, recorder, stats
"""``Relay(config)`` wires every part of the relay together and runs it.

    relay = Relay(trilink_edge.config.load("relay.toml"))
    await relay.run()        # until stop(); SIGTERM handling is the CLI's
    await relay.stop()       # within 1 s, capture flushed, state file written

The latency path runs in event-loop callbacks, with no task switch between
a frame's arrival and the resulting frame's first byte:

* a link hands each received frame to ``handler`` (the link's reader
  callback): ``Sessions.accept`` (verify, control answers), then
  ``Pipeline.ingest`` for TRACK_REPORT, which schedules one fusion round
  with ``call_soon`` (frames that arrive in the same loop turn are fused
  together);
* the round (``Pipeline.round``) offers updates to destinations and
  *pumps* the links of those destinations at once: ``LinkScheduler.pop``
  while the token bucket holds the next frame, packed (seq, counter) and
  written with ``link.send_nowait``; when the bucket is short, a timer
  (``call_later``) resumes the pump exactly when it will hold the frame.
  The latency of track frames (report frame fully received to the write
  of the resulting frame) is kept in ``latency_ns``.

Off the latency path, a ticker (every ``TICK_S``): heartbeats, link-down
detection, state-file saves, warning retransmissions, STATS frames to every
board (``[relay] stats_frames_s``), a housekeeping round once a second (so
that timed-out tracks are dropped when nobody reports), and the impact
prediction (``impact_period_s``) in a worker thread: the C call releases
the GIL and its inputs are the snapshots the rounds already made.

The relay uses its links only through ``trilink_edge.links.Link`` (frame
sizes from ``Link.wire_size``, the default bucket depth from
``Link.default_burst``, the replay window from ``Link.reorders``).
``links`` (name -> ``Link``, opened) may be injected, e.g. by tests; by
default the relay builds them with ``links.make_link`` and opens them.
"""
from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import inspect
import logging
from typing import Any, Deque, Dict, List, Optional, Set

import numpy as np

from trilink_native import binding
from trilink_board import messages as _msgs
from trilink_board import wire as _board_wire
from trilink_edge.destination import NodeGeo
from trilink_edge.pipeline import Pipeline
from trilink_edge import relay_stats
from trilink_edge.publish import make_publisher
from trilink_edge.links import Link, Received, make_link
from trilink_edge.scheduler import CONTROL, TRACK, Item, LinkScheduler, WindowMeter
from trilink_edge.session import REPLAY_WINDOW, NodeInfo, Sessions, relay_now_ns

log = logging.getLogger("trilink_edge.relay")
TICK_S = 0.1               # warning retransmissions ([scheduler] warning_retry_s, 0.5 s) and heartbeats (1 s) are due per tick
STALL_NS = 2_000_000_000   # a ticker turn this late is logged (and counted: stalls)
HOUSEKEEPING_NS = 1_000_000_000
STOP_BUDGET_S = 0.3        # stop() gives cancelled tasks this long to finish
LINK_CLOSE_S = 0.2         # all links are closed together within this
RECORDER_CLOSE_S = 0.2     # the capture writer gets this long to flush at stop
# A ticker part that raised is skipped for a backoff that doubles from
# BACKOFF_FIRST_S to BACKOFF_MAX_S, then tried again; the others go on.
BACKOFF_FIRST_S = 0.1
BACKOFF_MAX_S = 10.0
RETRY_WRITE_S = 0.005      # a link whose own buffer is full is tried again after this
# Bounded in-memory logs: a relay runs for months, so it keeps only the
# recent window (the capture holds everything). 100,000 dicts grew the RSS by
# ~30 MB under the campaign's 10x load.
DELIVERY_LOG = 256         # latest DELIVERY frames kept in memory (Relay.deliveries)
LATENCY_LOG = 10_000       # latest processing latencies kept (Relay.latency_ns)

# PROTOCOL 4.7 counter ids of the STATS frames the relay sends: every one (the board's table).
STATS_IDS = tuple((name, i + 1) for i, name in enumerate(_board_wire.STATS_COUNTERS))


class Relay:
    """The relay daemon (see the module docstring)."""

    def __init__(self, config: Any, links: Optional[Dict[str, Link]] = None, recorder: Any = None,
                 keys: Optional[Dict[int, bytes]] = None, impact_period_s: float = 1.0) -> None:
        self.config = config
        cfg = config
        from trilink_edge import keyfile
        if keys is None:
            keys = keyfile.load(cfg)          # private, distinct, not test keys (or ConfigError)
        else:
            keyfile.check_keys(keys, cfg.relay.allow_test_keys, "keys")
        # The links (not open yet when the relay builds them: run() opens them).
        self._own_links = links is None
        self.links: Dict[str, Link] = (dict(links) if links is not None
                                       else {name: make_link(lk) for name, lk in cfg.links.items()})
        # A link the injected ones leave out is still budgeted as its kind would be.
        kinds = {name: self.links.get(name) or make_link(lk) for name, lk in cfg.links.items()}
        if recorder is None and cfg.recorder.path:
            from trilink_edge.recorder import Recorder
            recorder = Recorder(cfg.recorder.path, cfg.recorder.rotate_bytes, cfg.recorder.max_files)
        self.recorder = recorder
        self.sessions = Sessions(cfg.relay.node, [NodeInfo(n.node, n.name, n.key_id, n.link) for n in cfg.nodes],
                                 keys, cfg.relay.state_file, emit=self._emit_control, on_link=self._on_link)
        self.sessions.transport_errors = self._transport_errors
        for n in cfg.nodes:                       # datagram links reorder: a window (PROTOCOL 3.2)
            if kinds[n.link].reorders:
                self.sessions.set_window(n.node, REPLAY_WINDOW)
        self.node_link = {n.node: n.link for n in cfg.nodes}
        self.node_name = {n.node: n.name for n in cfg.nodes}
        nation = {n.node: n.nation for n in cfg.nodes}
        fed = getattr(cfg, "federation", None)
        remote = fed.remote_nodes() if fed is not None and fed.enabled else {}
        self.pipeline = self._make_pipeline(cfg, nation, remote, impact_period_s)
        # A report is verified and ingested in one C call (docs/BENCH_RELAY.md).
        self.sessions.verify = self.pipeline.rx_verifier(self.sessions.keyring, cfg.relay.node)
        self.schedulers: Dict[str, LinkScheduler] = {}
        self.meters: Dict[str, WindowMeter] = {}
        for name, lk in cfg.links.items():
            self.schedulers[name] = self._make_scheduler(cfg, name, kinds[name])
            self.meters[name] = WindowMeter()
        self.latency_ns: Deque[int] = collections.deque(maxlen=LATENCY_LOG)
        self.counters: Dict[str, Dict[str, int]] = {
            name: {"frames_in": 0, "bytes_in": 0, "rejected": 0, "send_errors": 0} for name in cfg.links}
        # DELIVERY frames (PROTOCOL 4.8) as received: dicts of node, t_ns
        # (relay clock at receipt), rx_local_us, rx_relay_us, track_id, reports.
        self.deliveries: Deque[Dict[str, Any]] = collections.deque(maxlen=DELIVERY_LOG)
        self.delivery_count: Dict[int, int] = {n: 0 for n in self.node_link}
        self.board_stats: Dict[int, Dict[str, int]] = {}   # the latest STATS frame of each board
        self.stats_frames_ns = int(cfg.relay.stats_frames_s * 1e9)
        self._last_stats_ns = 0
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._round_pending = False
        self.internal_errors = 0
        self._pumping: Set[str] = set()
        self._pump_soon: Set[str] = set()
        self._held: Dict[str, Optional[Item]] = {name: None for name in cfg.links}
        self._timers: Dict[str, Any] = {}
        self._executor: Optional[concurrent.futures.ThreadPoolExecutor] = None
        self._impact: Optional[asyncio.Future] = None
        self._last_housekeeping_ns = 0
        self._tasks: List[asyncio.Task] = []
        self._stopped: Optional[asyncio.Event] = None
        self._done: Optional[asyncio.Event] = None
        self._running = False
        # Guarded parts (ticker parts, shutdown steps): failures counted per part,
        # the part retried after a doubling backoff (BACKOFF_FIRST_S..BACKOFF_MAX_S), logged once per outage.
        self.part_errors: Dict[str, int] = {}
        self.stalls = 0
        self._part_retry: Dict[str, int] = {}      # part -> relay_now_ns() of its next try
        self._part_delay: Dict[str, float] = {}    # part -> current backoff (s); present while failing
        # [zenoh] / [asterix]: released frames published off the latency path (edge/publish.py)
        self.publisher = make_publisher(cfg) if hasattr(cfg, "zenoh") else None
        # [federation]: our boards' reports to the other hubs, theirs into our picture (edge/federation.py)
        self.federation: Any = self._make_federation(cfg, fed, nation) if remote else None

    def _make_pipeline(self, cfg: Any, nation: Dict[int, str], remote: Dict[int, Any],
                       impact_period_s: float) -> Pipeline:
        everyone = {**nation, **{nid: nat for nid, (_hub, nat) in remote.items()}}
        release = {d: {s for s in everyone if cfg.release.may(everyone[s], nation[d])} for d in nation}
        geo = {n.node: NodeGeo(n.node, n.name, (n.origin.lat, n.origin.lon, n.origin.alt_m),
                               [list(t.polygon) for t in n.territory], [list(t.polygon) for t in n.eez])
               for n in cfg.nodes}
        fu, dr, sc = cfg.fusion, cfg.deadreckoning, cfg.scheduler
        dr_config = {"threshold_m": dr.position_m, "heartbeat_us": int(dr.heartbeat_s * 1e6)}
        return Pipeline(
            geo, release,
            picture={"gate": fu.gate, "ci_mode": fu.ci_mode, "stay_bonus": fu.stay_bonus,
                     "switch_frames": fu.switch_frames, "timeout": fu.timeout_s},
            max_age_s=sc.max_age_s, impact_period_s=impact_period_s,
            dr_config=dr_config,
            warn_horizon_s=fu.warn_horizon_s, warn_partners=(fu.warn == "partners"), warning_retry_s=(sc.warning_retry_s, sc.warning_retry_max_s),
            push_warning=self._push, push_control=self._push_control,
            remote=remote, on_stored=self._forward if remote else None)

    def _make_scheduler(self, cfg: Any, name: str, link: Link) -> LinkScheduler:
        """Link ``name``'s scheduler, charging ``link.wire_size`` against its budget."""
        lk, sc = cfg.links[name], cfg.scheduler
        ws = link.wire_size
        burst = max(lk.burst or sc.burst or link.default_burst(lk.budget), ws(binding.OVERHEAD + 160))
        s = LinkScheduler(name, lk.budget, burst, ws, sc.max_control, max_warnings=sc.max_warnings)
        for n in cfg.nodes_on(name):
            s.add_source(self.pipeline.destinations[n.node])
        return s

    def _make_federation(self, cfg: Any, fed: Any, nation: Dict[int, str]) -> Any:
        from trilink_edge import config as _config
        from trilink_edge.federation import Federation
        fkeys = _config.load_federation_keys(fed, cfg.relay.allow_test_keys, cfg.source)
        peers = {p.name: p for p in fed.peers}
        return Federation(
            fed, fkeys, nation,
            lambda nat, peer: all(cfg.release.may(nat, n) for n in peers[peer].serves),
            self._on_federated)

    # ---- glue ----

    def _push(self, item: Item) -> None:
        name = self.node_link[item.node]
        self.schedulers[name].push(item)
        self._kick(name)

    def _kick(self, name: str) -> None:
        """Pump ``name`` on the next loop turn (once, however many pushes)."""
        if self._loop is None or not self._running or name in self._pump_soon:
            return
        self._pump_soon.add(name)
        self._loop.call_soon(self._guarded, self._pump, name)

    def _emit_control(self, node: int, mtype: int, payload: Any, flags: int) -> None:
        size = len(payload()) if callable(payload) else len(payload)
        self._push(Item(CONTROL, node, mtype, payload, flags, size=size, created_ns=relay_now_ns()))

    def _push_control(self, node: int, mtype: int, payload: bytes) -> None:
        self._emit_control(node, mtype, payload, 0)

    def _transport_errors(self, name: str) -> int:
        link = self.links.get(name)
        if link is None:
            return 0
        st = link.stats
        return st.crc_error + st.malformed + st.oversize

    def _on_link(self, node: int, up: bool) -> None:
        log.info("node %d link %s", node, "up" if up else "down")

    def _tap(self, link: str, direction: str, raw: bytes, t_ns: int) -> None:
        # The links' tap: the frames sent. Received frames are recorded by
        # _on_frame once the sessions judged them (refused ones apart).
        if direction == "tx":
            self._record(link, direction, raw, t_ns, True)

    def _record(self, link: str, direction: str, raw: bytes, t_ns: int, accepted: bool) -> None:
        if self.recorder is None:
            return
        try:
            if accepted:
                self.recorder.record(link, direction, raw, t_ns)
            else:
                getattr(self.recorder, "record_refused", self.recorder.record)(link, direction, raw, t_ns)
        except Exception:  # the capture must never stop the relay
            log.exception("recorder failed")

    # ---- receiving ----

    def _on_frame(self, name: str, rec: Received) -> None:
        """One raw frame received on link ``name`` (from the link's reader callback)."""
        raw, t_ns = rec.data, rec.t_ns
        c = self.counters[name]
        c["frames_in"] += 1
        c["bytes_in"] += len(raw)
        f = self.sessions.accept(name, raw, t_ns)
        self._record(name, "rx", raw, t_ns, f is not None)
        link = self.links.get(name)
        if f is None:
            c["rejected"] += 1
            node = self.sessions.refused_authentic
            if node is not None and link is not None:
                link.learn_peer(rec.peer, node, accepted=False)   # where the challenge may go
            return
        if link is not None:
            link.learn_peer(rec.peer, f.src)     # only an accepted frame, and per board
        mt = f.mtype
        bad = self.pipeline.stats.decode_errors
        if mt == binding.MSG_TRACK_REPORT:
            if self.pipeline.ingest(f.src, f, t_ns) and not self._round_pending and self._loop is not None:
                self._round_pending = True
                self._loop.call_soon(self._guarded, self._round)
        elif mt == binding.MSG_KEYFRAME_REQ:
            if self.pipeline.keyframe_request(f.src, f.payload):
                self._kick(self.node_link[f.src])   # the keyframes go out now, not with the next report
        elif mt == binding.MSG_WARNING_ACK:
            self.pipeline.warning_ack(f.src, f.payload)
        if self.pipeline.stats.decode_errors != bad:    # PROTOCOL 3.3 case 14: the node's malformed
            self.sessions._count(f.src, "malformed")
        elif mt == binding.MSG_DELIVERY:
            self._on_delivery(f.src, f.payload, t_ns)
        elif mt == binding.MSG_STATS:
            try:
                msg = _msgs.decode(binding.MSG_STATS, bytes(f.payload))
            except ValueError:
                self.sessions._count(f.src, "malformed")
                return
            self.board_stats[f.src] = {str(cid): v for cid, v in msg["counters"]}

    def _forward(self, node: int, *records: Any) -> None:
        if self.federation is not None:
            self.federation.forward(node, *records)

    def _on_federated(self, peer: str, recs: Any, P: Any, rx_ns: int) -> None:
        """Authentic records from hub ``peer`` (on the loop): into the picture, then a round."""
        from trilink_edge.federation import UTC
        t_us = recs["t_us"] - UTC.offset_us()
        stored = 0
        nodes = recs["node"]
        for node in np.unique(nodes).tolist():
            k = nodes == node
            stored += self.pipeline.ingest_remote(node, recs["tid"][k].astype(np.int64), recs["rid"][k].astype(np.int64),
                                                  t_us[k], np.array(recs["x"][k]), P[k],
                                                  recs["flags"][k].astype(np.int64), rx_ns)
        if stored and not self._round_pending and self._loop is not None:
            self._round_pending = True
            self._loop.call_soon(self._guarded, self._round)

    def _guarded(self, fn: Any, *args: Any) -> None:
        # A frame that trips a bug must cost that frame only: the link's
        # reader callback goes on with the frames after it.
        try:
            fn(*args)
        except Exception:  # noqa: BLE001
            self.internal_errors += 1
            log.exception("relay: %s failed", getattr(fn, "__name__", fn))

    def _on_delivery(self, node: int, payload: bytes, t_ns: int) -> None:
        try:
            msg = _msgs.decode(binding.MSG_DELIVERY, bytes(payload))
        except ValueError:
            self.sessions._count(node, "malformed")
            return
        msg["node"] = node
        msg["t_ns"] = t_ns
        self.deliveries.append(msg)
        self.delivery_count[node] = self.delivery_count.get(node, 0) + 1

    # ---- fusion and sending ----

    def _round(self, refresh: bool = False) -> None:
        self._round_pending = False
        if not self._running:
            return
        if self.pipeline.round(relay_now_ns(), refresh):
            for name in {self.node_link[n] for n in self.pipeline.offered_to}:
                self._pump(name)

    def _pump(self, name: str) -> None:
        """Write what link ``name`` may send now; arm a timer for the rest."""
        self._pump_soon.discard(name)
        if name in self._pumping or not self._running:
            return
        link = self.links.get(name)
        if link is None:
            return
        timer = self._timers.pop(name, None)
        if timer is not None:
            timer.cancel()
        sched = self.schedulers[name]
        loop = self._loop
        assert loop is not None
        self._pumping.add(name)
        try:
            while True:
                now = relay_now_ns()
                item = self._held[name]
                if item is None:
                    item = sched.pop(now)
                    if item is None:
                        return
                    self._held[name] = item
                if not link.writable:
                    self._timers[name] = loop.call_later(RETRY_WRITE_S, self._pump, name)
                    return
                wait = sched.wait_ns(item, now)
                if wait > 0:
                    self._timers[name] = loop.call_later(wait / 1e9, self._pump, name)
                    return
                self._held[name] = None
                self._write(name, link, sched, item)
        finally:
            self._pumping.discard(name)

    def _write(self, name: str, link: Link, sched: LinkScheduler, item: Item) -> None:
        payload = item.build()
        raw = self.sessions.pack(item.node, item.mtype, payload, item.flags)
        t_ns = relay_now_ns()
        n = sched.charge(item, t_ns)
        self.meters[name].add(t_ns, n)
        try:
            link.send_nowait(raw)
        except Exception as e:  # a vanished port: the link reopens itself; the frame is lost
            self.counters[name]["send_errors"] += 1
            log.debug("link %s send failed: %s", name, e)
        if item.klass == TRACK and item.created_ns:
            self.latency_ns.append(relay_now_ns() - item.created_ns)
        if self.publisher is not None and item.mtype in (binding.MSG_PICTURE, binding.MSG_WARNING):
            self.publisher.offer(item.node, item.mtype, payload, t_ns)   # a non-blocking put
        if item.on_sent is not None:
            item.on_sent(item, t_ns)

    # ---- periodic ----

    def _part(self, name: str, fn: Any, *args: Any) -> None:
        """Run one background part (a ticker part, a shutdown step): a failure
        is counted (``part_errors``, in /stats), logged once per outage and
        the part skipped for a backoff that doubles up to BACKOFF_MAX_S; it
        never stops the other parts."""
        now = relay_now_ns()
        if now < self._part_retry.get(name, 0):
            return
        try:
            fn(*args)
        except Exception as e:  # noqa: BLE001 - any failure of one part must leave the rest running
            self.part_errors[name] = self.part_errors.get(name, 0) + 1
            delay = self._part_delay.get(name)
            if delay is None:
                log.error("relay: %s failed: %s: %s (retrying with backoff; counted in /stats part_errors)",
                          name, type(e).__name__, e)
                delay = BACKOFF_FIRST_S
            else:
                delay = min(delay * 2, BACKOFF_MAX_S)
            self._part_delay[name] = delay
            self._part_retry[name] = now + int(delay * 1e9)
            return
        if self._part_delay.pop(name, None) is not None:
            log.info("relay: %s works again", name)

    def _tick(self, now: int) -> None:
        self._part("heartbeats", self.sessions.tick, now)
        self._part("warnings", self.pipeline.desk.tick, now)
        if self.stats_frames_ns > 0 and now - self._last_stats_ns >= self.stats_frames_ns:
            self._last_stats_ns = now
            self._part("stats_frames", self._send_stats)
        if now - self._last_housekeeping_ns >= HOUSEKEEPING_NS:
            self._last_housekeeping_ns = now
            self._part("housekeeping", self._housekeeping)
        if self._impact is None:
            self._part("impact", self._maybe_impacts, now)
        if self.federation is not None:
            self._part("federation", self.federation.tick)

    async def _ticker(self) -> None:
        last = relay_now_ns()
        while True:
            now = relay_now_ns()
            if now - last > STALL_NS:   # the whole process was stopped (SIGSTOP, a swap storm): say so
                self.stalls += 1
                log.warning("relay: stalled for %.1f s (no loop turn); links and timers resume now",
                            (now - last) / 1e9)
            last = now
            self._tick(now)
            await asyncio.sleep(TICK_S)

    def _housekeeping(self) -> None:
        # Timeouts are applied by association rounds; without reports no
        # round runs, so one is forced now and then.
        if self.pipeline.picture.stats()["tracks"] or any(d.sent or d.coast.active
                                                          for d in self.pipeline.destinations.values()):
            self.pipeline.dirty = True
            self._round(refresh=True)

    def _maybe_impacts(self, now: int) -> None:
        if self.pipeline.impact_due(now):
            self._start_impacts(now)

    def _start_impacts(self, now: int) -> None:
        job = self.pipeline.impact_job(now)
        assert self._loop is not None
        fut = self._loop.run_in_executor(self._executor, job)
        self._impact = fut

        def done(f: asyncio.Future) -> None:
            self._impact = None
            if f.cancelled() or not self._running:
                return
            if f.exception() is not None:
                self.part_errors["impact"] = self.part_errors.get("impact", 0) + 1
                log.error("impact prediction failed: %r", f.exception())
                return
            self.pipeline.apply_impacts(f.result(), relay_now_ns())
        fut.add_done_callback(done)

    def node_counters(self, node: int) -> Dict[str, int]:
        """The PROTOCOL 4.7 counters of one board as the relay sees it."""
        return relay_stats.node_counters(self, node)

    def _send_stats(self) -> None:
        for node in self.sessions.sessions:
            c = self.node_counters(node)
            payload = _msgs.encode(binding.MSG_STATS, {
                "counters": [(cid, min(c[k], 0xFFFFFFFF)) for k, cid in STATS_IDS]})
            self._push_control(node, binding.MSG_STATS, payload)

    # ---- public ----

    async def _open_links(self) -> None:
        for link in self.links.values():
            link.tap = self._tap
            if self._own_links:
                await link.open()
        for name, link in self.links.items():
            link.handler = lambda rec, name=name: self._guarded(self._on_frame, name, rec)

    async def run(self) -> None:
        """Open the links and relay until ``stop()``."""
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        self._done = asyncio.Event()
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="trilink-impact")
        await self._open_links()
        self._running = True
        if self.publisher is not None:
            self.publisher.start(self, self._loop)
        if self.federation is not None:
            self.federation.start(self._loop)
        self.sessions.start()
        self._tasks = [asyncio.ensure_future(self._ticker())]
        try:
            await self._stopped.wait()
        finally:
            await self._shutdown()

    async def _shutdown(self) -> None:
        # Every step is guarded and bounded: whatever failed (a state file
        # that cannot be written, a full capture disk, a link that will not
        # close), the relay stops within 1 s and ``stop()`` returns.
        try:
            self._running = False
            for t in self._tasks:
                t.cancel()
            for h in self._timers.values():
                h.cancel()
            self._timers.clear()
            if self._tasks:
                await asyncio.wait(self._tasks, timeout=STOP_BUDGET_S)
            for t in self._tasks:
                if t.done() and not t.cancelled() and t.exception() is not None:
                    log.error("task failed: %r", t.exception())
            self._tasks = []
            for link in self.links.values():
                link.handler = None
            if self.publisher is not None:
                self.publisher.close()      # bounded (publish.CLOSE_BUDGET_S); never raises
            if self.federation is not None:
                self.federation.close()     # never raises
            closes = [asyncio.ensure_future(link.close()) for link in self.links.values()]
            if closes:
                await asyncio.wait(closes, timeout=LINK_CLOSE_S)
                for c in closes:
                    if not c.done():
                        c.cancel()
                    elif not c.cancelled() and c.exception() is not None:
                        log.warning("link close failed: %r", c.exception())
            if self.recorder is not None and hasattr(self.recorder, "close"):
                self._part("recorder_close", self._close_recorder)
            if self._executor is not None:
                self._executor.shutdown(wait=False)
        finally:
            if self._done is not None:
                self._done.set()

    def _close_recorder(self) -> None:
        close = self.recorder.close
        if "timeout" in inspect.signature(close).parameters:
            close(timeout=RECORDER_CLOSE_S)
        else:   # a recorder stand-in
            close()

    async def stop(self) -> None:
        """Stop within 1 s: tasks cancelled, links closed, capture flushed (the
        state file needs no final write: PROTOCOL.md 2.2)."""
        if self._stopped is not None:
            self._stopped.set()
        if self._done is not None:
            await self._done.wait()

    def stats(self) -> Dict[str, Any]:
        """Counters per link and per node, pipeline and scheduler counters,
        deliveries (count per node and the latest few)."""
        return relay_stats.document(self)
