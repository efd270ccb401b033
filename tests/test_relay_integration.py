"""The relay end to end over real UDP sockets on 127.0.0.1 (and, when the
links module is present, real pty pairs through the null-modem emulator):
board stand-ins written with trilink_board report one missile from JP and
KR in their own ENU frames; the fused pictures they get back are decoded
with the board's codec and checked."""
from __future__ import annotations

import asyncio
import json
import os
import time

import numpy as np
import pytest

from edge_boards import (AU_ORIGIN, JP_ORIGIN, KR_ORIGIN, NAMES, TEST_KEYS, BoardStandIn, Missile, UdpBoard, fly,
                         from_enu)
from edge_rig import max_window
from trilink.ports import free_ports
from trilink_board import wire
from trilink_edge import config as edge_config
from trilink_edge import config_toml
from trilink_edge.links import UdpLink
from trilink_edge.relay import Relay

HERE = os.path.dirname(os.path.abspath(__file__))
NATIONS = os.path.join(HERE, "..", "boards", "nations")


def relay_config(tmp_path, ports, budget=20000, release=None):
    """A config of three UDP links: relay ports ports[0:3], boards ports[3:6]."""
    doc = {
        "relay": {"node": 0, "state_file": str(tmp_path / "state.json"), "stats": "off", "allow_test_keys": True},
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


async def drive(relay, boards, missile, seconds, period=0.2):
    """The relay started, then ``fly``: boards 1 and 2 report the missile, 3 sends heartbeats."""
    task = asyncio.ensure_future(relay.run())
    await asyncio.sleep(0.05)
    await fly(boards, missile, seconds, period=period)
    return task


def make_boards(ports):
    return {n: UdpBoard(BoardStandIn(n, NAMES[n], n, TEST_KEYS[n], o), ports[2 + n], ports[n - 1])
            for n, o in ((1, JP_ORIGIN), (2, KR_ORIGIN), (3, AU_ORIGIN))}


def test_udp_relay_shares_tracks_only_as_released(tmp_path):
    ports = free_ports(6)
    cfg = relay_config(tmp_path, ports)
    links = {name: UdpLink(name, ("127.0.0.1", ports[i]), ("127.0.0.1", ports[3 + i]))
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


def test_every_report_reaches_the_partner_in_its_own_update(tmp_path):
    """JP and KR both report a missile in free flight, without noise: the
    fused track moves exactly as the destination's dead reckoning predicts
    (the case where a sender with a 50 m threshold suppressed updates and
    their reports rode on a later one, 0.5-1 s late). Every JP report must
    reach KR in an update of its own, and KR's reports JP, with the
    relay's default config; none is held back by dead reckoning."""
    ports = free_ports(6)
    cfg = relay_config(tmp_path, ports, release={"jp": ["kr"], "kr": ["jp"], "au": []})
    links = {name: UdpLink(name, ("127.0.0.1", ports[i]), ("127.0.0.1", ports[3 + i]))
             for i, name in enumerate(("jp", "kr", "au"))}
    boards = make_boards(ports)

    async def main():
        for lk in links.values():
            await lk.open()
        relay = Relay(cfg, links=links, keys=TEST_KEYS)
        task = await drive(relay, boards, Missile(), 3.0, period=0.25)
        stats = relay.stats()
        await relay.stop()
        await asyncio.wait_for(task, 1.0)
        return stats

    stats = asyncio.run(main())
    assert stats["pipeline"]["dr_suppressed"] == 0
    for src, dst in ((1, 2), (2, 1)):
        sent = boards[src].sb.sent_reports
        per_record = [[rid for nd, rid in rec.sources if nd == src] for _rt, rec in boards[dst].sb.pictures]
        named = [rid for rids in per_record for rid in rids]
        # one report per update: none rode on a later report's update
        assert all(len(rids) <= 1 for rids in per_record), per_record
        # every report but the last (possibly still in flight when the run ended) reached
        # the partner; a margin of one for a report merged into the next under load
        assert len(set(named)) >= len(sent) - 2 and set(named) <= set(sent), (src, named, sent)


def codec_prec():
    from trilink_board import codec
    return codec.Precision()


def serial_config(tmp_path, devices, budget=1200, burst=600):
    doc = {
        "relay": {"node": 0, "state_file": str(tmp_path / "state.json"), "stats": "off", "allow_test_keys": True},
        "nodes": {
            "jp": {"id": 1, "key_id": 1, "nation_file": os.path.join(NATIONS, "jp.json")},
            "kr": {"id": 2, "key_id": 2, "nation_file": os.path.join(NATIONS, "kr.json")},
        },
        "links": {name: {"kind": "serial", "device": devices[name], "baud": 115200, "boards": [name],
                         "budget": budget, "burst": burst} for name in ("jp", "kr")},
        "release": {"jp": ["kr"], "kr": ["jp"]},
        "recorder": {"path": str(tmp_path / "cap" / "relay.pcapng")},
        "scheduler": {"burst": burst},
    }
    return edge_config.from_dict(doc, "test.toml", str(tmp_path))


def test_serial_relay_over_ptys_within_budget(tmp_path):
    """Real ptys paced at 115200 baud, the real SerialLink and recorder; a
    1,200 bytes/s budget that the offered load exceeds (many tracks): no
    1-s window of relay output, measured by the emulator and by the
    capture, holds more than the budget."""
    import serial
    from trilink.nullmodem import NullModem
    from trilink_edge.recorder import capture_files, iter_capture

    missile = Missile()
    with NullModem(baud=115200) as nm_jp, NullModem(baud=115200) as nm_kr:
        cfg = serial_config(tmp_path, {"jp": nm_jp.b_path, "kr": nm_kr.b_path})
        ports = {1: serial.Serial(nm_jp.a_path, timeout=0), 2: serial.Serial(nm_kr.a_path, timeout=0)}
        sbs = {n: BoardStandIn(n, NAMES[n], n, TEST_KEYS[n], o) for n, o in ((1, JP_ORIGIN), (2, KR_ORIGIN))}

        async def main():
            relay = Relay(cfg, keys=TEST_KEYS)
            task = asyncio.ensure_future(relay.run())
            await asyncio.sleep(0.2)
            start = time.monotonic()
            k = 0
            while time.monotonic() - start < 4.0:
                now_us = time.monotonic_ns() // 1000
                for n, sb in sbs.items():
                    # 12 tracks per board: several copies of the missile, offset, to load the link
                    for j in range(12):
                        sb.tid = 10 + j
                        raw = sb.report(missile, 300.0 + 0.25 * k + 0.3 * j, relay_us=now_us)
                        ports[n].write(wire.serial_encode(raw))
                k += 1
                t_end = time.monotonic() + 0.25
                while time.monotonic() < t_end:
                    await asyncio.sleep(0.01)
                    for n, p in ports.items():
                        data = p.read(65536)
                        if data:
                            for f in sbs[n].receive_serial(data):
                                answer = sbs[n].answer(f)
                                if answer is not None:
                                    ports[n].write(wire.serial_encode(answer))
            stats = relay.stats()
            t0 = time.monotonic()
            await relay.stop()
            await asyncio.wait_for(task, 1.0)
            return relay, stats, time.monotonic() - t0

        relay, stats, stop_s = asyncio.run(main())
        frames_ba = {"jp": nm_jp.frames("ba"), "kr": nm_kr.frames("ba")}
        for p in ports.values():
            p.close()
    assert stop_s < 1.0
    jp, kr = sbs[1], sbs[2]
    assert {nd for _rt, rec in kr.pictures for nd, _ in rec.sources} >= {1}
    assert {nd for _rt, rec in jp.pictures for nd, _ in rec.sources} >= {2}
    budget = cfg.links["jp"].budget
    for name, frames in frames_ba.items():
        # bytes the relay wrote, by the emulator's own clock (first byte taken)
        events = sorted((f.t_first_in_ns, f.wire_bytes) for f in frames)
        assert events, name
        assert max_window(events) <= budget, name
    # the offered load filled the budget: the limit, not the load, shaped the output
    assert max(max_window(sorted((f.t_first_in_ns, f.wire_bytes) for f in fr)) for fr in frames_ba.values()) \
        >= 0.8 * budget
    recs = [r for path in capture_files(str(tmp_path / "cap" / "relay.pcapng")) for r in iter_capture(path)]
    for name in ("jp", "kr"):
        tx = sorted((r.t_ns, len(wire.serial_encode(r.data))) for r in recs if r.link == name and r.direction == "tx")
        assert tx and max_window(tx) <= budget
        assert len(tx) == relay.schedulers[name].counters.frames_out


def write_process_config(tmp_path, ports):
    keys = {"format": "trilink-keys/1", "relay": 0,
            "keys": [{"key_id": n, "node": n, "name": NAMES[n], "key": TEST_KEYS[n].hex()} for n in (1, 2)]}
    kp = tmp_path / "keys.json"
    kp.write_text(json.dumps(keys))
    os.chmod(kp, 0o600)
    cp = tmp_path / "relay.toml"
    config_toml.write(cp, {
        "relay": {"allow_test_keys": True, "key_file": kp, "state_file": tmp_path / "state.json", "stats": "off",
                  "stats_interval_s": 0},
        "nodes": {"jp": {"id": 1, "nation_file": os.path.join(NATIONS, "jp.json")},
                  "kr": {"id": 2, "nation_file": os.path.join(NATIONS, "kr.json")}},
        "links": {"jp": {"kind": "udp", "bind": f"127.0.0.1:{ports[0]}", "peer": f"127.0.0.1:{ports[3]}", "boards": ["jp"]},
                  "kr": {"kind": "udp", "bind": f"127.0.0.1:{ports[1]}", "peer": f"127.0.0.1:{ports[4]}", "boards": ["kr"]}},
        "release": {"jp": ["kr"], "kr": ["jp"]},
        "recorder": {"path": tmp_path / "cap.pcapng"},
    })
    return cp


def run_boards(boards, missile, seconds, t0):
    start = time.monotonic()
    k = 0
    while time.monotonic() - start < seconds:
        for n in (1, 2):
            boards[n].send(boards[n].sb.report(missile, t0 + 0.2 * k))   # board clock: no RELAY_TIME
        k += 1
        t_end = time.monotonic() + 0.2
        while time.monotonic() < t_end:
            time.sleep(0.01)
            for b in boards.values():
                b.poll()


def test_process_sigterm_and_restart_rebuilds_picture(tmp_path):
    """The real `trilink-edge --config` process: tracks cross, SIGTERM stops
    it within 1 s, and a restarted relay (same state file) accepts the
    boards' later frames and rebuilds the picture from new reports."""
    import signal
    import subprocess
    import sys
    ports = free_ports(6)
    cp = write_process_config(tmp_path, ports)
    exe = os.path.join(os.path.dirname(sys.executable), "trilink-edge")
    boards = {n: UdpBoard(BoardStandIn(n, NAMES[n], n, TEST_KEYS[n], o), ports[2 + n], ports[n - 1])
              for n, o in ((1, JP_ORIGIN), (2, KR_ORIGIN))}
    missile = Missile()
    seen = []
    for run in range(2):
        proc = subprocess.Popen([exe, "--config", str(cp)], stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(1.0)
            mark = {n: len(b.sb.pictures) for n, b in boards.items()}
            run_boards(boards, missile, 2.0, 300.0 + 10 * run)
            kr_new = {rid for _rt, rec in boards[2].sb.pictures[mark[2]:] for nd, rid in rec.sources if nd == 1}
            jp_new = {rid for _rt, rec in boards[1].sb.pictures[mark[1]:] for nd, rid in rec.sources if nd == 2}
            assert kr_new and jp_new, f"run {run}: no fused update crossed"
            seen.append(kr_new)
            t0 = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(5)
            assert time.monotonic() - t0 < 1.0 and rc == 0
        finally:
            if proc.poll() is None:
                proc.kill()
            err = proc.stderr.read()
        assert "Traceback" not in err, err
    # the second run fused only reports sent after its start
    assert min(seen[1]) > max(seen[0])
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["epoch"] == 2 and state["seen"] == {"1": 1, "2": 1}   # the boards' epochs, nothing per frame
