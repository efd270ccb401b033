"""SHA-256 and HMAC-SHA256 (native/c/sha256.h): the frame tag of PROTOCOL.md 2.1.

    >>> sha256(b"abc").hex()[:16]
    'ba7816bf8f01cfea'
"""
from __future__ import annotations

from trilink_native._crc32 import Bytes
from trilink_native._kernel import ffi, lib

SHA256_SIZE = int(lib.TL_SHA256_SIZE)


def _digest() -> object:
    return ffi.new("uint8_t[]", SHA256_SIZE)


def sha256(data: Bytes) -> bytes:
    """SHA-256 digest (32 bytes).

        >>> import hashlib
        >>> sha256(b"x" * 200) == hashlib.sha256(b"x" * 200).digest()
        True
    """
    out = _digest()
    lib.tl_sha256(ffi.from_buffer(data), len(data), out)
    return ffi.buffer(out)[:]


class HmacKey:
    """A prepared HMAC-SHA256 key (its padded blocks hashed once).

        >>> HmacKey(b"key").digest(b"msg") == hmac_sha256(b"key", b"msg")
        True
    """

    __slots__ = ("_key",)

    def __init__(self, key: Bytes) -> None:
        self._key = ffi.new("tl_hmac_key *")
        lib.tl_hmac_init(self._key, ffi.from_buffer(key), len(key))

    def digest(self, msg: Bytes) -> bytes:
        """HMAC-SHA256 of ``msg`` (32 bytes)."""
        out = _digest()
        lib.tl_hmac_digest(self._key, ffi.from_buffer(msg), len(msg), out)
        return ffi.buffer(out)[:]


def hmac_sha256(key: Bytes, msg: Bytes) -> bytes:
    """One-shot HMAC-SHA256 (RFC 2104), 32 bytes.

        >>> import hmac, hashlib
        >>> hmac_sha256(b"k" * 80, b"m") == hmac.new(b"k" * 80, b"m", hashlib.sha256).digest()
        True
    """
    out = _digest()
    lib.tl_hmac_sha256(ffi.from_buffer(key), len(key), ffi.from_buffer(msg), len(msg), out)
    return ffi.buffer(out)[:]
