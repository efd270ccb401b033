# stats.py: the relay's counters per link and per node, a log line, and GET /stats
"""Counters of the relay, per link and per node, in one document:

* links: the transport counters each ``links.Link`` keeps (frames/bytes in
  and out, crc_error, malformed, oversize, reopen, up, ...), read live from
  the link objects (``add_link`` or a ``links`` provider such as
  ``lambda: relay.links``);
* sources (``add_source``): callables returning a dict like
  ``Relay.stats()``: its ``links`` and ``nodes`` entries are merged into
  the per-link and per-node entries (auth_fail, replay, wrong_link,
  dropped_stale, queue_depth, ...), any other key becomes a section;
* ``count_link``/``count_node``/``gauge_*`` for code that counts directly.

Every node entry has all of ``NODE_COUNTERS`` and every link entry all of
``LINK_COUNTERS`` (0 when nothing counted), so readers need no defaults.
``snapshot()`` is the JSON document the endpoint serves (docs/RELAY.md
"Stats endpoint"); ``log_line()`` is the periodic one-line summary.

    >>> st = Stats(links=lambda: relay.links); st.add_source(relay.stats)
    >>> server = await serve(st, "127.0.0.1", 8765)        # GET /stats -> JSON
    >>> fetch_stats(("127.0.0.1", 8765))["links"]["jp"]["crc_error"]
    0
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.request
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

__all__ = ["Stats", "serve", "log_periodically", "fetch_stats", "NODE_COUNTERS", "LINK_COUNTERS", "SCHEMA"]

SCHEMA = "trilink-stats/1"
NODE_COUNTERS = ("frames_in", "frames_out", "bytes_in", "bytes_out", "crc_error", "malformed", "auth_fail",
                 "replay", "wrong_link", "unknown_type", "not_for_me", "dropped_stale", "queue_depth")
# queue_depth: frames waiting to be sent on the link (scheduler); rx_queue_depth:
# received frames the relay has not taken yet (transport).
LINK_COUNTERS = ("frames_in", "frames_out", "bytes_in", "bytes_out", "crc_error", "malformed", "oversize",
                 "auth_fail", "replay", "wrong_link", "unknown_type", "not_for_me", "dropped_stale",
                 "queue_depth", "rx_queue_depth", "reopen", "down_events", "tx_dropped", "tx_errors",
                 "rx_dropped", "up")
# Counters the link object owns: a source's value of the same name is ignored.
_TRANSPORT = ("frames_in", "frames_out", "bytes_in", "bytes_out", "crc_error", "malformed", "oversize",
              "rx_queue_depth", "reopen", "down_events", "tx_dropped", "tx_errors", "rx_dropped", "up", "kind")

log = logging.getLogger("trilink_edge.stats")


class Stats:
    """The relay's counters. Not thread-safe: use from the event loop."""

    def __init__(self, links: Optional[Callable[[], Mapping[str, Any]]] = None) -> None:
        self.started_ns = time.monotonic_ns()
        self._links: Dict[str, Any] = {}
        self._links_fn = links
        self._link_counts: Dict[str, Dict[str, int]] = {}
        self._nodes: Dict[str, Dict[str, int]] = {}
        self._sources: list = []

    def add_link(self, link: Any) -> None:
        """Register a ``links.Link``; its ``counters()`` are read at each snapshot."""
        self._links[link.name] = link

    def add_node(self, name: str) -> None:
        """Make a node appear (all zero) before anything is counted for it."""
        self._nodes.setdefault(name, {})

    def add_source(self, provider: Callable[[], Mapping[str, Any]]) -> None:
        """Merge ``provider()`` (``{"links": {..}, "nodes": {..}, other: ..}``) into every snapshot."""
        self._sources.append(provider)

    def count_link(self, link: str, key: str, n: int = 1) -> None:
        c = self._link_counts.setdefault(link, {})
        c[key] = c.get(key, 0) + n

    def gauge_link(self, link: str, key: str, value: int) -> None:
        self._link_counts.setdefault(link, {})[key] = value

    def count_node(self, node: str, key: str, n: int = 1) -> None:
        c = self._nodes.setdefault(node, {})
        c[key] = c.get(key, 0) + n

    def gauge_node(self, node: str, key: str, value: int) -> None:
        self._nodes.setdefault(node, {})[key] = value

    def _link_objects(self) -> Dict[str, Any]:
        out = dict(self._links)
        if self._links_fn is not None:
            out.update(self._links_fn() or {})
        return out

    def snapshot(self) -> Dict[str, Any]:
        """The whole document: schema, time_ns (monotonic), uptime_s, links, nodes, other sections."""
        now = time.monotonic_ns()
        links: Dict[str, Dict[str, Any]] = {}
        for name, obj in self._link_objects().items():
            links[name] = dict.fromkeys(LINK_COUNTERS, 0)
            links[name].update(obj.counters())
        nodes: Dict[str, Dict[str, Any]] = {}
        doc: Dict[str, Any] = {"schema": SCHEMA, "time_ns": now,
                               "uptime_s": round((now - self.started_ns) / 1e9, 3)}
        for fn in self._sources:
            try:
                part = fn()
            except Exception as e:  # noqa: BLE001 - one bad provider must not hide the rest
                doc.setdefault("errors", []).append(repr(e))
                continue
            for name, d in (part.get("links") or {}).items():
                entry = links.setdefault(name, dict.fromkeys(LINK_COUNTERS, 0))
                owned = name in self._link_objects()
                for k, v in d.items():
                    if not (owned and k in _TRANSPORT):
                        entry[k] = v
            for name, d in (part.get("nodes") or {}).items():
                nodes.setdefault(str(name), {}).update(d)
            for k, v in part.items():
                if k not in ("links", "nodes"):
                    doc[k] = v
        for name, d in self._link_counts.items():
            links.setdefault(name, dict.fromkeys(LINK_COUNTERS, 0)).update(d)
        for name, d in self._nodes.items():
            nodes.setdefault(name, {}).update(d)
        doc["links"] = {k: links[k] for k in sorted(links)}
        doc["nodes"] = {k: {**dict.fromkeys(NODE_COUNTERS, 0), **nodes[k]} for k in sorted(nodes)}
        return doc

    def log_line(self, snap: Optional[Mapping[str, Any]] = None) -> str:
        """``links: jp up in 120/8000B out 60/3600B crc=0 mal=0 auth=0 replay=0 stale=0 q=0 reopen=0; ...``"""
        snap = snap or self.snapshot()
        parts = []
        for name, c in snap["links"].items():
            parts.append(
                f"{name} {'up' if c.get('up') else 'DOWN'} in {c['frames_in']}/{c['bytes_in']}B "
                f"out {c['frames_out']}/{c['bytes_out']}B crc={c['crc_error']} mal={c['malformed']} "
                f"auth={c['auth_fail']} replay={c['replay']} stale={c['dropped_stale']} "
                f"q={c['queue_depth']} reopen={c['reopen']}")
        return "links: " + ("; ".join(parts) if parts else "none")


# ---------------------------------------------------------------- endpoint ----

_MAX_REQUEST = 8192
_READ_TIMEOUT_S = 2.0
MAX_CONNECTIONS = 16      # open at once; more are closed at once (file handles are the frame path's too)


class _Gate:
    """Counts the endpoint's open connections and refuses those over the cap."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.open = 0
        self.refused = 0


async def _handle(stats: Stats, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                  gate: Optional[_Gate] = None) -> None:
    if gate is not None:
        if gate.open >= gate.cap:
            gate.refused += 1
            writer.close()
            return
        gate.open += 1
    try:
        await _serve_one(stats, reader, writer)
    finally:
        if gate is not None:
            gate.open -= 1


async def _serve_one(stats: Stats, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    status, body, ctype = "400 Bad Request", b"bad request\n", "text/plain"
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _READ_TIMEOUT_S)
        line = head.split(b"\r\n", 1)[0].decode("latin-1").split()
        if len(line) == 3 and line[2].startswith("HTTP/"):
            method, target = line[0], line[1].split("?", 1)[0]
            if target != "/stats":
                status, body = "404 Not Found", b"not found: try GET /stats\n"
            elif method not in ("GET", "HEAD"):
                status, body = "405 Method Not Allowed", b"only GET\n"
            else:
                status, ctype = "200 OK", "application/json"
                body = json.dumps(stats.snapshot(), sort_keys=True).encode() + b"\n"
                if method == "HEAD":
                    body = b""
    except (asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        pass
    try:
        writer.write(f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                     f"Connection: close\r\nCache-Control: no-store\r\n\r\n".encode() + body)
        await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def serve(stats: Stats, host: str = "127.0.0.1", port: int = 8765,
                max_connections: int = MAX_CONNECTIONS) -> asyncio.AbstractServer:
    """Start the endpoint (``GET /stats`` -> the snapshot as JSON); port 0
    picks a free one (``server.sockets[0].getsockname()``). At most
    ``max_connections`` are served at once (each for at most 2 s); more are
    closed at once and counted (``stats_endpoint.refused`` in the snapshot)."""
    gate = _Gate(max_connections)
    stats.add_source(lambda: {"stats_endpoint": {"open": gate.open, "refused": gate.refused, "cap": gate.cap}})
    return await asyncio.start_server(lambda r, w: _handle(stats, r, w, gate), host, port, limit=_MAX_REQUEST)


async def log_periodically(stats: Stats, interval_s: float, logger: Optional[logging.Logger] = None) -> None:
    """Log ``stats.log_line()`` every ``interval_s`` seconds until cancelled."""
    lg = logger or log
    while True:
        await asyncio.sleep(interval_s)
        lg.info("%s", stats.log_line())


def fetch_stats(addr: Tuple[str, int], timeout: float = 2.0) -> Dict[str, Any]:
    """Read a running relay's snapshot (blocking; for the host tool and tests).

        >>> fetch_stats(("127.0.0.1", 8765))["schema"]
        'trilink-stats/1'
    """
    with urllib.request.urlopen(f"http://{addr[0]}:{addr[1]}/stats", timeout=timeout) as resp:
        return json.loads(resp.read())
