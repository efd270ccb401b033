"""C (native/, through the binding) against the board reference
(boards/trilink_board/wire.py) and the committed vectors: the same bytes
for every vector, each decodes the other's streams, under CPython and under
the real MicroPython unix port, and both deframers reach the same verdict on
any input.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

import streams
from trilink_board import wire
from trilink_native import binding as b

VECTORS = json.loads((Path(__file__).parent / "vectors" / "wire_v1.json").read_text())
KEYS = {k["key_id"]: (k["node"], bytes.fromhex(k["key"])) for k in VECTORS["keys"]}
RELAY = 0


def c_receiver(frame: dict) -> b.Keyring:
    """The receiver of a vector frame: the relay for an uplink, else the board owning the key
    (a broadcast is sent once per board key)."""
    node = RELAY if frame["src"] != RELAY else KEYS[frame["key_id"]][0]
    ring = b.Keyring(node=node, link=(frame["src"],))
    for kid, (owner, key) in KEYS.items():
        ring.add(kid, owner, key)
    return ring


@pytest.mark.parametrize("entry", VECTORS["frames"], ids=lambda e: e["name"])
def test_c_reproduces_vector(entry):
    key = bytes.fromhex(entry["key"])
    payload = bytes.fromhex(entry["payload"])
    raw = b.pack_frame(key, entry["key_id"], entry["src"], entry["dst"], entry["type"], entry["seq"],
                       entry["counter"], payload, entry["flags"])
    assert raw.hex() == entry["raw"]
    assert b.serial_encode(raw).hex() == entry["serial"]
    f = b.parse_frame(bytes.fromhex(entry["raw"]))
    assert (f.version, f.flags, f.src, f.dst, f.mtype, f.key_id, f.seq, f.counter, f.length) == (
        entry["version"], entry["flags"], entry["src"], entry["dst"], entry["type"], entry["key_id"],
        entry["seq"], entry["counter"], entry["length"])
    assert f.payload == payload and f.tag.hex() == entry["tag"] and b.crc32(raw[:-4]) == entry["crc"]
    [g] = b.Deframer().receive(bytes.fromhex(entry["serial"]), c_receiver(entry))
    assert g.raw == raw


@pytest.mark.parametrize("entry", VECTORS["invalid"], ids=lambda e: e["name"])
def test_c_deframer_on_invalid_vector(entry):
    d = b.Deframer()
    frames = d.feed(bytes.fromhex(entry["serial"]))
    want = {"frames": 0, "oversize": 0, "malformed": 0, "crc_error": 0}
    want["frames" if entry["reason"] == "frame" else entry["reason"]] = 1
    assert d.counts == want
    assert len(frames) == want["frames"]
    if frames:  # the one that passes the deframer must fail the tag
        ring = b.Keyring(RELAY, link=(frames[0].src,))
        for kid, (owner, key) in KEYS.items():
            ring.add(kid, owner, key)
        with pytest.raises(b.WireError, match="auth_fail"):
            ring.verify(frames[0])


fields = st.tuples(st.integers(1, 255), st.integers(0, 254), st.integers(0, 255), st.integers(0, 255),
                   st.integers(0, 0xFFFF), st.integers(0, (1 << 48) - 1), st.integers(0, 15))


@settings(max_examples=200)
@given(fields, st.binary(max_size=b.MAX_PAYLOAD), st.binary(min_size=32, max_size=32))
def test_c_and_board_pack_the_same_bytes(f, payload, key):
    key_id, src, dst, mtype, seq, counter, flags = f
    raw = b.pack_frame(key, key_id, src, dst, mtype, seq, counter, payload, flags)
    assert raw == wire.pack(key, key_id, src, dst, mtype, seq, counter, payload, flags)
    assert b.serial_encode(raw, lead=True) == wire.serial_encode(raw, lead=True)
    assert b.cobs_encode(payload) == wire.cobs_encode(payload)


def _board_counts(d: wire.Deframer) -> dict:
    return {k: d.counts[k] for k in ("frames", "oversize", "malformed", "crc_error")}


@settings(max_examples=200)
@given(st.lists(st.one_of(st.binary(max_size=300), st.sampled_from([b"\x00", b"\x00\x00"]),
                          st.integers(0, 40).map(lambda i: ("frame", i))), max_size=12),
       st.integers(0, 2 ** 32))
def test_both_deframers_agree_on_any_input(parts, seed):
    """Junk, delimiters and (possibly cut) frames in any mix: the same frames and counters."""
    rng = random.Random(seed)
    key = streams.KEYS[1][1]
    data = bytearray()
    for part in parts:
        if isinstance(part, tuple):
            raw = wire.pack(key, 1, 1, 0, 0x10, part[1], part[1] + 1, bytes(rng.randrange(256) for _ in range(part[1] * 7)))
            enc = wire.serial_encode(raw)
            data += enc[:rng.randrange(1, len(enc) + 1)] if rng.random() < 0.3 else enc
        else:
            data += part
    data = bytes(data)
    c, p = b.Deframer(), wire.Deframer()
    cut = rng.randrange(len(data) + 1)
    c_frames = c.feed_raw(data[:cut]) + c.feed_raw(data[cut:])
    p_frames = [f.raw for f in p.feed(data)]
    assert c_frames == p_frames
    assert c.counts == _board_counts(p)


@pytest.mark.parametrize("kind", ["bitflip", "junk", "truncate", "oversize", "midframe"])
def test_both_deframers_agree_on_damaged_streams(kind):
    case = streams.build_stream(2000, kind, seed=5)
    c, p = b.Deframer(), wire.Deframer()
    assert c.feed_raw(case.stream) == [f.raw for f in p.feed(case.stream)]
    assert c.counts == _board_counts(p)


def _frames(rng: random.Random, count: int):
    """(key_id, src, dst, type, seq, counter, payload, flags) uplink frames from nodes 1 and 2."""
    out = []
    for i in range(count):
        src = rng.choice((1, 2))
        n = rng.choice((0, 32, 200, rng.randrange(1025)))
        payload = bytes(rng.choice((0, 0xFF, rng.randrange(256))) for _ in range(n))
        out.append((src, src, RELAY, rng.choice(b.MSG_TYPES), i & 0xFFFF, streams.EPOCH1 + i, payload,
                    rng.randrange(16)))
    return out


def test_c_receives_a_board_made_stream_and_the_board_receives_a_c_made_one():
    made = _frames(random.Random(3), 500)
    board_stream = b"".join(wire.serial_encode(wire.pack(streams.KEYS[f[0]][1], *f), lead=True) for f in made)
    c_ring = b.Keyring(RELAY, link=(1, 2))
    p_ring = wire.Keyring(RELAY, link=(1, 2))
    for kid, (node, key) in streams.KEYS.items():
        c_ring.add(kid, node, key)
        p_ring.add(kid, node, key)
    got = b.Deframer().receive(board_stream, c_ring)
    assert [(g.key_id, g.src, g.dst, g.mtype, g.seq, g.counter, g.payload, g.flags) for g in got] == [
        tuple(f) for f in made]
    c_stream = b"".join(b.serial_encode(b.pack_frame(streams.KEYS[f[0]][1], *f)) for f in made)
    p_got = [p_ring.verify(f) for f in wire.Deframer().feed(c_stream)]
    assert [(g.key_id, g.src, g.dst, g.mtype, g.seq, g.counter, g.payload, g.flags) for g in p_got] == [
        tuple(f) for f in made]
    assert c_ring.marks == p_ring.marks and c_ring.counts["accepted"] == p_ring.counts["accepted"] == 500


# stdin: hex serial stream in lines; prints accepted frames then the counters.
MPY_RECEIVE = r"""
import sys
from binascii import hexlify, unhexlify
from trilink_board import wire
ring = wire.Keyring(0, link=(1, 2))
ring.add(1, 1, b"TEST-ONLY-KEY-jp-000000000000001")
ring.add(2, 2, b"TEST-ONLY-KEY-kr-000000000000002")
d = wire.Deframer()
for line in sys.stdin:
    for f in d.feed(unhexlify(line.strip())):
        try:
            ring.verify(f)
        except wire.WireError:
            continue
        print(hexlify(f.raw).decode())
c = d.counts
r = ring.counts
print("counts", c["frames"], c["malformed"], c["crc_error"], c["oversize"], r["auth_fail"], r["replay"])
"""

# stdin: lines "src key_id dst type seq counter flags payload_hex"; prints serial hex.
MPY_MAKE = r"""
import sys
from binascii import hexlify, unhexlify
from trilink_board import wire
keys = {1: b"TEST-ONLY-KEY-jp-000000000000001", 2: b"TEST-ONLY-KEY-kr-000000000000002"}
for line in sys.stdin:
    p = line.split()
    n = [int(v) for v in p[:7]]
    payload = unhexlify(p[7]) if len(p) > 7 else b""
    print(hexlify(wire.serial_encode(wire.pack(keys[n[0]], n[1], n[0], n[2], n[3], n[4], n[5], payload, n[6]))).decode())
"""


def test_c_and_micropython_decode_each_other(micropython):
    assert streams.KEYS[1][1] == b"TEST-ONLY-KEY-jp-000000000000001"
    assert streams.KEYS[2][1] == b"TEST-ONLY-KEY-kr-000000000000002"
    made = _frames(random.Random(9), 120)
    # C makes a stream (plus a replay, a forged frame and junk); MicroPython receives it.
    raws = [b.pack_frame(streams.KEYS[f[0]][1], *f) for f in made]
    forged = streams.recrc(raws[5][:-12] + bytes(8) + raws[5][-4:])  # tag zeroed, CRC fixed
    stream = b"".join(b.serial_encode(r) for r in raws) + b.serial_encode(raws[0]) + b.serial_encode(forged) \
        + b"\x03\x01\x00"
    lines = [stream[i:i + 301].hex() for i in range(0, len(stream), 301)]
    out = micropython.run(MPY_RECEIVE, input=("\n".join(lines) + "\n").encode()).split()
    assert out[:-7] == [r.hex() for r in raws]
    assert out[-7:] == ["counts", str(len(raws) + 2), "1", "0", "0", "1", "1"]
    # MicroPython makes the frames; C receives them.
    text = "".join("%d %d %d %d %d %d %d %s\n" % (f[1], f[0], f[2], f[3], f[4], f[5], f[7], f[6].hex())
                   for f in made)
    serials = micropython.run(MPY_MAKE, input=text.encode()).split()
    ring = b.Keyring(RELAY, link=(1, 2))
    ring.add(1, 1, streams.KEYS[1][1])
    ring.add(2, 2, streams.KEYS[2][1])
    got = b.Deframer().receive(bytes.fromhex("".join(serials)), ring)
    assert [g.raw for g in got] == raws
