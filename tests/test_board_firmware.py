"""The board firmware as a node on a link, under CPython and the real MicroPython.

A test endpoint written here with trilink_board.wire/messages/codec plays
the relay over a real pty pair (os.openpty, raw) and over real UDP on
127.0.0.1: it answers HELLO (with a min_epoch that moves the board's
counter epoch) and TIME_SYNC, decodes the authenticated TRACK_REPORT
frames, asks for keyframes, sends a PICTURE whose fused update carries
report ids the board sent, and a WARNING twice (the second a
retransmission). The board runs the default scenario for 60 s of scenario
time at --speed 15 (about 4 s of wall time); under MicroPython with
``-X heapsize=192K`` its peak heap is printed.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import tty
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest

from board_endpoint import (KEYS, MIN_EPOCH_BUMP, NATION, NODE, RELAY_EPOCH, Endpoint, TestRelay,  # noqa: F401
                            board_command, now_us, write_keys)
from conftest import BOARDS, HEAPSIZE

sys.path.insert(0, str(BOARDS))
from trilink_board import codec, config, messages, wire  # noqa: E402
from trilink_board.sim import Simulation  # noqa: E402
from textmatch import has  # noqa: E402

START = 30.0
DURATION = 60.0
SPEED = 15.0
RID_SHIFT = 20         # report_id = (counter epoch mod 1024) << 20 | n (PROTOCOL.md 5.5)
RID_N = (1 << RID_SHIFT) - 1


class Run:
    def __init__(self, relay: TestRelay, stdout: str, stderr: str, code: int, summary: dict, state: Path):
        self.relay = relay
        self.stdout = stdout
        self.stderr = stderr
        self.code = code
        self.summary = summary
        self.state = state


def run_board(tmp_path: Path, runtime: str, kind: str, extra: Optional[List[str]] = None,
              timeout: float = 60.0, heapsize: str = HEAPSIZE, source: bool = False,
              min_epoch_bump: int = MIN_EPOCH_BUMP) -> Run:
    ep = Endpoint(kind)
    relay = TestRelay(ep, min_epoch_bump)
    keys = write_keys(tmp_path / "keys.json")
    state = tmp_path / ("board-%s-%s.state" % (runtime, kind))
    args = ["--nation", NATION, "--link", ep.spec, "--keys", str(keys), "--state", str(state),
            "--start", str(START), "--duration", str(DURATION), "--speed", str(SPEED), "--stats", "2"]
    cmd, env = board_command(runtime, args + (extra or []), heapsize, source)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=str(tmp_path))
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            for f, t in ep.read():
                relay.handle(f, t)
        for f, t in ep.read():
            relay.handle(f, t)
    finally:
        if proc.poll() is None:
            proc.kill()
        out, err = proc.communicate(timeout=10)
        ep.close()
    stdout = out.decode(errors="replace")
    stderr = err.decode(errors="replace")
    lines = [ln for ln in stdout.splitlines() if ln.startswith(NATION + ": summary ")]
    assert lines, "no summary line\nstdout:\n%s\nstderr:\n%s" % (stdout[-3000:], stderr[-3000:])
    summary = json.loads(lines[-1].split(" summary ", 1)[1])
    return Run(relay, stdout, stderr, proc.returncode, summary, state)


def expected_reports() -> Dict[int, codec.Rec]:
    """n -> codes of every track update the simulation makes in the window (CPython, in process),
    n being the update's number since boot: the board's report_id is its epoch's block | n."""
    scen = config.load_scenario("default")
    nat = config.load_nation(NATION)
    sim = Simulation(scen, nat)
    prec = codec.Precision()
    while sim.step(START):
        pass
    out: Dict[int, codec.Rec] = {}
    while sim.step(START + DURATION):
        for tr in sim.tracker.updated[:sim.n_updated]:
            u = codec.Update(tr.tid, 0, list(tr.x), tr.P, 0, 1 << (NODE - 1), tr.report_id)
            out[tr.report_id] = codec.quantise(u, prec)
    return out


EXPECTED: Dict[int, codec.Rec] = {}
RUNS: Dict[Tuple[str, str], Run] = {}


def get_run(tmp_path_factory: pytest.TempPathFactory, runtime: str, kind: str) -> Run:
    key = (runtime, kind)
    if key not in RUNS:
        extra = None
        if kind == "udp":
            # Pin the scenario clock to the relay's timebase 1.5 s from now (waits for time sync).
            extra = ["--epoch", str(now_us() + 1500000)]
        RUNS[key] = run_board(tmp_path_factory.mktemp("board-%s-%s" % key), runtime, kind, extra)
    return RUNS[key]


CASES = [("cpython", "pty"), ("micropython", "pty"), ("cpython", "udp"), ("micropython", "udp")]


@pytest.fixture(scope="module")
def expected() -> Dict[int, codec.Rec]:
    if not EXPECTED:
        EXPECTED.update(expected_reports())
    return EXPECTED


@pytest.mark.micropython
@pytest.mark.parametrize("runtime,kind", CASES)
def test_board_session(tmp_path_factory: pytest.TempPathFactory, runtime: str, kind: str,
                       expected: Dict[int, codec.Rec], capsys: pytest.CaptureFixture) -> None:
    run = get_run(tmp_path_factory, runtime, kind)
    r = run.relay
    s = run.summary
    assert run.code == 0, run.stderr
    assert "MemoryError" not in run.stderr and "Traceback" not in run.stderr, run.stderr
    assert s["scenario_t"] >= START + DURATION - 1.0
    # HELLO first; every frame authenticated; the min_epoch jump moved the counters and the state file.
    assert r.frames[0].mtype == wire.HELLO
    assert not r.rejected, r.rejected
    assert r.board_epoch is not None
    jumped = r.board_epoch + MIN_EPOCH_BUMP
    assert s["epoch"] == jumped
    assert r.frames[-1].counter >> 28 == jumped
    assert json.loads(run.state.read_text())["epoch"] == jumped
    counters = [f.counter for f in r.frames]
    assert counters == sorted(counters) and len(set(counters)) == len(counters)
    # Heartbeats about every second of wall time; time sync answered and used.
    wall = DURATION / SPEED
    assert len(r.of_type(wire.HEARTBEAT)) >= int(wall) - 1
    assert r.sync_answers >= 8 and s["sync"]["synced"]
    assert s["counts"]["sync_samples"] >= 8
    # Reports: every record decodes, report ids are the simulation's, state codes equal its quantisation.
    assert len(r.records) >= 40
    assert all(st == codec.OK for _, st, _ in r.records)
    assert all(fl & wire.RELAY_TIME for fl in r.report_flags[1:])
    for _, _, rec in r.records:
        want = expected[rec.report_id & RID_N]
        assert (rec.tid, rec.pq, rec.vq) == (want.tid, want.pq, want.vq)
        if rec.sent & codec.SEND_COV:
            assert (rec.sig, rec.cor) == (want.sig, want.cor)
    ids = [rec.report_id for _, _, rec in r.records]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    # Report ids are numbered in the counter epoch's block: the boot's, then the relay's min_epoch.
    assert {i >> RID_SHIFT for i in ids} <= {r.board_epoch, jumped}
    assert ids[-1] >> RID_SHIFT == jumped
    ns = [i & RID_N for i in ids]
    assert set(ns) == {n for n in expected if n >= ns[0]}, "a track update was not reported"
    # The KEYFRAME_REQ (every track) made the next record of each track a keyframe.
    at = r.keyframe_req_at
    assert at is not None
    tids_after = {}
    for rtype, _, rec in r.records[at:]:
        tids_after.setdefault(rec.tid, rtype)
    assert s["counts"]["keyframe_reqs_rx"] == 1
    assert any(rt == codec.KEY for rt in tids_after.values())
    assert s["counts"]["deltas"] > 0 and s["counts"]["keyframes"] > 0
    # PICTURE -> one DELIVERY naming exactly the report ids the fused update carried.
    deliveries = [messages.decode(wire.DELIVERY, f.payload) for f in r.of_type(wire.DELIVERY)]
    assert len(deliveries) == 1
    d = deliveries[0]
    assert d["track_id"] == 500
    assert d["reports"] == r.picture_sources
    assert d["rx_relay_us"] > 0 and d["rx_local_us"] > 0
    # WARNING twice (one retransmission): acknowledged per copy, shown once; the old frame is a replay.
    acks = [messages.decode(wire.WARNING_ACK, f.payload)["warning_id"] for f in r.of_type(wire.WARNING_ACK)]
    assert acks == [76, 77, 77, 79, 80, 78]
    lines = run.stdout.splitlines()
    shown = [ln for ln in lines if ": WARNING 77 " in ln]
    assert len(shown) == 1, run.stdout
    assert "ACTIVE" in shown[0] and " EEZ " in shown[0] and has(shown[0], "40.500N") and has(shown[0], "141.200E")
    launch = [ln for ln in lines if ": WARNING 76 " in ln]
    assert len(launch) == 1 and " LAUNCH launch " in launch[0] and has(launch[0], "39.170N"), run.stdout
    assert any(": WARNING 79 " in ln and "UPDATED" in ln and " TERRITORY " in ln for ln in lines), run.stdout
    assert any(": WARNING 80 " in ln and " OVERFLIGHT " in ln and "nation 2" in ln for ln in lines), run.stdout
    # the cancel (its own id, the same track and nation) clears the impact warning; the
    # overflight of nation 2 stays up; the launch alert was never held
    assert any(": WARNING 78 " in ln and "OBSOLETE" in ln for ln in lines), run.stdout
    assert s["active_warnings"] == 1
    assert s["counts"]["warnings"] == 5 and s["counts"]["warning_copies"] == 6
    assert s["counts"]["replay"] == 1
    stats = r.of_type(wire.STATS)
    assert stats and dict(messages.decode(wire.STATS, stats[-1].payload)["counters"])[9] <= 1
    if runtime == "micropython":
        assert s["peak_live_heap"] > 0
        with capsys.disabled():
            print("\n  board %s over %s under micropython -X heapsize=%s: peak live heap %d bytes, "
                  "peak allocated %d bytes, %d reports, %d frames in, max scan lag %.1f ms"
                  % (NATION, kind, HEAPSIZE, s["peak_live_heap"], s["peak_alloc_heap"],
                     s["counts"]["reports"], s["counts"]["frames_in"], s["max_lag_us"] / 1000.0))


@pytest.mark.micropython
def test_same_report_stream_cpython_and_micropython(tmp_path_factory: pytest.TempPathFactory) -> None:
    a = get_run(tmp_path_factory, "cpython", "pty").relay.records
    b = get_run(tmp_path_factory, "micropython", "pty").relay.records
    ka = {rec.report_id: (rec.tid, rec.pq, rec.vq) for _, _, rec in a}
    kb = {rec.report_id: (rec.tid, rec.pq, rec.vq) for _, _, rec in b}
    common = set(ka) & set(kb)
    assert len(common) >= 40
    assert all(ka[k] == kb[k] for k in common)


@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
def test_time_sync_finds_the_simulated_offset(tmp_path_factory: pytest.TempPathFactory, runtime: str) -> None:
    """The board's clock is the monotonic clock bent by the nation's offset and drift (its boot
    line says how); the synced offset agrees with that truth within half the round-trip delay
    of the sample it came from (the NTP bound)."""
    run = get_run(tmp_path_factory, runtime, "pty")
    boot = [ln for ln in run.stdout.splitlines() if ": boot " in ln][0].split()
    f = dict(zip(boot[2::2], boot[3::2]))
    mono0, off, ppb = int(f["mono_us"]), int(f["offset_us"]), int(f["drift_ppb"])
    nat = config.load_nation(NATION)
    assert off == int(nat["clock"]["offset_s"] * 1e6) and ppb == int(nat["clock"]["drift_ppm"] * 1e3)
    s = run.summary["sync"]
    el = s["base_local_us"] - mono0 - off          # elapsed board time at the sample, ~ mono elapsed
    truth = -off - el * ppb // 1_000_000_000        # relay (monotonic) - board at that instant
    assert abs(s["offset_us"] - truth) <= s["delay_us"] // 2 + 200, (s, truth)


@pytest.mark.micropython
def test_board_runs_from_source_under_micropython(tmp_path: Path, expected: Dict[int, codec.Rec]) -> None:
    """boards/main.py straight from source (compiling on the board needs a bigger heap than
    the precompiled tree's 192K: 512K here)."""
    run = run_board(tmp_path, "micropython", "udp", heapsize="512K", source=True)
    assert run.code == 0, run.stderr
    assert len(run.relay.records) >= 40
    assert all(expected[rec.report_id & RID_N].pq == rec.pq for _, _, rec in run.relay.records)


@pytest.mark.micropython
@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
def test_restarted_board_sends_higher_report_ids(tmp_path: Path, runtime: str) -> None:
    """Report ids restart their count at each boot but not their value: they are numbered in the
    block of the counter epoch the state file gives the boot, so (node, report_id) stays unique
    across a reboot. The relay here asks for no epoch jump: only the boot moves the epoch."""
    short = ["--duration", "15"]
    runs = [run_board(tmp_path, runtime, "udp", short, min_epoch_bump=0) for _ in range(2)]
    for run in runs:
        assert run.code == 0, run.stderr
        assert len(run.relay.records) >= 5, run.stdout
        ids = [rec.report_id for _, _, rec in run.relay.records]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        assert {i >> RID_SHIFT for i in ids} == {run.relay.board_epoch}
    first, second = ([rec.report_id for _, _, rec in run.relay.records] for run in runs)
    assert runs[1].relay.board_epoch == runs[0].relay.board_epoch + 1
    assert min(second) > max(first)
    # The same simulation: the second boot numbers the same updates with the same n.
    assert [i & RID_N for i in second] == [i & RID_N for i in first]


@pytest.mark.micropython
@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
def test_bad_config_is_one_line_and_nonzero(tmp_path: Path, runtime: str) -> None:
    """Unknown nation, malformed key file, unreachable link, bad state file, bad usage."""
    keys = write_keys(tmp_path / "keys.json")
    bad_keys = tmp_path / "bad.json"
    bad_keys.write_text('{"format": "trilink-keys/1", "relay": 0, "keys": [{"key_id": 2, "node": 2}]}')
    bad_state = tmp_path / "bad.state"
    bad_state.write_text("not json")
    udp = "udp:127.0.0.1:0:127.0.0.1:9"
    cases = [
        (["--nation", "xx", "--link", udp, "--keys", str(keys)], 1, "nations/xx.json: unknown nation"),
        (["--nation", "kr", "--link", udp, "--keys", str(bad_keys)], 1, str(bad_keys) + ": keys[0]: key must be 64 hex digits"),
        (["--nation", "kr", "--link", udp, "--keys", str(tmp_path / "none.json")], 1, "none.json"),
        (["--nation", "kr", "--link", "tty:" + str(tmp_path / "ttyX"), "--keys", str(keys),
          "--state", str(tmp_path / "s")], 1, "ttyX: cannot open"),
        (["--nation", "kr", "--link", "serial:x", "--keys", str(keys), "--state", str(tmp_path / "s")],
         1, "link serial:x: want"),
        (["--nation", "kr", "--link", udp, "--keys", str(keys), "--state", str(bad_state)], 1,
         str(bad_state) + ": invalid JSON"),
        (["--nation", "kr", "--link", udp, "--keys", str(keys), "--speed", "fast"], 2, "--speed"),
        (["--nation", "kr", "--keys", str(keys)], 2, "--link is required"),
    ]
    for args, code, text in cases:
        cmd, env = board_command(runtime, args, heapsize="512K")
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60, cwd=str(tmp_path))
        first = p.stderr.splitlines()[0] if p.stderr else ""
        assert p.returncode == code, (args, p.stdout, p.stderr)
        assert first.startswith("error: ") and text in first, (args, p.stderr)
        assert "Traceback" not in p.stderr + p.stdout


def test_report_ids_near_the_block_end_take_the_next_epoch(tmp_path: Path) -> None:
    """A boot that numbers about 2^20 reports moves to the next counter epoch (stored) before
    any id could reach the block the next boot will use; ids keep rising through the move."""
    from trilink_board.epoch import EpochCounter
    from trilink_board.firmware import Node
    from trilink_board.keys import KeyEntry
    from trilink_board.link import open_link
    nat = config.load_nation(NATION)
    sim = Simulation(config.load_scenario("default"), nat)
    state = tmp_path / "kr.state"
    link = open_link("udp:127.0.0.1:0:127.0.0.1:9")
    try:
        node = Node(nat, sim, KeyEntry(NODE, NODE, NATION, KEYS[NODE][1]), 0, link, EpochCounter(str(state)),
                    start=START)
        e = node.ctr.epoch
        trk = sim.tracker
        assert e == 1 and trk.next_report >> RID_SHIFT == e
        # Leave room for fewer reports than the next scans make.
        node._seed_reports(RID_N - len(trk.tracks) - 3)
        ids: List[int] = []
        while sim.step(START + DURATION):
            ids += [tr.report_id for tr in trk.updated[:sim.n_updated]]
            node._report_ids_left()
    finally:
        link.close()
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    old = [i for i in ids if i >> RID_SHIFT == e]
    new = [i for i in ids if i >> RID_SHIFT == e + 1]
    assert old and new and len(old) + len(new) == len(ids)
    assert max(old) < (e + 1) << RID_SHIFT and new[0] == ((e + 1) << RID_SHIFT | 1)
    assert node.ctr.epoch == e + 1 and json.loads(state.read_text())["epoch"] == e + 1


def test_heartbeat_counts_every_rejection_and_rx_frames_only_accepted_types(tmp_path: Path) -> None:
    """PROTOCOL.md 4.2 at the board, over a real pty: rx_errors holds the deframer's
    rejections (oversize, COBS, CRC) and the session's (replay, unknown type);
    rx_frames only the frames accepted (an unknown type is not)."""
    from trilink_board import keys as board_keys
    from trilink_board.epoch import EpochCounter
    from trilink_board.firmware import Node
    from trilink_board.link import open_link
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    os.set_blocking(master, False)
    try:
        nation = config.load_nation(NATION)
        entry = board_keys.loads(write_keys(tmp_path / "keys.json").read_text()).entry(NODE)
        node = Node(nation, Simulation(config.load_scenario("default"), nation), entry, 0,
                    open_link("tty:" + os.ttyname(slave)), EpochCounter(str(tmp_path / "b.state")),
                    out=lambda *a: None)
        key = KEYS[NODE][1]
        ok = wire.pack(key, NODE, 0, NODE, wire.HEARTBEAT, 0, RELAY_EPOCH << 28, bytes(20))
        unknown = wire.pack(key, NODE, 0, NODE, 0x7E, 1, (RELAY_EPOCH << 28) + 1, b"")
        damaged = bytearray(wire.pack(key, NODE, 0, NODE, wire.HEARTBEAT, 2, (RELAY_EPOCH << 28) + 2, bytes(20)))
        damaged[20] ^= 0xFF                                  # the CRC no longer matches
        stream = (wire.serial_encode(ok) + wire.serial_encode(unknown) + wire.serial_encode(bytes(damaged))
                  + b"\x05\x01\x00"                          # a COBS code past the chunk's end
                  + b"\x07" * 1100 + b"\x00"                 # more than 1057 bytes before a 0x00
                  + wire.serial_encode(ok))                  # the first frame again: a replay
        os.write(master, stream)
        end = time.monotonic() + 5.0
        while time.monotonic() < end and node.counts["replay"] == 0:
            node._receive(50)
        node._heartbeat(node.clock.local_us())
        time.sleep(0.1)
        sent = wire.Deframer().feed(os.read(master, 4096))
        hb = messages.decode(wire.HEARTBEAT, bytes(sent[-1].payload))
    finally:
        os.close(master)
        os.close(slave)
    assert node.deframer.counts["crc_error"] == 1 and node.deframer.counts["malformed"] == 1
    assert node.deframer.counts["oversize"] == 1
    assert node.counts["replay"] == 1 and node.counts["unknown_type"] == 1
    assert hb["rx_frames"] == node.counts["frames_in"] == 1     # the unknown type is not accepted
    assert hb["rx_errors"] == 5


def test_refused_challenge_is_answered_once_a_second_with_min_epoch_and_nothing_stored(tmp_path: Path) -> None:
    """PROTOCOL.md 2.2, a relay that lost its state: a board answers an authentic
    relay challenge below its mark of the relay's counter with a HELLO carrying
    the nonce and min_epoch = that mark's epoch + 1, at most once a second, and
    stores nothing (so replayed challenges cannot wear its flash)."""
    from trilink_board import keys as board_keys
    from trilink_board.epoch import EpochCounter
    from trilink_board.firmware import Node
    from trilink_board.link import open_link
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    os.set_blocking(master, False)
    state = tmp_path / "b.state"
    try:
        nation = config.load_nation(NATION)
        entry = board_keys.loads(write_keys(tmp_path / "keys.json").read_text()).entry(NODE)
        node = Node(nation, Simulation(config.load_scenario("default"), nation), entry, 0,
                    open_link("tty:" + os.ttyname(slave)), EpochCounter(str(state)), out=lambda *a: None)
        key = KEYS[NODE][1]
        stored = state.read_bytes()

        def challenge(counter: int, nonce: int) -> bytes:
            return wire.pack(key, NODE, 0, NODE, wire.HELLO, 0, counter, messages.encode(wire.HELLO, {
                "role": 1, "proto": 1, "max_payload": 1024, "epoch": 1, "min_epoch": 0, "name": "relay",
                "nonce": nonce}))
        # The board has taken relay epoch 7; then challenges of epoch 1 (a relay that lost its state).
        os.write(master, wire.serial_encode(wire.pack(key, NODE, 0, NODE, wire.HEARTBEAT, 0, 7 << 28, bytes(20))))
        os.write(master, b"".join(wire.serial_encode(challenge((1 << 28) + i, 1000 + i)) for i in range(5)))
        end = time.monotonic() + 5.0
        while time.monotonic() < end and node.counts["replay"] < 5:
            node._receive(50)
        time.sleep(0.1)
        sent = wire.Deframer().feed(os.read(master, 4096))
    finally:
        os.close(master)
        os.close(slave)
    hellos = [messages.decode(wire.HELLO, bytes(f.payload)) for f in sent if f.mtype == wire.HELLO]
    assert node.counts["replay"] == 5
    assert len(hellos) == 1                                  # five in well under a second: one answer
    assert hellos[0]["nonce"] == 1000 and hellos[0]["min_epoch"] == 8
    assert state.read_bytes() == stored and node.ctr.epoch == hellos[0]["epoch"]   # nothing stored
