# wire.py: trilink v1 frames (docs/PROTOCOL.md): COBS, CRC-32, header, tag, deframer, keyring
"""The frame layer of docs/PROTOCOL.md, version 1, in pure Python for
MicroPython boards and CPython tools. It agrees byte for byte with the C
kernel (native/c/wire.c); tests/vectors/wire_v1.json binds both.

    >>> key = b"TEST-ONLY-KEY-jp-0000000000000001"[:32]
    >>> raw = pack(key, 1, 1, 0, HEARTBEAT, 7, 1 << 28, bytes(20))
    >>> d = Deframer()
    >>> [f] = d.feed(serial_encode(raw))
    >>> ring = Keyring(node=0, link=(1,))
    >>> ring.add(1, 1, key)
    >>> ring.verify(f).seq
    7

Receiving (section 3.3): ``Deframer.feed`` does cases 1-7 and counts
``oversize``, ``malformed`` and ``crc_error``; ``parse`` does cases 3-7 on
one frame (a UDP datagram); ``Keyring.verify`` does cases 8-11 and counts
``wrong_link``, ``auth_fail`` and ``replay``. Every rejection raises (or,
in ``feed``, counts) a ``WireError`` whose ``reason`` is the counter name.
"""
import struct
from binascii import crc32

from trilink_board.hmac256 import Hmac256

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):  # type: ignore[misc]  # micropython.const's stand-in
        return x


VERSION = const(1)
HEADER_SIZE = const(16)
TAG_SIZE = const(8)
CRC_SIZE = const(4)
OVERHEAD = const(28)  # header + tag + CRC
MAX_PAYLOAD = const(1024)
MAX_FRAME = const(1052)
MAX_CHUNK = const(1057)  # MAX_FRAME + 5: the longest COBS encoding of a frame
MAX_COUNTER = const(0xFFFFFFFFFFFF)  # 48 bits
BROADCAST = const(0xFF)
KEY_SIZE = const(32)

# Flags (section 1.1)
ACK_REQ = const(0x01)
RETRANSMIT = const(0x02)
URGENT = const(0x04)
RELAY_TIME = const(0x08)
_RESERVED = const(0xF0)

# Message types (section 4)
HELLO = const(0x01)
HEARTBEAT = const(0x02)
TIME_SYNC_REQ = const(0x03)
TIME_SYNC_RESP = const(0x04)
TRACK_REPORT = const(0x10)
PICTURE = const(0x11)
KEYFRAME_REQ = const(0x12)
WARNING = const(0x20)
WARNING_ACK = const(0x21)
STATS = const(0x30)
DELIVERY = const(0x31)
TYPES = (HELLO, HEARTBEAT, TIME_SYNC_REQ, TIME_SYNC_RESP, TRACK_REPORT, PICTURE,
         KEYFRAME_REQ, WARNING, WARNING_ACK, STATS, DELIVERY)

# STATS counters (PROTOCOL.md 4.7): STATS_COUNTERS[i] has counter id i + 1. The one
# table: the board's firmware and the relay (edge/relay.py) both send from it.
STATS_COUNTERS = ("frames_in", "frames_out", "bytes_in", "bytes_out", "crc_error", "malformed",
                  "oversize", "auth_fail", "replay", "wrong_link", "unknown_type", "dropped_stale",
                  "queue_depth", "not_for_me")

# version, flags, src, dst, type, key_id, seq, counter low 32, counter high 16, length
_HDR = "<6BHIHH"
_SMALL = const(16)  # runs up to this long are copied byte by byte (no allocation)
_NONE = ()
_BUFFERS = (bytes, bytearray)  # a module constant: a tuple literal would allocate per call


class WireError(ValueError):
    """A frame or payload was rejected. ``reason`` is the counter name of
    section 3.3: ``malformed``, ``crc_error``, ``oversize``, ``wrong_link``,
    ``auth_fail`` or ``replay``."""

    def __init__(self, reason, detail=None):
        super().__init__(reason if detail is None else reason + ": " + detail)
        self.reason = reason


class Frame:
    """One parsed frame. ``raw`` is the whole frame (bytes), ``payload`` and
    ``tag`` are copies of its parts; the other attributes are header fields."""

    def __init__(self, raw, flags, src, dst, mtype, key_id, seq, counter, length):
        self.raw = raw
        self.version = VERSION
        self.flags = flags
        self.src = src
        self.dst = dst
        self.mtype = mtype
        self.key_id = key_id
        self.seq = seq
        self.counter = counter
        self.length = length
        self.payload = raw[HEADER_SIZE:HEADER_SIZE + length]
        self.tag = raw[HEADER_SIZE + length:HEADER_SIZE + TAG_SIZE + length]

    def __eq__(self, other):
        return isinstance(other, Frame) and self.raw == other.raw

    def __ne__(self, other):
        return not self.__eq__(other)

    def __hash__(self):
        return hash(self.raw)

    def __repr__(self):
        return "Frame(src=%d dst=%d type=0x%02x key_id=%d seq=%d counter=%d flags=0x%02x len=%d)" % (
            self.src, self.dst, self.mtype, self.key_id, self.seq, self.counter, self.flags, self.length)


def cobs_encode(data):
    """COBS-encode ``data`` exactly as section 3.1 says (no delimiter added).

        >>> cobs_encode(b"\\x11\\x00\\x22")
        b'\\x02\\x11\\x02"'
    """
    data = bytes(data)
    n = len(data)
    out = bytearray()
    i = 0
    while True:
        j = data.find(b"\x00", i)
        end = n if j < 0 else j
        start = i
        while end - i >= 254:  # full blocks: code 0xFF, no zero implied
            out.append(0xFF)
            out += data[i:i + 254]
            i += 254
        # A run followed by 0x00 always ends with a short block (its code
        # implies the zero). The last run does too unless it ended exactly on
        # a full block (no trailing 0x01); an empty last run still needs 0x01.
        if j >= 0 or end > i or end == start:
            out.append(end - i + 1)
            out += data[i:end]
        if j < 0:
            return bytes(out)
        i = j + 1


def _cobs_decode_into(src, n, dst):
    # Decode src[0:n] into dst; returns the decoded length. src must not be
    # dst (slice copies of overlapping regions are not guaranteed memmove).
    i = 0
    o = 0
    while i < n:
        c = src[i]
        if c == 0:
            raise WireError("malformed", "zero byte inside a COBS chunk")
        i += 1
        e = i + c - 1
        if e > n:
            raise WireError("malformed", "COBS code points past the chunk end")
        k = c - 1
        dst[o:o + k] = src[i:e]
        o += k
        i = e
        if c < 255 and i < n:
            dst[o] = 0
            o += 1
    return o


def cobs_decode(data):
    """Decode one COBS chunk (no delimiter). Raises ``WireError("malformed")``.

        >>> cobs_decode(b"\\x02\\x11\\x02\\x22")
        b'\\x11\\x00"'
    """
    n = len(data)
    out = bytearray(n)
    m = _cobs_decode_into(memoryview(data), n, out)
    return bytes(out[:m])


def serial_encode(frame, lead=False):
    """The serial form of a frame: COBS + one ``0x00`` (and a leading ``0x00``
    when ``lead``, which flushes a receiver's partial chunk; section 3.1)."""
    enc = cobs_encode(frame) + b"\x00"
    return b"\x00" + enc if lead else enc


def _mac(key):
    return key if isinstance(key, Hmac256) else Hmac256(key)


def pack(key, key_id, src, dst, mtype, seq, counter, payload=b"", flags=0):
    """Build one raw frame (header, payload, tag, CRC) as bytes.

    ``key`` is the 32-byte pair key (or an ``Hmac256`` made from it, which
    saves rehashing the key per frame). Raises ``ValueError`` for a field
    out of range.

        >>> len(pack(b"TEST-ONLY" * 4, 1, 1, 0, HELLO, 0, 1, b"", ACK_REQ))
        28
    """
    n = len(payload)
    if n > MAX_PAYLOAD:
        raise ValueError("payload of %d bytes exceeds %d" % (n, MAX_PAYLOAD))
    if flags & ~0x0F or flags < 0:
        raise ValueError("flags 0x%x set reserved bits" % flags)
    if not (0 <= src <= 254 and 0 <= dst <= 255 and 0 <= mtype <= 255 and 1 <= key_id <= 255):
        raise ValueError("src, dst, type or key_id out of range")
    if not (0 <= seq <= 0xFFFF and 0 <= counter <= MAX_COUNTER):
        raise ValueError("seq or counter out of range")
    buf = bytearray(OVERHEAD + n)
    struct.pack_into(_HDR, buf, 0, VERSION, flags, src, dst, mtype, key_id, seq,
                     counter & 0xFFFFFFFF, counter >> 32, n)
    buf[HEADER_SIZE:HEADER_SIZE + n] = payload
    mv = memoryview(buf)
    end = HEADER_SIZE + n
    buf[end:end + TAG_SIZE] = _mac(key).digest(mv[:end])[:TAG_SIZE]
    end += TAG_SIZE
    struct.pack_into("<I", buf, end, crc32(mv[:end]) & 0xFFFFFFFF)
    return bytes(buf)


def parse(raw):
    """Check one raw frame (cases 3-7 of section 3.3) and return a ``Frame``.

    Raises ``WireError`` with reason ``malformed`` or ``crc_error``. The tag
    is not checked here: that is ``Keyring.verify``.
    """
    n = len(raw)
    if n < OVERHEAD:
        raise WireError("malformed", "truncated frame of %d bytes" % n)
    mv = memoryview(raw)
    if crc32(mv[:n - CRC_SIZE]) & 0xFFFFFFFF != struct.unpack_from("<I", mv, n - CRC_SIZE)[0]:
        raise WireError("crc_error")
    v, flags, src, dst, mtype, key_id, seq, clo, chi, length = struct.unpack_from(_HDR, mv, 0)
    if v != VERSION:
        raise WireError("malformed", "version %d" % v)
    if flags & _RESERVED:
        raise WireError("malformed", "reserved flag bits 0x%02x" % flags)
    if length > MAX_PAYLOAD or length != n - OVERHEAD:
        raise WireError("malformed", "length %d in a %d-byte frame" % (length, n))
    return Frame(bytes(mv), flags, src, dst, mtype, key_id, seq, clo | (chi << 32), length)


class Deframer:
    """Incremental serial deframer (cases 1-7 of section 3.3).

    Two preallocated buffers (the COBS chunk, at most ``MAX_CHUNK`` bytes,
    and its decoding); ``feed`` copies short runs byte by byte and long
    ones with one slice assignment, so nothing is allocated per byte (a
    byte-at-a-time caller allocates nothing until a frame completes).
    ``counts`` holds ``frames`` (frames
    returned), ``oversize``, ``malformed`` and ``crc_error``.

        >>> d = Deframer()
        >>> d.feed(b"\\x00\\x01\\x00")   # an empty chunk and a too short frame
        ()
        >>> d.counts["malformed"]
        1
    """

    def __init__(self):
        self._buf = bytearray(MAX_CHUNK)
        self._mv = memoryview(self._buf)
        self._frm = bytearray(MAX_CHUNK)
        self._n = 0
        self._drop = False
        self.counts = {"frames": 0, "oversize": 0, "malformed": 0, "crc_error": 0}

    def reset(self):
        """Forget any partial chunk (counters are kept)."""
        self._n = 0
        self._drop = False

    def feed(self, data, n=None):
        """Consume ``data[:n]`` (all of it when ``n`` is None) and return the
        frames it completed: a list, or the empty tuple when there are none,
        so that feeding a byte at a time allocates nothing. Pass a
        ``readinto`` buffer and its count to avoid any copy:
        ``d.feed(buf, uart.readinto(buf))``. A memoryview is copied once
        (it has no ``find``)."""
        if not isinstance(data, _BUFFERS):
            data = bytes(data)
        # The shared empty tuple until a frame completes: bytes that finish no frame allocate nothing.
        out = _NONE  # type: list  # type: ignore[assignment]
        if n is None or n > len(data):
            n = len(data)
        buf = self._buf
        i = 0
        while i < n:
            j = data.find(b"\x00", i, n)
            end = n if j < 0 else j
            k = end - i
            if k and not self._drop:
                m = self._n
                if m + k > MAX_CHUNK:  # case 1: count once, skip to the next 0x00
                    self._drop = True
                    self.counts["oversize"] += 1
                elif k <= _SMALL:  # short runs: copy without making a slice object
                    for t in range(k):
                        buf[m + t] = data[i + t]
                    self._n = m + k
                else:
                    buf[m:m + k] = memoryview(data)[i:end]
                    self._n = m + k
            if j < 0:
                break
            if self._drop:
                self._drop = False
            elif self._n:  # an empty chunk (00 00) is ignored silently
                f = self._chunk()
                if f is not None:
                    if out is _NONE:
                        out = []
                    out.append(f)
            self._n = 0
            i = j + 1
        return out

    def _chunk(self):
        try:
            m = _cobs_decode_into(self._mv, self._n, self._frm)
            f = parse(memoryview(self._frm)[:m])
        except WireError as e:
            self.counts[e.reason] += 1
            return None
        self.counts["frames"] += 1
        return f


class Keyring:
    """The pair keys a receiver knows and their replay marks (cases 8-11).

    ``node`` is the receiver's own node id; ``link`` the node ids configured
    on the link frames arrive on (``verify`` may name another link). A key
    is bound to one board node: it verifies that board's frames (uplink)
    and, at that board, frames addressed to it or to ``BROADCAST``
    (downlink). ``marks`` maps key id to the highest counter accepted; a
    relay persists it. ``counts`` holds ``accepted``, ``wrong_link``,
    ``auth_fail`` and ``replay``.

        >>> ring = Keyring(node=0, link=(1, 2))
        >>> ring.add(1, 1, b"TEST-ONLY-KEY-jp-0000000000000001"[:32])
    """

    def __init__(self, node, link=()):
        self.node = node
        self.link = tuple(link)
        self.marks = {}
        self._keys = {}
        self.counts = {"accepted": 0, "wrong_link": 0, "auth_fail": 0, "replay": 0}

    def add(self, key_id, node, key):
        """Know the 32-byte ``key`` with id ``key_id`` (1..255), bound to board ``node``."""
        if not 1 <= key_id <= 255:
            raise ValueError("key_id %d outside 1..255" % key_id)
        if len(key) != KEY_SIZE:
            raise ValueError("key of %d bytes, want %d" % (len(key), KEY_SIZE))
        self._keys[key_id] = (node, Hmac256(key))

    def mac(self, key_id):
        """The ``Hmac256`` of a known key (for ``pack``); KeyError if unknown."""
        return self._keys[key_id][1]

    def verify(self, frame, link=None):
        """Return ``frame`` if it passes cases 8-11 and raise the mark; else
        count and raise ``WireError`` (``wrong_link``, ``auth_fail``, ``replay``)."""
        try:
            self._check(frame, self.link if link is None else link)
        except WireError as e:
            self.counts[e.reason] += 1
            raise
        self.marks[frame.key_id] = frame.counter
        self.counts["accepted"] += 1
        return frame

    def _check(self, frame, link):
        if frame.src not in link:
            raise WireError("wrong_link", "node %d is not on this link" % frame.src)
        entry = self._keys.get(frame.key_id)
        if entry is None:
            raise WireError("auth_fail", "unknown key id %d" % frame.key_id)
        owner, mac = entry
        if not (owner == frame.src
                or (owner == self.node and (frame.dst == owner or frame.dst == BROADCAST))):
            raise WireError("auth_fail", "key %d is not bound to this pair" % frame.key_id)
        end = HEADER_SIZE + frame.length
        want = mac.digest(memoryview(frame.raw)[:end])
        got = frame.tag
        diff = 0
        for i in range(TAG_SIZE):  # constant time: no early exit
            diff |= want[i] ^ got[i]
        if diff:
            raise WireError("auth_fail", "bad tag")
        mark = self.marks.get(frame.key_id)
        if mark is not None and frame.counter <= mark:
            raise WireError("replay", "counter %d <= %d" % (frame.counter, mark))
