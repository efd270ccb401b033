"""Back-to-back tests of the relay's links, written once and run against every
link kind (python-can's back2back_test.py pattern): serial over a NullModem
pty pair (real ptys, paced at a baud rate), UDP over 127.0.0.1. Plus the
serial-only vanish test: the pty behind a symlink removed and recreated."""
from __future__ import annotations

import asyncio
import os
import random
import time
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Callable, Dict, List, Tuple

import pytest

from trilink.nullmodem import NullModem
from trilink_edge import config as edge_config
from trilink_edge.links import (BACKENDS, Link, LinkClosed, Received, SerialLink, UdpLink, make_link,
                                serial_wire_size)
from trilink_native import binding

KINDS = sorted(BACKENDS)
KEY = b"TEST-ONLY" * 3 + b"TEST-"


def frame(i: int, size: int = 20, src: int = 1) -> bytes:
    payload = bytes((i * 7 + k) & 0xFF for k in range(size))
    return binding.pack_frame(KEY, 1, src, 0, binding.MSG_HEARTBEAT if size == 20 else binding.MSG_STATS,
                              i & 0xFFFF, i + 1, payload)


def on_wire(link: Link, f: bytes) -> int:
    """Bytes ``f`` really takes on ``link`` (``wire_size`` is the upper bound)."""
    n = len(binding.serial_encode(f)) if link.kind == "serial" else len(f)
    assert n <= link.wire_size(len(f))
    return n


def run(coro: Any, timeout: float = 20.0) -> Any:
    """Run a test coroutine; fail if any exception reached the loop's handler
    (an exception in a reader callback or a forgotten task)."""
    errors: List[Dict[str, Any]] = []

    async def main() -> Any:
        asyncio.get_running_loop().set_exception_handler(lambda loop, ctx: errors.append(ctx))
        return await asyncio.wait_for(coro, timeout)

    out = asyncio.run(main())
    assert not errors, errors
    return out


@asynccontextmanager
async def pair(kind: str, tmp_path: Any, baud: int = 115200) -> AsyncIterator[Tuple[Link, Link, Any]]:
    """Two open links of ``kind`` wired to each other; the third item is the
    NullModem (serial) or None."""
    if kind == "serial":
        with NullModem(baud=baud, a_link=str(tmp_path / "board"), b_link=str(tmp_path / "relay")) as nm:
            a, b = SerialLink("a", nm.a_path, baud), SerialLink("b", nm.b_path, baud)
            await a.open()
            await b.open()
            try:
                yield a, b, nm
            finally:
                await a.close()
                await b.close()
    elif kind == "udp":
        a, b = UdpLink("a", ("127.0.0.1", 0)), UdpLink("b", ("127.0.0.1", 0))
        await a.open()
        await b.open()
        a.set_peer(b.local_addr)
        b.set_peer(a.local_addr)
        try:
            yield a, b, None
        finally:
            await a.close()
            await b.close()
    else:  # pragma: no cover - a new kind must be added here
        raise AssertionError(f"no back-to-back setup for link kind {kind!r}")


@pytest.mark.parametrize("kind", KINDS)
def test_frames_cross_both_ways_intact(kind: str, tmp_path: Any) -> None:
    async def body() -> None:
        async with pair(kind, tmp_path) as (a, b, _):
            f1, f2 = frame(1), frame(2, 300, src=2)
            t0 = time.monotonic_ns()
            assert await a.send(f1)
            r = await b.recv(timeout=3)
            assert isinstance(r, Received) and r.data == f1 and r.link == "b"
            assert t0 < r.t_ns <= time.monotonic_ns()
            assert await b.send(f2)
            r2 = await a.recv(timeout=3)
            assert r2.data == f2
            if kind == "udp":
                assert r.peer == a.local_addr and r2.peer == b.local_addr
            else:
                assert r.peer == b.device
            assert a.stats.frames_out == 1 and b.stats.frames_in == 1
            assert b.stats.frames_out == 1 and a.stats.frames_in == 1
            assert a.stats.bytes_out == on_wire(a, f1) == b.stats.bytes_in
            assert b.stats.bytes_out == on_wire(b, f2) == a.stats.bytes_in
            assert a.up and b.up
    run(body())


@pytest.mark.parametrize("kind", KINDS)
def test_burst_arrives_in_order(kind: str, tmp_path: Any) -> None:
    rnd = random.Random(5)
    frames = [frame(i, rnd.choice([0, 1, 20, 226, 227, 253, 254, 600, 1024])) for i in range(120)]

    async def body() -> None:
        async with pair(kind, tmp_path, baud=2_000_000) as (a, b, _):
            for f in frames:      # no awaiting in between: one burst
                assert await a.send(f)
            got = [(await b.recv(timeout=10)).data for _ in frames]
            assert got == frames
            assert b.stats.frames_in == len(frames) and b.stats.crc_error == b.stats.malformed == 0
            assert a.stats.bytes_out == sum(on_wire(a, f) for f in frames) == b.stats.bytes_in
    run(body(), timeout=60)


@pytest.mark.parametrize("kind", KINDS)
def test_corrupt_frame_counted_next_recovered(kind: str, tmp_path: Any) -> None:
    async def body() -> None:
        async with pair(kind, tmp_path) as (a, b, _):
            good = frame(3)
            bad = bytearray(frame(4))
            bad[20] ^= 0x10                   # payload bit: the CRC no longer matches
            assert await a.send(bytes(bad))
            assert await a.send(b"\x05\x01")  # far too short to be a frame
            assert await a.send(good)
            r = await b.recv(timeout=3)
            assert r.data == good
            await asyncio.sleep(0.05)
            assert b.stats.crc_error == 1 and b.stats.malformed == 1
            assert b.stats.frames_in == 1 and b.queue_depth == 0
    run(body())


@pytest.mark.parametrize("kind", KINDS)
def test_close_and_reopen(kind: str, tmp_path: Any) -> None:
    async def body() -> None:
        async with pair(kind, tmp_path) as (a, b, _):
            assert await a.send(frame(5))
            assert (await b.recv(timeout=3)).data == frame(5)
            await b.close()
            assert not b.up
            with pytest.raises(LinkClosed):
                await b.recv(timeout=1)
            assert not await b.send(frame(6))        # closed: dropped and counted, no exception
            assert b.stats.tx_dropped == 1
            await b.open()
            assert b.up
            assert await a.send(frame(7))
            assert (await b.recv(timeout=3)).data == frame(7)
            assert await b.send(frame(8))
            assert (await a.recv(timeout=3)).data == frame(8)
    run(body())


@pytest.mark.parametrize("kind", KINDS)
def test_recv_timeout_and_handler(kind: str, tmp_path: Any) -> None:
    async def body() -> None:
        async with pair(kind, tmp_path) as (a, b, _):
            with pytest.raises(asyncio.TimeoutError):
                await b.recv(timeout=0.05)
            seen: List[Received] = []
            b.handler = seen.append               # callback mode: no queue
            assert await a.send(frame(9))
            for _ in range(300):
                if seen:
                    break
                await asyncio.sleep(0.01)
            assert [r.data for r in seen] == [frame(9)] and b.queue_depth == 0
    run(body())


@pytest.mark.parametrize("kind", KINDS)
def test_tap_sees_every_frame_in_and_out(kind: str, tmp_path: Any) -> None:
    async def body() -> None:
        async with pair(kind, tmp_path) as (a, b, _):
            taps: List[Tuple[str, str, bytes, int]] = []
            a.tap = b.tap = lambda *rec: taps.append(rec)
            await a.send(frame(10))
            await b.recv(timeout=3)
            await b.send(frame(11))
            await a.recv(timeout=3)
            assert [(t[0], t[1], t[2]) for t in taps] == [
                ("a", "tx", frame(10)), ("b", "rx", frame(10)), ("b", "tx", frame(11)), ("a", "rx", frame(11))]
            assert all(taps[i][3] <= taps[i + 1][3] for i in range(3))
    run(body())


def test_serial_vanish_reopens_within_2s_and_traffic_resumes(tmp_path: Any) -> None:
    async def body() -> None:
        async with pair("serial", tmp_path) as (a, b, nm):
            assert await a.send(frame(20))
            assert (await b.recv(timeout=3)).data == frame(20)
            nm.vanish(1.0, sides="b")               # the relay side's pty goes away for 1 s
            t_gone = time.monotonic()
            while b.up:
                assert time.monotonic() - t_gone < 2, "vanish not noticed"
                await asyncio.sleep(0.005)
            assert not await b.send(frame(21))      # down: dropped, counted, no exception
            while not nm.present("b"):
                await asyncio.sleep(0.005)
            t_back = time.monotonic()
            while not b.up:
                assert time.monotonic() - t_back < 2.0, "not reopened within 2 s of the device's return"
                await asyncio.sleep(0.005)
            assert b.stats.reopen == 1 and b.stats.down_events == 1 and b.stats.tx_dropped == 1
            # Traffic resumes both ways on the new pty behind the same path.
            for i in range(5):
                assert await a.send(frame(30 + i))
            got = [(await b.recv(timeout=3)).data for _ in range(5)]
            assert got == [frame(30 + i) for i in range(5)]
            assert await b.send(frame(40))
            assert (await a.recv(timeout=3)).data == frame(40)
    run(body())


def test_serial_absent_device_opens_later(tmp_path: Any) -> None:
    async def body() -> None:
        path = str(tmp_path / "later")
        link = SerialLink("late", path)
        await link.open()                           # absent: no exception, retries in the background
        assert not link.up
        assert not await link.send(frame(1)) and link.stats.tx_dropped == 1
        with NullModem(baud=115200) as nm:
            os.symlink(nm.b_path, path)
            t0 = time.monotonic()
            while not link.up:
                assert time.monotonic() - t0 < 2.0
                await asyncio.sleep(0.01)
            other = SerialLink("other", nm.a_path)
            await other.open()
            await other.send(frame(2))
            assert (await link.recv(timeout=3)).data == frame(2)
            await other.close()
            await link.close()
        assert link.stats.reopen == 0           # the first successful open is not a reopen
    run(body())


def test_serial_oversize_counted(tmp_path: Any) -> None:
    async def body() -> None:
        async with pair("serial", tmp_path, baud=1_000_000) as (a, b, nm):
            os.write(a._fd, b"\x01" * 1200 + b"\x00")   # 1200 bytes before a delimiter
            await a.send(frame(50))
            assert (await b.recv(timeout=3)).data == frame(50)
            assert b.stats.oversize == 1
    run(body())


def test_serial_exclusive(tmp_path: Any) -> None:
    async def body() -> None:
        async with pair("serial", tmp_path) as (a, b, nm):
            second = SerialLink("second", nm.b_path)
            await second.open()                     # held by b: not opened, retried in the background
            assert not second.up
            await second.close()
    run(body())


def test_udp_peer_learned_only_when_not_configured() -> None:
    async def body() -> None:
        learner = UdpLink("learn", ("127.0.0.1", 0))
        board = UdpLink("board", ("127.0.0.1", 0))
        await learner.open()
        await board.open()
        assert not await learner.send(frame(1)) and learner.stats.tx_dropped == 1   # no peer yet
        board.set_peer(learner.local_addr)
        await board.send(frame(2))
        r = await learner.recv(timeout=3)
        learner.learn_peer(r.peer)            # what the relay does after the frame authenticated
        assert await learner.send(frame(3))
        assert (await board.recv(timeout=3)).data == frame(3)
        fixed = UdpLink("fixed", ("127.0.0.1", 0), peer=("127.0.0.1", 9))
        fixed.learn_peer(("127.0.0.1", 1234))
        assert fixed.peer == ("127.0.0.1", 9)
        for link in (learner, board):
            await link.close()
    run(body())


def test_udp_datagram_length_must_match() -> None:
    async def body() -> None:
        a, b = UdpLink("a", ("127.0.0.1", 0)), UdpLink("b", ("127.0.0.1", 0))
        await a.open()
        await b.open()
        a.set_peer(b.local_addr)
        await a.send(frame(1) + b"\x00")          # PROTOCOL 3.2: datagram = exactly one frame
        await a.send(frame(2))
        assert (await b.recv(timeout=3)).data == frame(2)
        # PROTOCOL 3.3 checks the CRC (at the datagram's end) before the length.
        assert b.stats.crc_error + b.stats.malformed == 1 and b.stats.frames_in == 1
        await a.close()
        await b.close()
    run(body())


def test_registry_builds_each_kind_from_config() -> None:
    cfg = edge_config.loads("""
[nodes.jp]
id = 1
origin = { lat = 38.0, lon = 138.0 }
[nodes.au]
id = 3
origin = { lat = -25.0, lon = 134.0 }
[links.jp]
kind = "serial"
device = "/dev/ttyUSB7"
baud = 57600
boards = ["jp"]
[links.au]
kind = "udp"
bind = "127.0.0.1:0"
peer = "127.0.0.1:9101"
boards = ["au"]
""")
    s, u = make_link(cfg.links["jp"]), make_link(cfg.links["au"])
    assert isinstance(s, SerialLink) and (s.device, s.baud, s.name) == ("/dev/ttyUSB7", 57600, "jp")
    assert isinstance(u, UdpLink) and u.peer == ("127.0.0.1", 9101)
    assert s.wire_size(254) == serial_wire_size(254) == 257 and u.wire_size(254) == 254
    bogus = edge_config.LinkConfig(name="x", kind="can", boards=(), budget=100)
    with pytest.raises(ValueError, match="unknown kind 'can'"):
        make_link(bogus)


def test_every_link_kind_takes_the_relays_learn_peer_call() -> None:
    # The relay calls learn_peer(addr, node, accepted=...) on every link it has.
    for cls, args in ((SerialLink, ("s", "/dev/null")), (UdpLink, ("u", ("127.0.0.1", 0)))):
        link = cls(*args)
        link.learn_peer(("127.0.0.1", 9), 1, accepted=False)
        link.learn_peer(("127.0.0.1", 9), 1)
