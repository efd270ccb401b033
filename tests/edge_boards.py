# edge_boards.py: board stand-ins for the relay tests, written with the board reference code
"""A missile's truth and minimal national boards that report it in their
own ENU frame, written only with ``trilink_board`` (wire, messages, codec)
and the numpy geodesy of ``native/reference``: an independent check of
the relay, which uses the C kernel.

    >>> m = Missile(); b = BoardStandIn(1, "jp", 1, TEST_KEYS[1], JP_ORIGIN)
    >>> len(b.report(m, 100.0)) > 28
    True
"""
from __future__ import annotations

import asyncio
import math
import socket
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from trilink_board import codec, messages, wire
from trilink_native.reference import motion as refm

TEST_KEYS = {1: b"TEST-ONLY-KEY-jp-0000000000000001"[:32], 2: b"TEST-ONLY-KEY-kr-0000000000000002"[:32],
             3: b"TEST-ONLY-KEY-au-0000000000000003"[:32]}
JP_ORIGIN = (38.0, 138.0, 0.0)
KR_ORIGIN = (36.9, 127.4, 0.0)
AU_ORIGIN = (38.5, 134.0, 0.0)
ORIGINS = {1: JP_ORIGIN, 2: KR_ORIGIN, 3: AU_ORIGIN}
NAMES = {1: "jp", 2: "kr", 3: "au"}


def enu_basis(lat_deg: float, lon_deg: float) -> np.ndarray:
    return refm.enu_basis(math.radians(lat_deg), math.radians(lon_deg))


class Missile:
    """The reference IRBM from burnout: ECEF state at t seconds after burnout
    (numpy RK4 with J2, ``native/reference/motion.py``), cached on a 1 s grid."""

    def __init__(self) -> None:
        self._grid: List[np.ndarray] = [refm.irbm_burnout()]

    def ecef(self, t: float) -> np.ndarray:
        k = int(t)
        while len(self._grid) <= k:
            self._grid.append(refm.rk4_step(self._grid[-1], 1.0)[0])
        x = self._grid[k]
        return refm.rk4_step(x, t - k)[0] if t > k else x.copy()


def to_enu(x_ecef: np.ndarray, origin: Tuple[float, float, float]) -> np.ndarray:
    R = enu_basis(origin[0], origin[1])
    p0 = refm.geo_to_ecef(math.radians(origin[0]), math.radians(origin[1]), origin[2])
    return np.concatenate([R @ (x_ecef[:3] - p0), R @ x_ecef[3:]])


def from_enu(x_enu: List[float], origin: Tuple[float, float, float]) -> np.ndarray:
    R = enu_basis(origin[0], origin[1])
    p0 = refm.geo_to_ecef(math.radians(origin[0]), math.radians(origin[1]), origin[2])
    x = np.asarray(x_enu, dtype=float)
    return np.concatenate([R.T @ x[:3] + p0, R.T @ x[3:]])


class BoardStandIn:
    """One board: packs HELLO, TRACK_REPORT (keyframes of one track) and
    WARNING_ACK frames with its own epoch counter; decodes PICTURE and
    WARNING frames from the relay."""

    def __init__(self, node: int, name: str, key_id: int, key: bytes, origin: Tuple[float, float, float],
                 epoch: int = 1, tid: int = 7, sigma_m: float = 50.0) -> None:
        self.node, self.name, self.key_id, self.key, self.origin = node, name, key_id, key, origin
        self.epoch, self.index, self.seq = epoch, 0, 0
        self.tid = tid
        self.report_id = 1000 * node
        self.sent_reports: List[int] = []
        self.sigma_m = sigma_m
        self.ring = wire.Keyring(node, (0,))
        self.ring.add(key_id, node, key)
        self.held: Dict[int, codec.Rec] = {}
        self.pictures: List[Tuple[int, codec.Rec]] = []   # (frame index, record)
        self.warnings: List[dict] = []
        self.deframer = wire.Deframer()

    def _pack(self, mtype: int, payload: bytes, flags: int = 0) -> bytes:
        c = (self.epoch << 28) | self.index
        self.index += 1
        raw = wire.pack(self.key, self.key_id, self.node, 0, mtype, self.seq & 0xFFFF, c, payload, flags)
        self.seq += 1
        return raw

    def hello(self, nonce: int = 0) -> bytes:
        """HELLO; with ``nonce``, the answer to the relay's challenge (PROTOCOL 2.2)."""
        msg = {"role": 0, "proto": 1, "max_payload": 1024, "epoch": self.epoch, "min_epoch": 0, "name": self.name}
        if nonce:
            msg["nonce"] = nonce
        return self._pack(wire.HELLO, messages.encode(wire.HELLO, msg))

    def heartbeat(self, t_us: int = 0) -> bytes:
        return self._pack(wire.HEARTBEAT, messages.encode(wire.HEARTBEAT, {
            "time_us": t_us, "tx_frames": self.seq, "rx_frames": 0, "rx_errors": 0}))

    def report(self, missile: Missile, t: float, relay_us: Optional[int] = None) -> bytes:
        """A TRACK_REPORT keyframe of the missile at t (s after burnout);
        with ``relay_us`` the record time is that relay time (RELAY_TIME)."""
        x = to_enu(missile.ecef(t), self.origin)
        P = [0.0] * 36
        for i in range(6):
            P[7 * i] = self.sigma_m ** 2 if i < 3 else 25.0
        self.report_id += 1
        self.sent_reports.append(self.report_id)
        t_us = relay_us if relay_us is not None else int(t * 1e6)
        u = codec.Update(self.tid, t_us, [float(v) for v in x], P, report_id=self.report_id)
        prec = codec.Precision()
        payload = codec.encode(codec.REPORT, prec, [(codec.KEY, codec.quantise(u, prec), 0)])
        return self._pack(wire.TRACK_REPORT, payload, wire.RELAY_TIME if relay_us is not None else 0)

    def ack(self, warning_id: int) -> bytes:
        return self._pack(wire.WARNING_ACK, messages.encode(wire.WARNING_ACK, {"warning_id": warning_id}))

    def receive(self, raw: bytes) -> Optional[wire.Frame]:
        """Verify a raw frame from the relay; PICTURE records and WARNINGs are kept."""
        f = self.ring.verify(wire.parse(raw))
        if f.mtype == wire.PICTURE:
            b = codec.decode(f.payload[0:] if isinstance(f.payload, bytes) else bytes(f.payload), self.held)
            for rtype, status, rec in b.items:
                self.pictures.append((rtype, rec))
        elif f.mtype == wire.WARNING:
            self.warnings.append(messages.decode(wire.WARNING, bytes(f.payload)))
        return f

    def answer(self, f: wire.Frame) -> Optional[bytes]:
        """What a board does with a relay HELLO (PROTOCOL 2.2): move to its
        ``min_epoch`` when that is above ours, and answer a challenge (a
        nonce) with our HELLO carrying it. Returns the frame to send or None."""
        if f.mtype != wire.HELLO:
            return None
        m = messages.decode(wire.HELLO, bytes(f.payload))
        if m["min_epoch"] > self.epoch:
            self.epoch, self.index = m["min_epoch"], 0
        return self.hello(m["nonce"]) if m.get("nonce") else None

    def receive_serial(self, data: bytes) -> List[wire.Frame]:
        out = []
        for f in self.deframer.feed(data):
            out.append(self.receive(f.raw))
        return out

    def source_nodes(self) -> set:
        """Every source node named by the PICTURE records received."""
        return {nd for _rt, rec in self.pictures for nd, _rid in rec.sources}


class UdpBoard:
    """A board stand-in on a real UDP socket on 127.0.0.1, sending to the
    relay's port: ``poll()`` takes what came, verifies it (``sb.receive``,
    kept in ``frames``), counts the relay's HEARTBEATs, answers its
    challenge (PROTOCOL 2.2) and, with ``ack_warnings``, acknowledges each
    WARNING."""

    def __init__(self, sb: BoardStandIn, port: int, relay_port: int, ack_warnings: bool = True) -> None:
        self.sb = sb
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", port))
        self.sock.setblocking(False)
        self.relay = ("127.0.0.1", relay_port)
        self.ack_warnings = ack_warnings
        self.frames: List[wire.Frame] = []
        self.heartbeats = 0

    def send(self, raw: bytes) -> None:
        self.sock.sendto(raw, self.relay)

    def poll(self) -> None:
        while True:
            try:
                data, _ = self.sock.recvfrom(4096)
            except BlockingIOError:
                return
            f = self.sb.receive(data)
            self.frames.append(f)
            if f.mtype == wire.HEARTBEAT:
                self.heartbeats += 1
            answer = self.sb.answer(f)        # the relay's challenge (PROTOCOL 2.2)
            if answer is not None:
                self.send(answer)
            if self.ack_warnings and f.mtype == wire.WARNING:
                self.send(self.sb.ack(self.sb.warnings[-1]["warning_id"]))

    def close(self) -> None:
        self.sock.close()


async def fly(boards: Dict[int, UdpBoard], missile: Missile, seconds: float, senders: Sequence[int] = (1, 2),
              t0: float = 300.0, period: float = 0.2, poll_s: float = 0.01,
              until: Optional[Callable[[], bool]] = None) -> Optional[float]:
    """HELLO from every board, then every ``period`` the ``senders`` report the
    missile at ``t0 + k * period`` (stamped with relay time) and the others
    send a heartbeat, every board's socket polled each ``poll_s``: for
    ``seconds``, or until ``until()`` holds (then the seconds it took are
    returned; else None). The relay is running already."""
    for b in boards.values():
        b.send(b.sb.hello())
    start = time.monotonic()
    k = 0
    while time.monotonic() - start < seconds:
        now_us = time.monotonic_ns() // 1000
        for n, b in boards.items():
            if n in senders:
                b.send(b.sb.report(missile, t0 + k * period, relay_us=now_us))
            else:
                b.send(b.sb.heartbeat())
        k += 1
        t_end = time.monotonic() + period
        while time.monotonic() < t_end:
            await asyncio.sleep(poll_s)
            for b in boards.values():
                b.poll()
        if until is not None and until():
            return time.monotonic() - start
    return None
