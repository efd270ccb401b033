"""The relay's counters: merged per link and per node, the log line, and the
GET /stats endpoint over a real socket."""
from __future__ import annotations

import asyncio
import json
import logging
import urllib.error
from typing import Any, Dict

import pytest

from trilink_edge.links import UdpLink
from trilink_edge.stats import LINK_COUNTERS, NODE_COUNTERS, SCHEMA, Stats, fetch_stats, log_periodically, serve
from trilink_native import binding
from textmatch import has

KEY = b"TEST-ONLY" * 3 + b"TEST-"


def test_snapshot_merges_links_sources_and_direct_counts() -> None:
    async def body() -> Dict[str, Any]:
        a, b = UdpLink("jp", ("127.0.0.1", 0)), UdpLink("kr", ("127.0.0.1", 0))
        await a.open()
        await b.open()
        a.set_peer(b.local_addr)
        f = binding.pack_frame(KEY, 1, 1, 0, binding.MSG_HEARTBEAT, 0, 1, bytes(20))
        await a.send(f)
        await b.recv(timeout=3)
        await a.send(b"\x01\x02")          # malformed at kr
        await asyncio.sleep(0.05)
        st = Stats(links=lambda: {"jp": a, "kr": b})
        # A source like Relay.stats(): its transport-named counters are ignored for owned links.
        st.add_source(lambda: {"links": {"kr": {"frames_in": 999, "queue_depth": 4, "dropped_stale": 2}},
                               "nodes": {"jp": {"replay": 3}}, "picture": {"tracks": 7}})
        st.add_source(lambda: 1 / 0)      # a broken provider does not hide the rest
        st.count_node("kr", "auth_fail", 2)
        st.count_link("jp", "wrong_link")
        snap = st.snapshot()
        await a.close()
        await b.close()
        return snap

    snap = asyncio.run(body())
    assert snap["schema"] == SCHEMA and snap["picture"] == {"tracks": 7}
    assert "ZeroDivisionError" in snap["errors"][0]
    jp, kr = snap["links"]["jp"], snap["links"]["kr"]
    assert set(LINK_COUNTERS) <= set(jp) and set(LINK_COUNTERS) <= set(kr)
    assert jp["frames_out"] == 2 and jp["up"] == 1 and jp["wrong_link"] == 1 and jp["kind"] == "udp"
    assert kr["frames_in"] == 1 and kr["malformed"] == 1 and kr["queue_depth"] == 4 and kr["dropped_stale"] == 2
    assert set(snap["nodes"]) == {"jp", "kr"}
    assert set(NODE_COUNTERS) <= set(snap["nodes"]["kr"])
    assert snap["nodes"]["jp"]["replay"] == 3 and snap["nodes"]["kr"]["auth_fail"] == 2
    assert snap["nodes"]["kr"]["replay"] == 0
    json.dumps(snap)                       # serialisable as served


def test_log_line_names_each_link_and_state() -> None:
    st = Stats()
    st.count_link("jp", "frames_in", 5)
    st.count_link("jp", "crc_error", 2)
    st.gauge_link("jp", "queue_depth", 9)
    line = st.log_line()
    assert line.startswith("links: jp DOWN in 5/0B") and has(line, "crc=2") and has(line, "q=9")
    assert Stats().log_line() == "links: none"


def test_endpoint_serves_json_and_rejects_other_requests() -> None:
    async def body() -> None:
        st = Stats()
        st.count_node("jp", "frames_in", 3)
        server = await serve(st, "127.0.0.1", 0)
        addr = server.sockets[0].getsockname()[:2]
        loop = asyncio.get_running_loop()
        doc = await loop.run_in_executor(None, fetch_stats, addr)
        assert doc["schema"] == SCHEMA and doc["nodes"]["jp"]["frames_in"] == 3
        st.count_node("jp", "frames_in")
        doc = await loop.run_in_executor(None, fetch_stats, addr)
        assert doc["nodes"]["jp"]["frames_in"] == 4              # live, not cached

        async def raw(req: bytes) -> bytes:
            r, w = await asyncio.open_connection(*addr)
            w.write(req)
            await w.drain()
            data = await r.read()
            w.close()
            return data

        assert (await raw(b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")).startswith(b"HTTP/1.1 404")
        assert (await raw(b"POST /stats HTTP/1.1\r\nHost: x\r\n\r\n")).startswith(b"HTTP/1.1 405")
        assert (await raw(b"garbage\r\n\r\n")).startswith(b"HTTP/1.1 400")
        head = await raw(b"HEAD /stats HTTP/1.0\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and head.endswith(b"\r\n\r\n")
        assert (await raw(b"X" * 20000)).startswith(b"HTTP/1.1 400")   # over the request limit
        server.close()
        await server.wait_closed()
        with pytest.raises(urllib.error.URLError):
            await loop.run_in_executor(None, fetch_stats, addr, 0.5)

    asyncio.run(body())


def test_periodic_log_line(caplog: Any) -> None:
    async def body() -> None:
        st = Stats()
        st.count_link("kr", "frames_in", 1)
        task = asyncio.ensure_future(log_periodically(st, 0.02, logging.getLogger("t.stats")))
        await asyncio.sleep(0.15)
        task.cancel()

    with caplog.at_level(logging.INFO, logger="t.stats"):
        asyncio.run(body())
    lines = [r.getMessage() for r in caplog.records if r.name == "t.stats"]
    assert len(lines) >= 3 and all(line.startswith("links: kr DOWN in 1/0B") for line in lines)
