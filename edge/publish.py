# publish.py: the relay's released frames, off the latency path, to Zenoh and ASTERIX sinks
"""``Publisher``: between the relay and its publication sinks (Zenoh:
edge/zenoh_pub.py; ASTERIX CAT062: edge/asterix.py), in a process of its
own (``[zenoh] process = true``, the default: ``python -m
trilink_edge.publish``) or in one worker thread of the relay's process.

The relay calls ``offer`` from its write path for every PICTURE and WARNING
frame it has just written to a destination's link: one non-blocking
``send`` of the payload on a SOCK_SEQPACKET socket pair to the process (or
one ``put_nowait`` on the thread's bounded queue); the payload is already
built, so exactly what the link got. A full buffer or queue drops the
publication and counts it (``dropped``), it never waits. The process (or
thread) decodes, seals and publishes, PICTURE frames of one destination
taken together in one publication (``coalesce``); the process reports its
counters back every ``COUNTERS_PERIOD_S``. Health and stats snapshots are
taken on the event loop by a task every ``[zenoh] health_period_s`` /
``stats_period_s`` (the relay's state is the loop's) and handed over the
same way. Why a process: docs/BENCH_ZENOH.md (the thread waited for the
interpreter lock the relay's loop holds, and the loop for it).

    pub = make_publisher(cfg)          # None when [zenoh] and [asterix] are off
    pub.start(relay, loop)             # after the links are open
    pub.offer(node, binding.MSG_PICTURE, payload, t_ns)
    pub.close()                        # at shutdown: the process (thread) drains and stops
"""
from __future__ import annotations

import asyncio
import collections
import json
import logging
import pickle
import queue
import socket
import struct
import subprocess
import sys
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

from trilink_native import binding
from trilink_board import messages as _msgs
from trilink_edge.released import ReleasedPicture

log = logging.getLogger("trilink_edge.publish")

__all__ = ["Publisher", "make_publisher"]
_STOP = object()
_UNDECODED = object()     # what _decoded returns for an item that does not decode (None is a valid result)
CLOSE_BUDGET_S = 0.5      # close() waits this long for the thread
DELAY_LOG = 4096          # recent write-to-published delays kept (counters() p50/p99)
COALESCE_MAX = 64         # queued items the worker takes at once (their PICTUREs: one publication per destination)
# process mode: one message per item on a SOCK_SEQPACKET pair to the publisher's process
_TRACK = struct.Struct("<cHBq")        # b"T", node, message type, write time (µs), then the payload
SOCK_BUFFER = 4 << 20                  # bytes the relay's side may have in flight (then: dropped, counted)
COUNTERS_PERIOD_S = 0.5                # the process reports its counters this often


class Publisher:
    """A process (or queue + worker thread) feeding ``sinks`` (objects with ``track``,
    ``health``, ``stats``, ``open``, ``close``; any may be absent)."""

    def __init__(self, sinks: List[Any], origins: Dict[int, Tuple[float, float, float]], maxsize: int = 4096,
                 health_period_s: float = 0.0, stats_period_s: float = 0.0, tick_period_s: float = 0.0,
                 snapshot_period_s: float = 0.0, process: bool = False) -> None:
        self.sinks = sinks
        # process: the sinks run in a process of their own (no GIL shared with the relay's loop);
        # otherwise in a thread of the relay's process
        self.process = process
        self.origins = origins
        self.q: "queue.Queue[Any]" = queue.Queue(maxsize)
        self.health_period_s = health_period_s
        self.stats_period_s = stats_period_s
        self.tick_period_s = tick_period_s      # sinks' own periodic work (the ASTERIX export)
        self.snapshot_period_s = snapshot_period_s
        self.views: Dict[int, ReleasedPicture] = {}   # destination node -> its picture (worker thread only)
        # write of the frame to its link -> publication handed to every sink, µs (recent window)
        self.delay_us: "collections.deque[int]" = collections.deque(maxlen=DELAY_LOG)
        self.offered = 0
        self.dropped = 0
        self.published = 0
        self.errors = 0
        # PICTURE frames queued together go out as one publication per destination (docs/BENCH_ZENOH.md)
        self.coalesce = True
        self._thread: Optional[threading.Thread] = None
        self._task: Optional[asyncio.Task] = None
        self._sock: Optional[socket.socket] = None        # process mode: our end of the pair
        self._proc: Optional[subprocess.Popen] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._child: Dict[str, Any] = {}                   # the process's latest counters

    # ---- on the event loop ----

    def offer(self, node: int, mtype: int, payload: Any, t_ns: int) -> None:
        """Hand one written frame's payload to the thread (or process); never blocks."""
        self.offered += 1
        if self._sock is not None:
            self._send(_TRACK.pack(b"T", node, mtype, t_ns // 1000) + bytes(payload))
            return
        try:
            self.q.put_nowait(("track", node, mtype, bytes(payload), t_ns // 1000))
        except queue.Full:
            self.dropped += 1

    def _offer_doc(self, what: str, doc: Any) -> None:
        if self._sock is not None:
            self._send(b"D" + json.dumps([what, doc], separators=(",", ":"), default=str).encode())
            return
        try:
            self.q.put_nowait((what, doc))
        except queue.Full:
            self.dropped += 1

    def _send(self, msg: bytes) -> None:
        assert self._sock is not None
        try:
            self._sock.send(msg)
        except BlockingIOError:
            self.dropped += 1
        except OSError:            # the process is gone: counted, never raised into the write path
            self.dropped += 1
            self.errors += 1

    def start(self, relay: Any, loop: asyncio.AbstractEventLoop) -> None:
        """Start the worker thread (or process) and the snapshot task."""
        self._loop = loop
        if self.process:
            self._start_process(loop)
        else:
            self._thread = threading.Thread(target=self._work, name="trilink-publish", daemon=True)
            self._thread.start()
        self._task = loop.create_task(self._snapshots(relay))

    def _start_process(self, loop: asyncio.AbstractEventLoop) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCK_BUFFER)
        theirs.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCK_BUFFER)
        ours.setblocking(False)
        spec = pickle.dumps({"sinks": self.sinks, "origins": self.origins, "coalesce": self.coalesce})
        # the keys travel on the pipe, never on the command line
        self._proc = subprocess.Popen([sys.executable, "-m", "trilink_edge.publish", str(theirs.fileno())],
                                      stdin=subprocess.PIPE, pass_fds=(theirs.fileno(),))
        assert self._proc.stdin is not None
        self._proc.stdin.write(spec)
        self._proc.stdin.close()
        theirs.close()
        self._sock = ours
        loop.add_reader(ours.fileno(), self._on_counters)

    def _on_counters(self) -> None:
        assert self._sock is not None
        while True:
            try:
                msg = self._sock.recv(1 << 16)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                msg = b""
            if not msg:                          # the process has gone
                if self._loop is not None and self._sock is not None:
                    self._loop.remove_reader(self._sock.fileno())
                return
            try:
                self._child = json.loads(msg)
            except ValueError:
                self.errors += 1

    async def _snapshots(self, relay: Any) -> None:
        periods = [p for p in (self.health_period_s, self.stats_period_s, self.tick_period_s,
                               self.snapshot_period_s) if p > 0]
        if not periods:
            return
        step = min(periods)
        last = {"health": -1e18, "stats": -1e18, "tick": -1e18, "snapshot": loop_time_zero()}
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            if self.health_period_s > 0 and now - last["health"] >= self.health_period_s:
                last["health"] = now
                self._offer_doc("health", health_doc(relay, self))
            if self.stats_period_s > 0 and now - last["stats"] >= self.stats_period_s:
                last["stats"] = now
                doc = relay.stats()
                doc["publish"] = self.counters()
                self._offer_doc("stats", doc)
            if self.tick_period_s > 0 and now - last["tick"] >= self.tick_period_s:
                last["tick"] = now
                self._offer_doc("tick", relay_now_us())
            if self.snapshot_period_s > 0 and now - last["snapshot"] >= self.snapshot_period_s:
                last["snapshot"] = now
                self._offer_doc("snapshot", relay_now_us())
            await asyncio.sleep(step)

    def counters(self) -> Dict[str, Any]:
        """Offered, dropped (queue full), published, errors, queued now, and
        the p50/p99 µs from the frame's write to its link to the publication
        handed to every sink (the recent ``DELAY_LOG``)."""
        if self.process:
            c = self._child
            d: Dict[str, Any] = {"offered": self.offered, "dropped": self.dropped, "published": c.get("published", 0),
                                 "errors": self.errors + c.get("errors", 0), "queued": c.get("queued", 0),
                                 "process": self._proc.pid if self._proc is not None else None}
            if "delay_us" in c:
                d["delay_us"] = c["delay_us"]
            return d
        d = {"offered": self.offered, "dropped": self.dropped, "published": self.published,
             "errors": self.errors, "queued": self.q.qsize()}
        d.update(self._delay_stats())
        return d

    def _delay_stats(self) -> Dict[str, Any]:
        lat = sorted(self.delay_us)
        if not lat:
            return {}
        return {"delay_us": {"count": len(lat), "p50": lat[len(lat) // 2],
                             "p99": lat[min(len(lat) - 1, int(0.99 * len(lat)))]}}

    def close(self) -> None:
        """Stop the snapshot task, let the thread drain the queue and close the sinks."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if self._thread is not None:
            try:
                self.q.put(_STOP, timeout=CLOSE_BUDGET_S)
            except queue.Full:
                pass
            self._thread.join(CLOSE_BUDGET_S)
            self._thread = None
        if self._sock is not None:
            if self._loop is not None:
                try:
                    self._loop.remove_reader(self._sock.fileno())
                except Exception:  # noqa: BLE001 - a closed loop: nothing to remove
                    pass
            self._sock.close()       # the process sees the end, drains what it got and stops
            self._sock = None
        if self._proc is not None:
            try:
                self._proc.wait(CLOSE_BUDGET_S)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None

    # ---- in the worker thread, or in the publisher's process ----

    def _open_sinks(self) -> List[Any]:
        opened = []
        for s in self.sinks:
            try:
                s.open()
                opened.append(s)
            except Exception:  # noqa: BLE001 - a sink that cannot open must not stop the relay
                self.errors += 1
                log.exception("publisher: %s did not open", type(s).__name__)
        return opened

    def _close_sinks(self, opened: List[Any]) -> None:
        for s in opened:
            try:
                s.close()
            except Exception:  # noqa: BLE001
                log.exception("publisher: %s did not close", type(s).__name__)

    def _decoded(self, item: Tuple[Any, ...]) -> Any:
        """``_decode(item)``, or ``_UNDECODED`` (counted in ``errors``, logged) if it does not decode."""
        try:
            return self._decode(item)
        except Exception:  # noqa: BLE001
            self.errors += 1
            log.exception("publisher: decoding failed")
            return _UNDECODED

    def _handle(self, opened: List[Any], item: Tuple[Any, ...]) -> None:
        """One queued item: decoded once, delivered to every open sink."""
        decoded = self._decoded(item)
        if decoded is _UNDECODED:
            return
        for s in opened:
            try:
                self._deliver(s, item, decoded)
            except Exception:  # noqa: BLE001 - one bad publication costs that one only
                self.errors += 1
                log.exception("publisher: %s failed", type(s).__name__)
        self.published += 1
        if item[0] == "track":
            self.delay_us.append(time.monotonic_ns() // 1000 - item[4])

    def _work(self) -> None:
        opened = self._open_sinks()
        stop = False
        while not stop:
            items = [self.q.get()]
            # what queued meanwhile goes out with it (coalesce)
            while len(items) < COALESCE_MAX:
                try:
                    items.append(self.q.get_nowait())
                except queue.Empty:
                    break
            if _STOP in items:
                stop = True
                items = items[:items.index(_STOP)]
            if self.coalesce:
                self._handle_many(opened, items)
            else:
                for item in items:
                    self._handle(opened, item)
        self._close_sinks(opened)

    def _handle_many(self, opened: List[Any], items: List[Tuple[Any, ...]]) -> None:
        """Items taken off the queue together: every PICTURE frame of one
        destination among them in one publication (its records in the
        frames' order, ``t_us`` the first frame's write), the others one by
        one; one JSON body, one seal and one put per destination instead of
        one per frame."""
        groups: Dict[int, List[Any]] = {}
        firsts: Dict[int, Tuple[Any, ...]] = {}
        for item in items:
            if item[0] != "track" or item[2] != binding.MSG_PICTURE:
                self._handle(opened, item)
                continue
            decoded = self._decoded(item)
            if decoded is _UNDECODED:
                continue
            node = item[1]
            firsts.setdefault(node, item)
            groups.setdefault(node, []).extend(decoded)
        for node, records in groups.items():
            first = firsts[node]
            for s in opened:
                try:
                    self._deliver(s, first, records)
                except Exception:  # noqa: BLE001 - one bad publication costs that one only
                    self.errors += 1
                    log.exception("publisher: %s failed", type(s).__name__)
            now_us = time.monotonic_ns() // 1000
            for item in items:
                if item[0] == "track" and item[1] == node and item[2] == binding.MSG_PICTURE:
                    self.published += 1
                    self.delay_us.append(now_us - item[4])

    def _deliver(self, sink: Any, item: Tuple[Any, ...], decoded: Any) -> None:
        what = item[0]
        if what == "track":
            node, mtype, t_us = item[1], item[2], item[4]
            if mtype == binding.MSG_PICTURE:
                fn = getattr(sink, "picture", None)
                if fn is not None and decoded:
                    fn(node, self.origins[node], t_us, decoded)
            else:
                fn = getattr(sink, "warning", None)
                if fn is not None and decoded is not None:
                    fn(node, t_us, decoded)
        elif what == "snapshot":
            fn = getattr(sink, "picture", None)
            if fn is not None:
                for node, view in self.views.items():
                    fn(node, self.origins[node], item[1], view.snapshot(), snapshot=True)
        elif what == "tick":
            fn = getattr(sink, "tick", None)
            if fn is not None:
                fn(item[1], self.views)
        else:
            fn = getattr(sink, what, None)
            if fn is not None:
                fn(item[1])

    def _decode(self, item: Tuple[Any, ...]) -> Any:
        """PICTURE: the records it changed in its destination's picture;
        WARNING: the decoded message, with degrees beside the 1e-7 integers."""
        if item[0] != "track":
            return None
        node, mtype, payload = item[1], item[2], item[3]
        if mtype == binding.MSG_PICTURE:
            view = self.views.get(node)
            if view is None:
                view = self.views[node] = ReleasedPicture(self.origins[node])
            return view.apply(payload)
        try:
            doc = _msgs.decode(binding.MSG_WARNING, payload)
        except ValueError:
            return None
        doc["lat"] = doc["lat_e7"] / 1e7
        doc["lon"] = doc["lon_e7"] / 1e7
        return doc


def _child_main(fd: int) -> int:
    """The publisher's process (``python -m trilink_edge.publish FD``): the
    sinks and origins pickled on stdin, the relay's items on the
    SOCK_SEQPACKET socket ``fd``; stops when the relay closes its end."""
    import signal
    # Ctrl-C reaches the whole process group: the relay stops us (by closing its end), not the terminal
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    spec = pickle.loads(sys.stdin.buffer.read())
    sock = socket.socket(fileno=fd)
    pub = Publisher(spec["sinks"], spec["origins"])
    pub.coalesce = spec["coalesce"]
    opened = pub._open_sinks()
    next_report = time.monotonic()
    done = False
    while not done:
        sock.settimeout(COUNTERS_PERIOD_S)
        items: List[Any] = []
        try:
            msg: Optional[bytes] = sock.recv(1 << 20)
        except socket.timeout:
            msg = None
        except OSError:
            msg = b""
        sock.setblocking(False)
        while msg is not None:
            if not msg:
                done = True
                break
            if msg[:1] == b"T":
                _c, node, mtype, t_us = _TRACK.unpack_from(msg)
                items.append(("track", node, mtype, msg[_TRACK.size:], t_us))
            else:
                try:
                    what, doc = json.loads(msg[1:])
                    items.append((what, doc))
                except ValueError:
                    pub.errors += 1
            if len(items) >= COALESCE_MAX:
                break
            try:
                msg = sock.recv(1 << 20)
            except BlockingIOError:
                msg = None
            except OSError:
                msg = b""
        if pub.coalesce:
            pub._handle_many(opened, items)
        else:
            for item in items:
                pub._handle(opened, item)
        if time.monotonic() >= next_report or done:
            next_report = time.monotonic() + COUNTERS_PERIOD_S
            report = {"published": pub.published, "errors": pub.errors, "queued": 0, **pub._delay_stats()}
            try:
                sock.send(json.dumps(report).encode())
            except OSError:
                pass
    pub._close_sinks(opened)
    return 0


def loop_time_zero() -> float:
    return asyncio.get_running_loop().time()


def relay_now_us() -> int:
    from trilink_edge.session import relay_now_us as now
    return now()


def health_doc(relay: Any, pub: Optional[Publisher] = None) -> Dict[str, Any]:
    """Link health: per node its nation, link, session state and frame
    counts; per link its counters and queue depth; the relay time."""
    sess = relay.sessions.counters()
    cfg = relay.config
    nodes = {}
    for n in cfg.nodes:
        s = sess.get(n.name, {})
        nodes[n.name] = {"node": n.node, "nation": n.nation, "link": n.link, "up": bool(s.get("up", 0)),
                         "rx_frames": s.get("rx_frames", 0), "tx_frames": s.get("tx_frames", 0),
                         "rx_errors": s.get("rx_errors", 0)}
    links = {}
    for name, c in relay.counters.items():
        links[name] = {"frames_in": c["frames_in"], "send_errors": c["send_errors"],
                       "queue_depth": relay.schedulers[name].depth()}
    doc: Dict[str, Any] = {"relay": cfg.zenoh.relay, "t_us": relay_now_us(), "nodes": nodes, "links": links,
                           "tracks": relay.pipeline.picture.stats().get("tracks", 0)}
    if pub is not None:
        doc["publish"] = pub.counters()
    return doc


def make_publisher(cfg: Any) -> Optional[Publisher]:
    """The publisher the config asks for ([zenoh] and/or [asterix]), or None."""
    z, a = cfg.zenoh, cfg.asterix
    if not z.enabled and not a.enabled:
        return None
    origins = {n.node: (n.origin.lat, n.origin.lon, n.origin.alt_m) for n in cfg.nodes}
    sinks: List[Any] = []
    if z.enabled:
        from trilink_edge import zenoh_pub
        keys = zenoh_pub.load_seal_keys(z.key_file)
        nations = {n.node: n.nation for n in cfg.nodes}
        want = set(nations.values()) | ({"ops"} & set(keys))
        sinks.append(zenoh_pub.ZenohSink(z.relay, {k: v for k, v in keys.items() if k in want}, nations,
                                         {"mode": z.mode, "listen": list(z.listen), "connect": list(z.connect),
                                          "multicast_scouting": z.multicast_scouting},
                                         [{"nation": n.nation, "name": t.name, "polygon": [list(p) for p in t.polygon]}
                                          for n in cfg.nodes for t in n.territory]))
    if a.enabled:
        from trilink_edge import asterix
        node = cfg.node(a.node)
        sinks.append(asterix.AsterixSink(node.node, a.udp, a.file, a.sac, a.sic))
    pub = Publisher(sinks, origins, maxsize=z.queue,
                    health_period_s=z.health_period_s if z.enabled else 0.0,
                    stats_period_s=z.stats_period_s if z.enabled else 0.0,
                    tick_period_s=a.period_s if a.enabled else 0.0,
                    snapshot_period_s=z.snapshot_period_s if z.enabled else 0.0, process=z.process)
    pub.coalesce = z.coalesce
    return pub


if __name__ == "__main__":
    sys.exit(_child_main(int(sys.argv[1])))
