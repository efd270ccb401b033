"""The relay under faults of its own machinery (docs/RELIABILITY.md): a state file that
cannot be written, a capture disk that is full. Real UDP links on 127.0.0.1
and a board stand-in; each fault is counted, logged once, the other parts
of the relay go on, and stop() returns within 1 s."""
from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import time

from edge_boards import JP_ORIGIN, TEST_KEYS, BoardStandIn, UdpBoard
from trilink_board import wire
from trilink_edge import config as edge_config
from trilink_edge.relay import Relay


def _port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _config(tmp_path, relay_port, board_port, recorder=None, extra_relay=None):
    relay = {"node": 0, "state_file": str(tmp_path / "state" / "relay.json"), "stats": "off",
             "stats_frames_s": 0, "allow_test_keys": True}
    relay.update(extra_relay or {})
    doc = {"relay": relay,
           "nodes": {"jp": {"id": 1, "key_id": 1, "nation": "jp",
                            "origin": {"lat": JP_ORIGIN[0], "lon": JP_ORIGIN[1], "alt_m": 0.0}}},
           "links": {"jp": {"kind": "udp", "bind": f"127.0.0.1:{relay_port}", "peer": f"127.0.0.1:{board_port}",
                            "boards": ["jp"]}}}
    if recorder:
        doc["recorder"] = recorder
    (tmp_path / "state").mkdir(exist_ok=True)
    return edge_config.from_dict(doc, "test.toml", str(tmp_path))


def Board(port: int, relay_port: int) -> UdpBoard:
    """Board jp on a real UDP socket: counts the relay's heartbeats, answers its challenge."""
    return UdpBoard(BoardStandIn(1, "jp", 1, TEST_KEYS[1], JP_ORIGIN), port, relay_port, ack_warnings=False)


async def _start(cfg, board: UdpBoard, seconds: float):
    """A relay running on ``cfg`` (and its task), ``board`` having said HELLO and
    been polled for ``seconds`` (time to answer the relay's challenge)."""
    relay = Relay(cfg, keys=TEST_KEYS)
    task = asyncio.ensure_future(relay.run())
    await asyncio.sleep(0.1)
    board.send(board.sb.hello())
    await _run_for(board, seconds)
    return relay, task


async def _run_for(board: UdpBoard, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        await asyncio.sleep(0.02)
        board.poll()


def test_state_write_failure_leaves_periodic_work_running_and_stop_within_1s(tmp_path, caplog):
    relay_port, board_port = _port(), _port()
    cfg = _config(tmp_path, relay_port, board_port)
    board = Board(board_port, relay_port)

    async def main():
        relay, task = await _start(cfg, board, 1.3)
        assert board.heartbeats >= 1
        shutil.rmtree(tmp_path / "state")               # the state folder vanishes: every write fails
        before = board.heartbeats
        board.sb.epoch += 1                             # the board reboots: its new epoch needs a write
        board.sb.index = 0
        for _ in range(5):
            board.send(board.sb.hello())
            await _run_for(board, 0.5)
        after = board.heartbeats - before
        t0 = time.monotonic()
        await asyncio.wait_for(relay.stop(), 2.0)
        stop_s = time.monotonic() - t0
        await asyncio.wait_for(task, 1.0)
        return relay, after, stop_s

    with caplog.at_level(logging.ERROR):
        relay, after, stop_s = asyncio.run(main())
    board.close()
    assert after >= 2, "the relay's heartbeats stopped when the state file could not be written"
    assert stop_s < 1.0
    node = relay.stats()["nodes"]["jp"]
    assert node["state_error"] >= 1 and node["verified"] == 1
    # logged once per outage, not once per try
    lines = [r for r in caplog.records if "cannot write" in r.getMessage()]
    assert len(lines) == 1


def test_failing_part_is_retried_with_backoff_and_never_stops_the_others(tmp_path):
    relay_port, board_port = _port(), _port()
    cfg = _config(tmp_path, relay_port, board_port)
    board = Board(board_port, relay_port)
    calls = []

    async def main():
        relay = Relay(cfg, keys=TEST_KEYS)

        def broken(now):
            calls.append(now)
            raise RuntimeError("warning desk bug")
        relay.pipeline.desk.tick = broken
        task = asyncio.ensure_future(relay.run())
        await _run_for(board, 3.0)
        await asyncio.wait_for(relay.stop(), 1.0)
        await asyncio.wait_for(task, 1.0)
        return relay

    relay = asyncio.run(main())
    board.close()
    assert board.heartbeats >= 2                       # heartbeats went on beside the broken part
    n = relay.stats()["part_errors"]["warnings"]
    assert n == len(calls) >= 3
    assert n <= 8                                      # backoff 0.1, 0.2, 0.4, ... not every 0.1-s tick (30)
    gaps = [b - a for a, b in zip(calls, calls[1:])]
    assert all(g2 >= g1 for g1, g2 in zip(gaps, gaps[1:]))  # doubling


def test_full_capture_disk_is_logged_and_stop_within_1s(tmp_path, caplog):
    relay_port, board_port = _port(), _port()
    # /dev/full: every write fails with ENOSPC, like a full disk.
    cfg = _config(tmp_path, relay_port, board_port, recorder={"path": "/dev/full"})
    board = Board(board_port, relay_port)

    async def main():
        relay, task = await _start(cfg, board, 1.5)
        t0 = time.monotonic()
        await asyncio.wait_for(relay.stop(), 2.0)
        stop_s = time.monotonic() - t0
        await asyncio.wait_for(task, 1.0)
        return relay, stop_s

    with caplog.at_level(logging.ERROR):
        relay, stop_s = asyncio.run(main())
    board.close()
    assert stop_s < 1.0
    assert relay.recorder.error and "No space" in relay.recorder.error
    assert relay.recorder.dropped >= 1
    lines = [r for r in caplog.records if "capture stopped" in r.getMessage()]
    assert len(lines) == 1


def test_two_boards_behind_one_learned_udp_link_get_only_their_own_frames(tmp_path):
    from edge_boards import KR_ORIGIN
    relay_port = _port()
    doc = {"relay": {"node": 0, "state_file": str(tmp_path / "state.json"), "stats": "off", "stats_frames_s": 0,
                     "allow_test_keys": True},
           "nodes": {"jp": {"id": 1, "key_id": 1, "nation": "jp",
                            "origin": {"lat": JP_ORIGIN[0], "lon": JP_ORIGIN[1], "alt_m": 0.0}},
                     "kr": {"id": 2, "key_id": 2, "nation": "kr",
                            "origin": {"lat": KR_ORIGIN[0], "lon": KR_ORIGIN[1], "alt_m": 0.0}}},
           # one UDP link, no configured peer: both boards' addresses are learned
           "links": {"shared": {"kind": "udp", "bind": f"127.0.0.1:{relay_port}", "boards": ["jp", "kr"]}},
           "release": {}}
    cfg = edge_config.from_dict(doc, "test.toml", str(tmp_path))
    boards = {n: Board(_port(), relay_port) for n in (1, 2)}
    boards[2].sb = BoardStandIn(2, "kr", 2, TEST_KEYS[2], KR_ORIGIN)
    got = {1: [], 2: []}
    attacker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    attacker.bind(("127.0.0.1", 0))
    attacker.setblocking(False)

    def poll(n):
        b = boards[n]
        while True:
            try:
                data, _ = b.sock.recvfrom(4096)
            except BlockingIOError:
                return
            got[n].append(data[3])                      # the frame's dst
            if data[3] == n:
                f = b.sb.receive(data)
                answer = b.sb.answer(f)
                if answer is not None:
                    b.send(answer)

    async def main():
        relay = Relay(cfg, keys=TEST_KEYS)
        task = asyncio.ensure_future(relay.run())
        await asyncio.sleep(0.1)
        captured = []
        for n, b in boards.items():
            b.send(b.sb.hello())
        end = time.monotonic() + 3.0
        while time.monotonic() < end:
            await asyncio.sleep(0.05)
            for n, b in boards.items():
                raw = b.sb.heartbeat()
                captured.append(raw)
                b.send(raw)
                poll(n)
        # Replays of jp's frames from another address: refused, and jp's address stays.
        for raw in captured[-20:]:
            attacker.sendto(raw, ("127.0.0.1", relay_port))
        await asyncio.sleep(1.5)
        for n in boards:
            poll(n)
        stats = relay.stats()
        await asyncio.wait_for(relay.stop(), 1.0)
        await asyncio.wait_for(task, 1.0)
        return stats

    stats = asyncio.run(main())
    leaked = []
    while True:
        try:
            leaked.append(attacker.recvfrom(4096)[0])
        except BlockingIOError:
            break
    attacker.close()
    for b in boards.values():
        b.close()
    assert len(got[1]) >= 5 and len(got[2]) >= 5
    assert set(got[1]) == {1} and set(got[2]) == {2}     # never the other board's frames
    assert leaked == []                                  # nothing went to the replaying address
    assert stats["nodes"]["jp"]["replay"] + stats["nodes"]["kr"]["replay"] >= 20


def test_refused_frames_cannot_rotate_accepted_history_away(tmp_path):
    from trilink_edge.recorder import capture_files, iter_capture
    relay_port, board_port = _port(), _port()
    cap = tmp_path / "cap" / "relay.pcapng"
    cfg = _config(tmp_path, relay_port, board_port,
                  recorder={"path": str(cap), "rotate_bytes": 1 << 20, "max_files": 2})
    board = Board(board_port, relay_port)
    forger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    from trilink_native import binding

    async def main():
        relay = Relay(cfg, keys=TEST_KEYS)
        relay.recorder._refused_bytes = 64 << 10           # a small refused capture: 2 x 64 KiB
        task = asyncio.ensure_future(relay.run())
        await asyncio.sleep(0.1)
        board.send(board.sb.hello())
        await _run_for(board, 1.0)
        for _ in range(3):
            board.send(board.sb.heartbeat())
        await _run_for(board, 0.3)
        # 3 MB of CRC-valid frames with a bad tag: three times the whole main rotation
        for i in range(3000):
            forger.sendto(binding.pack_frame(bytes(range(32)), 1, 1, 0, wire.HEARTBEAT, i, 1 << 40, bytes(1000)),
                          ("127.0.0.1", relay_port))
            if i % 100 == 0:
                await asyncio.sleep(0.01)
        await _run_for(board, 0.5)
        await asyncio.wait_for(relay.stop(), 1.0)
        await asyncio.wait_for(task, 1.0)
        return relay

    relay = asyncio.run(main())
    board.close()
    forger.close()
    rx = [r for p in capture_files(str(cap)) for r in iter_capture(p) if r.direction == "rx"]
    assert rx and all(r.data[5] == 1 and len(r.data) < 100 for r in rx)   # the board's own frames, all kept
    assert relay.recorder.rotations == 0
    refused = capture_files(str(cap) + ".refused")
    assert refused and sum(os.path.getsize(p) for p in refused) <= 2 * (64 << 10) + 2048
    assert sum(1 for p in refused for _ in iter_capture(p)) >= 50
    # both captures hold every nation's tracks: 0600, like the state file
    assert {os.stat(p).st_mode & 0o777 for p in capture_files(str(cap)) + refused} == {0o600}
    assert os.stat(tmp_path / "state" / "relay.json").st_mode & 0o777 == 0o600


def test_bad_payloads_of_authentic_frames_are_the_nodes_malformed(tmp_path):
    relay_port, board_port = _port(), _port()
    cfg = _config(tmp_path, relay_port, board_port)
    board = Board(board_port, relay_port)

    async def main():
        relay, task = await _start(cfg, board, 1.2)
        board.send(board.sb._pack(wire.WARNING_ACK, b"\x01\x02\x03"))          # 3 bytes, want 4
        board.send(board.sb._pack(wire.TRACK_REPORT, b"\x01\x00\x01\x01\x00\x00"))   # codec version 1
        board.send(board.sb._pack(wire.KEYFRAME_REQ, b"\x02\x00"))             # count overruns
        await _run_for(board, 0.4)
        st = relay.stats()
        await asyncio.wait_for(relay.stop(), 1.0)
        await asyncio.wait_for(task, 1.0)
        return st

    st = asyncio.run(main())
    board.close()
    assert st["nodes"]["jp"]["malformed"] == 3
    assert st["links"]["jp"]["malformed"] == 3      # the link counts what came in on it


def test_a_stall_is_logged(tmp_path, caplog):
    relay_port, board_port = _port(), _port()
    cfg = _config(tmp_path, relay_port, board_port)

    async def main():
        relay = Relay(cfg, keys=TEST_KEYS)
        task = asyncio.ensure_future(relay.run())
        await asyncio.sleep(0.3)
        time.sleep(2.5)                     # the loop makes no turn, as under SIGSTOP
        await asyncio.sleep(0.3)
        await asyncio.wait_for(relay.stop(), 1.0)
        await asyncio.wait_for(task, 1.0)
        return relay

    with caplog.at_level(logging.WARNING, logger="trilink_edge.relay"):
        relay = asyncio.run(main())
    assert relay.stats()["stalls"] >= 1
    assert len([r for r in caplog.records if "stalled" in r.getMessage()]) == relay.stats()["stalls"]
