"""Track payloads of docs/PROTOCOL.md section 5 (native/c/codec.h): the
batch encoder and decoder, the receiver's table and the dead-reckoning sender.

One cffi call per batch: the arrays of a ``TrackBatch`` are handed to C as
pointers. Every decode error is a ``CodecError`` whose ``reason`` is the name
of section 5.7 ("truncated", "version", "malformed"); encoding a value the
format cannot carry is "range" (or "no_base", "no_space", "full").

    >>> import numpy as np
    >>> b = TrackBatch.empty(1); b.P[0] = np.eye(6); b.tid[0] = 3
    >>> held = CodecTable()
    >>> hdr, got = codec_decode(codec_encode(CODEC_PICTURE, b), held)
    >>> hdr["count"], got.tid.tolist(), len(held)
    (1, [3], 1)
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import numpy as np

from trilink_native._errors import CODEC, CodecError, check
from trilink_native._kernel import ffi, lib

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
CODEC_MAX_PAYLOAD = int(lib.TL_CODEC_MAX_PAYLOAD)
# tl_dr_counters' order (codec.h); the header gives their number.
DR_COUNTERS = ("inputs", "keyframes", "deltas", "drops", "suppressed", "heartbeat", "position",
               "covariance", "meta", "impact", "new_track", "stale")
if len(DR_COUNTERS) != lib.TL_DR_NCOUNTERS:  # pragma: no cover - codec.h grew a counter
    raise ImportError(f"codec.h has {lib.TL_DR_NCOUNTERS} dead-reckoning counters, the binding names {len(DR_COUNTERS)}")

_TB_FIELDS = (  # name, dtype, per-record shape, C field
    ("rtype", np.uint8, ()), ("send", np.uint8, ()), ("status", np.uint8, ()),
    ("tid", np.uint32, ()), ("t_us", np.uint64, ()), ("x", np.float64, (6,)),
    ("P", np.float64, (6, 6)), ("flags", np.uint8, ()), ("nations", np.uint32, ()),
    ("report_id", np.uint32, ()), ("n_src", np.uint8, ()),
    ("src_node", np.uint8, (CODEC_MAX_SOURCES,)), ("src_rid", np.uint32, (CODEC_MAX_SOURCES,)),
    ("has_impact", np.uint8, ()), ("impact", np.float64, (5,)),
    ("impact_t_us", np.uint64, ()),
)


_TB_NAMES = frozenset(name for name, _, _ in _TB_FIELDS)
_TB_CTYPE = {np.uint8: "uint8_t *", np.uint32: "uint32_t *", np.uint64: "uint64_t *",
             np.float64: "double *"}


class TrackBatch:
    """Parallel arrays of n track updates (codec.h tl_track_batch): tid[n],
    t_us[n], x[n,6] (local ENU m, m/s), P[n,6,6], flags[n], nations[n],
    report_id[n], n_src[n] with src_node/src_rid[n,CODEC_MAX_SOURCES], has_impact[n],
    impact[n,5] (east, north, semi-major, semi-minor m, orientation deg),
    impact_t_us[n]; rtype[n], send[n], status[n] as in codec.h.

        >>> b = TrackBatch.empty(2)
        >>> b.x.shape, b.P.shape
        ((2, 6), (2, 6, 6))
    """

    def __init__(self, **arrays: np.ndarray) -> None:
        n = len(arrays["tid"])
        for name, dt, shape in _TB_FIELDS:
            a = arrays.get(name)
            a = np.zeros((n,) + shape, dt) if a is None else np.ascontiguousarray(a, dtype=dt)
            if a.shape != (n,) + shape:
                raise ValueError("TrackBatch.%s has shape %s, expected %s" % (name, a.shape, (n,) + shape))
            setattr(self, name, a)
        self.n = n

    @classmethod
    def empty(cls, n: int) -> "TrackBatch":
        """A batch of n zeroed records."""
        return cls(tid=np.zeros(n, np.uint32))

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
                                 % (name, np.dtype(dt).name, self.n))
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

    def forget(self, tid: Optional[int] = None) -> None:
        """Forget one track's copy (None: every copy), e.g. on KEYFRAME_REQ."""
        lib.tl_codec_table_forget(self._t, -1 if tid is None else int(tid))


_C_OUT = ffi.new("uint8_t[]", CODEC_MAX_PAYLOAD)
_C_OUT_VIEW = ffi.buffer(_C_OUT)   # made once: a new ffi.buffer per call costs ~0.4 us of a ~10 us encode


def codec_encode(kind: int, batch: TrackBatch, pos_mm: int = 1000, vel_mm: int = 50,
                 base_us: Optional[int] = None, held: Optional[CodecTable] = None) -> bytes:
    """One payload of the records of ``batch`` with record types batch.rtype
    (and DELTA contents batch.send) against ``held`` (updated on success).

        >>> b = TrackBatch.empty(1); b.P[0] = np.eye(6); b.tid[0] = 3
        >>> p = codec_encode(CODEC_PICTURE, b)
        >>> codec_decode(p)[1].tid.tolist()
        [3]
    """
    if base_us is None:
        base_us = int(batch.t_us[0]) if batch.n else 0
    out = _C_OUT   # reused: the result is copied out before returning
    st = lib.tl_codec_encode(kind, pos_mm, vel_mm, base_us, batch._c(),
                             held._t if held is not None else ffi.NULL, out, CODEC_MAX_PAYLOAD)
    check(st, CODEC, "encode")
    return _C_OUT_VIEW[:st]


def codec_decode(payload: bytes, held: Optional[CodecTable] = None) -> Tuple[Dict[str, int], TrackBatch]:
    """(header, batch) of one payload; header has kind, pos_mm, vel_mm,
    base_us, base_rid, count. ``held`` (updated on success) resolves deltas;
    without it deltas come back with status REC_NO_BASE."""
    data = bytes(payload)
    buf = ffi.from_buffer(data)
    n = check(lib.tl_codec_peek_count(buf, len(data)), CODEC, "decode")
    hdr = ffi.new("tl_codec_header *")
    b = TrackBatch.empty(n)
    st = lib.tl_codec_decode(buf, len(data), held._t if held is not None else ffi.NULL, b._c(), n, hdr)
    check(st, CODEC, "decode")
    header = {"kind": hdr.kind, "pos_mm": hdr.pos_mm, "vel_mm": hdr.vel_mm, "base_us": int(hdr.base_us),
              "base_rid": int(hdr.base_rid), "count": hdr.count}
    return header, b


class DeadReckoner:
    """Dead-reckoning sender toward one destination (codec.h tl_dr).

        >>> dr = DeadReckoner(CODEC_PICTURE, origin_lat_deg=36.0)
        >>> b = TrackBatch.empty(1); b.P[0] = np.eye(6); b.x[0, 2] = 1e5
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

    def encode(self, batch: TrackBatch, base_us: Optional[int] = None) -> List[bytes]:
        """Payloads (each <= CODEC_MAX_PAYLOAD bytes; none when all was suppressed) for the
        inputs of ``batch``: batch.rtype in = DR_UPDATE or DR_DROP, out = the
        record sent or REC_NONE; batch.send out = what a record carried."""
        out = ffi.new("uint8_t[]", CODEC_MAX_PAYLOAD)
        consumed = ffi.new("int32_t *")
        payloads = []
        start = 0
        while start < batch.n:
            part = batch.take(slice(start, batch.n)) if start else batch
            cb = part._c()
            b0 = int(part.t_us[0]) if base_us is None else base_us
            st = check(lib.tl_dr_encode(self._d, b0, cb, consumed, out, CODEC_MAX_PAYLOAD), CODEC, "dead reckoning")
            if part is not batch:
                batch.rtype[start:] = part.rtype
                batch.send[start:] = part.send
            if (part.rtype[:consumed[0]] != REC_NONE).any():
                payloads.append(bytes(ffi.buffer(out, st)))
            if consumed[0] == 0:
                raise CodecError("no_space", "a record does not fit a payload")
            start += consumed[0]
        return payloads

    def request_keyframe(self, tid: Optional[int] = None) -> None:
        """KEYFRAME_REQ: the next update of ``tid`` (None: every track) is a keyframe."""
        lib.tl_dr_request_keyframe(self._d, -1 if tid is None else int(tid))

    @property
    def counters(self) -> Dict[str, int]:
        c = ffi.new("uint64_t[]", len(DR_COUNTERS))
        lib.tl_dr_counters(self._d, c)
        return {name: int(c[i]) for i, name in enumerate(DR_COUNTERS)}


