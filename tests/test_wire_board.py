"""The board's pure-Python wire (boards/trilink_board/wire.py, hmac256, messages,
keys) under CPython: committed vectors, resync with exact counters,
authentication failures, and hypothesis properties."""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import random
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import streams
from conftest import REPO
from trilink_board import keys, messages, wire
from trilink_board.hmac256 import Hmac256, hmac_sha256

VECTORS = json.loads((REPO / "tests" / "vectors" / "wire_v1.json").read_text())
KEYS = {k["key_id"]: (k["node"], bytes.fromhex(k["key"])) for k in VECTORS["keys"]}
MESSAGE_TYPES = (wire.HELLO, wire.HEARTBEAT, wire.TIME_SYNC_REQ, wire.TIME_SYNC_RESP, wire.KEYFRAME_REQ,
                 wire.WARNING, wire.WARNING_ACK, wire.STATS, wire.DELIVERY)
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def receiver_for(entry):
    """The keyring that must accept a vector frame: the relay for uplinks, the board for downlinks."""
    node = entry["dst"] if entry["src"] == 0 else 0
    if node == wire.BROADCAST:
        node = KEYS[entry["key_id"]][0]
    ring = wire.Keyring(node, (1, 2) if node == 0 else (0,))
    for kid, (owner, key) in KEYS.items():
        ring.add(kid, owner, key)
    return ring


def as_lists(msg):
    return {k: [list(x) for x in v] if k in ("counters", "reports") else v for k, v in msg.items()}


# ------------------------------------------------------------- vectors ----

def test_vectors_cover_the_issue():
    frames = VECTORS["frames"]
    assert len(frames) >= 20
    assert {f["type"] for f in frames} >= set(wire.TYPES)
    assert {f["flags"] for f in frames} == set(range(16))
    lengths = {f["length"] for f in frames}
    assert 0 in lengths and wire.MAX_PAYLOAD in lengths
    payloads = [bytes.fromhex(f["payload"]) for f in frames]
    assert bytes(1024) in payloads and b"\xff" * 1024 in payloads
    assert all(k["test_only"] and bytes.fromhex(k["key"]).startswith(b"TEST-ONLY") for k in VECTORS["keys"])


@pytest.mark.parametrize("entry", VECTORS["frames"], ids=lambda e: e["name"])
def test_vector_frame(entry):
    key = bytes.fromhex(entry["key"])
    payload = bytes.fromhex(entry["payload"])
    raw = wire.pack(key, entry["key_id"], entry["src"], entry["dst"], entry["type"], entry["seq"],
                    entry["counter"], payload, entry["flags"])
    assert raw.hex() == entry["raw"]
    assert wire.serial_encode(raw).hex() == entry["serial"]
    f = wire.parse(raw)
    got = {"version": f.version, "flags": f.flags, "src": f.src, "dst": f.dst, "type": f.mtype,
           "key_id": f.key_id, "seq": f.seq, "counter": f.counter, "length": f.length,
           "payload": f.payload.hex(), "tag": f.tag.hex()}
    assert got == {k: entry[k] for k in got}
    d = wire.Deframer()
    assert d.feed(bytes.fromhex(entry["serial"])) == [f]
    assert receiver_for(entry).verify(f) is f
    if "message" in entry:
        assert messages.encode(entry["type"], entry["message"]) == payload
        assert as_lists(messages.decode(entry["type"], payload)) == entry["message"]


@pytest.mark.parametrize("entry", VECTORS["invalid"], ids=lambda e: e["name"])
def test_vector_invalid_chunk(entry):
    d = wire.Deframer()
    out = d.feed(bytes.fromhex(entry["serial"]))
    if entry["reason"] == "frame":  # passes the deframer, the tag must then fail
        ring = receiver_for({"src": 1, "dst": 0, "key_id": 1})
        with pytest.raises(wire.WireError) as exc:
            ring.verify(out[0])
        assert exc.value.reason == "auth_fail"
    else:
        assert list(out) == []
        assert d.counts == {"frames": 0, "oversize": 0, "malformed": 0, "crc_error": 0, entry["reason"]: 1}


def test_vector_file_is_regenerated_exactly(tmp_path):
    out = tmp_path / "wire_v1.json"
    subprocess.run([sys.executable, str(REPO / "tools" / "make_wire_vectors.py"), "--out", str(out)],
                   check=True, capture_output=True)
    assert out.read_bytes() == (REPO / "tests" / "vectors" / "wire_v1.json").read_bytes()


# ---------------------------------------------------------------- COBS ----

def test_cobs_examples():
    assert wire.cobs_encode(b"") == b"\x01"
    assert wire.cobs_encode(b"\x00") == b"\x01\x01"
    assert wire.cobs_encode(b"\x11" * 254) == b"\xff" + b"\x11" * 254  # no trailing 0x01
    assert wire.cobs_encode(b"\x11" * 254 + b"\x00") == b"\xff" + b"\x11" * 254 + b"\x01\x01"
    assert wire.cobs_encode(b"\x11" * 255) == b"\xff" + b"\x11" * 254 + b"\x02\x11"
    assert wire.cobs_decode(b"\xff" + b"\x11" * 254 + b"\x01") == b"\x11" * 254  # non-canonical, accepted
    with pytest.raises(wire.WireError, match="malformed"):
        wire.cobs_decode(b"\x03\x11")


@SETTINGS
@given(st.binary(max_size=1200))
def test_cobs_roundtrip_and_overhead(data):
    enc = wire.cobs_encode(data)
    assert b"\x00" not in enc
    assert enc == streams.cobs(data)  # independent encoder
    assert len(enc) <= len(data) + len(data) // 254 + 1
    assert wire.cobs_decode(enc) == data


# -------------------------------------------------------------- frames ----

frame_fields = st.fixed_dictionaries({
    "key_id": st.integers(1, 255), "src": st.integers(0, 254), "dst": st.integers(0, 255),
    "mtype": st.integers(0, 255), "seq": st.integers(0, 0xFFFF), "counter": st.integers(0, wire.MAX_COUNTER),
    "payload": st.binary(max_size=wire.MAX_PAYLOAD), "flags": st.integers(0, 15)})


@SETTINGS
@given(frame_fields, st.binary(min_size=32, max_size=32))
def test_frame_roundtrip(fields, key):
    raw = wire.pack(key, **fields)
    assert raw == streams.make_frame(key, fields["key_id"], fields["src"], fields["dst"], fields["mtype"],
                                     fields["seq"], fields["counter"], fields["payload"], fields["flags"])
    for f in (wire.parse(raw), wire.Deframer().feed(wire.serial_encode(raw, lead=True))[0]):
        assert {"key_id": f.key_id, "src": f.src, "dst": f.dst, "mtype": f.mtype, "seq": f.seq,
                "counter": f.counter, "payload": f.payload, "flags": f.flags} == fields
        assert f.raw == raw and len(raw) == wire.OVERHEAD + len(fields["payload"])


def test_feed_from_a_reused_buffer():
    raws = [wire.pack(KEYS[1][1], 1, 1, 0, wire.HEARTBEAT, i, i, bytes(i * 37 % 300)) for i in range(40)]
    stream = b"".join(wire.serial_encode(r) for r in raws)
    d = wire.Deframer()
    buf = bytearray(b"\xee" * 700)  # stale bytes past n must be ignored
    got = []
    i = 0
    for size in [1, 5, 16, 17, 300, 700] * 100:
        piece = stream[i:i + size]
        buf[:len(piece)] = piece
        got += d.feed(buf, len(piece))
        i += size
    assert [f.raw for f in got] == raws
    assert d.counts == {"frames": 40, "oversize": 0, "malformed": 0, "crc_error": 0}
    assert d.feed(b"\x05\x05") == () and d.feed(memoryview(b"\x05\x00")) == ()


def test_pack_rejects_bad_fields():
    key = KEYS[1][1]
    for bad in ({"flags": 0x10}, {"key_id": 0}, {"src": 255}, {"seq": 1 << 16}, {"counter": 1 << 48},
                {"payload": bytes(1025)}):
        args = {"key_id": 1, "src": 1, "dst": 0, "mtype": 2, "seq": 0, "counter": 0, "payload": b"", "flags": 0}
        args.update(bad)
        with pytest.raises(ValueError):
            wire.pack(key, **args)


@SETTINGS
@given(st.binary(max_size=1500))
def test_arbitrary_bytes_raise_only_wire_error(data):
    for fn in (wire.parse, wire.cobs_decode):
        try:
            fn(data)
        except wire.WireError as e:
            assert e.reason in ("malformed", "crc_error")
    for mtype in MESSAGE_TYPES + (wire.TRACK_REPORT, 0x77):
        try:
            messages.decode(mtype, data)
        except wire.WireError as e:
            assert e.reason in ("malformed", "unknown_type")
    d = wire.Deframer()
    ring = receiver_for({"src": 1, "dst": 0, "key_id": 1})
    for f in d.feed(data + b"\x00" + data):
        try:
            ring.verify(f)
        except wire.WireError as e:
            assert e.reason in ("auth_fail", "wrong_link", "replay")


@SETTINGS
@given(st.lists(st.integers(0, 40), max_size=40), st.randoms(use_true_random=False))
def test_mutated_frames_never_pass_the_tag(flips, rnd):
    key = KEYS[1][1]
    raw = bytearray(wire.pack(key, 1, 1, 0, wire.HEARTBEAT, 5, 77, bytes(range(20))))
    for pos in flips:
        raw[pos] ^= 1 << rnd.randrange(8)
    ring = receiver_for({"src": 1, "dst": 0, "key_id": 1})
    try:
        f = wire.parse(streams.recrc(bytes(raw)))  # fix the CRC: only the tag can catch it now
        ring.verify(f)
    except wire.WireError:
        return
    assert bytes(raw) == wire.pack(key, 1, 1, 0, wire.HEARTBEAT, 5, 77, bytes(range(20)))  # flips cancelled


# -------------------------------------------------------------- resync ----

@pytest.mark.parametrize("kind", streams.INJECTIONS)
def test_stream_resync_10000_frames(kind):
    case = streams.build_stream(10_000, kind, seed=1)
    d = wire.Deframer()
    ring = wire.Keyring(case.node, case.link)
    for kid, node, key in case.keys:
        ring.add(kid, node, key)
    rng = random.Random(kind)
    deframed, accepted = [], []
    i = 0
    while i < len(case.stream):  # pieces of 1..1500 bytes: chunks straddle feed() calls
        n = rng.choice((1, 2, 7, rng.randrange(1, 1500)))
        for f in d.feed(case.stream[i:i + n]):
            deframed.append(f.raw)
            try:
                accepted.append(ring.verify(f).raw)
            except wire.WireError:
                pass
        i += n
    counts = {name: d.counts.get(name, ring.counts.get(name)) for name in streams.COUNTERS}
    assert counts == case.counts
    assert deframed == case.deframed
    assert accepted == case.accepted  # every intact frame, in order, nothing else
    assert d.counts["frames"] == len(case.deframed)


# ------------------------------------------------------- authentication ----

def test_keyring_rejects_and_counts():
    ring = receiver_for({"src": 1, "dst": 0, "key_id": 1})
    jp, kr = KEYS[1][1], KEYS[2][1]

    def verify(raw):
        try:
            ring.verify(wire.parse(raw))
            return "accepted"
        except wire.WireError as e:
            return e.reason

    assert verify(wire.pack(jp, 1, 1, 0, wire.HEARTBEAT, 0, 10, bytes(20))) == "accepted"
    assert ring.marks == {1: 10}
    assert verify(wire.pack(jp, 1, 1, 0, wire.HEARTBEAT, 1, 10, bytes(20))) == "replay"  # equal counter
    assert verify(wire.pack(jp, 1, 1, 0, wire.HEARTBEAT, 1, 9, bytes(20))) == "replay"  # older counter
    forged = bytearray(wire.pack(jp, 1, 1, 0, wire.HEARTBEAT, 2, 11, bytes(20)))
    forged[20] ^= 0x40
    assert verify(streams.recrc(bytes(forged))) == "auth_fail"  # bad tag
    assert verify(wire.pack(b"TEST-ONLY-WRONG-KEY-000000000000", 1, 1, 0, wire.HEARTBEAT, 3, 12, b"")) == "auth_fail"
    assert verify(wire.pack(kr, 2, 1, 0, wire.HEARTBEAT, 4, 13, b"")) == "auth_fail"  # key of another node
    assert verify(wire.pack(jp, 9, 1, 0, wire.HEARTBEAT, 5, 14, b"")) == "auth_fail"  # unknown key id
    assert verify(wire.pack(jp, 1, 3, 0, wire.HEARTBEAT, 6, 15, b"")) == "wrong_link"  # node 3 not on link
    assert ring.marks == {1: 10}  # rejected frames never move the mark
    assert verify(wire.pack(jp, 1, 1, 0, wire.HEARTBEAT, 7, 11, b"")) == "accepted"  # the next real frame
    assert ring.counts == {"accepted": 2, "wrong_link": 1, "auth_fail": 4, "replay": 2}


def test_board_keyring_binding():
    jp = KEYS[1][1]
    board = receiver_for({"src": 0, "dst": 1, "key_id": 1})  # board 1, link = relay
    assert board.verify(wire.parse(wire.pack(jp, 1, 0, 1, wire.WARNING_ACK, 0, 1, bytes(4))))
    assert board.verify(wire.parse(wire.pack(jp, 1, 0, 0xFF, wire.WARNING_ACK, 0, 2, bytes(4))))
    for raw, reason in ((wire.pack(jp, 1, 0, 2, wire.WARNING_ACK, 0, 3, bytes(4)), "auth_fail"),  # for node 2
                        (wire.pack(KEYS[2][1], 2, 0, 0xFF, wire.WARNING_ACK, 0, 4, bytes(4)), "auth_fail"),
                        (wire.pack(jp, 1, 2, 1, wire.WARNING_ACK, 0, 5, bytes(4)), "wrong_link")):
        with pytest.raises(wire.WireError) as exc:
            board.verify(wire.parse(raw))
        assert exc.value.reason == reason


@SETTINGS
@given(st.binary(max_size=200), st.binary(max_size=300))
def test_hmac_matches_cpython(key, msg):
    assert hmac_sha256(key, msg) == hmac.new(key, msg, hashlib.sha256).digest()
    mac = Hmac256(key)
    cut = len(msg) // 3
    assert mac.digest(msg[:cut], memoryview(msg)[cut:]) == hmac.new(key, msg, hashlib.sha256).digest()


# ------------------------------------------------------------ messages ----

u8, u16, u32, u64 = (st.integers(0, (1 << b) - 1) for b in (8, 16, 32, 64))
MESSAGES = {
    wire.HELLO: st.fixed_dictionaries({"role": st.integers(0, 1), "proto": u8, "max_payload": st.integers(0, 1024),
                                       "epoch": u32, "min_epoch": u32,
                                       "name": st.text(max_size=16).map(lambda s: s.encode()[:16].decode("utf-8", "ignore"))}),
    wire.HEARTBEAT: st.fixed_dictionaries({"time_us": u64, "tx_frames": u32, "rx_frames": u32, "rx_errors": u32}),
    wire.TIME_SYNC_REQ: st.fixed_dictionaries({"req_id": u16, "t1_us": u64}),
    wire.TIME_SYNC_RESP: st.fixed_dictionaries({"req_id": u16, "t1_us": u64, "t2_us": u64, "t3_us": u64}),
    wire.KEYFRAME_REQ: st.fixed_dictionaries({"track_ids": st.lists(u32, max_size=255)}),
    wire.WARNING: st.fixed_dictionaries({
        "warning_id": u32, "track_id": u32, "status": st.integers(0, 2), "nation": u8, "impact_us": u64,
        "lat_e7": st.integers(-900000000, 900000000), "lon_e7": st.integers(-1800000000, 1800000000),
        "semi_major_m": u32, "semi_minor_m": u32, "orient_cdeg": st.integers(0, 35999),
        "kind": st.integers(0, 3), "class_guess": st.integers(0, 4), "azimuth_cdeg": st.integers(0, 35999),
        "sigma_t_ds": u16}),
    wire.WARNING_ACK: st.fixed_dictionaries({"warning_id": u32}),
    wire.STATS: st.fixed_dictionaries({"counters": st.lists(st.tuples(u8, u32), max_size=204)}),
    wire.DELIVERY: st.fixed_dictionaries({"rx_local_us": u64, "rx_relay_us": u64, "track_id": u32,
                                          "reports": st.lists(st.tuples(u8, u32), max_size=200)}),
}


@pytest.mark.parametrize("mtype", MESSAGE_TYPES)
def test_message_roundtrip(mtype):
    @settings(max_examples=60, deadline=None)
    @given(MESSAGES[mtype])
    def check(msg):
        payload = messages.encode(mtype, msg)
        assert len(payload) <= wire.MAX_PAYLOAD
        assert messages.decode(mtype, payload) == msg
        # One byte more or less is malformed, never a different message.
        for bad in (payload[:-1], payload + b"\x00"):
            with pytest.raises(wire.WireError):
                messages.decode(mtype, bad)

    check()


@pytest.mark.parametrize("mtype,field,value", [
    (wire.HELLO, "role", 2), (wire.HELLO, "max_payload", 1025), (wire.HELLO, "name", "x" * 17),
    (wire.WARNING, "status", 3), (wire.WARNING, "orient_cdeg", 36000), (wire.WARNING, "lat_e7", 900000001),
    (wire.WARNING, "lon_e7", -1800000001), (wire.WARNING, "kind", 4), (wire.WARNING, "class_guess", 5),
    (wire.WARNING, "azimuth_cdeg", 36000), (wire.WARNING_ACK, "warning_id", 1 << 32),
    (wire.STATS, "counters", [(1, 2)] * 205), (wire.KEYFRAME_REQ, "track_ids", [-1])])
def test_message_out_of_range_is_malformed(mtype, field, value):
    msg = {
        wire.HELLO: {"role": 0, "proto": 1, "max_payload": 1024, "epoch": 1, "min_epoch": 0, "name": "jp"},
        wire.WARNING: {"warning_id": 1, "track_id": 1, "status": 0, "nation": 1, "impact_us": 1, "lat_e7": 0,
                       "lon_e7": 0, "semi_major_m": 1, "semi_minor_m": 1, "orient_cdeg": 0, "kind": 0,
                       "class_guess": 0, "azimuth_cdeg": 0, "sigma_t_ds": 0},
        wire.WARNING_ACK: {"warning_id": 1}, wire.STATS: {"counters": []}, wire.KEYFRAME_REQ: {"track_ids": []},
    }[mtype]
    good = messages.encode(mtype, msg)
    msg[field] = value
    with pytest.raises(wire.WireError) as exc:
        messages.encode(mtype, msg)
    assert exc.value.reason == "malformed"
    if mtype == wire.WARNING and field != "lon_e7":  # the same value on the wire is rejected by decode too
        offset = {"status": 8, "orient_cdeg": 34, "lat_e7": 18, "kind": 36, "class_guess": 37,
                  "azimuth_cdeg": 38}[field]
        size = {"status": 1, "orient_cdeg": 2, "lat_e7": 4, "kind": 1, "class_guess": 1, "azimuth_cdeg": 2}[field]
        bad = good[:offset] + value.to_bytes(size, "little", signed=field == "lat_e7") + good[offset + size:]
        with pytest.raises(wire.WireError):
            messages.decode(mtype, bad)


def test_hello_name_must_be_strict_utf8():
    head = bytes([0, 1]) + (1024).to_bytes(2, "little") + bytes(8)
    for name in (b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82", b"\xff"):
        with pytest.raises(wire.WireError):
            messages.decode(wire.HELLO, head + bytes([len(name)]) + name)
    assert messages.decode(wire.HELLO, head + b"\x04\xf0\x9f\x9a\x80")["name"] == "\U0001f680"


# ---------------------------------------------------------------- keys ----

def test_key_file_from_keygen(tmp_path):
    out = tmp_path / "keys.json"
    subprocess.run([sys.executable, "-m", "trilink.cli", "keygen", "--nodes", "jp:1,kr:2", "--out", str(out)],
                   check=True, capture_output=True)
    assert os.stat(out).st_mode & 0o777 == 0o600
    kf = keys.load(str(out))
    relay = kf.keyring(kf.relay)
    board = kf.keyring(1)
    assert relay.link == (1, 2) and board.link == (kf.relay,)
    e = kf.entry(1)
    up = wire.parse(wire.pack(e.key, e.key_id, 1, kf.relay, wire.HEARTBEAT, 0, 1, bytes(20)))
    down = wire.parse(wire.pack(e.key, e.key_id, kf.relay, 1, wire.HEARTBEAT, 0, 1, bytes(20)))
    assert relay.verify(up) is up and board.verify(down) is down
    assert "key=" not in repr(e) and e.key.hex() not in repr(e)


@pytest.mark.parametrize("text", [
    "not json", "{}", '{"format": "trilink-keys/1", "relay": 0, "keys": []}',
    '{"format": "trilink-keys/1", "relay": 0, "keys": [{"key_id": 0, "node": 1, "key": "%s"}]}' % ("00" * 32),
    '{"format": "trilink-keys/1", "relay": 0, "keys": [{"key_id": 1, "node": 1, "key": "%s"}]}' % ("0" * 63),
    '{"format": "trilink-keys/1", "relay": 0, "keys": [{"key_id": 1, "node": 1, "key": "%s"}]}' % ("zz" * 32),
    '{"format": "trilink-keys/1", "relay": 0, "keys": [{"key_id": 1, "node": 0, "key": "%s"}]}' % ("00" * 32),
    '{"format": "trilink-keys/1", "relay": 0, "keys": [{"key_id": 1, "node": 1, "key": "%s"}, '
    '{"key_id": 1, "node": 2, "key": "%s"}]}' % ("00" * 32, "11" * 32),
])
def test_bad_key_files(text):
    with pytest.raises(keys.KeyFileError):
        keys.loads(text)
