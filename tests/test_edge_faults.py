"""The relay process under faults and load, with real CPython board
processes, checked on the relay's capture:

* the relay side of JP's serial link (a pty pair behind a symlink, the
  null-modem emulator) vanishes for 1 s and comes back: the relay reopens
  it and traffic resumes both ways, the daemon never restarts; the KR board
  is killed and started again (a reboot): the relay accepts it at once
  (its counter epoch moved on) and KR's new reports reach JP;
* the `debris` scenario over 115200-baud serial links with the default
  budget: the bytes the relay wrote to each link never exceed the budget in
  any 1-s window (from the capture and from the emulator's own record), and
  its queues stay bounded.
"""
from __future__ import annotations

import os
import re
import subprocess
import time

from edge_rig import (board_argv, decode_tx, exe, max_window, relay_now_us, relay_toml, stop_relay, udp_port,
                      write_keys)
from trilink_board import wire
from trilink_edge.recorder import capture_files, iter_capture

NODES = {"jp": 1, "kr": 2}
RELEASE = {"jp": ["kr"], "kr": ["jp"]}


def _records(tmp):
    return [r for path in capture_files(str(tmp / "cap" / "relay.pcapng")) for r in iter_capture(path)]


def _wait(cond, timeout_s):
    end = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.002)


def _kill(procs):
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait(5)


def test_port_vanishes_and_board_reboots_without_restart(tmp_path):
    from trilink.nullmodem import NullModem
    keys, kid = write_keys(tmp_path, NODES)
    kr_ports = (udp_port(), udp_port())
    procs = []
    with NullModem(baud=115200) as nm:
        cfg = relay_toml(tmp_path, NODES, kid, {"jp": ("serial", nm.b_path), "kr": ("udp",) + kr_ports}, RELEASE)
        relay = subprocess.Popen([exe("trilink-edge"), "--config", str(cfg)], stderr=subprocess.PIPE, text=True)
        procs.append(relay)
        try:
            start, window = 95.0, 14.0
            epoch = relay_now_us(2.5)
            kr_link = f"udp:127.0.0.1:{kr_ports[1]}:127.0.0.1:{kr_ports[0]}"
            jp = subprocess.Popen(board_argv(tmp_path, "jp", f"tty:{nm.a_path}@115200", start, window, epoch),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            kr = subprocess.Popen(board_argv(tmp_path, "kr", kr_link, start, window, epoch),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            procs += [jp, kr]
            time.sleep(2.5 + 3.0)                         # boot, time sync, 3 s of traffic
            nm.vanish(1.0, sides="b")                     # the relay's side of the JP port disappears
            _wait(lambda: not nm.present("b"), 2.0)       # (the emulator's thread carries it out)
            t_gone = time.monotonic_ns()
            _wait(lambda: nm.present("b"), 3.0)
            t_back = time.monotonic_ns()
            time.sleep(1.5)
            t_kill = time.monotonic_ns()
            kr.kill()                                     # KR reboots: killed, started again
            kr.wait(5)
            elapsed = (relay_now_us() - epoch) / 1e6
            kr2 = subprocess.Popen(board_argv(tmp_path, "kr", kr_link, start + elapsed + 1.5,
                                              window - elapsed - 1.5, relay_now_us(1.5)),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            procs.append(kr2)
            t_restart = time.monotonic_ns()
            for p in (jp, kr2):
                out, err = p.communicate(timeout=window + 30)
                assert p.returncode == 0, err[-2000:]
            time.sleep(0.3)
            rc, stop_s, err = stop_relay(relay)
        finally:
            _kill(procs)
    assert rc == 0 and stop_s < 1.0 and "Traceback" not in err, err[-2000:]
    assert "reopened" in err                              # the same daemon reopened the port
    recs = _records(tmp_path)
    jp_rx = [r.t_ns for r in recs if r.link == "jp" and r.direction == "rx"]
    assert [t for t in jp_rx if t < t_gone], "no JP traffic before the port vanished"
    after = [t for t in jp_rx if t > t_back]
    assert after and after[0] - t_back < 2_000_000_000, "JP traffic did not resume within 2 s of the port's return"
    _f, to_jp = decode_tx(recs, "jp", 1, keys[1], kid[1])
    _f, to_kr = decode_tx(recs, "kr", 2, keys[2], kid[2])
    # Fused updates flow both ways after the port came back ...
    assert any(r.t_ns > t_back and any(nd == 1 for nd, _ in rec.sources) for r, _rt, rec in to_kr), \
        (sorted((r.t_ns - t_back) // 1_000_000 for r, _rt, rec in to_kr if any(nd == 1 for nd, _ in rec.sources)),
         [(t - t_back) // 1_000_000 for t in after][:20], err[-3000:])
    # ... and KR's reports from after its reboot reach JP, with no operator action.
    before = [rid for r, _rt, rec in to_jp if r.t_ns < t_kill for nd, rid in rec.sources if nd == 2]
    reborn = [rid for r, _rt, rec in to_jp if r.t_ns > t_restart for nd, rid in rec.sources if nd == 2]
    assert before and reborn and min(reborn) > max(before)
    m = re.search(r"\bkr (?:up|DOWN) in \d+/\d+B out \d+/\d+B crc=\d+ mal=\d+ auth=(\d+) replay=(\d+)",
                  [ln for ln in err.splitlines() if "links: " in ln][-1])
    assert m and m.group(1) == "0" and m.group(2) == "0"  # the rebooted board was never refused


def test_debris_over_115200_baud_stays_within_budget(tmp_path):
    from trilink.nullmodem import NullModem
    from trilink_edge.stats import fetch_stats
    keys, kid = write_keys(tmp_path, NODES)
    stats_port = udp_port()
    procs = []
    with NullModem(baud=115200) as nm_jp, NullModem(baud=115200) as nm_kr:
        cfg = relay_toml(tmp_path, NODES, kid, {"jp": ("serial", nm_jp.b_path), "kr": ("serial", nm_kr.b_path)},
                         RELEASE, stats_port=stats_port)
        relay = subprocess.Popen([exe("trilink-edge"), "--config", str(cfg)], stderr=subprocess.PIPE, text=True)
        procs.append(relay)
        try:
            start, window = 215.0, 8.0       # 15 s after the breakup: ~50 fragments tracked by JP, ~17 by KR
            epoch = relay_now_us(2.5)
            boards = [subprocess.Popen(board_argv(tmp_path, n, f"tty:{nm.a_path}@115200", start, window, epoch,
                                                  scenario="debris"),
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                      for n, nm in (("jp", nm_jp), ("kr", nm_kr))]
            procs += boards
            for p in boards:
                out, err = p.communicate(timeout=window + 30)
                assert p.returncode == 0, err[-2000:]
            st = fetch_stats(("127.0.0.1", stats_port))
            rc, stop_s, err = stop_relay(relay)
            emulated = {"jp": nm_jp.frames("ba"), "kr": nm_kr.frames("ba")}
        finally:
            _kill(procs)
    assert rc == 0 and stop_s < 1.0, err[-2000:]
    recs = _records(tmp_path)
    budget = 10368                                    # 115200 baud: 11,520 bytes/s less 10%
    total = 0
    for link in NODES:
        assert st["links"][link]["budget"] == budget
        tx = sorted((r.t_ns, len(wire.serial_encode(r.data))) for r in recs if r.link == link and r.direction == "tx")
        assert tx and max_window(tx) <= budget, link
        emu = sorted((f.t_first_in_ns, f.wire_bytes) for f in emulated[link])
        assert emu and max_window(emu) <= budget, link
        total += sum(n for _t, n in tx)
        # bounded: control and warning queues never held more than their bounds
        assert st["links"][link]["max_depth"] <= 64 + 256
    # the debris load was real: many fused tracks and tens of kilobytes relayed
    assert st["picture"]["fused"] >= 20 and total > 20_000
    _f, to_kr = decode_tx(recs, "kr", 2, keys[2], kid[2])
    assert len({rec.tid for _r, _rt, rec in to_kr}) >= 20
