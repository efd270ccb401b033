#!/usr/bin/env python3
# bench_relay.py: the relay's processing latency and CPU per 1,000 frames, nominal and debris load
"""Runs the real ``Relay`` (in this process, real UDP links on 127.0.0.1)
while a child process plays two boards (JP, KR) sending TRACK_REPORT
frames at a fixed rate. Prints, per load, the relay's processing latency
percentiles, i.e. from a report frame fully received (the link's
``Received.t_ns``) to the first byte of the resulting PICTURE frame written
(the moment the sender hands it to the link), and the relay's CPU time
per 1,000 frames received (this process's CPU; the boards are another
process).

Loads: ``nominal`` = 1 track per board at 2 Hz (2 frames/s per board);
``debris`` = 61 tracks per board (the ``debris`` scenario's 60 fragments
and the body) at 2 Hz, 8 tracks per frame (16 frames/s per board).

    python tools/bench_relay.py --seconds 10
"""
from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

from edge_boards import JP_ORIGIN, KR_ORIGIN, NAMES, TEST_KEYS, BoardStandIn, Missile, to_enu  # noqa: E402
from trilink_board import codec, wire  # noqa: E402
from trilink_edge import config as edge_config  # noqa: E402
from trilink_edge.relay import Relay  # noqa: E402

NATIONS = os.path.join(HERE, "..", "boards", "nations")


def free_ports(n):
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def boards_proc(ports, tracks, seconds, ready):
    """Child process: JP and KR each send `tracks` tracks at 2 Hz, in frames of 8."""
    missile = Missile()
    socks = {}
    for n in (1, 2):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", ports[3 + n - 1]))
        s.setblocking(False)
        socks[n] = s
    sbs = {n: BoardStandIn(n, NAMES[n], n, TEST_KEYS[n], o) for n, o in ((1, JP_ORIGIN), (2, KR_ORIGIN))}
    prec = codec.Precision()
    ready.wait()
    start = time.monotonic()
    k = 0
    while time.monotonic() - start < seconds:
        now_us = time.monotonic_ns() // 1000
        for n, sb in sbs.items():
            recs = []
            for j in range(tracks):
                # fragments: the missile displaced by 2 km per fragment (distinct tracks)
                x = to_enu(missile.ecef(300.0 + 0.5 * k), sb.origin)
                x[0] += 2000.0 * j
                P = [0.0] * 36
                for i in range(6):
                    P[7 * i] = 2500.0 if i < 3 else 25.0
                sb.report_id += 1
                recs.append(codec.quantise(codec.Update(10 + j, now_us, [float(v) for v in x], P,
                                                        report_id=sb.report_id), prec))
            for i in range(0, len(recs), 8):
                payload = codec.encode(codec.REPORT, prec, [(codec.KEY, r, 0) for r in recs[i:i + 8]])
                socks[n].sendto(sb._pack(wire.TRACK_REPORT, payload, wire.RELAY_TIME), ("127.0.0.1", ports[n - 1]))
        for s in socks.values():   # drain what the relay sends
            try:
                while s.recv(4096):
                    pass
            except BlockingIOError:
                pass
        k += 1
        time.sleep(max(0.0, start + 0.5 * k - time.monotonic()))


def config(ports, tmp):
    doc = {
        "relay": {"node": 0, "state_file": os.path.join(tmp, "state.json"), "stats": "off"},
        "nodes": {"jp": {"id": 1, "nation_file": os.path.join(NATIONS, "jp.json")},
                  "kr": {"id": 2, "nation_file": os.path.join(NATIONS, "kr.json")}},
        "links": {name: {"kind": "udp", "bind": f"127.0.0.1:{ports[i]}", "peer": f"127.0.0.1:{ports[3 + i]}",
                         "boards": [name]} for i, name in enumerate(("jp", "kr"))},
        "release": {"jp": ["kr"], "kr": ["jp"]},
        "deadreckoning": {"position_m": 1.0},   # every update goes out: latency of every frame
    }
    return edge_config.from_dict(doc, "bench.toml", tmp)


def run_load(name, tracks, seconds, tmp):
    ports = free_ports(6)
    cfg = config(ports, tmp)
    ready = mp.Event()
    child = mp.Process(target=boards_proc, args=(ports, tracks, seconds, ready))
    child.start()

    async def main():
        relay = Relay(cfg, keys=TEST_KEYS)
        task = asyncio.ensure_future(relay.run())
        await asyncio.sleep(0.3)
        cpu0 = time.process_time()
        ready.set()
        await asyncio.sleep(seconds + 0.5)
        cpu = time.process_time() - cpu0
        st = relay.stats()
        await relay.stop()
        await task
        return relay, st, cpu

    relay, st, cpu = asyncio.run(main())
    child.join()
    lat = sorted(relay.latency_ns)
    frames = sum(d["frames_in"] for d in st["links"].values())

    def pct(p):
        return lat[min(len(lat) - 1, int(p / 100 * len(lat)))] / 1e3 if lat else float("nan")
    print(f"{name:8s} tracks/board {tracks:3d}  frames in {frames:6d}  pictures out {len(lat):6d}  "
          f"latency us p50 {pct(50):8.0f}  p90 {pct(90):8.0f}  p99 {pct(99):8.0f}  max {lat[-1] / 1e3 if lat else 0:8.0f}"
          f"  CPU per 1,000 frames {1000 * cpu / max(frames, 1):7.3f} s")
    return lat, cpu, frames


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args(argv)
    import platform
    import tempfile
    print(f"# bench_relay  python {platform.python_version()}  {platform.machine()}  load {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        run_load("nominal", 1, args.seconds, tmp)
        run_load("debris", 61, args.seconds, tmp)


if __name__ == "__main__":
    main()
