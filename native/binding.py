"""The one binding module: the only Python that touches cffi's ``ffi``/``lib``.

Each wrapper checks sizes and return codes and raises a clear exception;
everything above this module is strictly typed and never sees a cdata.

    >>> from trilink_native import binding
    >>> binding.abi_version()
    1
"""
from __future__ import annotations

from trilink_native._kernel import ffi, lib  # noqa: F401  (ffi used by sections below)

ABI_VERSION = 1


class KernelError(Exception):
    """A C kernel call returned an error code."""


def abi_version() -> int:
    """ABI version of the compiled kernel."""
    return int(lib.tl_abi_version())


if abi_version() != ABI_VERSION:  # a stale build next to new Python code
    raise ImportError(
        f"trilink_native._kernel has ABI {abi_version()}, binding expects {ABI_VERSION}; "
        "reinstall with `pip install -e .`"
    )

# ---------------------------------------------------------------- wire ----
# docs/PROTOCOL.md version 1 over native/c/wire.h, cobs.h, crc32.h, sha256.h.
# One cffi call per frame (pack, parse, verify) or per chunk of received
# bytes (Deframer.feed, Deframer.receive). Every rejection is a WireError
# whose ``reason`` is the counter name of PROTOCOL.md section 3.3.

import struct as _w_struct
from typing import Iterable as _w_Iterable, List as _w_List, Optional as _w_Opt, Union as _w_Union

WIRE_VERSION = int(lib.TL_WIRE_VERSION)
HEADER_SIZE = int(lib.TL_HEADER_SIZE)
TAG_SIZE = int(lib.TL_TAG_SIZE)
CRC_SIZE = int(lib.TL_CRC_SIZE)
OVERHEAD = int(lib.TL_OVERHEAD)
MAX_PAYLOAD = int(lib.TL_MAX_PAYLOAD)
MAX_FRAME = int(lib.TL_MAX_FRAME)
MAX_CHUNK = int(lib.TL_MAX_CHUNK)
MAX_SERIAL = int(lib.TL_MAX_SERIAL)
KEY_SIZE = int(lib.TL_KEY_SIZE)
BROADCAST = int(lib.TL_BROADCAST)
MAX_COUNTER = (1 << 48) - 1

FLAG_ACK_REQ = int(lib.TL_FLAG_ACK_REQ)
FLAG_RETRANSMIT = int(lib.TL_FLAG_RETRANSMIT)
FLAG_URGENT = int(lib.TL_FLAG_URGENT)
FLAG_RELAY_TIME = int(lib.TL_FLAG_RELAY_TIME)

MSG_HELLO = int(lib.TL_MSG_HELLO)
MSG_HEARTBEAT = int(lib.TL_MSG_HEARTBEAT)
MSG_TIME_SYNC_REQ = int(lib.TL_MSG_TIME_SYNC_REQ)
MSG_TIME_SYNC_RESP = int(lib.TL_MSG_TIME_SYNC_RESP)
MSG_TRACK_REPORT = int(lib.TL_MSG_TRACK_REPORT)
MSG_PICTURE = int(lib.TL_MSG_PICTURE)
MSG_KEYFRAME_REQ = int(lib.TL_MSG_KEYFRAME_REQ)
MSG_WARNING = int(lib.TL_MSG_WARNING)
MSG_WARNING_ACK = int(lib.TL_MSG_WARNING_ACK)
MSG_STATS = int(lib.TL_MSG_STATS)
MSG_DELIVERY = int(lib.TL_MSG_DELIVERY)
MSG_TYPES = (MSG_HELLO, MSG_HEARTBEAT, MSG_TIME_SYNC_REQ, MSG_TIME_SYNC_RESP, MSG_TRACK_REPORT, MSG_PICTURE,
             MSG_KEYFRAME_REQ, MSG_WARNING, MSG_WARNING_ACK, MSG_STATS, MSG_DELIVERY)

# TL_ERR_* code -> counter name (PROTOCOL.md section 3.3).
WIRE_REASONS = {
    int(lib.TL_ERR_CRC): "crc_error",
    int(lib.TL_ERR_MALFORMED): "malformed",
    int(lib.TL_ERR_OVERSIZE): "oversize",
    int(lib.TL_ERR_AUTH): "auth_fail",
    int(lib.TL_ERR_REPLAY): "replay",
    int(lib.TL_ERR_WRONG_LINK): "wrong_link",
}

_w_Bytes = _w_Union[bytes, bytearray, memoryview]
_W_HDR = _w_struct.Struct("<6BHIHH")  # version flags src dst type key_id seq counter_lo counter_hi length
_W_REF = _w_struct.Struct("=IIi")      # tl_frame_ref: offset, length, status
if _W_REF.size != ffi.sizeof("tl_frame_ref"):  # pragma: no cover - a platform with odd padding
    raise ImportError("tl_frame_ref layout differs from its struct format")


class WireError(KernelError, ValueError):
    """A frame, chunk or argument was rejected. ``reason`` is the counter name
    of PROTOCOL.md section 3.3: ``crc_error``, ``malformed``, ``oversize``,
    ``auth_fail``, ``replay`` or ``wrong_link``.

        >>> try:
        ...     parse_frame(b"short")
        ... except WireError as e:
        ...     e.reason
        'malformed'
    """

    def __init__(self, reason: str, detail: _w_Opt[str] = None) -> None:
        super().__init__(reason if detail is None else f"{reason}: {detail}")
        self.reason = reason


def _w_raise(rc: int, detail: _w_Opt[str] = None) -> None:
    if rc in WIRE_REASONS:
        raise WireError(WIRE_REASONS[rc], detail)
    if rc == lib.TL_ERR_SPACE:
        raise KernelError("wire: output buffer too small (a binding bug)")
    raise ValueError(detail or f"wire: bad argument (code {rc})")


class Frame:
    """One frame that passed cases 1-7: ``raw`` (the whole frame) and its
    header fields; ``payload`` and ``tag`` are slices of ``raw``.

        >>> f = parse_frame(pack_frame(bytes(32), 1, 1, 0, MSG_HEARTBEAT, 7, 5, bytes(20)))
        >>> (f.src, f.mtype, f.seq, f.counter, f.length)
        (1, 2, 7, 5, 20)
    """

    __slots__ = ("raw", "flags", "src", "dst", "mtype", "key_id", "seq", "counter", "length")
    version = WIRE_VERSION

    def __init__(self, raw: bytes) -> None:
        (_v, self.flags, self.src, self.dst, self.mtype, self.key_id, self.seq, lo, hi,
         self.length) = _W_HDR.unpack_from(raw)
        self.counter = lo | (hi << 32)
        self.raw = raw

    @property
    def payload(self) -> bytes:
        return self.raw[HEADER_SIZE:HEADER_SIZE + self.length]

    @property
    def tag(self) -> bytes:
        return self.raw[HEADER_SIZE + self.length:HEADER_SIZE + self.length + TAG_SIZE]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Frame) and self.raw == other.raw

    def __hash__(self) -> int:
        return hash(self.raw)

    def __repr__(self) -> str:
        return (f"Frame(src={self.src} dst={self.dst} type=0x{self.mtype:02x} key_id={self.key_id} "
                f"seq={self.seq} counter={self.counter} flags=0x{self.flags:02x} len={self.length})")


def crc32(data: _w_Bytes, crc: int = 0) -> int:
    """CRC-32 of the frames (zlib's); ``crc`` continues a previous value.

        >>> hex(crc32(b"123456789"))
        '0xcbf43926'
    """
    if not 0 <= crc <= 0xFFFFFFFF:
        raise ValueError("crc must be a 32-bit unsigned value")
    return int(lib.tl_crc32(crc, ffi.from_buffer(data), len(data)))


def sha256(data: _w_Bytes) -> bytes:
    """SHA-256 digest (32 bytes).

        >>> sha256(b"abc").hex()[:16]
        'ba7816bf8f01cfea'
    """
    out = ffi.new("uint8_t[32]")
    lib.tl_sha256(ffi.from_buffer(data), len(data), out)
    return ffi.buffer(out)[:]


class HmacKey:
    """A prepared HMAC-SHA256 key (its padded blocks hashed once).

        >>> HmacKey(b"key").digest(b"msg") == hmac_sha256(b"key", b"msg")
        True
    """

    __slots__ = ("_key",)

    def __init__(self, key: _w_Bytes) -> None:
        self._key = ffi.new("tl_hmac_key *")
        lib.tl_hmac_init(self._key, ffi.from_buffer(key), len(key))

    def digest(self, msg: _w_Bytes) -> bytes:
        """HMAC-SHA256 of ``msg`` (32 bytes)."""
        out = ffi.new("uint8_t[32]")
        lib.tl_hmac_digest(self._key, ffi.from_buffer(msg), len(msg), out)
        return ffi.buffer(out)[:]


def hmac_sha256(key: _w_Bytes, msg: _w_Bytes) -> bytes:
    """One-shot HMAC-SHA256 (RFC 2104), 32 bytes.

        >>> hmac_sha256(b"", b"").hex()[:16]
        'b613679a0814d9ec'
    """
    out = ffi.new("uint8_t[32]")
    lib.tl_hmac_sha256(ffi.from_buffer(key), len(key), ffi.from_buffer(msg), len(msg), out)
    return ffi.buffer(out)[:]


def cobs_encode(data: _w_Bytes) -> bytes:
    """COBS encoding of ``data`` per PROTOCOL.md section 3.1 (no delimiter).

        >>> cobs_encode(b"\\x11\\x00\\x22")
        b'\\x02\\x11\\x02"'
    """
    n = len(data)
    cap = int(lib.tl_cobs_max_encoded(n))
    out = ffi.new("uint8_t[]", cap)
    m = lib.tl_cobs_encode(ffi.from_buffer(data), n, out, cap)
    if m < 0:  # pragma: no cover - cap is always enough
        raise KernelError("cobs_encode: output buffer too small")
    return ffi.buffer(out, m)[:]


def cobs_decode(chunk: _w_Bytes) -> bytes:
    """Decode one COBS chunk (the bytes between two 0x00); a bad chunk
    raises ``WireError("malformed")``.

        >>> cobs_decode(b"\\x02\\x11\\x02\\x22")
        b'\\x11\\x00"'
    """
    n = len(chunk)
    out = ffi.new("uint8_t[]", max(n, 1))
    m = lib.tl_cobs_decode(ffi.from_buffer(chunk), n, out, n)
    if m < 0:
        raise WireError("malformed", "bad COBS chunk")
    return ffi.buffer(out, m)[:]


def serial_encode(frame: _w_Bytes, lead: bool = False) -> bytes:
    """Serial form of a frame: COBS + 0x00, with a leading 0x00 when ``lead``.

        >>> serial_encode(b"\\x11\\x00")
        b'\\x02\\x11\\x01\\x00'
    """
    n = len(frame)
    cap = n + 2 + n // 254
    out = ffi.new("uint8_t[]", cap)
    m = lib.tl_serial_encode(ffi.from_buffer(frame), n, out, cap)
    if m < 0:  # pragma: no cover - cap is always enough
        _w_raise(int(m))
    return (b"\x00" if lead else b"") + ffi.buffer(out, m)[:]


def _w_header(key_id: int, src: int, dst: int, mtype: int, seq: int, counter: int, flags: int,
              plen: int):
    if plen > MAX_PAYLOAD:
        raise ValueError(f"payload of {plen} bytes exceeds {MAX_PAYLOAD}")
    if not 0 <= flags <= 0x0F:
        raise ValueError(f"flags 0x{flags:x} set reserved bits")
    if not (0 <= src <= 254 and 0 <= dst <= 255 and 0 <= mtype <= 255 and 1 <= key_id <= 255):
        raise ValueError("src (0..254), dst, type (0..255) or key_id (1..255) out of range")
    if not (0 <= seq <= 0xFFFF and 0 <= counter <= MAX_COUNTER):
        raise ValueError("seq (16 bits) or counter (48 bits) out of range")
    h = ffi.new("tl_header *")
    h.flags, h.src, h.dst, h.type, h.key_id, h.seq, h.counter = flags, src, dst, mtype, key_id, seq, counter
    return h


def pack_frame(key: _w_Union[bytes, HmacKey], key_id: int, src: int, dst: int, mtype: int, seq: int,
               counter: int, payload: _w_Bytes = b"", flags: int = 0) -> bytes:
    """One raw frame (header, payload, tag, CRC), the same arguments as the
    board's ``trilink_board.wire.pack``. ``key`` is the 32-byte pair key or an
    ``HmacKey``. A field out of range raises ``ValueError``.

        >>> len(pack_frame(bytes(32), 1, 1, 0, MSG_HELLO, 0, 1, b"", FLAG_ACK_REQ))
        28
    """
    if not isinstance(key, HmacKey):
        if len(key) != KEY_SIZE:
            raise ValueError(f"key of {len(key)} bytes, want {KEY_SIZE}")
        key = HmacKey(key)
    plen = len(payload)
    h = _w_header(key_id, src, dst, mtype, seq, counter, flags, plen)
    out = ffi.new("uint8_t[]", OVERHEAD + plen)
    m = lib.tl_frame_pack(key._key, h, ffi.from_buffer(payload), plen, out, OVERHEAD + plen)
    if m < 0:
        _w_raise(int(m), "pack_frame")
    return ffi.buffer(out, m)[:]


def parse_frame(raw: _w_Bytes) -> Frame:
    """Check one raw frame (a UDP datagram, cases 3-7) and return it as a
    ``Frame``; raises ``WireError`` (``malformed`` or ``crc_error``). The tag
    is checked by ``Keyring.verify``.

        >>> parse_frame(pack_frame(bytes(32), 1, 1, 0, MSG_HELLO, 0, 1)).mtype
        1
    """
    rc = lib.tl_frame_parse(ffi.from_buffer(raw), len(raw), ffi.NULL)
    if rc != 0:
        _w_raise(int(rc), f"frame of {len(raw)} bytes")
    return Frame(bytes(raw))


def _w_link_mask(nodes: _w_Iterable[int]) -> bytes:
    mask = bytearray(32)
    for nd in nodes:
        if not 0 <= int(nd) <= 255:
            raise ValueError(f"node id {nd} outside 0..255")
        mask[int(nd) >> 3] |= 1 << (int(nd) & 7)
    return bytes(mask)


class Keyring:
    """The pair keys a receiver knows and their replay marks: PROTOCOL.md
    cases 8-11, the same rules as ``trilink_board.wire.Keyring``.

    ``node`` is the receiver's own node id, ``link`` the node ids configured
    on the link frames arrive on (``verify`` may name another link).
    ``counts`` holds ``accepted``, ``wrong_link``, ``auth_fail``, ``replay``;
    ``marks`` maps key id to the highest counter accepted (a relay persists it
    and restores it with ``set_mark``).

        >>> ring = Keyring(node=0, link=(1,))
        >>> ring.add(1, 1, b"TEST-ONLY-KEY-jp-0000000000000001"[:32])
        >>> ring.verify(ring.pack(1, 1, 0, MSG_HEARTBEAT, 0, 1 << 28, bytes(20))).counter
        268435456
    """

    def __init__(self, node: int, link: _w_Iterable[int] = ()) -> None:
        if not 0 <= node <= 255:
            raise ValueError("node id outside 0..255")
        self.node = node
        self._k = ffi.new("tl_keyring *")
        lib.tl_keyring_init(self._k, node)
        self.link = tuple(link)

    @property
    def link(self) -> tuple:
        return self._link

    @link.setter
    def link(self, nodes: _w_Iterable[int]) -> None:
        nodes = tuple(nodes)
        self._mask = _w_link_mask(nodes)
        self._link = nodes

    def add(self, key_id: int, node: int, key: _w_Bytes) -> None:
        """Know the 32-byte ``key`` with id ``key_id`` (1..255), bound to board ``node``.
        Replacing a key keeps its mark."""
        if not 1 <= key_id <= 255 or not 0 <= node <= 255:
            raise ValueError(f"key_id {key_id} outside 1..255 or node {node} outside 0..255")
        if len(key) != KEY_SIZE:
            raise ValueError(f"key of {len(key)} bytes, want {KEY_SIZE}")
        if lib.tl_keyring_add(self._k, key_id, node, ffi.from_buffer(key), len(key)) != 0:
            raise ValueError("keyring rejected the key")  # pragma: no cover - checked above

    def remove(self, key_id: int) -> None:
        """Forget a key and its mark."""
        if not 1 <= key_id <= 255:
            raise ValueError(f"key_id {key_id} outside 1..255")
        lib.tl_keyring_remove(self._k, key_id)

    def set_mark(self, key_id: int, mark: int) -> None:
        """Restore a persisted high-water mark: later frames need a counter above it."""
        if not 1 <= key_id <= 255 or not 0 <= mark <= MAX_COUNTER:
            raise ValueError("key_id outside 1..255 or mark outside 48 bits")
        lib.tl_keyring_set_mark(self._k, key_id, mark)

    def set_window(self, key_id: int, window: int) -> None:
        """Replay window of ``key_id`` (PROTOCOL.md 3.2): 0 accepts only
        counters above the mark; 1..64 also accepts, once, a counter below
        the mark by less than ``window`` (a datagram link that reorders)."""
        if not 1 <= key_id <= 255 or not 0 <= window <= 64:
            raise ValueError("key_id outside 1..255 or window outside 0..64")
        lib.tl_keyring_set_window(self._k, key_id, window)

    @property
    def marks(self) -> dict:
        """{key_id: highest counter accepted} for every key id with a mark."""
        out = {}
        for kid in range(1, 256):
            s = self._k.slot[kid]
            if s.has_mark:
                out[kid] = int(s.mark)
        return out

    @property
    def counts(self) -> dict:
        k = self._k
        return {"accepted": int(k.accepted), "wrong_link": int(k.wrong_link),
                "auth_fail": int(k.auth_fail), "replay": int(k.replay)}

    def _mask_for(self, link: _w_Opt[_w_Iterable[int]]) -> bytes:
        return self._mask if link is None else _w_link_mask(link)

    def verify(self, frame: _w_Union[Frame, bytes, bytearray, memoryview],
               link: _w_Opt[_w_Iterable[int]] = None) -> Frame:
        """Return the frame if it passes cases 8-11 (raising its key's mark);
        else count it and raise ``WireError`` (``wrong_link``, ``auth_fail``,
        ``replay``). Raw bytes are parsed first (cases 3-7, ``malformed`` or
        ``crc_error``, not counted here)."""
        f = frame if isinstance(frame, Frame) else parse_frame(frame)
        rc = lib.tl_keyring_verify(self._k, f.raw, len(f.raw), self._mask_for(link))
        if rc != 0:
            _w_raise(int(rc), f"src {f.src} key_id {f.key_id} counter {f.counter}")
        return f

    def pack(self, key_id: int, src: int, dst: int, mtype: int, seq: int, counter: int,
             payload: _w_Bytes = b"", flags: int = 0) -> bytes:
        """``pack_frame`` with this keyring's key ``key_id`` (``ValueError`` if unknown)."""
        plen = len(payload)
        h = _w_header(key_id, src, dst, mtype, seq, counter, flags, plen)
        out = ffi.new("uint8_t[]", OVERHEAD + plen)
        m = lib.tl_keyring_pack(self._k, h, ffi.from_buffer(payload), plen, out, OVERHEAD + plen)
        if m < 0:
            _w_raise(int(m), f"no key {key_id}" if m == lib.TL_ERR_ARG else "pack")
        return ffi.buffer(out, m)[:]


class Deframer:
    """Incremental serial deframer (cases 1-7) with a fixed C buffer; one C
    call per chunk of bytes however many frames it holds. ``counts`` holds
    ``frames`` (delivered), ``oversize``, ``malformed``, ``crc_error``.

        >>> d = Deframer()
        >>> raw = pack_frame(bytes(32), 1, 1, 0, MSG_HEARTBEAT, 0, 1, bytes(20))
        >>> [f.seq for f in d.feed(serial_encode(raw) * 2)]
        [0, 0]
        >>> d.feed(b"\\x05\\x01\\x00"), d.counts["malformed"]
        ([], 1)
    """

    def __init__(self, arena: int = 1 << 16) -> None:
        self._d = ffi.new("tl_deframer *")
        lib.tl_deframer_init(self._d)
        self._cap = max(int(arena), MAX_CHUNK)
        self._out = ffi.new("uint8_t[]", self._cap)
        # Each delivered frame fills at least OVERHEAD arena bytes, so refs never run out first.
        self._nrefs = self._cap // OVERHEAD + 1
        self._refs = ffi.new("tl_frame_ref[]", self._nrefs)
        self._consumed = ffi.new("size_t *")

    def reset(self) -> None:
        """Forget a partial chunk (counters are kept)."""
        lib.tl_deframer_reset(self._d)

    @property
    def counts(self) -> dict:
        d = self._d
        return {"frames": int(d.frames), "oversize": int(d.oversize), "malformed": int(d.malformed),
                "crc_error": int(d.crc_error)}

    def _run(self, data: _w_Bytes, k, mask: _w_Opt[bytes]):
        """Yield (status, raw) for every delivered frame."""
        n = len(data)
        src = ffi.from_buffer(data)
        pos = 0
        out = []
        while True:
            if k is None:
                cnt = lib.tl_deframer_feed(self._d, src + pos, n - pos, self._consumed, self._out, self._cap,
                                           self._refs, self._nrefs)
            else:
                cnt = lib.tl_wire_receive(self._d, k, mask, src + pos, n - pos, self._consumed, self._out,
                                          self._cap, self._refs, self._nrefs)
            if cnt < 0:  # pragma: no cover - the arguments are always valid
                _w_raise(int(cnt), "deframer")
            if cnt:
                refs = ffi.buffer(self._refs, cnt * _W_REF.size)
                mem = ffi.buffer(self._out, self._cap)
                out.extend((st, mem[off:off + ln]) for off, ln, st in _W_REF.iter_unpack(refs))
            pos += self._consumed[0]
            if pos >= n:
                return out

    def feed_raw(self, data: _w_Bytes) -> _w_List[bytes]:
        """Consume bytes; return the raw frames (bytes) they completed."""
        return [raw for _st, raw in self._run(data, None, None)]

    def feed(self, data: _w_Bytes) -> _w_List[Frame]:
        """Consume bytes; return the ``Frame`` objects they completed."""
        return [Frame(raw) for _st, raw in self._run(data, None, None)]

    def receive(self, data: _w_Bytes, keyring: Keyring, link: _w_Opt[_w_Iterable[int]] = None,
                rejected: _w_Opt[list] = None) -> _w_List[Frame]:
        """Deframe and verify in one C call per chunk (the relay's hot path):
        return the frames accepted by ``keyring`` (cases 1-11); frames that
        failed 8-11 are counted in ``keyring.counts`` and, when ``rejected``
        is a list, appended to it as (reason, Frame).

            >>> ring = Keyring(0, link=(1,)); ring.add(1, 1, bytes(32))
            >>> wire = serial_encode(ring.pack(1, 1, 0, MSG_HEARTBEAT, 0, 5, bytes(20)))
            >>> [f.counter for f in Deframer().receive(wire * 2, ring)], ring.counts["replay"]
            ([5], 1)
        """
        res = self._run(data, keyring._k, keyring._mask_for(link))
        if rejected is not None:
            rejected.extend((WIRE_REASONS[st], Frame(raw)) for st, raw in res if st)
        return [Frame(raw) for st, raw in res if not st]

    def receive_raw(self, data: _w_Bytes, keyring: Keyring, link: _w_Opt[_w_Iterable[int]] = None) -> _w_List[bytes]:
        """As ``receive``, returning the accepted raw frames (bytes) only: the
        cheapest path when frames are forwarded or decoded in C anyway."""
        return [raw for st, raw in self._run(data, keyring._k, keyring._mask_for(link)) if not st]


# --------------------------------------------------------------- codec ----
# docs/PROTOCOL.md section 5 over native/c/codec.h and drmodel.h. One cffi
# call per batch: arrays in a TrackBatch are handed to C as pointers. Every
# decode error is a CodecError whose ``reason`` is the name of section 5.7
# ("truncated", "version", "malformed"); encoding a value the format cannot
# carry is "range" (or "no_base", "no_space", "full").

import numpy as _c_np
from typing import Dict as _c_Dict, List as _c_List, Optional as _c_Opt, Tuple as _c_Tuple

CODEC_VERSION = int(lib.TL_CODEC_VERSION)
CODEC_REPORT = int(lib.TL_CODEC_REPORT)
CODEC_PICTURE = int(lib.TL_CODEC_PICTURE)
REC_KEY = int(lib.TL_REC_KEY)
REC_DELTA = int(lib.TL_REC_DELTA)
REC_DROP = int(lib.TL_REC_DROP)
REC_NONE = int(lib.TL_REC_NONE)
DR_UPDATE = int(lib.TL_DR_UPDATE)
DR_DROP = int(lib.TL_DR_DROP)
SEND_COV = int(lib.TL_SEND_COV)
SEND_META = int(lib.TL_SEND_META)
SEND_IMPACT = int(lib.TL_SEND_IMPACT)
REC_OK = int(lib.TL_REC_OK)
REC_NO_BASE = int(lib.TL_REC_NO_BASE)
REC_DUP = int(lib.TL_REC_DUP)
REC_GONE = int(lib.TL_REC_GONE)
CODEC_MAX_RECORDS = int(lib.TL_CODEC_MAX_RECORDS)
CODEC_MAX_SOURCES = int(lib.TL_CODEC_MAX_SOURCES)
DR_COUNTERS = ("inputs", "keyframes", "deltas", "drops", "suppressed", "heartbeat", "position",
               "covariance", "meta", "impact", "new_track", "stale")

CODEC_REASONS = {
    int(lib.TL_CODEC_ETRUNC): "truncated",
    int(lib.TL_CODEC_EVERSION): "version",
    int(lib.TL_CODEC_EMALFORMED): "malformed",
    int(lib.TL_CODEC_ERANGE): "range",
    int(lib.TL_CODEC_ENOBASE): "no_base",
    int(lib.TL_CODEC_ENOSPACE): "no_space",
    int(lib.TL_CODEC_EARG): "argument",
    int(lib.TL_CODEC_EFULL): "full",
}


class CodecError(ValueError):
    """A payload that does not decode, or a batch the codec cannot encode;
    ``reason`` names which (see CODEC_REASONS)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason + (": " + detail if detail else ""))
        self.reason = reason


def _codec_check(st: int, what: str) -> int:
    if st < 0:
        raise CodecError(CODEC_REASONS.get(st, "error %d" % st), what)
    return st


_TB_FIELDS = (  # name, dtype, per-record shape, C field
    ("rtype", _c_np.uint8, ()), ("send", _c_np.uint8, ()), ("status", _c_np.uint8, ()),
    ("tid", _c_np.uint32, ()), ("t_us", _c_np.uint64, ()), ("x", _c_np.float64, (6,)),
    ("P", _c_np.float64, (6, 6)), ("flags", _c_np.uint8, ()), ("nations", _c_np.uint32, ()),
    ("report_id", _c_np.uint32, ()), ("n_src", _c_np.uint8, ()),
    ("src_node", _c_np.uint8, (16,)), ("src_rid", _c_np.uint32, (16,)),
    ("has_impact", _c_np.uint8, ()), ("impact", _c_np.float64, (5,)),
    ("impact_t_us", _c_np.uint64, ()),
)


_TB_NAMES = frozenset(name for name, _, _ in _TB_FIELDS)
_TB_CTYPE = {_c_np.uint8: "uint8_t *", _c_np.uint32: "uint32_t *", _c_np.uint64: "uint64_t *",
             _c_np.float64: "double *"}


class TrackBatch:
    """Parallel arrays of n track updates (codec.h tl_track_batch): tid[n],
    t_us[n], x[n,6] (local ENU m, m/s), P[n,6,6], flags[n], nations[n],
    report_id[n], n_src[n] with src_node/src_rid[n,16], has_impact[n],
    impact[n,5] (east, north, semi-major, semi-minor m, orientation deg),
    impact_t_us[n]; rtype[n], send[n], status[n] as in codec.h.

        >>> b = TrackBatch.empty(2)
        >>> b.x.shape, b.P.shape
        ((2, 6), (2, 6, 6))
    """

    def __init__(self, **arrays: _c_np.ndarray) -> None:
        n = len(arrays["tid"])
        for name, dt, shape in _TB_FIELDS:
            a = arrays.get(name)
            a = _c_np.zeros((n,) + shape, dt) if a is None else _c_np.ascontiguousarray(a, dtype=dt)
            if a.shape != (n,) + shape:
                raise ValueError("TrackBatch.%s has shape %s, expected %s" % (name, a.shape, (n,) + shape))
            setattr(self, name, a)
        self.n = n

    @classmethod
    def empty(cls, n: int) -> "TrackBatch":
        """A batch of n zeroed records."""
        return cls(tid=_c_np.zeros(n, _c_np.uint32))

    def take(self, idx) -> "TrackBatch":
        """A new batch of the records at ``idx`` (slice, index array or mask)."""
        return TrackBatch(**{name: getattr(self, name)[idx] for name, _, _ in _TB_FIELDS})

    def __setattr__(self, name: str, value) -> None:
        object.__setattr__(self, name, value)
        if name in _TB_NAMES:   # an array replaced: the C view must be rebuilt
            object.__setattr__(self, "_cb", None)

    def _c(self):
        """The tl_track_batch pointing at these arrays (valid while self lives;
        cached until an array attribute is replaced)."""
        cb = self._cb
        if cb is not None:
            return cb
        cb = ffi.new("tl_track_batch *")
        cb.n = self.n
        for name, dt, _ in _TB_FIELDS:
            a = getattr(self, name)
            if a.shape[0] != self.n or not a.flags.c_contiguous or a.dtype != dt:
                raise ValueError("TrackBatch.%s must stay a C-contiguous %s array of %d records"
                                 % (name, _c_np.dtype(dt).name, self.n))
            setattr(cb, name, ffi.cast(_TB_CTYPE[dt], a.ctypes.data))
        object.__setattr__(self, "_cb", cb)
        return cb


class CodecTable:
    """The track copies a receiver holds (or a sender's mirror of them).

        >>> t = CodecTable(100); len(t)
        0
    """

    def __init__(self, capacity: int = 4096) -> None:
        p = lib.tl_codec_table_new(int(capacity))
        if p == ffi.NULL:
            raise CodecError("argument", "table capacity 1..2^24")
        self._t = ffi.gc(p, lib.tl_codec_table_free)

    def __len__(self) -> int:
        return int(lib.tl_codec_table_count(self._t))

    def forget(self, tid: _c_Opt[int] = None) -> None:
        """Forget one track's copy (None: every copy), e.g. on KEYFRAME_REQ."""
        lib.tl_codec_table_forget(self._t, -1 if tid is None else int(tid))


_C_OUT = ffi.new("uint8_t[]", CODEC_MAX_RECORDS)
_C_OUT_VIEW = ffi.buffer(_C_OUT)   # made once: a new ffi.buffer per call costs ~0.4 us of a ~10 us encode


def codec_encode(kind: int, batch: TrackBatch, pos_mm: int = 1000, vel_mm: int = 50,
                 base_us: _c_Opt[int] = None, held: _c_Opt[CodecTable] = None) -> bytes:
    """One payload of the records of ``batch`` with record types batch.rtype
    (and DELTA contents batch.send) against ``held`` (updated on success).

        >>> b = TrackBatch.empty(1); b.P[0] = _c_np.eye(6); b.tid[0] = 3
        >>> p = codec_encode(CODEC_PICTURE, b)
        >>> codec_decode(p)[1].tid.tolist()
        [3]
    """
    if base_us is None:
        base_us = int(batch.t_us[0]) if batch.n else 0
    out = _C_OUT   # reused: the result is copied out before returning
    st = lib.tl_codec_encode(kind, pos_mm, vel_mm, base_us, batch._c(),
                             held._t if held is not None else ffi.NULL, out, CODEC_MAX_RECORDS)
    if st < 0:
        _codec_check(st, "encode")
    return _C_OUT_VIEW[:st]


def codec_decode(payload: bytes, held: _c_Opt[CodecTable] = None) -> _c_Tuple[_c_Dict[str, int], TrackBatch]:
    """(header, batch) of one payload; header has kind, pos_mm, vel_mm,
    base_us, base_rid, count. ``held`` (updated on success) resolves deltas;
    without it deltas come back with status REC_NO_BASE."""
    data = bytes(payload)
    buf = ffi.from_buffer(data)
    n = _codec_check(lib.tl_codec_peek_count(buf, len(data)), "decode")
    hdr = ffi.new("tl_codec_header *")
    b = TrackBatch.empty(n)
    st = lib.tl_codec_decode(buf, len(data), held._t if held is not None else ffi.NULL, b._c(), n, hdr)
    _codec_check(st, "decode")
    header = {"kind": hdr.kind, "pos_mm": hdr.pos_mm, "vel_mm": hdr.vel_mm, "base_us": int(hdr.base_us),
              "base_rid": int(hdr.base_rid), "count": hdr.count}
    return header, b


class DeadReckoner:
    """Dead-reckoning sender toward one destination (codec.h tl_dr).

        >>> dr = DeadReckoner(CODEC_PICTURE, origin_lat_deg=36.0)
        >>> b = TrackBatch.empty(1); b.P[0] = _c_np.eye(6); b.x[0, 2] = 1e5
        >>> [len(p) > 0 for p in dr.encode(b)], dr.counters["keyframes"]
        ([True], 1)
    """

    def __init__(self, kind: int, origin_lat_deg: float, origin_h_m: float = 0.0, capacity: int = 4096,
                 **config: float) -> None:
        cfg = ffi.new("tl_dr_config *")
        lib.tl_dr_config_default(cfg)
        cfg.kind = kind
        cfg.origin_lat_deg = origin_lat_deg
        cfg.origin_h_m = origin_h_m
        for k, v in config.items():
            if not hasattr(cfg, k):
                raise ValueError("unknown dead-reckoning setting %r" % k)
            setattr(cfg, k, v)
        p = lib.tl_dr_new(cfg, int(capacity))
        if p == ffi.NULL:
            raise CodecError("argument", "dead-reckoning config")
        self._d = ffi.gc(p, lib.tl_dr_free)
        self.pos_mm = int(cfg.pos_mm)
        self.vel_mm = int(cfg.vel_mm)

    def encode(self, batch: TrackBatch, base_us: _c_Opt[int] = None) -> _c_List[bytes]:
        """Payloads (each <= 1024 bytes; none when all was suppressed) for the
        inputs of ``batch``: batch.rtype in = DR_UPDATE or DR_DROP, out = the
        record sent or REC_NONE; batch.send out = what a record carried."""
        out = ffi.new("uint8_t[]", CODEC_MAX_RECORDS)
        consumed = ffi.new("int32_t *")
        payloads = []
        start = 0
        while start < batch.n:
            part = batch.take(slice(start, batch.n)) if start else batch
            cb = part._c()
            b0 = int(part.t_us[0]) if base_us is None else base_us
            st = _codec_check(lib.tl_dr_encode(self._d, b0, cb, consumed, out, CODEC_MAX_RECORDS), "dead reckoning")
            if part is not batch:
                batch.rtype[start:] = part.rtype
                batch.send[start:] = part.send
            if (part.rtype[:consumed[0]] != REC_NONE).any():
                payloads.append(bytes(ffi.buffer(out, st)))
            if consumed[0] == 0:
                raise CodecError("no_space", "a record does not fit a payload")
            start += consumed[0]
        return payloads

    def request_keyframe(self, tid: _c_Opt[int] = None) -> None:
        """KEYFRAME_REQ: the next update of ``tid`` (None: every track) is a keyframe."""
        lib.tl_dr_request_keyframe(self._d, -1 if tid is None else int(tid))

    @property
    def counters(self) -> _c_Dict[str, int]:
        c = ffi.new("uint64_t[12]")
        lib.tl_dr_counters(self._d, c)
        return {name: int(c[i]) for i, name in enumerate(DR_COUNTERS)}


def dr_extrapolate(x: _c_np.ndarray, dt_s: float, origin_lat_deg: float, origin_h_m: float = 0.0,
                   step_s: float = 1.0) -> _c_np.ndarray:
    """State x[6] (local ENU) advanced dt_s seconds by the dead-reckoning model."""
    m = ffi.new("tl_drm *")
    lib.tl_drm_init(m, origin_lat_deg, origin_h_m, step_s)
    s = _c_np.array(x, dtype=_c_np.float64).reshape(6)
    lib.tl_drm_extrapolate(m, ffi.cast("double *", s.ctypes.data), float(dt_s))
    return s


# ------------------------------------------- fusion: geodesy and motion ----
# Angles: latitudes/longitudes (sites, impact points, territories) are in
# DEGREES here and radians in C; measured azimuth/elevation are in RADIANS.
# Batched calls are one cffi call per batch; per-track failures come back in
# a status array (TRK_* codes, see STATUS_NAMES) and leave that track as it was.

import functools as _functools
import math as _math
from dataclasses import dataclass as _dataclass
from typing import Optional as _Optional, Sequence as _Sequence, Tuple as _Tuple

import numpy as _np

TRK_OK = int(lib.TL_TRK_OK)
TRK_ENONFINITE = int(lib.TL_TRK_ENONFINITE)
TRK_ENOTPD = int(lib.TL_TRK_ENOTPD)
TRK_ETIME = int(lib.TL_TRK_ETIME)
TRK_ENOIMPACT = int(lib.TL_TRK_ENOIMPACT)
TRK_EARG = int(lib.TL_TRK_EARG)
TRK_ESINGULAR = int(lib.TL_TRK_ESINGULAR)
STATUS_NAMES = {
    TRK_OK: "ok",
    TRK_ENONFINITE: "non-finite input or result",
    TRK_ENOTPD: "covariance not symmetric positive definite",
    TRK_ETIME: "time out of order or step too long",
    TRK_ENOIMPACT: "no impact within the search horizon (or already below the surface)",
    TRK_EARG: "degenerate geometry",
    TRK_ESINGULAR: "singular innovation or geometry",
}


class FusionArgumentError(KernelError, ValueError):
    """A fusion kernel call rejected its arguments as a whole (returned -1)."""


@_dataclass(frozen=True)
class MotionModel:
    """Ballistic motion model settings (see docs/FUSION.md).

        >>> MotionModel(q=0.5).step
        1.0
    """

    q: float = 1.0  # white-acceleration spectral density, m^2/s^3 per axis
    step: float = 1.0  # RK4 step, s
    j2: bool = True  # include the J2 term of gravity


@_functools.lru_cache(maxsize=64)
def _gm_motion(model: _Optional[MotionModel]):
    # Cached: MotionModel is frozen, and the cdata is only ever read by C.
    m = ffi.new("tl_motion *")
    lib.tl_motion_default(m)
    if model is not None:
        m.q, m.step, m.j2 = float(model.q), float(model.step), 1 if model.j2 else 0
    return m


def _gm_f64(a, shape_tail: _Tuple[int, ...], name: str, n: _Optional[int] = None) -> _np.ndarray:
    """A read-only input as a C-contiguous float64 array of shape (n,) + shape_tail."""
    arr = _np.ascontiguousarray(a, dtype=_np.float64)
    if arr.shape[1:] != shape_tail or arr.ndim != 1 + len(shape_tail) or (n is not None and arr.shape[0] != n):
        want = ("N" if n is None else str(n),) + tuple(str(s) for s in shape_tail)
        raise ValueError(f"{name} must have shape ({', '.join(want)}), got {arr.shape}")
    return arr


def _gm_inplace(a: _np.ndarray, shape_tail: _Tuple[int, ...], name: str, n: _Optional[int] = None) -> _np.ndarray:
    """An in-place argument: must already be writable C-contiguous float64."""
    if not isinstance(a, _np.ndarray) or a.dtype != _np.float64 or not a.flags.c_contiguous or not a.flags.writeable:
        raise ValueError(f"{name} must be a writable C-contiguous float64 numpy array (it is updated in place)")
    return _gm_f64(a, shape_tail, name, n)


def _gm_dbl(arr: _np.ndarray):
    return ffi.from_buffer("double[]", arr)


def _gm_check_call(rc: int, what: str) -> None:
    if rc < 0:
        raise FusionArgumentError(f"{what}: arguments rejected by the kernel")


def geodetic_to_ecef(llh_deg) -> _np.ndarray:
    """WGS-84 (lat deg, lon deg, h m)[N,3] -> ECEF m [N,3]; non-finite rows give NaN.

        >>> geodetic_to_ecef([[0.0, 0.0, 0.0]])[0, 0]
        6378137.0
    """
    llh = _gm_f64(llh_deg, (3,), "llh_deg").copy()
    llh[:, :2] = _np.radians(llh[:, :2])
    out = _np.empty_like(llh)
    _gm_check_call(lib.tl_geo_to_ecef_n(len(llh), _gm_dbl(llh), _gm_dbl(out), ffi.NULL), "geodetic_to_ecef")
    return out


def ecef_to_geodetic(ecef) -> _np.ndarray:
    """ECEF m [N,3] -> WGS-84 (lat deg, lon deg, h m) [N,3]; bad rows (NaN, near the centre) give NaN.

        >>> round(float(ecef_to_geodetic([[6378137.0, 0.0, 0.0]])[0, 2]), 6)
        0.0
    """
    e = _gm_f64(ecef, (3,), "ecef")
    out = _np.empty_like(e)
    _gm_check_call(lib.tl_ecef_to_geo_n(len(e), _gm_dbl(e), _gm_dbl(out), ffi.NULL), "ecef_to_geodetic")
    out[:, :2] = _np.degrees(out[:, :2])
    return out


def _gm_origin(origin_llh_deg) -> _np.ndarray:
    o = _np.array(origin_llh_deg, dtype=_np.float64).reshape(3)
    o[:2] = _np.radians(o[:2])
    return o


def ecef_to_enu(ecef, origin_llh_deg) -> _np.ndarray:
    """ECEF m [N,3] -> local east/north/up m around origin (lat deg, lon deg, h m).

        >>> ecef_to_enu(geodetic_to_ecef([[35.0, 135.0, 10.0]]), (35.0, 135.0, 0.0)).round(6).tolist()
        [[0.0, 0.0, 10.0]]
    """
    e = _gm_f64(ecef, (3,), "ecef")
    out = _np.empty_like(e)
    _gm_check_call(lib.tl_ecef_to_enu_n(len(e), _gm_dbl(e), _gm_dbl(_gm_origin(origin_llh_deg)), _gm_dbl(out), ffi.NULL), "ecef_to_enu")
    return out


def enu_to_ecef(enu, origin_llh_deg) -> _np.ndarray:
    """Local east/north/up m [N,3] around origin (lat deg, lon deg, h m) -> ECEF m."""
    e = _gm_f64(enu, (3,), "enu")
    out = _np.empty_like(e)
    _gm_check_call(lib.tl_enu_to_ecef_n(len(e), _gm_dbl(e), _gm_dbl(_gm_origin(origin_llh_deg)), _gm_dbl(out), ffi.NULL), "enu_to_ecef")
    return out


def acceleration(x, model: _Optional[MotionModel] = None) -> _np.ndarray:
    """ECEF acceleration (gravity, J2, Coriolis, centrifugal) m/s^2 at one state x[6]."""
    s = _gm_f64(_np.reshape(x, (1, 6)), (6,), "x")
    a = _np.empty(3)
    lib.tl_motion_accel(_gm_motion(model), _gm_dbl(s), _gm_dbl(a))
    return a


def jacobi(x, model: _Optional[MotionModel] = None) -> _np.ndarray:
    """Jacobi integral J/kg of ECEF states x[N,6] (energy in the Earth-fixed
    frame): constant in ballistic flight, rising under thrust.

        >>> e = jacobi([[6.5e6, 0, 0, 0, 7e3, 0], [6.5e6, 0, 0, 0, 7.1e3, 0]])
        >>> bool(e[1] - e[0] > 0)
        True
    """
    xs = _gm_f64(x, (6,), "x")
    out = _np.empty(len(xs))
    _gm_check_call(lib.tl_motion_jacobi(_gm_motion(model), len(xs), _gm_dbl(xs), _gm_dbl(out)), "jacobi")
    return out


def predict_one(x, P, dt: float, model: _Optional[MotionModel] = None):
    """Propagate one track by dt >= 0 s; returns (status, x_new, P_new, Phi) (copies).

        >>> st, x1, P1, Phi = predict_one([6.5e6, 0, 0, 0, 7e3, 0], 100 * np.eye(6), 1.0)
    """
    xs = _gm_f64(_np.reshape(x, (1, 6)), (6,), "x").copy()
    Ps = None if P is None else _gm_f64(_np.reshape(P, (1, 6, 6)), (6, 6), "P").copy()
    Phi = _np.empty((6, 6))
    st = lib.tl_motion_predict1(_gm_motion(model), _gm_dbl(xs), ffi.NULL if Ps is None else _gm_dbl(Ps), float(dt), _gm_dbl(Phi))
    return int(st), xs[0], None if Ps is None else Ps[0], Phi


def predict(x: _np.ndarray, P: _Optional[_np.ndarray], t_from, t_to: float,
            model: _Optional[MotionModel] = None) -> _np.ndarray:
    """Predict N tracks in place from t_from[N] to the common time t_to.

    x is [N,6] ECEF state, P is [N,6,6] or None (state only); both must be
    writable C-contiguous float64. Returns the int32 status per track.

        >>> x = np.array([[6.5e6, 0, 0, 0, 7e3, 0]]); P = np.eye(6)[None] * 100.0
        >>> predict(x, P, np.zeros(1), 2.0).tolist()
        [0]
    """
    xs = _gm_inplace(x, (6,), "x")
    n = len(xs)
    Ps = None if P is None else _gm_inplace(P, (6, 6), "P", n)
    tf = _gm_f64(t_from, (), "t_from", n)
    status = _np.zeros(n, dtype=_np.int32)
    rc = lib.tl_motion_predict(_gm_motion(model), n, _gm_dbl(xs), ffi.NULL if Ps is None else _gm_dbl(Ps), _gm_dbl(tf),
                               float(t_to), ffi.from_buffer("int32_t[]", status))
    _gm_check_call(rc, "predict")
    return status


def kf_predict(x: _np.ndarray, P: _np.ndarray, F, Q) -> _np.ndarray:
    """Linear Kalman predict in place for N tracks: x <- F x, P <- F P F' + Q. Returns status[N]."""
    xs = _gm_inplace(x, x.shape[1:] if getattr(x, "ndim", 0) == 2 else (-1,), "x")
    n, dx = xs.shape
    Ps = _gm_inplace(P, (dx, dx), "P", n)
    Fm = _gm_f64(_np.reshape(F, (1, dx, dx)), (dx, dx), "F")
    Qm = _gm_f64(_np.reshape(Q, (1, dx, dx)), (dx, dx), "Q")
    status = _np.zeros(n, dtype=_np.int32)
    _gm_check_call(lib.tl_kf_predict(n, dx, _gm_dbl(xs), _gm_dbl(Ps), _gm_dbl(Fm), _gm_dbl(Qm), ffi.from_buffer("int32_t[]", status)),
                "kf_predict")
    return status


def kf_update(x: _np.ndarray, P: _np.ndarray, z, H, R) -> _np.ndarray:
    """Linear Joseph-form update in place: z [N,dz], H [dz,dx] shared, R [N,dz,dz] or [dz,dz]. Returns status[N].

        >>> x = np.zeros((1, 2)); P = np.eye(2)[None].copy()
        >>> kf_update(x, P, [[1.0]], [[1.0, 0.0]], [[1.0]]).tolist(), x[0, 0]
        ([0], 0.5)
    """
    xs = _gm_inplace(x, x.shape[1:] if getattr(x, "ndim", 0) == 2 else (-1,), "x")
    n, dx = xs.shape
    Ps = _gm_inplace(P, (dx, dx), "P", n)
    Hm = _np.ascontiguousarray(H, dtype=_np.float64)
    if Hm.ndim != 2 or Hm.shape[1] != dx:
        raise ValueError(f"H must have shape (dz, {dx}), got {Hm.shape}")
    dz = Hm.shape[0]
    zs = _gm_f64(z, (dz,), "z", n)
    Rm = _np.asarray(R, dtype=_np.float64)
    Rm = _gm_f64(_np.broadcast_to(Rm, (n, dz, dz)) if Rm.ndim == 2 else Rm, (dz, dz), "R", n)
    status = _np.zeros(n, dtype=_np.int32)
    _gm_check_call(lib.tl_kf_update(n, dx, dz, _gm_dbl(xs), _gm_dbl(Ps), _gm_dbl(zs), _gm_dbl(Hm), _gm_dbl(Rm),
                                 ffi.from_buffer("int32_t[]", status)), "kf_update")
    return status


def _gm_per_track_R(R, n: int) -> _np.ndarray:
    Rm = _np.asarray(R, dtype=_np.float64)
    return _gm_f64(_np.broadcast_to(Rm, (n, 3, 3)) if Rm.ndim == 2 else Rm, (3, 3), "R", n)


def update_position(x: _np.ndarray, P: _np.ndarray, z, R) -> _np.ndarray:
    """Position update of N ECEF tracks in place: z [N,3] ECEF m, R [N,3,3] or [3,3] m^2. Returns status[N]."""
    xs = _gm_inplace(x, (6,), "x")
    n = len(xs)
    Ps = _gm_inplace(P, (6, 6), "P", n)
    zs = _gm_f64(z, (3,), "z", n)
    status = _np.zeros(n, dtype=_np.int32)
    _gm_check_call(lib.tl_kf_update_pos(n, _gm_dbl(xs), _gm_dbl(Ps), _gm_dbl(zs), _gm_dbl(_gm_per_track_R(R, n)),
                                     ffi.from_buffer("int32_t[]", status)), "update_position")
    return status


def _gm_sites(site_llh_deg, n: int) -> _np.ndarray:
    s = _np.array(_np.broadcast_to(_np.asarray(site_llh_deg, dtype=_np.float64), (n, 3)), order="C")
    s[:, :2] = _np.radians(s[:, :2])
    return s


def update_rae(x: _np.ndarray, P: _np.ndarray, z, R, site_llh_deg) -> _np.ndarray:
    """Range/azimuth/elevation EKF update in place from radar sites.

    z [N,3] = (range m, azimuth rad clockwise from north, elevation rad);
    R [N,3,3] or [3,3]; site_llh_deg [N,3] or [3] (lat deg, lon deg, h m).
    Returns status[N].
    """
    xs = _gm_inplace(x, (6,), "x")
    n = len(xs)
    Ps = _gm_inplace(P, (6, 6), "P", n)
    zs = _gm_f64(z, (3,), "z", n)
    status = _np.zeros(n, dtype=_np.int32)
    _gm_check_call(lib.tl_kf_update_rae(n, _gm_dbl(xs), _gm_dbl(Ps), _gm_dbl(zs), _gm_dbl(_gm_per_track_R(R, n)),
                                     _gm_dbl(_gm_sites(site_llh_deg, n)), ffi.from_buffer("int32_t[]", status)), "update_rae")
    return status


def rae_from_ecef(pos, site_llh_deg) -> _np.ndarray:
    """(range m, azimuth rad, elevation rad) of one ECEF point seen from a site (lat deg, lon deg, h m)."""
    p = _gm_f64(_np.reshape(pos, (1, 3)), (3,), "pos")
    out = _np.empty(3)
    st = lib.tl_rae_from_ecef(_gm_dbl(p), _gm_dbl(_gm_sites(site_llh_deg, 1)), _gm_dbl(out))
    if st != TRK_OK:
        raise KernelError(f"rae_from_ecef: {STATUS_NAMES.get(st, st)}")
    return out


def kf_soak(steps: int, x: _np.ndarray, P: _np.ndarray, F, Q, H, R, zs, check_every: int = 1000):
    """Run `steps` linear predict+update cycles on one track in ONE C call (soak test).

    Returns (status, worst relative asymmetry seen). x [dx] and P [dx,dx] are updated in place.
    """
    xs = _gm_inplace(x, (), "x") if x.ndim == 1 else None
    if xs is None:
        raise ValueError("x must be 1-D")
    dx = len(xs)
    Ps = _gm_inplace(P, (dx,), "P", dx)
    Hm = _np.ascontiguousarray(H, dtype=_np.float64)
    dz = Hm.shape[0]
    zm = _gm_f64(zs, (dz,), "zs")
    worst = ffi.new("double *")
    st = lib.tl_kf_soak(int(steps), dx, dz, _gm_dbl(xs), _gm_dbl(Ps), _gm_dbl(_gm_f64(F, (dx,), "F", dx)), _gm_dbl(_gm_f64(Q, (dx,), "Q", dx)),
                        _gm_dbl(_gm_f64(Hm, (dx,), "H", dz)), _gm_dbl(_gm_f64(R, (dz,), "R", dz)), _gm_dbl(zm), len(zm),
                        int(check_every), worst)
    return int(st), float(worst[0])


def _gm_territories(territories: _Optional[_Sequence]) -> _Tuple[int, _np.ndarray, _np.ndarray]:
    """Pack polygons (each a sequence of (lat deg, lon deg)) into C offsets + radians."""
    if not territories:
        return 0, _np.zeros(1, dtype=_np.int32), _np.zeros(2)
    polys = [_np.radians(_gm_f64(p, (2,), "territory polygon")) for p in territories]
    offsets = _np.zeros(len(polys) + 1, dtype=_np.int32)
    offsets[1:] = _np.cumsum([len(p) for p in polys])
    if any(len(p) < 3 for p in polys):
        raise ValueError("every territory polygon needs at least 3 vertices")
    return len(polys), offsets, _np.ascontiguousarray(_np.concatenate(polys))


def territory_of(lat_deg: float, lon_deg: float, territories: _Sequence) -> int:
    """Index of the first polygon (lat/lon degree vertex lists) containing the point, or -1.

        >>> territory_of(1.0, 1.0, [[(0, 0), (0, 2), (2, 2), (2, 0)]])
        0
    """
    nt, off, verts = _gm_territories(territories)
    r = int(lib.tl_territory_of(_math.radians(lat_deg), _math.radians(lon_deg), nt,
                                ffi.from_buffer("int32_t[]", off), _gm_dbl(verts)))
    if r == -2:
        raise ValueError("malformed territory polygons")
    return r


@_dataclass
class Impacts:
    """Impact predictions for N tracks (failed tracks: NaN, territory -1, status != 0)."""

    t: _np.ndarray  # impact time [N], same timebase as t0
    lat: _np.ndarray  # deg [N]
    lon: _np.ndarray  # deg [N]
    ecef: _np.ndarray  # m [N,3]
    cov_en: _np.ndarray  # (east, north) covariance m^2 [N,2,2]
    semi_major: _np.ndarray  # 95% ellipse semi-axes, m [N]
    semi_minor: _np.ndarray
    orient: _np.ndarray  # major-axis azimuth, deg clockwise from north in [0, 180) [N]
    sigma_t: _np.ndarray  # 1-sigma impact time, s [N]
    territory: _np.ndarray  # int32 [N], -1 none
    status: _np.ndarray  # int32 [N], TRK_* codes


def _gm_impact_dtype() -> _np.dtype:
    off = lambda f: ffi.offsetof("tl_impact", f)  # noqa: E731
    return _np.dtype({
        "names": ["t_impact", "lat", "lon", "ecef", "cov_en", "semi_major", "semi_minor", "orient", "sigma_t", "territory"],
        "formats": ["<f8", "<f8", "<f8", ("<f8", 3), ("<f8", 4), "<f8", "<f8", "<f8", "<f8", "<i4"],
        "offsets": [off(f) for f in ("t_impact", "lat", "lon", "ecef", "cov_en", "semi_major", "semi_minor", "orient",
                                     "sigma_t", "territory")],
        "itemsize": ffi.sizeof("tl_impact"),
    })


_gm_IMPACT_DTYPE = _gm_impact_dtype()


def predict_impact(x, P, t0, territories: _Optional[_Sequence] = None,
                   model: _Optional[MotionModel] = None) -> Impacts:
    """Impact time, point, 95% ellipse and threatened territory for N tracks (inputs not modified).

        >>> imp = predict_impact(x, P, t0, territories=[japan_latlon_deg])   # doctest: +SKIP
        >>> imp.lat, imp.lon, imp.semi_major, imp.territory                  # doctest: +SKIP
    """
    xs = _gm_f64(x, (6,), "x")
    n = len(xs)
    Ps = _gm_f64(P, (6, 6), "P", n)
    ts = _gm_f64(_np.broadcast_to(_np.asarray(t0, dtype=_np.float64), (n,)), (), "t0", n)
    nt, off, verts = _gm_territories(territories)
    out = ffi.new("tl_impact[]", max(n, 1))
    status = _np.zeros(n, dtype=_np.int32)
    _gm_check_call(lib.tl_impact_predict(_gm_motion(model), n, _gm_dbl(xs), _gm_dbl(Ps), _gm_dbl(ts), nt,
                                      ffi.from_buffer("int32_t[]", off), _gm_dbl(verts), out,
                                      ffi.from_buffer("int32_t[]", status)), "predict_impact")
    rec = _np.frombuffer(ffi.buffer(out, n * _gm_IMPACT_DTYPE.itemsize), dtype=_gm_IMPACT_DTYPE, count=n).copy()
    return Impacts(
        t=rec["t_impact"].copy(), lat=_np.degrees(rec["lat"]), lon=_np.degrees(rec["lon"]), ecef=rec["ecef"].copy(),
        cov_en=rec["cov_en"].reshape(n, 2, 2).copy(), semi_major=rec["semi_major"].copy(),
        semi_minor=rec["semi_minor"].copy(), orient=_np.degrees(rec["orient"]), sigma_t=rec["sigma_t"].copy(),
        territory=rec["territory"].astype(_np.int32), status=status,
    )


# ----------------------------- fusion: association, CI and track picture ----
# Owned by the association/CI/picture part of issue 4 (native/c/assign.h,
# ci.h, picture.h). Every wrapper makes one C call per batch or frame.

import numpy as _np


class AssignmentInfeasible(KernelError):
    """Forbidden pairs leave no complete matching of the smaller side."""


class FusionError(KernelError):
    """A fusion kernel call rejected its input; ``code`` is the TL_* code."""

    def __init__(self, code: int, what: str) -> None:
        super().__init__(f"{what}: {_FUSION_ERRORS.get(code, 'error')} (code {code})")
        self.code = code


_FUSION_ERRORS = {
    1: "NaN or inf in the input",
    2: "covariance not symmetric positive definite",
    3: "time out of order",
    4: "no impact",
    5: "invalid argument",
    6: "singular",
}

CI_TRACE, CI_LOGDET, CI_FAST, CI_NAIVE = 0, 1, 2, 3
_CI_MODES = {"trace": CI_TRACE, "logdet": CI_LOGDET, "fast": CI_FAST, "naive": CI_NAIVE}


def _f64(a: object, shape: tuple | None = None, what: str = "array") -> _np.ndarray:
    arr = _np.ascontiguousarray(a, dtype=_np.float64)
    if shape is not None and arr.shape != shape:
        raise ValueError(f"{what} must have shape {shape}, got {arr.shape}")
    return arr


def _dptr(a: _np.ndarray):
    return ffi.cast("double *", ffi.from_buffer(a))


def _iptr(a: _np.ndarray):
    return ffi.cast("int32_t *", ffi.from_buffer(a))


def assign(cost: object) -> tuple[_np.ndarray, _np.ndarray, float]:
    """Minimum-cost rectangular assignment; +inf marks a forbidden pair.

    Returns (rows, cols, total) like scipy's linear_sum_assignment.

    >>> assign([[4.0, 1.0], [2.0, 0.0]])[2]
    3.0
    """
    c = _f64(cost)
    if c.ndim != 2:
        raise ValueError("cost must be a 2-D array")
    nr, nc = c.shape
    r2c = _np.empty(nr, dtype=_np.int32)
    work = _np.empty(max(1, lib.tl_assign_work_doubles(nr, nc)))
    iwork = _np.empty(max(1, lib.tl_assign_work_ints(nr, nc)), dtype=_np.int32)
    total = ffi.new("double *")
    rc = lib.tl_assign(nr, nc, _dptr(c) if c.size else ffi.NULL, _iptr(r2c) if nr else ffi.NULL,
                       total, _dptr(work), _iptr(iwork))
    if rc == lib.TL_ASSIGN_EINFEASIBLE:
        raise AssignmentInfeasible("cost matrix is infeasible")
    if rc != lib.TL_ASSIGN_OK:
        raise ValueError("cost contains NaN or -inf" if rc == lib.TL_ASSIGN_ECOST else "bad arguments")
    rows = _np.flatnonzero(r2c >= 0)
    return rows, r2c[rows].astype(_np.intp), float(total[0])


def assign_batch(costs: list) -> tuple[list[_np.ndarray], _np.ndarray, _np.ndarray]:
    """Solve many assignment problems in one C call.

    Returns (row_to_col per problem (-1 = unmatched), totals, status) where
    status is 0 or a TL_ASSIGN_E* code per problem (its total is then 0).

    >>> assign_batch([[[1.0]], [[2.0, 0.5]]])[1].tolist()
    [1.0, 0.5]
    """
    mats = [_f64(c) for c in costs]
    for m in mats:
        if m.ndim != 2:
            raise ValueError("every cost must be a 2-D array")
    shapes = _np.array([m.shape for m in mats], dtype=_np.int32).reshape(-1, 2)
    flat = _np.concatenate([m.ravel() for m in mats]) if mats else _np.empty(0)
    nrows = int(shapes[:, 0].sum()) if len(mats) else 0
    r2c = _np.empty(max(1, nrows), dtype=_np.int32)
    totals = _np.zeros(max(1, len(mats)))
    status = _np.zeros(max(1, len(mats)), dtype=_np.int32)
    big_r = int(shapes[:, 0].max()) if len(mats) else 0
    big_c = int(shapes[:, 1].max()) if len(mats) else 0
    big = max(big_r, big_c)
    work = _np.empty(max(1, 3 * big))
    iwork = _np.empty(max(1, 6 * big), dtype=_np.int32)
    flat_c = flat if flat.size else _np.zeros(1)
    rc = lib.tl_assign_batch(len(mats), _iptr(shapes) if len(mats) else ffi.NULL, _dptr(flat_c),
                             _iptr(r2c), _dptr(totals), _iptr(status), _dptr(work), _iptr(iwork))
    if rc < 0:
        raise ValueError("bad arguments to assign_batch")
    out, off = [], 0
    for nr, _nc in shapes:
        out.append(r2c[off:off + nr].copy())
        off += nr
    return out, totals[:len(mats)].copy(), status[:len(mats)].copy()


def _ci_mode(mode: str) -> int:
    if mode not in _CI_MODES:
        raise ValueError(f"mode must be one of {sorted(_CI_MODES)}")
    return _CI_MODES[mode]


def ci_fuse(xs: object, Ps: object, mode: str = "trace",
            tol: float = 0.0) -> tuple[_np.ndarray, _np.ndarray, _np.ndarray]:
    """Covariance intersection of N estimates xs[N, d], Ps[N, d, d].

    mode: "trace" or "logdet" (optimised weights), "fast" (closed-form trace
    weights), "naive" (information sum). Returns (x, P, weights).

    >>> import numpy as np
    >>> x, P, w = ci_fuse([[0.0], [1.0]], [[[1.0]], [[3.0]]])
    >>> round(float(w[0]), 6)
    1.0
    """
    x_in = _f64(xs)
    if x_in.ndim != 2:
        raise ValueError("xs must be [nsrc, dim]")
    n, d = x_in.shape
    P_in = _f64(Ps, (n, d, d), "Ps")
    x = _np.empty(d)
    P = _np.empty((d, d))
    w = _np.empty(n)
    rc = lib.tl_ci_fuse(d, n, _dptr(x_in), _dptr(P_in), _ci_mode(mode), float(tol), _dptr(x),
                        _dptr(P), _dptr(w))
    if rc != 0:
        raise FusionError(rc, "ci_fuse")
    return x, P, w


def ci_weighted(xs: object, Ps: object, weights: object) -> tuple[_np.ndarray, _np.ndarray]:
    """Fuse with given weights: P^-1 = sum w_i P_i^-1 (CI with fixed omega).

    >>> ci_weighted([[0.0], [0.0]], [[[1.0]], [[3.0]]], [0.5, 0.5])[1].round(12).tolist()
    [[1.5]]
    """
    x_in = _f64(xs)
    if x_in.ndim != 2:
        raise ValueError("xs must be [nsrc, dim]")
    n, d = x_in.shape
    P_in = _f64(Ps, (n, d, d), "Ps")
    w = _f64(weights, (n,), "weights")
    x = _np.empty(d)
    P = _np.empty((d, d))
    rc = lib.tl_ci_weighted(d, n, _dptr(x_in), _dptr(P_in), _dptr(w), _dptr(x), _dptr(P))
    if rc != 0:
        raise FusionError(rc, "ci_weighted")
    return x, P


def ci_objective(Ps: object, weights: object, criterion: str = "trace") -> float:
    """tr(P) or log det P of the CI fusion with the given weights.

    >>> round(ci_objective([[[1.0]], [[3.0]]], [0.5, 0.5]), 12)
    1.5
    """
    P_in = _f64(Ps)
    if P_in.ndim != 3 or P_in.shape[1] != P_in.shape[2]:
        raise ValueError("Ps must be [nsrc, dim, dim]")
    n, d, _ = P_in.shape
    w = _f64(weights, (n,), "weights")
    if criterion not in ("trace", "logdet"):
        raise ValueError("criterion must be 'trace' or 'logdet'")
    J = ffi.new("double *")
    rc = lib.tl_ci_objective(d, n, _dptr(P_in), _dptr(w), _ci_mode(criterion), J)
    if rc != 0:
        raise FusionError(rc, "ci_objective")
    return float(J[0])


def ci_batch(xs: object, Ps: object, mode: str = "trace", tol: float = 0.0
             ) -> tuple[_np.ndarray, _np.ndarray, _np.ndarray, _np.ndarray]:
    """Many independent CI problems in one C call: xs[B, N, d], Ps[B, N, d, d].

    Returns (x[B, d], P[B, d, d], w[B, N], status[B]); a failed problem has a
    nonzero TL_TRK_* status and zeros in its outputs.

    >>> import numpy as np
    >>> ci_batch(np.zeros((1, 2, 1)), [[[[1.0]], [[3.0]]]])[3].tolist()
    [0]
    """
    x_in = _f64(xs)
    if x_in.ndim != 3:
        raise ValueError("xs must be [batch, nsrc, dim]")
    b, n, d = x_in.shape
    P_in = _f64(Ps, (b, n, d, d), "Ps")
    x = _np.zeros((max(b, 1), d))
    P = _np.zeros((max(b, 1), d, d))
    w = _np.zeros((max(b, 1), n))
    st = _np.zeros(max(b, 1), dtype=_np.int32)
    rc = lib.tl_ci_batch(b, d, n, _dptr(x_in) if b else ffi.NULL, _dptr(P_in) if b else ffi.NULL,
                         _ci_mode(mode), float(tol), _dptr(x), _dptr(P), _dptr(w), _iptr(st))
    if rc < 0:
        raise ValueError("bad arguments to ci_batch")
    return x[:b], P[:b], w[:b], st[:b]


class PictureError(KernelError):
    """A picture call failed; ``code`` is TL_PIC_E* or TL_TRK_E*."""

    def __init__(self, code: int, what: str) -> None:
        names = {16: "table full", 17: "unknown track", 18: "node id above 63"}
        super().__init__(f"{what}: {names.get(code) or _FUSION_ERRORS.get(code, 'error')} "
                         f"(code {code})")
        self.code = code


PIC_MAX_MEMBERS = 8


class Picture:
    """The relay's fused track picture (native/c/picture.h): source tracks in,
    association with persistence, per-destination CI fusion out.

    >>> import numpy as np
    >>> pic = Picture()
    >>> x = np.array([7.0e6, 0.0, 0.0, 0.0, 7.0e3, 0.0]); P = np.eye(6) * 100.0
    >>> pic.update([1], [10], [500], [0.0], [x], [P]).tolist()
    [0]
    >>> pic.associate(0.0)
    >>> pic.fuse(0.0, sources=[1])["fused_id"].tolist()
    [1]
    """

    def __init__(self, gate: float = 22.46, stay_bonus: float = 4.0, switch_frames: int = 3,
                 timeout: float = 12.0, ci_mode: str = "trace", q: float | None = None,
                 step: float | None = None, j2: bool = True) -> None:
        cfg = ffi.new("tl_picture_config *")
        lib.tl_picture_config_default(cfg)
        cfg.gate, cfg.stay_bonus, cfg.switch_frames = gate, stay_bonus, switch_frames
        cfg.timeout, cfg.ci_mode = timeout, _ci_mode(ci_mode)
        if q is not None:
            cfg.motion.q = q
        if step is not None:
            cfg.motion.step = step
        cfg.motion.j2 = 1 if j2 else 0
        size = lib.tl_picture_size()
        self._mem = ffi.new("char[]", size)
        self._pic = ffi.cast("tl_picture *", self._mem)
        rc = lib.tl_picture_init(self._pic, size, cfg)
        if rc != 0:
            raise ValueError("invalid picture configuration")
        cap = lib.TL_PIC_MAX_FUSED
        self._out = {
            "fused_id": _np.empty(cap, dtype=_np.uint32), "x": _np.empty((cap, 6)),
            "P": _np.empty((cap, 6, 6)), "nmem": _np.empty(cap, dtype=_np.int32),
            "node": _np.empty((cap, PIC_MAX_MEMBERS), dtype=_np.uint8),
            "track": _np.empty((cap, PIC_MAX_MEMBERS), dtype=_np.uint32),
            "report": _np.empty((cap, PIC_MAX_MEMBERS), dtype=_np.uint32),
            "weight": _np.empty((cap, PIC_MAX_MEMBERS)),
        }

    def update(self, node: object, track_id: object, report_id: object, t: object,
               x: object, P: object) -> _np.ndarray:
        """Store a batch of source track records; returns the status per record
        (0, or the TL_* code of a refused record, which changed nothing)."""
        nd = _np.ascontiguousarray(node, dtype=_np.uint8)
        n = nd.shape[0]
        tid = _np.ascontiguousarray(track_id, dtype=_np.uint32)
        rid = _np.ascontiguousarray(report_id, dtype=_np.uint32)
        tt = _f64(t, (n,), "t")
        xx = _f64(x, (n, 6), "x")
        PP = _f64(P).reshape(n, 36) if _np.size(P) == n * 36 else None
        if PP is None or tid.shape != (n,) or rid.shape != (n,):
            raise ValueError("node, track_id, report_id, t, x[n,6], P[n,6,6] must agree in n")
        st = _np.zeros(max(n, 1), dtype=_np.int32)
        if n == 0:
            return st[:0]
        rc = lib.tl_picture_update(
            self._pic, n, ffi.cast("uint8_t *", ffi.from_buffer(nd)),
            ffi.cast("uint32_t *", ffi.from_buffer(tid)), ffi.cast("uint32_t *", ffi.from_buffer(rid)),
            _dptr(tt), _dptr(xx), _dptr(_np.ascontiguousarray(PP)), _iptr(st))
        if rc < 0:
            raise ValueError("bad arguments to Picture.update")
        return st

    def drop(self, node: int, track_id: int) -> None:
        """Remove a source track now; PictureError(17) if unknown."""
        rc = lib.tl_picture_drop(self._pic, node, track_id)
        if rc != 0:
            raise PictureError(rc, "drop")

    def associate(self, t: float) -> None:
        """One association round at time t (prediction, gating, assignment)."""
        rc = lib.tl_picture_associate(self._pic, float(t))
        if rc != 0:
            raise PictureError(rc, "associate")

    def lookup(self, node: int, track_id: int) -> int:
        """Fused id holding a source track (0 = none yet); PictureError(17) if unknown."""
        out = ffi.new("uint32_t *")
        rc = lib.tl_picture_lookup(self._pic, node, track_id, out)
        if rc != 0:
            raise PictureError(rc, "lookup")
        return int(out[0])

    def fuse(self, t: float, sources: object = None, mask: int | None = None) -> dict:
        """The picture at time t from the given source node ids (or a raw
        64-bit mask; default all). Returns a dict of arrays over fused tracks:
        fused_id, x[k,6], P[k,6,6], nmem, node/track/report/weight[k, 8]."""
        if mask is None:
            mask = (1 << 64) - 1 if sources is None else 0
            for nd in ([] if sources is None else sources):
                if not 0 <= int(nd) <= lib.TL_PIC_MAX_NODE:
                    raise ValueError("source node ids are 0..63")
                mask |= 1 << int(nd)
        o = self._out
        cap = o["fused_id"].shape[0]
        k = lib.tl_picture_fuse(
            self._pic, float(t), mask, cap, ffi.cast("uint32_t *", ffi.from_buffer(o["fused_id"])),
            _dptr(o["x"]), _dptr(o["P"]), _iptr(o["nmem"]),
            ffi.cast("uint8_t *", ffi.from_buffer(o["node"])),
            ffi.cast("uint32_t *", ffi.from_buffer(o["track"])),
            ffi.cast("uint32_t *", ffi.from_buffer(o["report"])), _dptr(o["weight"]))
        if k < 0:
            raise ValueError("bad arguments to Picture.fuse")
        return {name: arr[:k].copy() for name, arr in o.items()}

    def stats(self) -> dict:
        """Counters: tracks, fused, initiated, joined, merged, switched, split,
        timed_out, deleted, sat_out."""
        s = ffi.new("tl_picture_stats *")
        lib.tl_picture_get_stats(self._pic, s)
        return {f: int(getattr(s, f)) for f in ("tracks", "fused", "initiated", "joined", "merged",
                                                "switched", "split", "timed_out", "deleted",
                                                "sat_out")}
