"""The C frame layer (native/c/wire.c, cobs.c, crc32.c, sha256.c) through its
binding: primitives against the standard library, pack/parse round trips,
every receive case of PROTOCOL.md section 3.3, stream resync with counted
damage (expectations from tests/streams.py, built from the spec alone), the
keyring's rejections, and a -Werror compile of every C file.
"""
from __future__ import annotations

import binascii
import hashlib
import hmac
import random
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

import streams
from trilink_native import binding as b

REPO = Path(__file__).resolve().parent.parent
C_DIR = REPO / "native" / "c"
WIRE_C = ("crc32.c", "sha256.c", "cobs.c", "wire.c")
KEY1 = streams.KEYS[1][1]
KEY2 = streams.KEYS[2][1]
FIELDS = ("flags", "src", "dst", "mtype", "key_id", "seq", "counter", "length")
ERRORS = ("crc_error", "malformed", "oversize")

payloads = st.binary(max_size=b.MAX_PAYLOAD)


def relay_ring() -> b.Keyring:
    """The receiver of tests/streams.py: the relay, node 0, on a link with nodes 1 and 2."""
    ring = b.Keyring(node=streams.RELAY, link=streams.LINK)
    for kid, (node, key) in streams.KEYS.items():
        ring.add(kid, node, key)
    return ring


def feed_in_pieces(d: b.Deframer, data: bytes, rng: random.Random, fn=None) -> list:
    """Feed ``data`` in random pieces (1 byte to 3 kB) so frames straddle calls."""
    fn = fn or d.feed
    out, i = [], 0
    while i < len(data):
        step = rng.choice((1, 2, 7, 64, 500, 3000))
        out += fn(data[i:i + step])
        i += step
    return out


# ------------------------------------------------------------ primitives ----

def test_crc32_check_value():
    assert b.crc32(b"123456789") == 0xCBF43926
    assert b.crc32(b"") == 0


@settings(max_examples=200)
@given(st.binary(max_size=3000), st.integers(0, 3000))
def test_crc32_matches_zlib_and_continues(data, cut):
    assert b.crc32(data) == zlib.crc32(data) == binascii.crc32(data)
    assert b.crc32(data[cut:], b.crc32(data[:cut])) == zlib.crc32(data)


@settings(max_examples=200)
@given(st.binary(max_size=600))
def test_sha256_matches_hashlib(data):
    assert b.sha256(data) == hashlib.sha256(data).digest()


def test_sha256_block_boundaries():
    # Padding changes at 55/56 and 63/64 bytes of a block.
    for n in list(range(0, 140)) + [1000, 4096 + 7]:
        data = bytes(range(256)) * (n // 256 + 1)
        assert b.sha256(data[:n]) == hashlib.sha256(data[:n]).digest(), n


@settings(max_examples=200)
@given(st.binary(max_size=150), st.binary(max_size=400))
def test_hmac_matches_stdlib(key, msg):
    want = hmac.new(key, msg, hashlib.sha256).digest()
    assert b.hmac_sha256(key, msg) == want
    assert b.HmacKey(key).digest(msg) == want


def test_hmac_rfc4231_case_2():
    assert b.hmac_sha256(b"Jefe", b"what do ya want for nothing?").hex() == (
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")


def test_cobs_spec_examples():
    assert b.cobs_encode(b"") == b"\x01"
    assert b.cobs_encode(b"\x00") == b"\x01\x01"
    assert b.cobs_encode(b"\x11\x22\x00\x33") == b"\x03\x11\x22\x02\x33"
    # PROTOCOL.md 3.1: a frame ending with a 254-byte block gets no trailing 0x01 ...
    assert b.cobs_encode(b"\x11" * 254) == b"\xff" + b"\x11" * 254
    # ... but a zero after a full block still needs its own (empty) block.
    assert b.cobs_encode(b"\x11" * 254 + b"\x00") == b"\xff" + b"\x11" * 254 + b"\x01\x01"
    assert b.cobs_encode(b"\x11" * 255) == b"\xff" + b"\x11" * 254 + b"\x02\x11"
    assert b.cobs_decode(b"\xff" + b"\x11" * 254) == b"\x11" * 254


@settings(max_examples=300)
@given(st.lists(st.sampled_from([b"\x00", b"\x01", b"\xff", b"\x11" * 253, b"\x22" * 254, b"\x33" * 255]),
                max_size=12).map(b"".join) | st.binary(max_size=2000))
def test_cobs_round_trip_matches_spec_encoder(data):
    enc = b.cobs_encode(data)
    assert enc == streams.cobs(data)  # the spec-literal encoder of tests/streams.py
    assert b"\x00" not in enc
    assert len(enc) <= len(data) + 1 + len(data) // 254
    assert b.cobs_decode(enc) == data
    assert b.serial_encode(data) == enc + b"\x00"
    assert b.serial_encode(data, lead=True) == b"\x00" + enc + b"\x00"


@settings(max_examples=300)
@given(st.binary(max_size=1200))
def test_cobs_decode_arbitrary_bytes(chunk):
    want = streams.uncobs(chunk)
    if want is None:
        with pytest.raises(b.WireError) as e:
            b.cobs_decode(chunk)
        assert e.value.reason == "malformed"
    else:
        assert b.cobs_decode(chunk) == want


# ---------------------------------------------------------- pack / parse ----

@pytest.mark.parametrize("mtype", b.MSG_TYPES)
def test_pack_parse_every_type_and_flag_combination(mtype):
    rng = random.Random(mtype)
    for flags in range(16):
        payload = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 64)))
        counter = rng.randrange(1 << 48)
        raw = b.pack_frame(KEY1, 1, 1, 0, mtype, flags * 1000, counter, payload, flags)
        assert raw == streams.make_frame(KEY1, 1, 1, 0, mtype, flags * 1000, counter, payload, flags)
        f = b.parse_frame(raw)
        assert (f.flags, f.src, f.dst, f.mtype, f.key_id, f.seq, f.counter, f.payload) == (
            flags, 1, 0, mtype, 1, flags * 1000, counter, payload)
        assert f.tag == hmac.new(KEY1, raw[:16 + len(payload)], hashlib.sha256).digest()[:8]
        [g] = b.Deframer().feed(b.serial_encode(raw))
        assert g == f


@settings(max_examples=200)
@given(key_id=st.integers(1, 255), src=st.integers(0, 254), dst=st.integers(0, 255),
       mtype=st.integers(0, 255), seq=st.integers(0, 0xFFFF), counter=st.integers(0, b.MAX_COUNTER),
       payload=payloads, flags=st.integers(0, 15))
def test_decode_encode_is_identity(key_id, src, dst, mtype, seq, counter, payload, flags):
    raw = b.pack_frame(KEY2, key_id, src, dst, mtype, seq, counter, payload, flags)
    assert raw == streams.make_frame(KEY2, key_id, src, dst, mtype, seq, counter, payload, flags)
    f = b.parse_frame(raw)
    assert (f.key_id, f.src, f.dst, f.mtype, f.seq, f.counter, f.payload, f.flags, f.length) == (
        key_id, src, dst, mtype, seq, counter, payload, flags, len(payload))
    d = b.Deframer()
    assert d.feed_raw(b.serial_encode(raw, lead=True)) == [raw]
    ring = b.Keyring(node=0 if src != 0 else 1, link=[src])
    ring.add(key_id, src, KEY2)
    assert ring.verify(raw) == f


def test_pack_rejects_out_of_range_fields():
    good = dict(key=KEY1, key_id=1, src=1, dst=0, mtype=2, seq=0, counter=0, payload=b"", flags=0)
    for field, bad in [("key_id", 0), ("key_id", 256), ("src", 255), ("dst", -1), ("mtype", 256),
                       ("seq", 1 << 16), ("counter", 1 << 48), ("flags", 0x10),
                       ("payload", bytes(b.MAX_PAYLOAD + 1)), ("key", bytes(31))]:
        with pytest.raises(ValueError):
            b.pack_frame(**{**good, field: bad})
    assert len(b.pack_frame(**{**good, "payload": bytes(b.MAX_PAYLOAD)})) == b.MAX_FRAME


def test_parse_every_deframer_case():
    raw = b.pack_frame(KEY1, 1, 1, 0, b.MSG_HEARTBEAT, 3, 9, bytes(20))
    header = lambda **kw: streams.make_frame(KEY1, 1, 1, 0, 2, 3, 9, bytes(20), **kw)  # noqa: E731
    cases = [
        (raw[:27], "malformed"),                       # 3: shorter than 28 bytes
        (raw[:-5] + raw[-4:], "crc_error"),            # 4: a byte lost, old CRC
        (raw[:20] + b"\x99" + raw[21:], "crc_error"),  # 4: a payload byte changed
        (header(version=2), "malformed"),              # 5
        (header(flags=0x80), "malformed"),             # 6
        (header(length=21), "malformed"),              # 7: length != size - 28
        (streams.make_frame(KEY1, 1, 1, 0, 2, 3, 9, bytes(1025)), "malformed"),  # 7: over 1024
    ]
    for bad, reason in cases:
        with pytest.raises(b.WireError) as e:
            b.parse_frame(bad)
        assert e.value.reason == reason
        d = b.Deframer()
        assert d.feed(b.serial_encode(bad)) == []
        assert d.counts[reason] == 1 and sum(d.counts[r] for r in ERRORS) == 1


@settings(max_examples=300)
@given(st.binary(max_size=1500))
def test_arbitrary_bytes_only_raise_wire_error(data):
    ring = relay_ring()
    d = b.Deframer()
    for call in (lambda: b.parse_frame(data), lambda: ring.verify(data), lambda: b.cobs_decode(data)):
        try:
            call()
        except b.WireError as e:
            assert e.reason in b.WIRE_REASONS.values()
    d.feed(data)
    d.receive(data, ring)
    assert set(d.counts) == {"frames", *ERRORS}


# ------------------------------------------------------------ deframer ----

def test_empty_chunks_ignored_and_max_frame_boundary():
    d = b.Deframer()
    big = b.pack_frame(KEY1, 1, 1, 0, b.MSG_PICTURE, 0, 1, b"\x5a" * b.MAX_PAYLOAD)
    enc = b.serial_encode(big)
    assert len(enc) == b.MAX_SERIAL  # 1052 zero-free bytes: 5 COBS codes, the longest chunk
    assert d.feed(b"\x00" * 10 + enc) == [b.parse_frame(big)]
    assert d.feed(b"\x00" + b"\x07" * 1058 + b"\x00" + enc) == [b.parse_frame(big)]  # 1058 bytes: case 1
    assert d.feed(b"\x07" * 5000) == []
    assert d.feed(b"\x07" * 5000 + b"\x00" + enc) == [b.parse_frame(big)]  # one run: counted once
    assert d.counts == {"frames": 3, "oversize": 2, "malformed": 0, "crc_error": 0}


def test_chunking_does_not_change_the_result():
    case = streams.build_stream(300, "junk", seed=3, rate=0.3)
    whole = b.Deframer()
    want = whole.feed_raw(case.stream)
    assert want == case.deframed
    for seed in range(3):
        d = b.Deframer()
        assert feed_in_pieces(d, case.stream, random.Random(seed), d.feed_raw) == want
        assert d.counts == whole.counts
    tiny = b.Deframer(arena=b.MAX_CHUNK)  # forces many C calls per feed (output arena full)
    assert tiny.feed_raw(case.stream) == want and tiny.counts == whole.counts
    slow = b.Deframer()
    assert [f for i in range(len(case.stream)) for f in slow.feed_raw(case.stream[i:i + 1])] == want


def test_reset_forgets_a_partial_chunk():
    raw = b.pack_frame(KEY1, 1, 1, 0, 2, 0, 1, bytes(20))
    enc = b.serial_encode(raw)
    d = b.Deframer()
    assert d.feed(enc[:10]) == []
    d.reset()
    assert d.feed(enc) == [b.parse_frame(raw)]
    assert d.counts["malformed"] == d.counts["crc_error"] == 0


# ------------------------------------------------------ stream resync ----

@pytest.mark.parametrize("kind", streams.INJECTIONS)
def test_resync_10000_frames(kind):
    """10,000 valid frames with one kind of damage (a: midframe, b: junk,
    c: bitflip at BER 1e-4, d: truncate, e: oversize, and the verifier's
    cases): nothing corrupted accepted, every intact frame recovered, every
    counter equal to the spec classifier's count."""
    case = streams.build_stream(10_000, kind, seed=11)
    rng = random.Random(kind)
    # Path 1: deframe, then verify frame by frame.
    d, ring = b.Deframer(), relay_ring()
    raw_frames = feed_in_pieces(d, case.stream, rng, d.feed_raw)
    assert raw_frames == case.deframed
    accepted = []
    for raw in raw_frames:
        try:
            accepted.append(ring.verify(raw).raw)
        except b.WireError:
            pass
    assert accepted == case.accepted
    counts = {**{k: d.counts[k] for k in ERRORS}, **{k: ring.counts[k] for k in ("auth_fail", "replay", "wrong_link")}}
    assert counts == case.counts
    # Path 2: the one-call deframe+verify of the relay.
    d2, ring2, rejected = b.Deframer(), relay_ring(), []
    got = feed_in_pieces(d2, case.stream, rng, lambda piece: d2.receive(piece, ring2, rejected=rejected))
    assert [f.raw for f in got] == case.accepted
    assert b.Deframer().receive_raw(case.stream, relay_ring()) == case.accepted
    assert d2.counts == d.counts and ring2.counts == ring.counts and ring2.marks == ring.marks
    assert sorted(r for r, _ in rejected) == sorted(
        r for r in ("auth_fail", "replay", "wrong_link") for _ in range(case.counts[r]))
    # Nothing that was not sent gets through; intact frames all do.
    sent = set(case.sent)
    assert all(raw in sent for raw in case.accepted)
    if kind in ("clean", "oversize", "forged", "replay", "wrong_key", "wrong_link", "header", "junk"):
        assert case.accepted == case.sent  # junk ends at the next frame's leading 0x00
    if kind == "midframe":  # (a): exactly the first frame is lost, as one error
        assert case.accepted == case.sent[1:]
        assert sum(d.counts[k] for k in ERRORS) == 1
    if kind == "truncate":  # (d): one error per truncated frame, the rest intact
        n_trunc = sum(1 for what, _ in case.injected if what == "classified")
        assert sum(d.counts[k] for k in ERRORS) == n_trunc > 0
        assert len(case.accepted) == 10_000 - n_trunc
    if kind == "oversize":  # (e)
        assert d.counts["oversize"] == len(case.injected) > 0
    if kind == "bitflip":
        assert 0 < sum(case.counts.values()) and len(case.accepted) < 10_000


# ------------------------------------------------------------ keyring ----

def test_keyring_rejections_are_counted():
    ring = relay_ring()
    ok = ring.pack(1, 1, 0, b.MSG_TRACK_REPORT, 0, 100, b"x" * 40)
    assert ring.verify(ok).counter == 100
    forged = bytearray(ok)
    forged[20] ^= 0x01
    forged = streams.recrc(bytes(forged))
    unknown = b.pack_frame(streams.WRONG_KEY, 9, 1, 0, 2, 0, 200, b"")
    wrong_bytes = b.pack_frame(streams.WRONG_KEY, 1, 1, 0, 2, 0, 201, b"")
    not_bound = b.pack_frame(KEY2, 2, 1, 0, 2, 0, 202, b"")   # node 1 under node 2's key
    off_link = b.pack_frame(streams.KEYS[3][1], 3, 3, 0, 2, 0, 5, b"")
    for raw, reason in [(forged, "auth_fail"), (unknown, "auth_fail"), (wrong_bytes, "auth_fail"),
                        (not_bound, "auth_fail"), (ok, "replay"), (off_link, "wrong_link")]:
        with pytest.raises(b.WireError) as e:
            ring.verify(raw)
        assert e.value.reason == reason
    assert ring.counts == {"accepted": 1, "auth_fail": 4, "replay": 1, "wrong_link": 1}
    assert ring.verify(off_link, link=(3,)).src == 3  # the same frame on node 3's own link
    assert ring.marks == {1: 100, 3: 5}


def test_only_a_valid_frame_raises_the_mark():
    ring = relay_ring()
    high = ring.pack(1, 1, 0, 2, 0, 1000, b"")
    forged = streams.recrc(high[:-12] + bytes(8) + high[-4:])
    with pytest.raises(b.WireError):
        ring.verify(forged)
    assert ring.marks == {}
    ring.verify(ring.pack(1, 1, 0, 2, 0, 10, b""))
    for counter in (10, 9, 0):
        with pytest.raises(b.WireError, match="replay"):
            ring.verify(ring.pack(1, 1, 0, 2, 0, counter, b""))
    assert ring.marks == {1: 10}
    ring.verify(ring.pack(1, 1, 0, 2, 0, 11, b""))
    # A restarted relay restores its marks: an old capture stays a replay.
    again = relay_ring()
    again.set_mark(1, 11)
    with pytest.raises(b.WireError, match="replay"):
        again.verify(ring.pack(1, 1, 0, 2, 0, 11, b""))
    assert again.verify(ring.pack(1, 1, 0, 2, 0, 12, b"")).counter == 12


def test_window_takes_late_counters_once_against_a_python_model():
    # The IPsec-style window (PROTOCOL 3.2) against the rule written out in Python,
    # over random reorderings, duplicates and jumps; window 0 is the strict rule.
    import random
    rng = random.Random(7)
    for window in (0, 1, 17, 64):
        ring = relay_ring()
        ring.set_window(1, window)
        mark, seen = None, set()
        for _ in range(600):
            c = max(0, (mark or 50) + rng.choice((-70, -64, -63, -5, -1, 0, 1, 2, 30, 100)))
            want = mark is None or c > mark or (mark - c < window and c not in seen)
            try:
                ring.verify(ring.pack(1, 1, 0, 2, 0, c, b""))
                got = True
            except b.WireError as e:
                assert e.reason == "replay"
                got = False
            assert got == want, (window, mark, c)
            if got:
                seen.add(c)
                mark = c if mark is None or c > mark else mark
    ring = relay_ring()
    ring.set_window(1, 64)
    ring.verify(ring.pack(1, 1, 0, 2, 0, 100, b""))
    ring.set_mark(1, 100)          # a set mark: nothing below it counts as new, window or not
    with pytest.raises(b.WireError, match="replay"):
        ring.verify(ring.pack(1, 1, 0, 2, 0, 99, b""))
    with pytest.raises(ValueError):
        ring.set_window(1, 65)


def test_board_side_binding_rule():
    # At board 2 (node 2), key 2 is its own: frames from the relay (node 0) to
    # node 2 or to 0xFF pass; to node 1 they are not for this pair.
    ring = b.Keyring(node=2, link=(0,))
    ring.add(2, 2, KEY2)
    assert ring.verify(b.pack_frame(KEY2, 2, 0, 2, b.MSG_PICTURE, 0, 1)).dst == 2
    assert ring.verify(b.pack_frame(KEY2, 2, 0, 0xFF, b.MSG_WARNING, 0, 2)).dst == 0xFF
    with pytest.raises(b.WireError, match="auth_fail"):
        ring.verify(b.pack_frame(KEY2, 2, 0, 1, b.MSG_PICTURE, 0, 3))
    with pytest.raises(b.WireError, match="wrong_link"):
        ring.verify(b.pack_frame(KEY2, 2, 1, 2, b.MSG_PICTURE, 0, 4))


def test_keyring_arguments():
    ring = b.Keyring(0)
    for args in [(0, 1, KEY1), (256, 1, KEY1), (1, 1, KEY1[:31])]:
        with pytest.raises(ValueError):
            ring.add(*args)
    with pytest.raises(ValueError):
        ring.pack(7, 1, 0, 2, 0, 1)  # no key 7
    ring.add(7, 1, KEY1)
    assert ring.pack(7, 1, 0, 2, 0, 1) == b.pack_frame(KEY1, 7, 1, 0, 2, 0, 1)
    ring.remove(7)
    with pytest.raises(ValueError):
        ring.pack(7, 1, 0, 2, 0, 1)


# ------------------------------------------------------------ portability ----

@pytest.mark.parametrize("source", sorted(p.name for p in C_DIR.glob("*.c")))
def test_every_c_file_compiles_warning_free(source, tmp_path):
    gcc = shutil.which("gcc")
    assert gcc, "gcc is required to build the kernel"
    flags = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror"]
    if source in WIRE_C:  # the wire files also hold to strict ISO C99
        flags += ["-pedantic", "-Wshadow", "-Wcast-align=strict", "-Wconversion"]
    subprocess.run([gcc, *flags, "-c", str(C_DIR / source), "-o", str(tmp_path / "x.o")],
                   check=True, capture_output=True, text=True)
