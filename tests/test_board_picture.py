"""The board's picture: a bounded table of preallocated rows (codec.Table).

* ``Table.decode`` is the decoder of ``codec.decode``: on every vector payload the
  rows it decodes are the records the dict decoder gives, and its held rows the dict;
* the bound: a full table keeps the tracks whose impact is predicted soonest, lets a
  stale track go first, refuses the rest without displacing anything, and
  ``wanted`` says which deltas without base are worth a keyframe;
* the real MicroPython board at ``-X heapsize=192K`` (the precompiled tree) sent a
  picture of 40 tracks (more than its 12 rows), keyframes then delta rounds, over
  real UDP: it survives, keeps decoding to the end, holds the 12 soonest impacts, asks
  no keyframe for a track it would refuse, and reports its peak heap.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

import pytest

from conftest import BOARDS, HEAPSIZE
from board_endpoint import NATION, NODE, Endpoint, TestRelay, board_command, now_us, write_keys
from test_codec_vectors import VECS

sys.path.insert(0, str(BOARDS))
from trilink_board import codec, codec_host, messages, wire  # noqa: E402

PREC = codec.Precision()
BOARD_ROWS = 12          # codec.Table()'s default, the board's (boot.py)
N_TRACKS = 40
PER_FRAME = 8            # the relay's default records per PICTURE


def _P() -> List[float]:
    P = [0.0] * 36
    for i in range(6):
        P[7 * i] = 400.0 if i < 3 else 9.0
    return P


def _update(tid: int, t_us: int, impact_s: float = None, sources=()) -> codec.Update:
    x = [1000.0 * tid, -500.0 * tid, 80000.0, 1500.0, 900.0, -200.0]
    imp = None if impact_s is None else (5000.0 * tid, 3000.0, t_us + int(impact_s * 1e6), 9000.0, 3000.0, 30.0)
    return codec.Update(tid, t_us, x, _P(), 0, 3, 0, sources, imp)


def _same(a: codec.Rec, b: codec.Rec) -> bool:
    return (a == b and a.sources == b.sources and a.sent == b.sent)


def test_table_decodes_every_vector_like_the_dict_decoder():
    n_rows = 0
    for vec in VECS:
        t = codec.Table(64, 32)
        held: dict = {}
        for b in vec["batches"]:
            p = bytes.fromhex(b["payload"])
            ref = codec.decode(p, held)
            n = t.decode(p)
            assert n == len(ref.items)
            for i, (rtype, status, r) in enumerate(ref.items):
                row = t.size + i
                assert (t.b[8 * row + 4], t.b[8 * row + 5]) == (rtype, status)
                assert _same(codec_host.rec(t, row), r), (vec["name"], i)
                n_rows += 1
            assert sorted(t.index) == sorted(held)
            for tid, r in held.items():
                got = codec_host.rec(t, t.index[tid])
                assert got == r and got.sent == r.sent
    assert n_rows >= 140


def test_table_errors_leave_the_held_rows_unchanged():
    held: dict = {}
    t = codec.Table(8, 8)
    p1 = codec.encode(codec.PICTURE, PREC, [(codec.KEY, codec.quantise(_update(k, 10**6), PREC), 0)
                                            for k in (1, 2)], held=held)
    t.decode(p1)
    before = [codec_host.rec(t, t.index[k]) for k in (1, 2)]
    p2 = codec.encode(codec.PICTURE, PREC, [(codec.DELTA, codec.quantise(_update(k, 2 * 10**6), PREC), 0)
                                            for k in (1, 2)], held=dict(held))
    for bad, reason in ((p2[:-1], "truncated"), (p2 + b"\x00", "malformed")):
        with pytest.raises(codec.CodecError) as e:
            t.decode(bad)
        assert e.value.reason == reason
        assert [codec_host.rec(t, t.index[k]) for k in (1, 2)] == before
    # more records than the scratch rows: refused whole, with its own reason
    big = codec.encode(codec.PICTURE, PREC, [(codec.KEY, codec.quantise(_update(k, 10**6), PREC), 0)
                                             for k in range(10, 19)])
    with pytest.raises(codec.CodecError) as e:
        t.decode(big)
    assert e.value.reason == "no_space"
    assert len(t.index) == 2


def test_full_table_keeps_the_soonest_impacts_and_lets_stale_tracks_go():
    t = codec.Table(4, 8)
    held: dict = {}
    # six tracks; track k's impact is predicted 1000 - 100 k s ahead, track 6 has none
    items = [(codec.KEY, codec.quantise(_update(k, 10**6, None if k == 6 else 1000.0 - 100 * k), PREC), 0)
             for k in range(1, 7)]
    t.decode(codec.encode(codec.PICTURE, PREC, items, held=held))
    assert sorted(t.index) == [2, 3, 4, 5]       # 1 (latest impact) displaced by 5; 6 (none) refused
    assert (t.refused, t.evicted) == (1, 1)
    # deltas for all six: the refused ones are NO_BASE, and not wanted (they would be refused again)
    t_us = 2 * 10**6
    d = [(codec.DELTA, codec.quantise(_update(k, t_us, None if k == 6 else 1000.0 - 100 * k), PREC), 0)
         for k in range(1, 7)]
    n = t.decode(codec.encode(codec.PICTURE, PREC, d, held=held))
    st = {t.w[3 * r]: t.b[8 * r + 5] for r in range(t.size, t.size + n)}
    assert st == {1: codec.NO_BASE, 2: codec.OK, 3: codec.OK, 4: codec.OK, 5: codec.OK, 6: codec.NO_BASE}
    assert [t.wanted(r) for r in range(t.size, t.size + n)] == [False, True, True, True, True, False]
    # a delta that carries an impact sooner than the latest held one is wanted: a keyframe would be kept
    d1 = [(codec.DELTA, codec.quantise(_update(1, 3 * 10**6, 50.0), PREC), codec.SEND_IMPACT)]
    n = t.decode(codec.encode(codec.PICTURE, PREC, d1, held=held))
    assert t.b[8 * t.size + 5] == codec.NO_BASE and t.wanted(t.size)
    # 16 s without an update: the held tracks are stale against a newcomer, which takes one's row
    t.decode(codec.encode(codec.PICTURE, PREC, [(codec.KEY, codec.quantise(_update(9, 19 * 10**6), PREC), 0)],
                          held=held))
    assert 9 in t.index and len(t.index) == 4
    # a DROP frees its row; clear() forgets all
    t.decode(codec.encode(codec.PICTURE, PREC, [(codec.DROP, codec.quantise(_update(9, 20 * 10**6), PREC), 0)],
                          held=held))
    assert 9 not in t.index and len(t.index) == 3
    t.clear()
    assert len(t.index) == 0 and not t.index


class PictureRelay(TestRelay):
    """Plays the relay and, once the board is synced, floods it with a picture of N_TRACKS
    tracks: keyframes, then a delta round (with source reports) after every 2nd report."""

    __test__ = False

    def __init__(self, endpoint: Endpoint) -> None:
        TestRelay.__init__(self, endpoint, 0)
        self.mirror: Dict[int, codec.Rec] = {}     # what the relay believes the board holds
        self.rounds = 0
        self.rid = 0
        self.round_sources: List[set] = []         # (node, rid) pairs sent per delta round
        self.impact_s = {k: 300.0 + 20.0 * ((k * 7) % N_TRACKS) for k in range(1, N_TRACKS + 1)}

    def _script(self) -> None:
        n = len(self.records)
        if n < 3 or n % 2:
            return
        t_us = now_us()
        kind = codec.KEY if self.rounds == 0 else codec.DELTA
        srcs = set()
        tids = list(range(1, N_TRACKS + 1))
        for i in range(0, len(tids), PER_FRAME):
            items = []
            for k in tids[i:i + PER_FRAME]:
                self.rid += 1
                u = _update(k, t_us, self.impact_s[k] - self.rounds, [(7, self.rid)])
                items.append((kind, codec.quantise(u, PREC), 0))
                srcs.add((7, self.rid))
            self.send(wire.PICTURE, codec.encode(codec.PICTURE, PREC, items, held=self.mirror), wire.RELAY_TIME)
        self.round_sources.append(srcs)
        self.rounds += 1


@pytest.mark.micropython
def test_micropython_board_survives_a_picture_larger_than_its_table(tmp_path: Path, capsys) -> None:
    ep = Endpoint("udp")
    relay = PictureRelay(ep)
    keys = write_keys(tmp_path / "keys.json")
    args = ["--nation", NATION, "--link", ep.spec, "--keys", str(keys), "--state", str(tmp_path / "s.state"),
            "--start", "30", "--duration", "75", "--speed", "15", "--stats", "0",
            "--epoch", str(now_us() + 1500000)]
    cmd, env = board_command("micropython", args, HEAPSIZE)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=str(tmp_path))
    deadline = time.monotonic() + 90
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
    stdout, stderr = out.decode(errors="replace"), err.decode(errors="replace")
    assert proc.returncode == 0, stderr[-3000:]
    assert "MemoryError" not in stderr and "Traceback" not in stderr, stderr[-3000:]
    line = [ln for ln in stdout.splitlines() if ln.startswith(NATION + ": summary ")][-1]
    s = json.loads(line.split(" summary ", 1)[1])
    c = s["counts"]
    assert relay.rounds >= 8, relay.rounds
    # every frame decoded (none malformed; the last round may come after the window), the table full
    frames = N_TRACKS // PER_FRAME
    assert c["malformed"] == 0 and (relay.rounds - 1) * frames <= c["pictures"] <= relay.rounds * frames
    assert s["picture_tracks"] == BOARD_ROWS
    assert s["picture_refused"] + s["picture_evicted"] == N_TRACKS - BOARD_ROWS
    # it holds the 12 soonest impacts: the deliveries of every delta round name exactly their reports
    soonest = sorted(relay.impact_s, key=lambda k: relay.impact_s[k])[:BOARD_ROWS]
    delivered = {}
    for f in relay.of_type(wire.DELIVERY):
        d = messages.decode(wire.DELIVERY, f.payload)
        for pair in d["reports"]:
            delivered[tuple(pair)] = d["track_id"]
    assert {delivered[p] for p in relay.round_sources[0]} == set(range(1, N_TRACKS + 1))
    for srcs in relay.round_sources[1:-1]:
        assert {delivered[p] for p in srcs if p in delivered} == set(soonest)
    # deltas of refused tracks are not asked for again (each would be refused again)
    assert (N_TRACKS - BOARD_ROWS) * (relay.rounds - 2) <= c["no_base"] <= (N_TRACKS - BOARD_ROWS) * (relay.rounds - 1)
    assert c["keyframe_reqs_sent"] == 0 and not relay.of_type(wire.KEYFRAME_REQ)
    # below the 192 KB heap (the 160 KB target is not met: see boards/README.md)
    assert 0 < s["peak_live_heap"] <= 184 * 1024, s["peak_live_heap"]
    with capsys.disabled():
        print("\n  board %s, picture of %d tracks in %d rows, %d rounds: peak live heap %d bytes, "
              "peak allocated %d bytes (micropython -X heapsize=%s)"
              % (NATION, N_TRACKS, BOARD_ROWS, relay.rounds, s["peak_live_heap"], s["peak_alloc_heap"], HEAPSIZE))
