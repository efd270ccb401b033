# streams.py: serial test streams with known damage and their exact expected outcome
"""Build a stream of N valid frames with one kind of injected damage, and
compute, independently of every implementation under test, what a
receiver must report: its counters and the frames it must recover.

Frames are made here from the spec alone (struct, hmac, zlib and a COBS
encoder written separately from boards/trilink_board/wire.py), so a shared
bug cannot hide. Each valid frame is sent as ``00 cobs(frame) 00`` (the
leading 0x00 of PROTOCOL.md §3.1 flushes junk before it). The receiver is
the relay, node 0, on a link configured with nodes 1 and 2; it knows keys
1 (node 1), 2 (node 2) and 3 (node 3, which is not on this link).

    >>> case = build_stream(10_000, "bitflip", seed=1)
    >>> case.stream[:1], sorted(case.counts)
    (b'\\x00', ['auth_fail', 'crc_error', 'malformed', 'oversize', 'replay', 'wrong_link'])
    >>> len(case.accepted) <= 10_000
    True

Feed ``case.stream`` to a deframer, verify each frame with a keyring set
up from ``case.keys``/``case.node``/``case.link``, then compare the
counters with ``case.counts``, the deframed raw frames with
``case.deframed`` and the accepted raw frames with ``case.accepted``.

Expected outcomes: damage whose result is fixed by construction (oversize,
forged tag, replay, wrong key, wrong link, bad header) is checked against
the independent classifier below when the stream is built; damage whose
result depends on where it lands (bit flips, truncation, junk, a stream
started mid-frame) is classified by that same classifier, which follows
PROTOCOL.md §3.3 cases 1-11 literally.
"""
from __future__ import annotations

import functools
import hashlib
import hmac
import random
import struct
import zlib
from typing import Dict, List, Optional, Tuple

MAX_PAYLOAD = 1024
MAX_CHUNK = 1057  # MAX_FRAME (1052) + 5 COBS bytes
OVERHEAD = 28
RELAY = 0
LINK = (1, 2)
TYPES = (0x01, 0x02, 0x03, 0x04, 0x10, 0x11, 0x12, 0x20, 0x21, 0x30, 0x31)
COUNTERS = ("crc_error", "malformed", "oversize", "auth_fail", "replay", "wrong_link")
INJECTIONS = ("clean", "midframe", "junk", "bitflip", "truncate", "oversize",
              "forged", "replay", "wrong_key", "wrong_link", "header")
EPOCH1 = 1 << 28  # counter of index 0 in epoch 1 (PROTOCOL.md §2.2)


def testonly_key(name: str, key_id: int) -> bytes:
    """A clearly marked 32-byte test key, e.g. ``testonly_key("jp", 1) == b"TEST-ONLY-KEY-jp-000000000000001"``."""
    head = "TEST-ONLY-KEY-%s-" % name
    return (head + "%0*d" % (32 - len(head), key_id)).encode()


# key_id -> (node, key). Key 3 belongs to node 3, which is not on LINK.
KEYS: Dict[int, Tuple[int, bytes]] = {
    1: (1, testonly_key("jp", 1)),
    2: (2, testonly_key("kr", 2)),
    3: (3, testonly_key("au", 3)),
}
WRONG_KEY = testonly_key("xx", 99)


def make_frame(key: bytes, key_id: int, src: int, dst: int, mtype: int, seq: int, counter: int,
               payload: bytes, flags: int = 0, version: int = 1, length: Optional[int] = None) -> bytes:
    """A raw frame laid out as PROTOCOL.md §1 (``length`` overrides the length field)."""
    n = len(payload) if length is None else length
    body = struct.pack("<BBBBBBHIHH", version, flags, src, dst, mtype, key_id, seq,
                       counter & 0xFFFFFFFF, counter >> 32, n) + payload
    body += hmac.new(key, body, hashlib.sha256).digest()[:8]
    return body + struct.pack("<I", zlib.crc32(body))


def recrc(raw: bytes) -> bytes:
    """``raw`` with its last 4 bytes replaced by the CRC of the rest."""
    return raw[:-4] + struct.pack("<I", zlib.crc32(raw[:-4]))


def cobs(raw: bytes) -> bytes:
    """COBS as PROTOCOL.md §3.1 states it, built from the runs between zeros."""
    out = bytearray()
    runs = raw.split(b"\x00")
    for idx, run in enumerate(runs):
        m, pos = len(run), 0
        while m - pos >= 254:
            out += b"\xff" + run[pos:pos + 254]
            pos += 254
        if idx < len(runs) - 1 or pos < m or m == 0:
            out.append(m - pos + 1)
            out += run[pos:]
    return bytes(out)


def uncobs(chunk: bytes) -> Optional[bytes]:
    """Decode a chunk as §3.1 states it; None when a code runs past the end."""
    out = bytearray()
    i = 0
    while i < len(chunk):
        c = chunk[i]
        if c == 0 or i + c > len(chunk):
            return None
        out += chunk[i + 1:i + c]
        i += c
        if c < 255 and i < len(chunk):
            out.append(0)
    return bytes(out)


def classify_chunk(chunk: bytes) -> Tuple[str, Optional[bytes]]:
    """Deframer outcome of one non-empty chunk (§3.3 cases 1-7): ``("frame", raw)`` or ``(counter, None)``."""
    if len(chunk) > MAX_CHUNK:
        return "oversize", None
    raw = uncobs(chunk)
    if raw is None or len(raw) < OVERHEAD:
        return "malformed", None
    if zlib.crc32(raw[:-4]) != struct.unpack("<I", raw[-4:])[0]:
        return "crc_error", None
    version, flags = raw[0], raw[1]
    (length,) = struct.unpack("<H", raw[14:16])
    if version != 1 or flags & 0xF0 or length > MAX_PAYLOAD or length != len(raw) - OVERHEAD:
        return "malformed", None
    return "frame", raw


class Verifier:
    """Keyring outcome (§3.3 cases 8-11) at the relay, node ``RELAY`` on ``LINK``."""

    def __init__(self) -> None:
        self.marks: Dict[int, int] = {}

    def check(self, raw: bytes) -> str:
        src, dst, key_id = raw[2], raw[3], raw[5]
        counter = int.from_bytes(raw[8:14], "little")
        if src not in LINK:
            return "wrong_link"
        if key_id not in KEYS:
            return "auth_fail"
        node, key = KEYS[key_id]
        if node != src:  # the relay only sees uplinks: the key must be the sender's
            return "auth_fail"
        if not hmac.compare_digest(hmac.new(key, raw[:-12], hashlib.sha256).digest()[:8], raw[-12:-4]):
            return "auth_fail"
        if key_id in self.marks and counter <= self.marks[key_id]:
            return "replay"
        self.marks[key_id] = counter
        return "accepted"


class StreamCase:
    """A built stream and what a receiver must make of it (see the module docstring)."""

    def __init__(self, kind: str, stream: bytes, sent: List[bytes], injected: List[Tuple[str, str]]):
        self.kind = kind
        self.stream = stream
        self.sent = sent  # the N valid frames, in order
        self.injected = injected  # (expected counter or "classified", what) per injection
        self.node = RELAY
        self.link = LINK
        self.keys = [(kid, node, key) for kid, (node, key) in sorted(KEYS.items())]
        self.counts: Dict[str, int] = {name: 0 for name in COUNTERS}
        self.deframed: List[bytes] = []
        self.accepted: List[bytes] = []
        self._expect()

    def _expect(self) -> None:
        verifier = Verifier()
        chunks = self.stream.split(b"\x00")[:-1]  # bytes after the last 0x00 are still pending
        intact = {}
        for raw in self.sent:
            intact[cobs(raw)] = raw
        for chunk in chunks:
            if not chunk:
                continue  # 00 00: ignored silently
            if chunk in intact:
                outcome, raw = "frame", intact[chunk]
            else:
                outcome, raw = classify_chunk(chunk)
            if outcome != "frame":
                self.counts[outcome] += 1
                continue
            assert raw is not None
            self.deframed.append(raw)
            result = verifier.check(raw)
            if result == "accepted":
                self.accepted.append(raw)
            else:
                self.counts[result] += 1

    def __repr__(self) -> str:
        return "StreamCase(%s: %d bytes, %d sent, %d accepted, counts=%r)" % (
            self.kind, len(self.stream), len(self.sent), len(self.accepted), self.counts)


_QUARTER_ZERO = bytes(0 if b < 64 else b for b in range(256))


def _payload(rng: random.Random) -> bytes:
    roll = rng.random()
    if roll < 0.1:
        n = 0
    elif roll < 0.45:
        n = 32
    elif roll < 0.8:
        n = 200
    elif roll < 0.97:
        n = rng.randrange(1, 300)
    else:
        n = rng.randrange(900, MAX_PAYLOAD + 1)
    style = rng.random()
    if style < 0.1:
        return bytes(n)  # all 0x00: the worst case for COBS
    if style < 0.2:
        return b"\xff" * n
    # Random bytes with about a quarter of them 0x00, so COBS has work to do.
    return rng.getrandbits(8 * n).to_bytes(n, "little").translate(_QUARTER_ZERO) if n else b""


@functools.lru_cache(maxsize=None)
def build_stream(n: int, kind: str = "clean", seed: int = 0, rate: float = 0.05,
                 ber: float = 1e-4) -> StreamCase:
    """``n`` valid frames from nodes 1 and 2 to the relay, with damage ``kind``
    (one of ``INJECTIONS``) at about ``rate`` of the frames (``ber`` for bit flips).

    Deterministic, and cached: every test in a session that asks for the same
    stream shares one ``StreamCase`` (treat it as read-only)."""
    if kind not in INJECTIONS:
        raise ValueError("kind %r not in %r" % (kind, INJECTIONS))
    rng = random.Random("%s/%d/%d" % (kind, n, seed))
    seq = {1: 0, 2: 0, 3: 0}
    index = {1: 0, 2: 0, 3: 0}

    def next_frame(src: int, key_id: Optional[int] = None, key: Optional[bytes] = None) -> bytes:
        kid = src if key_id is None else key_id
        k = KEYS[src][1] if key is None else key
        raw = make_frame(k, kid, src, RELAY, rng.choice(TYPES), seq[src] & 0xFFFF,
                         EPOCH1 + index[src], _payload(rng), flags=rng.randrange(16))
        seq[src] += 1
        index[src] += 1
        return raw

    out = bytearray()
    sent: List[bytes] = []
    injected: List[Tuple[str, str]] = []
    fixed: List[Tuple[str, bytes]] = []  # (expected outcome, extra raw frame or chunk)

    def extra(outcome: str, raw: bytes, what: str) -> None:
        # A frame (or a raw chunk, for oversize) whose outcome is fixed by construction.
        chunk = raw if outcome == "oversize" else cobs(raw)
        out.extend(b"\x00" + chunk + b"\x00")
        injected.append((outcome, what))
        fixed.append((outcome, chunk))

    for i in range(n):
        raw = next_frame(rng.choice(LINK))
        sent.append(raw)
        enc = cobs(raw)
        hit = rng.random() < rate
        if kind == "midframe" and i == 0:
            out.extend(enc[rng.randrange(1, len(enc)):] + b"\x00")  # no leading 00: joined mid-frame
            injected.append(("classified", "stream starts mid-frame"))
            continue
        if kind == "truncate" and hit:
            out.extend(b"\x00" + enc[:rng.randrange(1, len(enc))] + b"\x00")
            injected.append(("classified", "frame %d truncated" % i))
            continue
        out.extend(b"\x00" + enc + b"\x00")
        if not hit:
            continue
        if kind == "junk":
            size = rng.randrange(1, 300)
            junk = rng.getrandbits(8 * size).to_bytes(size, "little")
            out.extend(junk)  # the next frame's leading 0x00 ends it
            injected.append(("classified", "%d random bytes after frame %d" % (len(junk), i)))
        elif kind == "oversize":
            big = make_frame(KEYS[1][1], 1, 1, RELAY, 0x11, 0, EPOCH1 + index[1],
                             b"\x5a" * rng.randrange(1100, 3000))
            index[1] += 1
            extra("oversize", cobs(big), "frame with a %d-byte payload" % (len(big) - OVERHEAD))
        elif kind == "forged":
            victim = next_frame(rng.choice(LINK))
            pos = rng.randrange(16, len(victim) - 4)  # payload or tag byte
            forged = bytearray(victim)
            forged[pos] ^= 1 << rng.randrange(8)
            extra("auth_fail", recrc(bytes(forged)), "byte %d altered, CRC fixed" % pos)
        elif kind == "replay":
            old = rng.choice(sent)
            extra("replay", old, "frame %d sent again" % sent.index(old))
        elif kind == "wrong_key":
            how = rng.randrange(3)
            if how == 0:
                extra("auth_fail", next_frame(1, key_id=9, key=WRONG_KEY), "unknown key id 9")
            elif how == 1:
                extra("auth_fail", next_frame(1, key_id=2, key=KEYS[2][1]), "node 1 under node 2's key")
            else:
                extra("auth_fail", next_frame(1, key_id=1, key=WRONG_KEY), "key id 1, wrong key bytes")
        elif kind == "wrong_link":
            extra("wrong_link", next_frame(3), "node 3 is not on this link")
        elif kind == "header":
            src = rng.choice(LINK)
            payload = _payload(rng)
            how = rng.randrange(4)
            args = (KEYS[src][1], src, src, RELAY, 0x02, 0, EPOCH1 + index[src], payload)
            index[src] += 1
            if how == 0:
                bad = make_frame(*args, version=rng.choice((0, 2, 255)))
            elif how == 1:
                bad = make_frame(*args, flags=rng.randrange(1, 16) << 4)
            elif how == 2:
                bad = make_frame(*args, length=(len(payload) + rng.randrange(1, 100)) & 0xFFFF)
            else:
                bad = make_frame(*args, length=rng.randrange(MAX_PAYLOAD + 1, 0x10000))
            extra("malformed", bad, "bad header (%d)" % how)

    stream = bytes(out)
    if kind == "bitflip":
        flipped = bytearray(stream)
        bits = len(stream) * 8
        pos = int(rng.expovariate(ber))
        count = 0
        while pos < bits:
            flipped[pos >> 3] ^= 1 << (pos & 7)
            count += 1
            pos += 1 + int(rng.expovariate(ber))
        stream = bytes(flipped)
        injected.append(("classified", "%d bit flips in %d bits" % (count, bits)))
    case = StreamCase(kind, stream, sent, injected)
    # The classifier must agree with every outcome fixed by construction:
    # for those kinds the counters are exactly the injections.
    if kind in ("clean", "oversize", "forged", "replay", "wrong_key", "wrong_link", "header"):
        want = {name: 0 for name in COUNTERS}
        for outcome, _ in fixed:
            want[outcome] += 1
        assert case.counts == want, (kind, case.counts, want)
        assert case.accepted == sent, kind
    return case
