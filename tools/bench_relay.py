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

    python tools/bench_relay.py --seconds 8 --baseline 7a257ce

``--baseline REV`` also runs the socket loads and the ``path`` lines with
``edge/`` as of a git revision and prints the ratios side by side; the
``path`` lines time the latency path alone in this thread (results:
docs/BENCH_RELAY.md). ``--interleave K`` then runs the nominal path line
of both trees alternately, K times each, 2 ms and 10 ms between frames
(less exposed to the machine's load changing between the two columns).
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
from trilink.ports import free_ports  # noqa: E402
from trilink_board import codec, wire  # noqa: E402
from trilink_edge import config as edge_config  # noqa: E402
from trilink_edge.links import Link  # noqa: E402
from trilink_edge.relay import Relay  # noqa: E402

NATIONS = os.path.join(HERE, "..", "boards", "nations")
IDLE_S = 1.0


def report_frames(sbs, missile, tracks, prec, k):
    """(node, stand-in, TRACK_REPORT frame) of round k: each board reports ``tracks`` fragments of the
    missile (displaced by 2 km each: distinct tracks), 8 records a frame, measured now."""
    now_us = time.monotonic_ns() // 1000
    out = []
    for n, sb in sbs.items():
        recs = []
        for j in range(tracks):
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
            out.append((n, sb, sb._pack(wire.TRACK_REPORT, payload, wire.RELAY_TIME)))
    return out


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
        for n, sb, frame in report_frames(sbs, missile, tracks, prec, k):
            socks[n].sendto(frame, ("127.0.0.1", ports[n - 1]))
        for s in socks.values():   # drain what the relay sends
            try:
                while s.recv(4096):
                    pass
            except BlockingIOError:
                pass
        k += 1
        time.sleep(max(0.0, start + 0.5 * k - time.monotonic()))


def config(ports, tmp):
    import tempfile
    tmp = tempfile.mkdtemp(dir=tmp)   # a fresh state file per run: the boards restart their counters
    doc = {
        "relay": {"node": 0, "state_file": os.path.join(tmp, "state.json"), "stats": "off",
                  "allow_test_keys": True},
        "nodes": {"jp": {"id": 1, "nation_file": os.path.join(NATIONS, "jp.json")},
                  "kr": {"id": 2, "nation_file": os.path.join(NATIONS, "kr.json")}},
        "links": {name: {"kind": "udp", "bind": f"127.0.0.1:{ports[i]}", "peer": f"127.0.0.1:{ports[3 + i]}",
                         "boards": [name]} for i, name in enumerate(("jp", "kr"))},
        "release": {"jp": ["kr"], "kr": ["jp"]},
        "deadreckoning": {"position_m": 1.0},   # every update goes out: latency of every frame
    }
    return edge_config.from_dict(doc, "bench.toml", tmp)


def run_load(name, tracks, seconds, tmp):
    """One load over real UDP: latency percentiles (us) and CPU. Returns a dict."""
    ports = free_ports(6)
    cfg = config(ports, tmp)
    ready = mp.Event()
    child = mp.Process(target=boards_proc, args=(ports, tracks, seconds, ready))
    child.start()

    async def main():
        relay = Relay(cfg, keys=TEST_KEYS)
        relay.sessions.go_offline()   # the stand-ins answer no challenge: measure the relay, not the handshake
        task = asyncio.ensure_future(relay.run())
        await asyncio.sleep(0.3)
        # The relay's fixed work (ticker, heartbeats) with no traffic, per second.
        cpu0, t0 = time.process_time(), time.monotonic()
        await asyncio.sleep(IDLE_S)
        idle = (time.process_time() - cpu0) / (time.monotonic() - t0)
        cpu0, t0 = time.process_time(), time.monotonic()
        ready.set()
        await asyncio.sleep(seconds + 0.5)
        cpu, wall = time.process_time() - cpu0, time.monotonic() - t0
        st = relay.stats()
        await relay.stop()
        await task
        return relay, st, cpu, wall, idle

    relay, st, cpu, wall, idle = asyncio.run(main())
    child.join()
    lat = sorted(relay.latency_ns)
    frames = sum(d["frames_in"] for d in st["links"].values())

    def pct(p):
        return lat[min(len(lat) - 1, int(p / 100 * len(lat)))] / 1e3 if lat else float("nan")
    r = {"name": name, "tracks": tracks, "frames": frames, "pictures": len(lat), "p50": pct(50), "p90": pct(90),
         "p99": pct(99), "max": lat[-1] / 1e3 if lat else float("nan"),
         "cpu_per_1000": 1000 * cpu / max(frames, 1),
         "marginal_per_1000": 1000 * max(cpu - idle * wall, 0.0) / max(frames, 1), "idle_pct": 100 * idle}
    print(f"{name:8s} tracks/board {tracks:3d}  frames in {frames:5d}  pictures out {len(lat):5d}  "
          f"latency us p50 {r['p50']:7.0f}  p90 {r['p90']:7.0f}  p99 {r['p99']:7.0f}  max {r['max']:7.0f}  "
          f"CPU per 1,000 frames {r['cpu_per_1000']:6.3f} s (idle {r['idle_pct']:.1f}% of a core, "
          f"marginal {r['marginal_per_1000']:6.3f} s)", flush=True)
    return r


class _CountingLink(Link):
    """A link that only counts what it is given to send (the path measurement
    leaves the network out); the base's sizes and bucket, a datagram link's
    replay window, as the UDP links of ``config`` would have."""

    kind = "counting"
    reorders = True

    def __init__(self, name):
        super().__init__(name)
        self.sent = 0

    @property
    def up(self):
        return not self._closed

    async def _open(self):
        pass

    async def _close(self):
        pass

    def _write_wire(self, frame):
        self.sent += 1
        return len(frame)


def run_path(name, tracks, rounds, tmp, gap_s=0.01):
    """The latency path alone, in this thread: each report frame through
    Relay._on_frame (verify, decode, ingest: "receive") and Relay._round
    (fuse, offer, pump: encode, pack, write to a counting link), one round
    per frame (no batching: the worst case). CPU = this thread's CPU time (time.thread_time),
    which other processes on the machine inflate less than wall time.
    ``gap_s`` between rounds: 0.25 s is the nominal load's spacing, after
    which caches are cold; 0.01 s keeps them warm."""
    cfg = config(free_ports(6), tmp)
    links = {"jp": _CountingLink("jp"), "kr": _CountingLink("kr")}
    missile, prec = Missile(), codec.Precision()
    sbs = {n: BoardStandIn(n, NAMES[n], n, TEST_KEYS[n], o) for n, o in ((1, JP_ORIGIN), (2, KR_ORIGIN))}

    class Rec:
        def __init__(self, data, t_ns):
            self.data, self.t_ns, self.peer = data, t_ns, None

    def frames(k):
        return [(sb.name, frame) for _n, sb, frame in report_frames(sbs, missile, tracks, prec, k)]

    async def main():
        for lk in links.values():
            await lk.open()
        relay = Relay(cfg, links=links, keys=TEST_KEYS)
        relay.sessions.go_offline()   # the stand-ins answer no challenge: measure the relay, not the handshake
        task = asyncio.ensure_future(relay.run())
        await asyncio.sleep(0.05)
        batches = [frames(k) for k in range(rounds)]
        per, rx = [], []
        for fr in batches:
            for link, raw in fr:
                c0 = time.thread_time_ns()
                relay._on_frame(link, Rec(raw, time.monotonic_ns()))
                c1 = time.thread_time_ns()
                relay._round()
                per.append(time.thread_time_ns() - c0)
                rx.append(c1 - c0)
            await asyncio.sleep(gap_s)   # the ticker runs between rounds, as in service
        await relay.stop()
        await task
        return sorted(per), sorted(rx)

    per, rx = asyncio.run(main())
    r = {"name": name, "tracks": tracks, "frames": len(per), "min": per[0] / 1e3, "p50": per[len(per) // 2] / 1e3,
         "p90": per[int(0.9 * len(per))] / 1e3, "rx_p50": rx[len(rx) // 2] / 1e3}
    print(f"path     {name:14s} tracks/board {tracks:3d}  frames {len(per):5d}  CPU per frame us  min {r['min']:6.0f}"
          f"  p50 {r['p50']:6.0f}  p90 {r['p90']:6.0f}   (= {r['p50']:.0f} ms per 1,000 frames at p50; "
          f"receive p50 {r['rx_p50']:.0f})", flush=True)
    return r


def _edge_at(rev, tmp):
    """The environment of a child interpreter whose PYTHONPATH puts edge/ as of git revision ``rev`` first."""
    import subprocess
    import tarfile
    arch = subprocess.run(["git", "-C", os.path.join(HERE, ".."), "archive", rev, "edge"], check=True,
                          capture_output=True).stdout
    tar = os.path.join(tmp, "edge.tar")
    with open(tar, "wb") as fh:
        fh.write(arch)
    with tarfile.open(tar) as tf:
        tf.extractall(tmp)
    os.rename(os.path.join(tmp, "edge"), os.path.join(tmp, "trilink_edge"))
    return dict(os.environ, PYTHONPATH=tmp + os.pathsep + os.environ.get("PYTHONPATH", ""))


def _child(env, *args):
    import json
    import subprocess
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--json", *args], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def baseline(rev, seconds):
    """The same socket loads and path lines with edge/ as of git revision ``rev`` (run in a
    child interpreter whose PYTHONPATH puts that trilink_edge first)."""
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        return _child(_edge_at(rev, tmp), "--seconds", str(seconds))


def interleave(rev, rounds):
    """The ``nominal warm`` path line, edge/ at ``rev`` and this tree alternately, each in a fresh child
    interpreter, ``rounds`` times per gap between frames (2 ms: warm caches; 10 ms: as the path line)."""
    import statistics
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        envs = {"before": _edge_at(rev, tmp), "after": dict(os.environ)}
        for gap_ms in (2, 10):
            got = {"before": [], "after": []}
            for _ in range(rounds):
                for tree in ("before", "after"):
                    got[tree].append(_child(envs[tree], "--path-only", "--gap-ms", str(gap_ms)))
            line = []
            for key, label in (("p50", "p50"), ("min", "min"), ("rx_p50", "receive p50")):
                o = statistics.median(r[key] for r in got["before"])
                n = statistics.median(r[key] for r in got["after"])
                line.append(f"{label} {o:5.0f} -> {n:5.0f} us ({o / n:4.1f}x)")
            print(f"interleaved nominal warm, {gap_ms:2d} ms between frames, median of {rounds}: " + "  ".join(line),
                  flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--baseline", metavar="REV", help="also run edge/ as of this git revision, side by side")
    ap.add_argument("--interleave", type=int, default=0, metavar="K",
                    help="with --baseline: also run the nominal warm path line K times per tree, alternating")
    ap.add_argument("--sockets-only", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--path-only", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--gap-ms", type=float, default=10.0, help=argparse.SUPPRESS)
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    import json
    import platform
    import tempfile
    if args.path_only:
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(run_path("nominal warm", 1, 300, tmp, gap_s=args.gap_ms / 1000)))
        return
    print(f"# bench_relay  python {platform.python_version()}  {platform.machine()}  "
          f"load {os.getloadavg()[0]:.1f}  cores {os.cpu_count()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        res = {"nominal": run_load("nominal", 1, args.seconds, tmp),
               "debris": run_load("debris", 61, args.seconds, tmp)}
        if not args.sockets_only:
            res["path"] = {r["name"]: r for r in (run_path("nominal warm", 1, 300, tmp),
                                                  run_path("nominal cold", 1, 16, tmp, gap_s=0.25),
                                                  run_path("debris warm", 61, 40, tmp))}
    if args.json:
        print(json.dumps(res))
        return
    if args.baseline:
        print(f"# baseline: edge/ at {args.baseline}", flush=True)
        old = baseline(args.baseline, args.seconds)
        for name in ("nominal", "debris"):
            o, n = old[name], res[name]
            print(f"{name:8s} p50 latency {o['p50']:7.0f} -> {n['p50']:6.0f} us ({o['p50'] / n['p50']:4.1f}x)  "
                  f"p99 {o['p99']:7.0f} -> {n['p99']:6.0f} us ({o['p99'] / n['p99']:4.1f}x)  "
                  f"CPU per 1,000 frames {o['cpu_per_1000']:6.3f} -> {n['cpu_per_1000']:6.3f} s "
                  f"({o['cpu_per_1000'] / n['cpu_per_1000']:4.1f}x), marginal {o['marginal_per_1000']:6.3f} -> "
                  f"{n['marginal_per_1000']:6.3f} s")
        for name, n in res.get("path", {}).items():
            o = old.get("path", {}).get(name)
            if o is not None:
                print(f"path     {name:14s} CPU per frame us p50 {o['p50']:6.0f} -> {n['p50']:6.0f} "
                      f"({o['p50'] / n['p50']:4.1f}x)  min {o['min']:6.0f} -> {n['min']:6.0f} "
                      f"({o['min'] / n['min']:4.1f}x)  p90 {o['p90']:6.0f} -> {n['p90']:6.0f}  "
                      f"receive p50 {o['rx_p50']:6.0f} -> {n['rx_p50']:6.0f} "
                      f"({o['rx_p50'] / n['rx_p50']:4.1f}x)")
        if args.interleave:
            interleave(args.baseline, args.interleave)


if __name__ == "__main__":
    main()
