"""CRC-32 of the frames (native/c/crc32.h), zlib's polynomial and bit order.

    >>> hex(crc32(b"123456789"))
    '0xcbf43926'
"""
from __future__ import annotations

from typing import Union

from trilink_native._kernel import ffi, lib

Bytes = Union[bytes, bytearray, memoryview]


def crc32(data: Bytes, crc: int = 0) -> int:
    """CRC-32 of ``data``; ``crc`` continues a previous value (like zlib.crc32).

        >>> import zlib
        >>> crc32(b"456789", crc32(b"123")) == zlib.crc32(b"123456789")
        True
    """
    if not 0 <= crc <= 0xFFFFFFFF:
        raise ValueError("crc must be a 32-bit unsigned value")
    return int(lib.tl_crc32(crc, ffi.from_buffer(data), len(data)))
