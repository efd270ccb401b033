"""COBS (native/c/cobs.h) exactly as PROTOCOL.md section 3.1 defines it.

    >>> cobs_decode(cobs_encode(b"\\x11\\x00\\x22"))
    b'\\x11\\x00"'
"""
from __future__ import annotations

from trilink_native._crc32 import Bytes
from trilink_native._errors import COBS, KernelError, check
from trilink_native._kernel import ffi, lib


def cobs_encode(data: Bytes) -> bytes:
    """COBS encoding of ``data`` (no delimiter).

        >>> cobs_encode(b"\\x11\\x00\\x22")
        b'\\x02\\x11\\x02"'
    """
    n = len(data)
    cap = int(lib.tl_cobs_max_encoded(n))
    out = ffi.new("uint8_t[]", cap)
    m = lib.tl_cobs_encode(ffi.from_buffer(data), n, out, cap)
    if m < 0:  # pragma: no cover - cap is always enough (its only error, -1)
        raise KernelError("output buffer too small (a binding bug)", "cobs_encode")
    return ffi.buffer(out, m)[:]


def cobs_decode(chunk: Bytes) -> bytes:
    """Decode one COBS chunk (the bytes between two 0x00); a bad chunk
    raises ``WireError("malformed")``.

        >>> cobs_decode(b"\\x02\\x11\\x02\\x22")
        b'\\x11\\x00"'
        >>> cobs_decode(b"\\x05\\x01")
        Traceback (most recent call last):
        ...
        trilink_native._errors.WireError: malformed (cobs_decode: bad COBS chunk, code -1)
    """
    n = len(chunk)
    out = ffi.new("uint8_t[]", max(n, 1))   # a cap of n always suffices
    m = check(lib.tl_cobs_decode(ffi.from_buffer(chunk), n, out, n), COBS, "cobs_decode", "bad COBS chunk")
    return ffi.buffer(out, m)[:]
