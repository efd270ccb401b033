# relay.py: the relay daemon's object: config, links, sessions, pipeline, scheduler, recorder, stats
"""``Relay(config)`` wires every part of the relay together and runs it.

    relay = Relay(trilink_edge.config.load("relay.toml"))
    await relay.run()        # until stop(); SIGTERM handling is the CLI's
    await relay.stop()       # within 1 s, capture flushed, state file written

Tasks (one asyncio loop):
* per link, a receiver: ``link.recv()`` -> ``Sessions.accept`` (verify,
  control answers) -> ``Pipeline.ingest`` for TRACK_REPORT; it marks the
  picture dirty and wakes the fusion task;
* the fusion task: one ``Pipeline.round`` per wake (frames that arrived
  together are fused together), then wakes every link's sender;
* per link, a sender: ``LinkScheduler.pop`` when the token bucket can
  carry a frame; the frame is packed (seq, counter) just before
  ``link.send``; the latency of track frames (report frame fully received
  to first byte of the resulting frame written) is kept in
  ``latency_ns``;
* a ticker (every 50 ms): heartbeats, link-down detection, state-file
  saves, warning retransmissions, and the impact prediction in a worker
  thread (the C call releases the GIL) every ``impact_period_s``.

``links`` (name -> link object with ``async recv()``, ``async send(raw)``
and ``async close()``) may be injected, e.g. by tests; by default they are
opened with ``trilink_edge.links``.
"""
from __future__ import annotations

import asyncio
import collections
import logging
from typing import Any, Callable, Deque, Dict, List, Optional

from trilink_native import binding
from trilink_board import keys as _keys
from trilink_edge.pipeline import NodeGeo, Pipeline
from trilink_edge.scheduler import CONTROL, Item, LinkScheduler, WindowMeter, serial_size, udp_size
from trilink_edge.session import NodeInfo, Sessions, relay_now_ns

log = logging.getLogger("trilink_edge.relay")
TICK_S = 0.05
STOP_BUDGET_S = 0.8    # stop() gives tasks this long before cancelling them


class Relay:
    """The relay daemon (see the module docstring)."""

    def __init__(self, config: Any, links: Optional[Dict[str, Any]] = None, recorder: Any = None,
                 keys: Optional[Dict[int, bytes]] = None, impact_period_s: float = 1.0) -> None:
        self.config = config
        cfg = config
        if keys is None:
            kf = _keys.load(cfg.relay.key_file)
            keys = {e.key_id: e.key for e in kf.entries}
        self._link_objs = links
        if recorder is None and cfg.recorder.path:
            from trilink_edge.recorder import Recorder
            recorder = Recorder(cfg.recorder.path, cfg.recorder.rotate_bytes, cfg.recorder.max_files)
        self.recorder = recorder
        self.sessions = Sessions(cfg.relay.node, [NodeInfo(n.node, n.name, n.key_id, n.link) for n in cfg.nodes],
                                 keys, cfg.relay.state_file, emit=self._emit_control, on_link=self._on_link)
        self.node_link = {n.node: n.link for n in cfg.nodes}
        nation = {n.node: n.nation for n in cfg.nodes}
        release = {d: {s for s in nation if cfg.release.may(nation[s], nation[d])} for d in nation}
        geo = {n.node: NodeGeo(n.node, n.name, (n.origin.lat, n.origin.lon, n.origin.alt_m),
                               [list(t.polygon) for t in n.territory]) for n in cfg.nodes}
        fu, dr, sc = cfg.fusion, cfg.deadreckoning, cfg.scheduler
        self.pipeline = Pipeline(
            geo, release,
            picture={"gate": fu.gate, "ci_mode": fu.ci_mode, "stay_bonus": fu.stay_bonus,
                     "switch_frames": fu.switch_frames, "timeout": fu.timeout_s},
            max_age_s=sc.max_age_s, impact_period_s=impact_period_s,
            dr_config={"threshold_m": dr.position_m, "heartbeat_us": int(dr.heartbeat_s * 1e6)},
            warn_horizon_s=fu.warn_horizon_s, warning_retry_s=(sc.warning_retry_s, sc.warning_retry_max_s),
            push_warning=self._push, push_control=self._push_control)
        self.schedulers: Dict[str, LinkScheduler] = {}
        self.meters: Dict[str, WindowMeter] = {}
        for name, lk in cfg.links.items():
            ws = serial_size if lk.kind == "serial" else udp_size
            burst = max(lk.burst or sc.burst, ws(binding.OVERHEAD + 160))
            s = LinkScheduler(name, lk.budget, burst, ws, sc.max_control)
            for n in cfg.nodes_on(name):
                s.add_source(self.pipeline.destinations[n.node])
            self.schedulers[name] = s
            self.meters[name] = WindowMeter()
        self.links: Dict[str, Any] = {}
        self.latency_ns: Deque[int] = collections.deque(maxlen=200_000)
        self.counters: Dict[str, Dict[str, int]] = {
            name: {"frames_in": 0, "bytes_in": 0, "rejected": 0, "send_errors": 0} for name in cfg.links}
        self._wake: Dict[str, asyncio.Event] = {}
        self._dirty: Optional[asyncio.Event] = None
        self._tasks: List[asyncio.Task] = []
        self._stopped: Optional[asyncio.Event] = None
        self._running = False

    # ---- glue ----

    def _push(self, item: Item) -> None:
        name = self.node_link[item.node]
        self.schedulers[name].push(item)
        ev = self._wake.get(name)
        if ev is not None:
            ev.set()

    def _emit_control(self, node: int, mtype: int, payload: Any, flags: int) -> None:
        size = len(payload()) if callable(payload) else len(payload)
        self._push(Item(CONTROL, node, mtype, payload, flags, size=size, created_ns=relay_now_ns()))

    def _push_control(self, node: int, mtype: int, payload: bytes) -> None:
        self._emit_control(node, mtype, payload, 0)

    def _on_link(self, node: int, up: bool) -> None:
        log.info("node %d link %s", node, "up" if up else "down")

    def _tap(self, link: str, direction: str, raw: bytes, t_ns: int) -> None:
        if self.recorder is not None:
            try:
                self.recorder.record(link, direction, raw, t_ns)
            except Exception:  # the capture must never stop the relay
                log.exception("recorder failed")

    # ---- tasks ----

    async def _open_links(self) -> None:
        if self._link_objs is not None:
            self.links = dict(self._link_objs)
            for link in self.links.values():
                link.tap = self._tap
            return
        from trilink_edge.links import make_link
        for name, lk in self.config.links.items():
            link = make_link(lk)
            link.tap = self._tap
            await link.open()
            self.links[name] = link

    async def _receiver(self, name: str) -> None:
        link = self.links[name]
        c = self.counters[name]
        while True:
            try:
                rec = await link.recv()
            except Exception as e:   # LinkClosed at shutdown
                if type(e).__name__ == "LinkClosed":
                    return
                raise
            raw, t_ns = bytes(rec.data), rec.t_ns
            c["frames_in"] += 1
            c["bytes_in"] += len(raw)
            f = self.sessions.accept(name, raw, t_ns)
            if f is None:
                c["rejected"] += 1
                continue
            if hasattr(link, "learn_peer"):
                link.learn_peer(rec.peer)
            mt = f.mtype
            if mt == binding.MSG_TRACK_REPORT:
                if self.pipeline.ingest(f.src, f, t_ns):
                    self._dirty.set()
            elif mt == binding.MSG_KEYFRAME_REQ:
                self.pipeline.keyframe_request(f.src, f.payload)
            elif mt == binding.MSG_WARNING_ACK:
                self.pipeline.warning_ack(f.src, f.payload)

    async def _fusion(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            if self.pipeline.round(relay_now_ns()):
                for ev in self._wake.values():
                    ev.set()

    async def _sender(self, name: str) -> None:
        link = self.links[name]
        sched = self.schedulers[name]
        meter = self.meters[name]
        wake = self._wake[name]
        item: Optional[Item] = None
        while True:
            now = relay_now_ns()
            if item is None:
                item = sched.pop(now)
                if item is None:
                    wake.clear()
                    try:
                        await asyncio.wait_for(wake.wait(), 0.1)
                    except asyncio.TimeoutError:
                        pass
                    continue
            wait = sched.wait_ns(item, now)
            if wait > 0:
                await asyncio.sleep(wait / 1e9)
                continue
            payload = item.build()
            raw = self.sessions.pack(item.node, item.mtype, payload, item.flags)
            t_ns = relay_now_ns()
            n = sched.charge(item, t_ns)
            meter.add(t_ns, n)
            if item.klass == 2 and item.created_ns:
                self.latency_ns.append(t_ns - item.created_ns)
            try:
                await link.send(raw)
            except Exception as e:  # a vanished port: the link reopens itself; the frame is lost
                self.counters[name]["send_errors"] += 1
                log.debug("link %s send failed: %s", name, e)
            if item.on_sent is not None:
                item.on_sent(item, t_ns)
            item = None
            await asyncio.sleep(0)

    async def _ticker(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            now = relay_now_ns()
            self.sessions.tick(now)
            self.pipeline.desk.tick(now)
            if self.pipeline.impact_due(now) and self.pipeline.picture.stats()["tracks"]:
                job = self.pipeline.impact_job(now)
                res = await loop.run_in_executor(None, job)
                self.pipeline.apply_impacts(res, relay_now_ns())
            await asyncio.sleep(TICK_S)

    # ---- public ----

    async def run(self) -> None:
        """Open the links and relay until ``stop()``."""
        self._stopped = asyncio.Event()
        self._dirty = asyncio.Event()
        self._wake = {name: asyncio.Event() for name in self.config.links}
        await self._open_links()
        self._running = True
        self.sessions.start()
        specs: List[Callable] = [self._fusion(), self._ticker()]
        for name in self.links:
            specs += [self._receiver(name), self._sender(name)]
        self._tasks = [asyncio.ensure_future(s) for s in specs]
        try:
            await self._stopped.wait()
        finally:
            await self._shutdown()

    async def _shutdown(self) -> None:
        for t in self._tasks:
            t.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=STOP_BUDGET_S)
        for t in self._tasks:
            if t.done() and not t.cancelled() and t.exception() is not None:
                log.error("task failed: %r", t.exception())
        self._tasks = []
        self.sessions.save()
        for link in self.links.values():
            try:
                await asyncio.wait_for(link.close(), 0.2)
            except Exception:
                pass
        if self.recorder is not None and hasattr(self.recorder, "close"):
            self.recorder.close()
        self._running = False

    async def stop(self) -> None:
        """Stop within 1 s: tasks cancelled, state saved, links closed, capture flushed."""
        if self._stopped is not None:
            self._stopped.set()
        while self._running:
            await asyncio.sleep(0.01)

    def stats(self) -> Dict[str, Any]:
        """Counters per link and per node, pipeline and scheduler counters."""
        out: Dict[str, Any] = {"links": {}, "nodes": self.sessions.counters(),
                               "pipeline": dict(vars(self.pipeline.stats)),
                               "picture": self.pipeline.picture.stats()}
        for name, s in self.schedulers.items():
            d = dict(self.counters[name])
            d.update(vars(s.counters))
            d["queue_depth"] = s.depth()
            d["max_window_bytes"] = self.meters[name].max
            d["budget"] = s.budget
            out["links"][name] = d
        return out
