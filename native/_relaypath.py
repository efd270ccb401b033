"""The relay's receive hot path (native/c/relaypath.h): one C call per
TRACK_REPORT decodes into arrays allocated once, rotates the records
into ECEF, maps their times onto the relay's and stores them in the
picture (``ingest``; ``decode`` stops after the rotation); nothing is
allocated per frame.

    >>> import numpy as np
    >>> from trilink_native._codec import CODEC_REPORT, TrackBatch, codec_encode
    >>> b = TrackBatch.empty(1); b.P[0] = np.eye(6); b.tid[0] = 3; b.x[0, 2] = 100.0
    >>> rx = RxPath(np.eye(3), np.array([1.0, 2.0, 3.0]))
    >>> n = rx.decode(codec_encode(CODEC_REPORT, b))
    >>> n, rx.clean, rx.batch.tid[:n].tolist(), rx.xe[0, :3].tolist()
    (1, True, [3], [1.0, 2.0, 103.0])
    >>> from trilink_native._picture import Picture
    >>> b.x[0] = [0.0, 0.0, 6.4e6, 7.0e3, 0.0, 0.0]; pic = Picture()
    >>> rx.ingest(codec_encode(CODEC_REPORT, b), None, pic, relay_time=False, rx_us=2_000_000)
    1
    >>> rx.stored, rx.t_us[:1].tolist(), rx.status[:1].tolist(), rx.ahead, rx.refused
    (True, [2000000], [0], 0, 0)
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from trilink_native._arrays import dptr, f64, iptr, u8ptr
from trilink_native._codec import CODEC_MAX_RECORDS, CodecTable, TrackBatch
from trilink_native._errors import CODEC, check
from trilink_native._picture import Picture
from trilink_native._kernel import ffi, lib
from trilink_native._wire import WIRE, Frame, _link_mask

_NOT_INGESTED = int(lib.TL_RELAY_NOT_INGESTED)
_PARSE_ERRORS = (int(lib.TL_ERR_MALFORMED), int(lib.TL_ERR_CRC))


class RxPath:
    """Decoder of one source's reports: ``decode(payload, held)`` returns the
    record count n and leaves the records in ``batch`` (its arrays'
    first n rows), their ECEF states in ``xe[:n]`` and covariances in
    ``Pe[:n]`` (rows of DROP records undefined), ``header`` (a cffi
    tl_codec_header) and ``clean`` (every record REC_OK and no DROP).
    The arrays are overwritten by the next call: copy what must outlive it.
    ``ingest(payload, held, picture, relay_time, rx_us)`` also stores a
    clean frame's records in ``picture`` as source ``node`` (``stored``;
    ``t_us[:n]`` their relay times, ``status[:n]`` the picture's status
    per record, ``ahead`` / ``refused`` the clamped / refused counts).

    R is the source's ENU rotation (enu = R @ (ecef - p0)), p0 its origin
    in ECEF."""

    def __init__(self, R: np.ndarray, p0: np.ndarray, capacity: int = CODEC_MAX_RECORDS, node: int = 0) -> None:
        self._R = f64(R, (3, 3), "R")
        self._p0 = f64(p0, (3,), "p0")
        self.capacity = int(capacity)
        self.batch = TrackBatch.empty(self.capacity)
        self.xe = np.zeros((self.capacity, 6))
        self.Pe = np.zeros((self.capacity, 6, 6))
        self.t_us = np.zeros(self.capacity, dtype=np.int64)
        self.status = np.zeros(self.capacity, dtype=np.int32)
        self._t_s = np.zeros(self.capacity)
        self._nodes = np.zeros(self.capacity, dtype=np.uint8)
        c = self._ctx = ffi.new("tl_relay_rx_ctx *")
        c.R, c.p0 = self._R.ravel().tolist(), self._p0.tolist()
        c.node, c.cap, c.batch = int(node), self.capacity, self.batch._c()
        # the struct points into these arrays: they live as long as self
        c.xe, c.Pe, c.t_s = dptr(self.xe), dptr(self.Pe), dptr(self._t_s)
        c.t_us = ffi.from_buffer("int64_t[]", self.t_us)
        c.nodes, c.status = u8ptr(self._nodes), iptr(self.status)
        self._bufs = (c.xe, c.Pe, c.t_s, c.t_us, c.nodes, c.status)
        self.header = ffi.addressof(c, "hdr")

    @property
    def clean(self) -> bool:
        return bool(self._ctx.clean)

    @property
    def stored(self) -> bool:
        return bool(self._ctx.stored)

    @property
    def ahead(self) -> int:
        return int(self._ctx.ahead)

    @property
    def refused(self) -> int:
        return int(self._ctx.refused)

    def decode(self, payload, held: Optional[CodecTable] = None) -> int:
        """Record count of one payload (a CodecError if it does not decode;
        ``held`` is then unchanged)."""
        return self.ingest(payload, held, None, True, 0)

    def ingest(self, payload, held: Optional[CodecTable], picture: Optional[Picture], relay_time: bool,
               rx_us: int) -> int:
        """``decode``, then, for a clean frame with records and a picture,
        its times on the relay's timebase (``relay_time`` False: shifted so
        that the newest is ``rx_us``; any later than ``rx_us`` clamped to
        it) and its records stored in ``picture``. Record count (a
        CodecError if the payload does not decode: nothing stored, ``held``
        unchanged)."""
        buf = ffi.from_buffer(payload)
        st = lib.tl_relay_ingest(self._ctx, buf, len(buf), held._t if held is not None else ffi.NULL,
                                 picture._pic if picture is not None else ffi.NULL, 1 if relay_time else 0, rx_us)
        return check(st, CODEC, "ingest")


class RxFrames:
    """The relay's receive path of whole frames, one C call each
    (``tl_relay_rx_frame``): ``verify(raw, link)`` checks a raw frame as
    ``Keyring.verify`` does (cases 3-11, the same ``WireError`` reasons, the
    key's mark raised) and, when ``ingest`` is true and the frame is a
    TRACK_REPORT to ``relay_node`` (or broadcast) from a node with an
    ``RxPath`` in ``rx``, ingests its payload in the same call
    (``RxPath.ingest`` with ``held[src]`` and ``picture``). ``ingested`` is
    then ``(frame, record count or negative TL_CODEC_E*)`` for the frame
    returned, else None.

        >>> from trilink_native._wire import Keyring, pack_frame, MSG_TRACK_REPORT, FLAG_RELAY_TIME
        >>> from trilink_native._codec import CODEC_REPORT, codec_encode
        >>> ring = Keyring(0, link=[1]); ring.add(1, 1, bytes(32))
        >>> b = TrackBatch.empty(1); b.P[0] = np.eye(6); b.x[0, 2] = 6.4e6; b.x[0, 3] = 7e3
        >>> pic = Picture(); rx = {1: RxPath(np.eye(3), np.zeros(3), node=1)}
        >>> rf = RxFrames(ring, 0, rx, {1: CodecTable()}, pic)
        >>> raw = pack_frame(bytes(32), 1, 1, 0, MSG_TRACK_REPORT, 0, 1, codec_encode(CODEC_REPORT, b), FLAG_RELAY_TIME)
        >>> f = rf.verify(raw, (1,), ingest=True, rx_us=10)
        >>> rf.ingested[1], rx[1].stored, rx[1].t_us[:1].tolist()
        (1, True, [0])
        >>> rf.verify(raw, (1,), ingest=True, rx_us=10)
        Traceback (most recent call last):
        ...
        trilink_native._errors.WireError: replay (verify: src 1 key_id 1 counter 1, code -5)
        >>> rf.ingested is None, ring.counts["replay"]
        (True, 1)
    """

    def __init__(self, keyring, relay_node: int, rx: dict, held: dict, picture: Optional[Picture]) -> None:
        self._ring = keyring
        self._node = int(relay_node)
        self._picture = picture._pic if picture is not None else ffi.NULL
        self._rx = ffi.new("tl_relay_rx_ctx *[256]")
        self._held = ffi.new("tl_codec_table *[256]")
        self._keep = (dict(rx), dict(held), picture)
        for nd, r in rx.items():
            self._rx[nd] = r._ctx
        for nd, t in held.items():
            self._held[nd] = t._t
        self._hdr = ffi.new("tl_header *")
        self._ingested = ffi.new("int32_t *")
        self._masks: dict = {}
        self.ingested: Optional[tuple] = None

    def verify(self, raw, link: tuple = (), ingest: bool = False, rx_us: int = 0):
        """The ``Frame`` if ``raw`` passes cases 3-11 (else ``WireError``:
        ``malformed``, ``crc_error``, ``wrong_link``, ``auth_fail``,
        ``replay``, counted as ``Keyring.verify`` counts them). ``link``:
        the node ids configured on the frame's link (a tuple: its mask is
        kept)."""
        mask = self._masks.get(link)
        if mask is None:
            mask = self._masks[link] = _link_mask(link)
        self.ingested = None
        buf = ffi.from_buffer(raw)
        rc = lib.tl_relay_rx_frame(self._ring._k, mask, buf, len(buf), self._node, 1 if ingest else 0, self._rx,
                                   self._held, self._picture, rx_us, self._hdr, self._ingested)
        if rc:
            h = self._hdr
            check(rc, WIRE, "verify", f"frame of {len(buf)} bytes" if rc in _PARSE_ERRORS else
                  f"src {h.src} key_id {h.key_id} counter {h.counter}")
        f = Frame(bytes(raw))
        n = self._ingested[0]
        if n != _NOT_INGESTED:
            self.ingested = (f, n)
        return f

    def take(self, frame) -> Optional[int]:
        """The record count of ``frame``'s ingest by the last ``verify``
        (a CodecError if its payload did not decode), once; None if that
        call did not ingest ``frame``."""
        got = self.ingested
        if got is None or got[0] is not frame:
            return None
        self.ingested = None
        return check(got[1], CODEC, "ingest")
