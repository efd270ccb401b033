"""The relay end to end over real UDP sockets on 127.0.0.1 (and, when the
links module is present, real pty pairs through the null-modem emulator):
board stand-ins written with trilink_board report one missile from JP and
KR in their own ENU frames; the fused pictures they get back are decoded
with the board's codec and checked."""
from __future__ import annotations

import asyncio
import json
import os
import socket
import time

import numpy as np
import pytest

from edge_boards import (AU_ORIGIN, JP_ORIGIN, KR_ORIGIN, NAMES, TEST_KEYS, BoardStandIn, Missile, UdpTestLink,
                         from_enu)
from trilink_board import wire
from trilink_edge import config as edge_config
from trilink_edge.relay import Relay

HERE = os.path.dirname(os.path.abspath(__file__))
NATIONS = os.path.join(HERE, "..", "boards", "nations")


def free_ports(n):
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def relay_config(tmp_path, ports, budget=20000, release=None):
    """A config of three UDP links: relay ports ports[0:3], boards ports[3:6]."""
    doc = {
        "relay": {"node": 0, "state_file": str(tmp_path / "state.json"), "stats": "off"},
        "nodes": {
            "jp": {"id": 1, "key_id": 1, "nation_file": os.path.join(NATIONS, "jp.json")},
            "kr": {"id": 2, "key_id": 2, "nation_file": os.path.join(NATIONS, "kr.json")},
            "au": {"id": 3, "key_id": 3, "nation": "au",
                   "origin": {"lat": AU_ORIGIN[0], "lon": AU_ORIGIN[1], "alt_m": 0.0}},
        },
        "links": {name: {"kind": "udp", "bind": f"127.0.0.1:{ports[i]}", "peer": f"127.0.0.1:{ports[3 + i]}",
                         "boards": [name], "budget": budget} for i, name in enumerate(("jp", "kr", "au"))},
        "release": release if release is not None else {"jp": ["kr"], "kr": ["jp", "au"], "au": []},
    }
    return edge_config.from_dict(doc, "test.toml", str(tmp_path))


class UdpBoard:
    def __init__(self, sb: BoardStandIn, port: int, relay_port: int) -> None:
        self.sb = sb
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", port))
        self.sock.setblocking(False)
        self.relay = ("127.0.0.1", relay_port)
        self.frames = []

    def send(self, raw):
        self.sock.sendto(raw, self.relay)

    def poll(self):
        while True:
            try:
                data, _ = self.sock.recvfrom(4096)
            except BlockingIOError:
                return
            f = self.sb.receive(data)
            self.frames.append(f)
            if f.mtype == wire.WARNING:
                self.send(self.sb.ack(self.sb.warnings[-1]["warning_id"]))


async def drive(relay, boards, missile, seconds, t0_missile=300.0, period=0.2, senders=(1, 2)):
    task = asyncio.ensure_future(relay.run())
    await asyncio.sleep(0.05)
    for b in boards.values():
        b.send(b.sb.hello())
    start = time.monotonic()
    k = 0
    while time.monotonic() - start < seconds:
        t = t0_missile + k * period
        now_us = time.monotonic_ns() // 1000
        for n in senders:
            boards[n].send(boards[n].sb.report(missile, t, relay_us=now_us))
        if 3 in boards and 3 not in senders:
            boards[3].send(boards[3].sb.heartbeat())
        k += 1
        t_end = time.monotonic() + period
        while time.monotonic() < t_end:
            await asyncio.sleep(0.01)
            for b in boards.values():
                b.poll()
    return task


def make_boards(ports):
    return {n: UdpBoard(BoardStandIn(n, NAMES[n], n, TEST_KEYS[n], o), ports[2 + n], ports[n - 1])
            for n, o in ((1, JP_ORIGIN), (2, KR_ORIGIN), (3, AU_ORIGIN))}


def test_udp_relay_shares_tracks_only_as_released(tmp_path):
    ports = free_ports(6)
    cfg = relay_config(tmp_path, ports)
    links = {name: UdpTestLink(("127.0.0.1", ports[i]), ("127.0.0.1", ports[3 + i]))
             for i, name in enumerate(("jp", "kr", "au"))}
    boards = make_boards(ports)
    missile = Missile()

    async def main():
        for lk in links.values():
            await lk.open()
        relay = Relay(cfg, links=links, keys=TEST_KEYS)
        task = await drive(relay, boards, missile, 3.0)
        stats = relay.stats()
        await relay.stop()
        await asyncio.wait_for(task, 1.0)
        return relay, stats

    relay, stats = asyncio.run(main())
    jp, kr, au = boards[1].sb, boards[2].sb, boards[3].sb
    # JP's reports reach KR and KR's reach JP: the fused records name the other's report ids.
    kr_named = {rid for _rt, rec in kr.pictures for nd, rid in rec.sources if nd == 1}
    jp_named = {rid for _rt, rec in jp.pictures for nd, rid in rec.sources if nd == 2}
    assert kr_named and kr_named <= set(jp.sent_reports)
    assert jp_named and jp_named <= set(kr.sent_reports)
    # AU may get KR's data (kr -> au allowed) but never JP's (jp -> au not listed).
    assert au.pictures, "au received no fused update"
    assert {nd for _rt, rec in au.pictures for nd, _ in rec.sources} == {2}
    assert all(not (rec.nations & (1 << 1)) for _rt, rec in au.pictures)
    # The fused state KR holds is the missile (in KR's ENU frame), within a few hundred metres.
    tid_recs = [rec for _rt, rec in kr.pictures if rec.sources]
    last = tid_recs[-1]
    x = from_enu(last.state(codec_prec()), KR_ORIGIN)
    miss = min(np.linalg.norm(x[:3] - missile.ecef(300.0 + 0.05 * i)[:3]) for i in range(0, 80))
    assert miss < 2000.0   # the fused track is the missile: frames, fusion and codec agree
    # The relay's own budget meter never saw more than the budget in a 1 s window.
    for name, d in stats["links"].items():
        assert d["max_window_bytes"] <= d["budget"]
    assert stats["nodes"]["jp"]["rx_frames"] > 10 and stats["nodes"]["jp"]["auth_fail"] == 0


def codec_prec():
    from trilink_board import codec
    return codec.Precision()
