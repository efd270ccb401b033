# hmac256.py: HMAC-SHA256 (RFC 2104) over hashlib.sha256, for MicroPython and CPython
"""HMAC-SHA256 for boards: MicroPython has no ``hmac`` module and its
``hashlib.sha256`` objects have no ``copy()``, so the padded keys are kept
and each message costs two fresh hashes.

    >>> mac = Hmac256(b"TEST-ONLY-KEY")
    >>> tag = mac.digest(b"header", b"payload")   # 32 bytes, parts are concatenated
    >>> tag == hmac_sha256(b"TEST-ONLY-KEY", b"headerpayload")
    True
"""
import hashlib

_BLOCK = 64  # SHA-256 block size


class Hmac256:
    """HMAC-SHA256 under one key; ``digest(*parts)`` may be called any number of times."""

    def __init__(self, key):
        key = bytes(key)
        if len(key) > _BLOCK:  # RFC 2104: long keys are hashed first
            key = hashlib.sha256(key).digest()
        key = key + bytes(_BLOCK - len(key))
        self._ipad = bytes(b ^ 0x36 for b in key)
        self._opad = bytes(b ^ 0x5C for b in key)

    def digest(self, *parts):
        """The 32-byte HMAC of the concatenation of ``parts`` (bytes-like, memoryviews too)."""
        h = hashlib.sha256(self._ipad)
        for p in parts:
            h.update(p)
        inner = h.digest()
        h = hashlib.sha256(self._opad)
        h.update(inner)
        return h.digest()


def hmac_sha256(key, msg):
    """One-shot ``HMAC-SHA256(key, msg)`` as 32 bytes."""
    return Hmac256(key).digest(msg)
