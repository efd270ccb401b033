"""The relay's receive hot path (native/c/relaypath.h): one C call per
TRACK_REPORT decodes into arrays allocated once and rotates the records
into ECEF; nothing is allocated per frame.

    >>> import numpy as np
    >>> from trilink_native._codec import CODEC_REPORT, TrackBatch, codec_encode
    >>> b = TrackBatch.empty(1); b.P[0] = np.eye(6); b.tid[0] = 3; b.x[0, 2] = 100.0
    >>> rx = RxPath(np.eye(3), np.array([1.0, 2.0, 3.0]))
    >>> n = rx.decode(codec_encode(CODEC_REPORT, b))
    >>> n, rx.clean, rx.batch.tid[:n].tolist(), rx.xe[0, :3].tolist()
    (1, True, [3], [1.0, 2.0, 103.0])
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from trilink_native._arrays import dptr, f64
from trilink_native._codec import CODEC_MAX_RECORDS, CodecTable, TrackBatch
from trilink_native._errors import CODEC, check
from trilink_native._kernel import ffi, lib


class RxPath:
    """Decoder of one source's reports: ``decode(payload, held)`` returns the
    record count n and leaves the records in ``batch`` (its arrays'
    first n rows), their ECEF states in ``xe[:n]`` and covariances in
    ``Pe[:n]`` (rows of DROP records undefined), ``header`` (a cffi
    tl_codec_header) and ``clean`` (every record REC_OK and no DROP).
    The arrays are overwritten by the next call: copy what must outlive it.

    R is the source's ENU rotation (enu = R @ (ecef - p0)), p0 its origin
    in ECEF."""

    def __init__(self, R: np.ndarray, p0: np.ndarray, capacity: int = CODEC_MAX_RECORDS) -> None:
        self._R = f64(R, (3, 3), "R")
        self._p0 = f64(p0, (3,), "p0")
        self.capacity = int(capacity)
        self.batch = TrackBatch.empty(self.capacity)
        self.xe = np.zeros((self.capacity, 6))
        self.Pe = np.zeros((self.capacity, 6, 6))
        self.header = ffi.new("tl_codec_header *")
        self._clean = ffi.new("int32_t *")
        self._args = (self.batch._c(), self.capacity, self.header, dptr(self._R), dptr(self._p0),
                      dptr(self.xe), dptr(self.Pe), self._clean)

    @property
    def clean(self) -> bool:
        return bool(self._clean[0])

    def decode(self, payload, held: Optional[CodecTable] = None) -> int:
        """Record count of one payload (a CodecError if it does not decode;
        ``held`` is then unchanged)."""
        buf = ffi.from_buffer(payload)
        cb, cap, hdr, R, p0, xe, Pe, clean = self._args
        st = lib.tl_relay_rx(buf, len(buf), held._t if held is not None else ffi.NULL, cb, cap, hdr,
                             R, p0, xe, Pe, clean)
        return check(st, CODEC, "decode")
