# zenoh_pub.py: the relay's picture on Eclipse Zenoh, each publication sealed for the one nation it is for
"""Key expressions, the sealed envelope (docs/PROTOCOL.md section 8) and the
Zenoh sink of the relay's publisher (edge/publish.py).

A destination's released picture (the PICTURE payloads its link gets, after
release policy) is published on ``trilink/<relay>/picture/<nation>``, its
WARNINGs on ``trilink/<relay>/warning/<nation>``; link health and the
relay's stats on ``trilink/<relay>/health`` and ``trilink/<relay>/stats``.
Every payload is sealed (ChaCha20-Poly1305) with a key derived from that
nation's entry of ``[zenoh] key_file`` (health and stats: the ``ops``
entry), so a subscriber holding only Korea's key can open Korea's
publications and nothing else, whoever else listens on the Zenoh network.

    >>> key = b"TEST-ONLY-zenoh-key-kr-000000000"
    >>> env = seal(key, "trilink/us/picture/kr", KIND_PICTURE, run=7, seq=1, body=b"x")
    >>> opened = open_envelope(key, "trilink/us/picture/kr", env)
    >>> opened.kind, opened.seq, opened.body
    (1, 1, b'x')
    >>> open_envelope(key, "trilink/us/picture/jp", env) is None     # bound to its key expression
    True
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import struct
import time
from dataclasses import dataclass
from typing import Any, Dict, Iterable, Mapping, Optional, Sequence, Tuple

log = logging.getLogger("trilink_edge.zenoh")

__all__ = ["MAGIC", "VERSION", "KIND_PICTURE", "KIND_WARNING", "KIND_HEALTH", "KIND_STATS", "HEADER",
           "derive_key", "seal", "open_envelope", "Opened", "picture_key", "warning_key", "health_key",
           "stats_key", "KIND_SNAPSHOT", "KIND_NAMES", "zenoh_config", "ZenohSink", "load_seal_keys"]

MAGIC = b"TZ"
VERSION = 1
KIND_PICTURE, KIND_WARNING, KIND_HEALTH, KIND_STATS, KIND_SNAPSHOT = 1, 2, 3, 4, 5
KIND_NAMES = {KIND_PICTURE: "picture", KIND_WARNING: "warning", KIND_HEALTH: "health", KIND_STATS: "stats",
              KIND_SNAPSHOT: "snapshot"}
# magic(2) version(1) kind(1) run(4) seq(8) nonce(12)
HEADER = struct.Struct("<2sBBIQ12s")
TAG = 16
_LABEL = b"trilink-zenoh/1 seal"


def derive_key(entry_key: bytes) -> bytes:
    """The 32-byte AEAD key of one key-file entry: HMAC-SHA256(key, label),
    so that a key file shared with boards by mistake is never used raw.

        >>> len(derive_key(bytes(32)))
        32
    """
    return hmac.new(entry_key, _LABEL, hashlib.sha256).digest()


def _aead(key: bytes) -> Any:
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
    return ChaCha20Poly1305(derive_key(key))


def seal(key: bytes, key_expr: str, kind: int, run: int, seq: int, body: bytes, aead: Any = None) -> bytes:
    """One envelope: header, then ``body`` encrypted and authenticated with
    the header and ``key_expr`` as associated data. The nonce is random
    (96 bits: no repeat in any plausible number of publications, and no
    counter to keep across restarts)."""
    nonce = os.urandom(12)
    header = HEADER.pack(MAGIC, VERSION, kind, run & 0xFFFFFFFF, seq, nonce)
    a = aead if aead is not None else _aead(key)
    return header + a.encrypt(nonce, bytes(body), header + key_expr.encode())


@dataclass(frozen=True)
class Opened:
    kind: int
    run: int
    seq: int
    body: bytes


def open_envelope(key: bytes, key_expr: str, data: bytes, aead: Any = None) -> Optional[Opened]:
    """The envelope's contents, or None when it is not one sealed with
    ``key`` for ``key_expr`` (another nation's, altered, or not ours)."""
    from cryptography.exceptions import InvalidTag
    if len(data) < HEADER.size + TAG:
        return None
    magic, version, kind, run, seq, nonce = HEADER.unpack_from(data)
    if magic != MAGIC or version != VERSION:
        return None
    a = aead if aead is not None else _aead(key)
    try:
        body = a.decrypt(nonce, bytes(data[HEADER.size:]), bytes(data[:HEADER.size]) + key_expr.encode())
    except InvalidTag:
        return None
    return Opened(kind, run, seq, body)


def picture_key(relay: str, nation: str) -> str:
    """``trilink/<relay>/picture/<nation>``."""
    return f"trilink/{relay}/picture/{nation}"


def warning_key(relay: str, nation: str) -> str:
    return f"trilink/{relay}/warning/{nation}"


def health_key(relay: str) -> str:
    return f"trilink/{relay}/health"


def stats_key(relay: str) -> str:
    return f"trilink/{relay}/stats"


def load_seal_keys(path: str) -> Dict[str, bytes]:
    """name -> key of a trilink-keys/1 file (``trilink keygen`` writes it).

        $ trilink keygen --nodes jp:1,kr:2,ops:3 --out zenoh-keys.json --split zenoh-keys.d
    """
    from trilink_board import keys as _keys
    return {e.name: e.key for e in _keys.load(path).entries}


def zenoh_config(mode: str = "peer", listen: Sequence[str] = (), connect: Sequence[str] = (),
                 multicast_scouting: bool = False) -> Any:
    """A ``zenoh.Config``: the mode, explicit endpoints, multicast scouting
    off by default (a relay announces itself only where it is told to)."""
    import zenoh
    c = zenoh.Config()
    c.insert_json5("mode", json.dumps(mode))
    c.insert_json5("scouting/multicast/enabled", json.dumps(bool(multicast_scouting)))
    c.insert_json5("listen/endpoints", json.dumps(list(listen)))
    c.insert_json5("connect/endpoints", json.dumps(list(connect)))
    return c


class ZenohSink:
    """Publishes sealed envelopes from the publisher's process or thread (edge/publish.py).

    ``keys``: nation -> key (and ``ops``); ``nations``: node id -> nation.
    Every method runs in the publisher's process (or worker thread), never on the relay's
    event loop."""

    def __init__(self, relay: str, keys: Mapping[str, bytes], nations: Mapping[int, str],
                 zconf: Any, territories: Sequence[Mapping[str, Any]] = ()) -> None:
        self.relay = relay
        # every nation's territory polygons (public geography, the map's
        # background), carried in snapshots
        self.territories = [dict(t) for t in territories]
        self.nations = dict(nations)
        # plain data until open(): the sink can be handed to the publisher's own process (pickled)
        self._keys = dict(keys)
        self._aead: Dict[str, Any] = {}
        self._zconf = zconf          # a zenoh.Config, or zenoh_config()'s keywords (a dict)
        self._session: Any = None
        self._pubs: Dict[str, Any] = {}
        self.run = struct.unpack("<I", os.urandom(4))[0]
        self.seq = 0
        self.published = 0
        self.publisher_options: Dict[str, Any] = {"express": True}   # declare_publisher's keywords

    def open(self) -> None:
        import zenoh
        self._aead = {name: _aead(k) for name, k in self._keys.items()}
        zconf = zenoh_config(**self._zconf) if isinstance(self._zconf, dict) else self._zconf
        self._session = zenoh.open(zconf)

    def close(self) -> None:
        if self._session is not None:
            for p in self._pubs.values():
                try:
                    p.undeclare()
                except Exception:  # noqa: BLE001 - closing the session drops them anyway
                    pass
            self._session.close()
            self._session = None

    def _put(self, key_expr: str, seal_name: str, kind: int, body: bytes) -> None:
        pub = self._pubs.get(key_expr)
        if pub is None:
            # express: no batching delay in Zenoh's own queue
            pub = self._session.declare_publisher(key_expr, **self.publisher_options)
            self._pubs[key_expr] = pub
        self.seq += 1
        pub.put(seal(b"", key_expr, kind, self.run, self.seq, body, aead=self._aead[seal_name]))
        self.published += 1

    def _json(self, doc: Mapping[str, Any]) -> bytes:
        return json.dumps(doc, separators=(",", ":"), default=str).encode()

    def picture(self, node: int, origin: Tuple[float, float, float], t_us: int, records: Sequence[Any],
                snapshot: bool = False) -> None:
        """One PICTURE frame's decoded records (or a snapshot of the whole
        picture this destination holds) on picture/<nation>."""
        nation = self.nations[node]
        doc: Dict[str, Any] = {"kind": "snapshot" if snapshot else "picture", "relay": self.relay, "node": node,
                               "nation": nation, "origin": list(origin), "t_us": t_us,
                               "pub_us": time.monotonic_ns() // 1000, "records": list(records)}
        if snapshot:
            doc["territories"] = self.territories
        self._put(picture_key(self.relay, nation), nation, KIND_SNAPSHOT if snapshot else KIND_PICTURE,
                  self._json(doc))

    def warning(self, node: int, t_us: int, doc: Mapping[str, Any]) -> None:
        nation = self.nations[node]
        self._put(warning_key(self.relay, nation), nation, KIND_WARNING,
                  self._json({"kind": "warning", "relay": self.relay, "node": node, "nation": nation,
                              "t_us": t_us, "warning": dict(doc)}))

    def health(self, doc: Mapping[str, Any]) -> None:
        self._put(health_key(self.relay), "ops", KIND_HEALTH, self._json(doc))

    def stats(self, doc: Mapping[str, Any]) -> None:
        self._put(stats_key(self.relay), "ops", KIND_STATS, self._json(doc))
