# federation.py: two hubs exchange their own boards' reports over Eclipse Zenoh, sealed with their pair key
"""Federation of relays (docs/PROTOCOL.md section 8.4, docs/RELAY.md
"Federation", docs/FUSION.md "Federated hubs").

A hub forwards to each peer hub the track records its **own** boards
reported (after its release policy: a record goes to a peer only when its
nation may reach every nation that peer serves), in ECEF with their
original source (node, track id, report id) and their time in UTC. The
peer enters them into its fused picture as reports of that remote node,
exactly as if the board were its own: each report enters each picture
once, under its own source, and nothing that came from the federation is
ever forwarded again (source bookkeeping; the kernel's covariance
intersection fuses the sources). A peer accepts, from each peer, only the
nodes its config lists for that peer.

Every frame is sealed (ChaCha20-Poly1305) with the key the two hubs share,
bound to its key expression ``trilink/fed/<from>/<to>`` and carrying a
strictly increasing timestamp (UTC µs): a receiver accepts from a peer
only timestamps above the last it accepted and within ``max_skew_s`` of
its own clock, so a replayed, reflected or forged frame is refused and
counted before it touches anything.

    fed = Federation(cfg, keys, on_records)   # relay.py makes it from [federation]
    fed.start(loop)                           # opens the Zenoh session, subscribes
    fed.forward(node, tids, rids, t_us, xe, Pe, flags)   # on the loop, after ingest
    fed.close()
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import struct
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

log = logging.getLogger("trilink_edge.federation")

__all__ = ["MAGIC", "VERSION", "KIND_REPORTS", "KIND_HEARTBEAT", "HEADER", "RECORD", "fed_key",
           "derive_key", "seal", "open_frame", "pack_records", "unpack_records", "Federation", "UTC"]

MAGIC = b"TF"
VERSION = 1
KIND_REPORTS, KIND_HEARTBEAT = 1, 2
# magic(2) version(1) kind(1) ts(8: sender UTC µs, strictly increasing) nonce(12)
HEADER = struct.Struct("<2sBBQ12s")
TAG = 16
_LABEL = b"trilink-federation/1 "
# One report record: its source, its time (UTC µs), ECEF state and covariance (upper triangle, row-major).
RECORD = np.dtype([("node", "u1"), ("flags", "u1"), ("pad", "<u2"), ("tid", "<u4"), ("rid", "<u4"),
                   ("t_us", "<i8"), ("x", "<f8", (6,)), ("P", "<f8", (21,))])
MAX_RECORDS = 64            # per frame (a board's TRACK_REPORT carries fewer)
_IU = np.triu_indices(6)
REJECTS = ("unknown_peer", "auth_fail", "replay", "skew", "malformed", "foreign_node")


def fed_key(src: str, dst: str) -> str:
    """``trilink/fed/<src>/<dst>``: frames hub ``src`` sends hub ``dst``."""
    return f"trilink/fed/{src}/{dst}"


def derive_key(pair_key: bytes, a: str, b: str) -> bytes:
    """The AEAD key of a hub pair: HMAC-SHA256(K, "trilink-federation/1 " + sorted names joined by '+')."""
    return hmac.new(pair_key, _LABEL + "+".join(sorted((a, b))).encode(), hashlib.sha256).digest()


def _aead(key: bytes) -> Any:
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
    return ChaCha20Poly1305(key)


def seal(aead: Any, key_expr: str, kind: int, ts_us: int, body: bytes) -> bytes:
    """One frame: the header, then the body sealed with the header and the key expression as associated data."""
    hdr = HEADER.pack(MAGIC, VERSION, kind, ts_us, os.urandom(12))
    return hdr + aead.encrypt(hdr[-12:], body, hdr + key_expr.encode())


def open_frame(aead: Any, key_expr: str, data: bytes) -> Optional[Tuple[int, int, bytes]]:
    """(kind, ts_us, body), or None when the frame is not authentic (or not a frame)."""
    if len(data) < HEADER.size + TAG:
        return None
    hdr = data[:HEADER.size]
    magic, version, kind, ts, nonce = HEADER.unpack(hdr)
    if magic != MAGIC or version != VERSION:
        return None
    from cryptography.exceptions import InvalidTag
    try:
        body = aead.decrypt(nonce, data[HEADER.size:], hdr + key_expr.encode())
    except InvalidTag:
        return None
    return kind, ts, body


def pack_records(node: int, tids: Sequence[int], rids: Sequence[int], t_utc_us: np.ndarray, xe: np.ndarray,
                 Pe: np.ndarray, flags: Sequence[int]) -> np.ndarray:
    """A RECORD array of one board's stored records."""
    n = len(tids)
    a = np.zeros(n, RECORD)
    a["node"] = node
    a["flags"] = flags
    a["tid"] = tids
    a["rid"] = rids
    a["t_us"] = t_utc_us
    a["x"] = xe
    a["P"] = np.asarray(Pe)[:, _IU[0], _IU[1]]
    return a


def unpack_records(body: bytes) -> Tuple[np.ndarray, np.ndarray]:
    """(records, full 6x6 covariances) of a REPORTS body (u8 n, n records);
    ValueError when it is not one or a value is not finite."""
    if not body or (len(body) - 1) != body[0] * RECORD.itemsize or body[0] > MAX_RECORDS or body[0] == 0:
        raise ValueError("bad REPORTS body length")
    a = np.frombuffer(body, RECORD, count=body[0], offset=1)
    if not (np.isfinite(a["x"]).all() and np.isfinite(a["P"]).all()):
        raise ValueError("a value is not finite")
    P = np.zeros((len(a), 6, 6))
    P[:, _IU[0], _IU[1]] = a["P"]
    P[:, _IU[1], _IU[0]] = a["P"]
    return a, P


class UTC:
    """relay µs (monotonic) <-> UTC µs, with the offset of now."""

    @staticmethod
    def offset_us() -> int:
        return time.time_ns() // 1000 - time.monotonic_ns() // 1000


class Federation:
    """One hub's federation (see the module docstring).

    ``cfg``: the ``FederationConfig``; ``keys``: peer hub -> pair key;
    ``release_to(nation, peer)``: may a record of ``nation`` go to ``peer``;
    ``nation_of``: local node -> nation; ``on_records(peer, recs, P, rx_ns)``
    runs on the relay's loop for every authentic REPORTS frame (its
    records from the nodes listed for that peer)."""

    def __init__(self, cfg: Any, keys: Mapping[str, bytes], nation_of: Mapping[int, str],
                 release_to: Callable[[str, str], bool],
                 on_records: Callable[[str, np.ndarray, np.ndarray, int], None]) -> None:
        from trilink_edge.zenoh_pub import zenoh_config
        self.cfg = cfg
        self.hub = cfg.hub
        self.peers = {p.name: p for p in cfg.peers}
        self._tx = {p: _aead(derive_key(k, self.hub, p)) for p, k in keys.items()}
        self._rx = dict(self._tx)
        self.allowed = {p.name: {nid for _nat, nid in p.nodes} for p in cfg.peers}
        # which of our nodes' records may go to which peer (our release policy, fixed by the config)
        self.route = {node: tuple(p for p in self.peers if release_to(nat, p)) for node, nat in nation_of.items()}
        self.on_records = on_records
        self._zconf = zenoh_config(cfg.mode, cfg.listen, cfg.connect, cfg.multicast_scouting)
        self.session: Any = None
        self._pubs: Dict[str, Any] = {}
        self._sub: Any = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._pending: Dict[str, List[np.ndarray]] = {}
        self._flush_soon = False
        self._ts = 0                       # the last timestamp sent (strictly increasing)
        self._start_us = time.time_ns() // 1000
        # per peer: the last timestamp accepted; frames at or below it are replays
        self.high: Dict[str, int] = {p: self._start_us - int(cfg.max_skew_s * 1e6) for p in self.peers}
        self.counters: Dict[str, Any] = {"tx_frames": 0, "tx_records": 0, "withheld": 0, "send_errors": 0,
                                         "rx_frames": 0, "rx_records": 0, "heartbeats": 0,
                                         **{k: 0 for k in REJECTS}}
        self.peer_state: Dict[str, Dict[str, Any]] = {
            p: {"up": False, "last_rx_us": None, "rx_frames": 0, "rx_records": 0, "joins": 0} for p in self.peers}
        self.rx_delay_us: List[int] = []   # sender timestamp -> accepted here (UTC µs), the recent ones
        self._hb_task: Optional[asyncio.Task] = None

    # ---- life ----

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        import zenoh
        self._loop = loop
        self.session = zenoh.open(self._zconf)
        for p in self.peers:
            self._pubs[p] = self.session.declare_publisher(fed_key(self.hub, p), express=True)
        self._sub = self.session.declare_subscriber(f"trilink/fed/*/{self.hub}", self._on_sample)
        self._hb_task = loop.create_task(self._heartbeats())

    def close(self) -> None:
        if self._hb_task is not None:
            self._hb_task.cancel()
            self._hb_task = None
        if self.session is not None:
            try:
                self.session.close()
            except Exception:  # noqa: BLE001 - closing at shutdown must not raise
                log.exception("federation: closing the Zenoh session failed")
            self.session = None

    # ---- sending (on the loop) ----

    def forward(self, node: int, tids: np.ndarray, rids: np.ndarray, t_us: np.ndarray, xe: np.ndarray,
                Pe: np.ndarray, flags: Sequence[int]) -> None:
        """Records of our own board ``node`` just stored: queued for every
        peer our release policy lets them reach, sent after the loop's
        current work (the round they triggered goes first)."""
        routes = self.route.get(node, ())
        if not routes:
            self.counters["withheld"] += len(tids)
            return
        withheld = len(self.peers) - len(routes)
        if withheld:
            self.counters["withheld"] += withheld * len(tids)
        recs = pack_records(node, tids, rids, t_us + UTC.offset_us(), xe, Pe, flags)
        for p in routes:
            self._pending.setdefault(p, []).append(recs)
        if not self._flush_soon and self._loop is not None:
            self._flush_soon = True
            self._loop.call_soon(self._flush)

    def _next_ts(self) -> int:
        self._ts = max(self._ts + 1, time.time_ns() // 1000)
        return self._ts

    def _send(self, peer: str, kind: int, body: bytes) -> None:
        try:
            self._pubs[peer].put(seal(self._tx[peer], fed_key(self.hub, peer), kind, self._next_ts(), body))
            self.counters["tx_frames"] += 1
        except Exception as e:  # noqa: BLE001 - a peer gone costs that frame; Zenoh reconnects by itself
            self.counters["send_errors"] += 1
            log.debug("federation: send to %s failed: %s", peer, e)

    def _flush(self) -> None:
        self._flush_soon = False
        pending, self._pending = self._pending, {}
        if self.session is None:
            return
        for peer, parts in pending.items():
            recs = np.concatenate(parts) if len(parts) > 1 else parts[0]
            for k in range(0, len(recs), MAX_RECORDS):
                chunk = recs[k:k + MAX_RECORDS]
                self._send(peer, KIND_REPORTS, bytes([len(chunk)]) + chunk.tobytes())
                self.counters["tx_records"] += len(chunk)

    async def _heartbeats(self) -> None:
        while True:
            body = json.dumps({"hub": self.hub, "tx_records": self.counters["tx_records"]}).encode()
            for p in self.peers:
                self._send(p, KIND_HEARTBEAT, body)
            await asyncio.sleep(self.cfg.heartbeat_s)

    # ---- receiving (in Zenoh's thread; state changes only on the loop) ----

    def _on_sample(self, sample: Any) -> None:
        rx_ns = time.monotonic_ns()
        key = str(sample.key_expr)
        parts = key.split("/")
        src = parts[2] if len(parts) == 4 else ""
        aead = self._rx.get(src)
        if aead is None or parts[3] != self.hub:
            self.counters["unknown_peer"] += 1
            return
        opened = open_frame(aead, key, bytes(sample.payload))
        if opened is None:
            self.counters["auth_fail"] += 1
            return
        kind, ts, body = opened
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._accept, src, kind, ts, body, rx_ns)

    def _accept(self, src: str, kind: int, ts: int, body: bytes, rx_ns: int) -> None:
        """An authentic frame from ``src``, on the loop: the replay and
        clock rules, then its records to the picture."""
        now = time.time_ns() // 1000
        if ts <= self.high[src]:
            self.counters["replay"] += 1
            return
        if abs(ts - now) > self.cfg.max_skew_s * 1e6:
            self.counters["skew"] += 1
            return
        if kind == KIND_REPORTS:
            try:
                recs, P = unpack_records(body)
            except ValueError:
                self.counters["malformed"] += 1
                return
            ok = np.isin(recs["node"], list(self.allowed[src]))
            if not ok.all():
                self.counters["foreign_node"] += int((~ok).sum())
                recs, P = recs[ok], P[ok]
        elif kind == KIND_HEARTBEAT:
            recs = None
            self.counters["heartbeats"] += 1
        else:
            self.counters["malformed"] += 1
            return
        self.high[src] = ts
        st = self.peer_state[src]
        if not st["up"]:
            st["up"] = True
            st["joins"] += 1
            log.info("federation: hub %s up", src)
        st["last_rx_us"] = now
        st["rx_frames"] += 1
        self.counters["rx_frames"] += 1
        if recs is not None and len(recs):
            self.rx_delay_us.append(now - ts)
            del self.rx_delay_us[:-4096]
            st["rx_records"] += len(recs)
            self.counters["rx_records"] += len(recs)
            self.on_records(src, recs, P, rx_ns)

    def tick(self) -> None:
        """A peer silent for three heartbeats is down (until its next authentic frame)."""
        now = time.time_ns() // 1000
        for p, st in self.peer_state.items():
            if st["up"] and st["last_rx_us"] is not None and now - st["last_rx_us"] > 3e6 * self.cfg.heartbeat_s:
                st["up"] = False
                log.warning("federation: hub %s silent for %.1f s", p, (now - st["last_rx_us"]) / 1e6)

    def stats(self) -> Dict[str, Any]:
        d: Dict[str, Any] = dict(self.counters)
        d["hub"] = self.hub
        d["peers"] = {p: dict(st) for p, st in self.peer_state.items()}
        lat = sorted(self.rx_delay_us)
        if lat:
            d["rx_delay_us"] = {"count": len(lat), "p50": lat[len(lat) // 2],
                                "p99": lat[min(len(lat) - 1, int(0.99 * len(lat)))]}
        return d
