#!/usr/bin/env python3
# bench_federation.py: Korea -> Australia through two federated relays vs Korea -> Japan through one
"""Two relay processes federated over Eclipse Zenoh (peer mode, 127.0.0.1,
multicast scouting off; the US hub listens, the AU hub connects), as
tests/test_federation_real.py sets them up: a US hub serving JP and KR, an
AU hub serving AU, real UDP links. This process plays the three boards
(stand-ins written with the board reference code, tests/edge_boards.py:
real HELLO challenge, real keys): KR and AU report one missile every
``--period`` s, JP only sends heartbeats.

Latency of one KR report to a board = from the KR board's send of the
TRACK_REPORT to the first PICTURE record at that board naming it among its
sources (node 2, that report id), both on this process's monotonic clock:

* Korea -> Japan: KR board -> US relay -> JP board (one relay);
* Korea -> Australia: KR board -> US relay -> Zenoh -> AU relay -> AU board.

The extra latency of the federation is, per report, Australia's minus
Japan's (the same report, the same sitting). Double counting: every record
the AU board decoded with both KR's and AU's reports among its sources is
checked against the covariance intersection of the two reports (its trace
never below the CI's minimum trace, within half a step of the codec's
variance code), and every KR-only record against KR's own report; a
record below its bound counts as double-counted.

    python tools/bench_federation.py --seconds 32 --period 0.1

``BENCH_TRACE=1`` also prints every report's two latencies.

Results: docs/BENCH_ZENOH.md.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import platform
import socket
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

from edge_boards import AU_ORIGIN, JP_ORIGIN, KR_ORIGIN, NAMES, TEST_KEYS, BoardStandIn, Missile, enu_basis  # noqa: E402
from trilink.keygen import write_private  # noqa: E402
from trilink.ports import free_port, free_ports  # noqa: E402
from trilink_board import codec  # noqa: E402

NATIONS = os.path.join(HERE, "..", "boards", "nations")
ORIGINS = {1: JP_ORIGIN, 2: KR_ORIGIN, 3: AU_ORIGIN}
SIGMA = {1: 80.0, 2: 50.0, 3: 60.0}       # each board's position sigma (m)
Q_HALF = 2.0 ** -0.125                     # half a step of the codec's variance code (a quarter octave)
PAIR_KEY_NAME = "au+us"


def hub_docs(tmp, ports, zport, keyf):
    """(US, AU) relay config dicts: US serves jp, kr on ports[0:2] (boards ports[3:5]), AU serves au on
    ports[2] (board ports[5]); US listens on zport, AU connects."""
    relay = {"node": 0, "stats": "off", "allow_test_keys": True}
    dr = {"position_m": 1.0}     # every update goes out: the latency of every report
    us = {
        "relay": dict(relay, state_file=os.path.join(tmp, "us-state.json")),
        "nodes": {"jp": {"id": 1, "key_id": 1, "nation_file": os.path.join(NATIONS, "jp.json")},
                  "kr": {"id": 2, "key_id": 2, "nation_file": os.path.join(NATIONS, "kr.json")}},
        "links": {n: {"kind": "udp", "bind": f"127.0.0.1:{ports[i]}", "peer": f"127.0.0.1:{ports[3 + i]}",
                      "boards": [n]} for i, n in enumerate(("jp", "kr"))},
        "release": {"jp": ["kr"], "kr": ["jp", "au"], "au": ["kr"]},
        "deadreckoning": dr,
        "federation": {"enabled": True, "hub": "us", "key_file": keyf, "listen": [f"tcp/127.0.0.1:{zport}"],
                       "heartbeat_s": 0.25, "peers": {"au": {"serves": ["au"], "nodes": {"au": 3}}}},
    }
    au = {
        "relay": dict(relay, state_file=os.path.join(tmp, "au-state.json")),
        "nodes": {"au": {"id": 3, "key_id": 3, "nation": "au",
                         "origin": {"lat": AU_ORIGIN[0], "lon": AU_ORIGIN[1], "alt_m": 0.0}}},
        "links": {"au": {"kind": "udp", "bind": f"127.0.0.1:{ports[2]}", "peer": f"127.0.0.1:{ports[5]}",
                         "boards": ["au"]}},
        "release": {"au": ["jp", "kr"], "kr": ["au"], "jp": ["au"]},
        "deadreckoning": dr,
        "federation": {"enabled": True, "hub": "au", "key_file": keyf, "connect": [f"tcp/127.0.0.1:{zport}"],
                       "heartbeat_s": 0.25, "peers": {"us": {"serves": ["jp", "kr"], "nodes": {"jp": 1, "kr": 2}}}},
    }
    return us, au


def hub_proc(doc, tmp, nodes, stop, out):
    """One relay process: the Relay of ``doc`` until ``stop`` is set; its stats to ``out``."""
    from trilink_edge import config as edge_config
    from trilink_edge.relay import Relay
    cfg = edge_config.from_dict(doc, "hub.toml", tmp)

    async def main():
        relay = Relay(cfg, keys={n: TEST_KEYS[n] for n in nodes})
        task = asyncio.ensure_future(relay.run())
        while not stop.is_set():
            await asyncio.sleep(0.1)
        st = relay.stats()
        await relay.stop()
        await task
        return st
    st = asyncio.run(main())
    out.put(json.loads(json.dumps({"federation": st.get("federation"), "links": st.get("links")}, default=str)))


class Board:
    """A board stand-in on a UDP socket: answers the relay's challenge, keeps the first arrival of every
    (node, report id) among the sources of the PICTURE records it decodes, and the records."""

    def __init__(self, node, port, relay_port):
        self.sb = BoardStandIn(node, NAMES[node], node, TEST_KEYS[node], ORIGINS[node], sigma_m=SIGMA[node])
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", port))
        self.sock.setblocking(False)
        self.relay = ("127.0.0.1", relay_port)
        self.first_ns = {}        # (node, rid) -> first arrival (ns)
        self.sent_ns = {}         # our report id -> send time (ns)

    def send(self, raw):
        self.sock.sendto(raw, self.relay)

    def poll(self):
        while True:
            try:
                data, _ = self.sock.recvfrom(4096)
            except BlockingIOError:
                return
            t = time.monotonic_ns()
            n0 = len(self.sb.pictures)
            f = self.sb.receive(data)
            answer = self.sb.answer(f)
            if answer is not None:
                self.send(answer)
            for _rt, rec in self.sb.pictures[n0:]:
                for src in rec.sources:
                    self.first_ns.setdefault(tuple(src), t)


class NoisyMissile(Missile):
    """The missile as a radar measures it: positions with 30 m of Gaussian noise (a perfect ballistic track
    would be dead-reckoned so well that the relay sends no update: every report must move the picture)."""

    def __init__(self, seed=1):
        super().__init__()
        self.rng = np.random.default_rng(seed)

    def ecef(self, t):
        return super().ecef(t) + np.concatenate([self.rng.normal(0.0, 30.0, 3), np.zeros(3)])


def source_cov(node, origin_to):
    """A stand-in board's report covariance (its own ENU) in the ENU frame of ``origin_to``."""
    P = np.diag([SIGMA[node] ** 2] * 3 + [25.0] * 3)
    o = ORIGINS[node]
    R = enu_basis(origin_to[0], origin_to[1]) @ enu_basis(o[0], o[1]).T
    T = np.zeros((6, 6))
    T[:3, :3] = R
    T[3:, 3:] = R
    return T @ P @ T.T


def ci_min_trace(Ps):
    """min over omega of trace((w P_1^-1 + (1-w) P_2^-1)^-1) (a fine grid)."""
    A, B = (np.linalg.inv(P) for P in Ps)
    return min(np.trace(np.linalg.inv(w * A + (1 - w) * B)) for w in np.linspace(0.0, 1.0, 2001))


def double_counted(board):
    """(records checked, below their bound, min trace/bound) over the AU board's KR-sourced records."""
    kr = np.trace(source_cov(2, AU_ORIGIN))
    both = ci_min_trace([source_cov(2, AU_ORIGIN), source_cov(3, AU_ORIGIN)])
    naive = np.trace(np.linalg.inv(sum(np.linalg.inv(source_cov(n, AU_ORIGIN)) for n in (2, 3))))
    n = bad = 0
    worst = float("inf")
    for _rt, rec in board.sb.pictures:
        nodes = {nd for nd, _rid in rec.sources}
        if 2 not in nodes:
            continue
        bound = both if nodes == {2, 3} else kr if nodes == {2} else None
        if bound is None:
            continue
        P = np.array(codec.cov_from_codes(rec.sig, rec.cor), dtype=float).reshape(6, 6)
        r = np.trace(P) / bound
        worst = min(worst, r)
        n += 1
        bad += r < Q_HALF
    return n, bad, worst, naive / both


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(p / 100 * len(v)))] if v else float("nan")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=30.0, help="reporting time (default 30)")
    ap.add_argument("--period", type=float, default=0.1, help="KR's and AU's report period, s (default 0.1)")
    ap.add_argument("--warmup", type=float, default=2.0, help="reports before this are not counted (default 2 s)")
    args = ap.parse_args(argv)
    print(f"# bench_federation  python {platform.python_version()}  {platform.machine()}  "
          f"load {os.getloadavg()[0]:.1f}  cores {os.cpu_count()}", flush=True)
    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        keyf = os.path.join(tmp, "fed-keys.json")
        write_private(keyf, {"format": "trilink-keys/1", "relay": 0,
                             "keys": [{"key_id": 1, "node": 1, "name": PAIR_KEY_NAME, "key": os.urandom(32).hex()}]},
                      force=True)
        ports = free_ports(6)
        zport = free_port(socket.SOCK_STREAM)
        us_doc, au_doc = hub_docs(tmp, ports, zport, keyf)
        stop, out = ctx.Event(), ctx.Queue()
        hubs = [ctx.Process(target=hub_proc, args=(us_doc, tmp, (1, 2), stop, out)),
                ctx.Process(target=hub_proc, args=(au_doc, tmp, (3,), stop, out))]
        for h in hubs:
            h.start()
        boards = {n: Board(n, ports[2 + n], ports[n - 1]) for n in (1, 2, 3)}
        missile = NoisyMissile()
        time.sleep(3.0)                       # both relays up, their Zenoh sessions met
        for b in boards.values():
            b.send(b.sb.hello())
        t_start = time.monotonic()
        k = 0
        counted = set()
        while time.monotonic() - t_start < args.seconds:
            for n, b in boards.items():
                if n == 1:
                    b.send(b.sb.heartbeat())
                    continue
                raw = b.sb.report(missile, 300.0 + k * args.period, relay_us=time.monotonic_ns() // 1000)
                b.sent_ns[b.sb.report_id] = time.monotonic_ns()
                b.send(raw)
                if n == 2 and time.monotonic() - t_start >= args.warmup:
                    counted.add(b.sb.report_id)
            k += 1
            t_end = t_start + k * args.period
            while time.monotonic() < t_end:
                for b in boards.values():
                    b.poll()
                time.sleep(0.0002)
        t_end = time.monotonic() + 0.5
        while time.monotonic() < t_end:
            for b in boards.values():
                b.poll()
            time.sleep(0.001)
        stop.set()
        stats = [out.get(timeout=20) for _ in hubs]
        for h in hubs:
            h.join(10)
    kr = boards[2]
    one, two, extra = [], [], []
    missing = {"jp": 0, "au": 0}
    for rid in sorted(counted):
        t0 = kr.sent_ns[rid]
        tj, ta = boards[1].first_ns.get((2, rid)), boards[3].first_ns.get((2, rid))
        missing["jp"] += tj is None
        missing["au"] += ta is None
        if tj is not None:
            one.append((tj - t0) / 1e6)
        if ta is not None:
            two.append((ta - t0) / 1e6)
        if tj is not None and ta is not None:
            extra.append((ta - tj) / 1e6)
    if os.environ.get("BENCH_TRACE"):
        print("one", [round(x, 1) for x in one])
        print("two", [round(x, 1) for x in two])
    print(f"KR reports counted {len(counted)} (every {args.period * 1e3:.0f} ms for {args.seconds - args.warmup:g} s); "
          f"not seen at JP {missing['jp']}, at AU {missing['au']}", flush=True)
    print(f"Korea -> Japan     (one relay)    ms  p50 {pct(one, 50):6.2f}  p90 {pct(one, 90):6.2f}  "
          f"p99 {pct(one, 99):6.2f}  max {max(one, default=float('nan')):6.2f}  (n {len(one)})")
    print(f"Korea -> Australia (two relays)   ms  p50 {pct(two, 50):6.2f}  p90 {pct(two, 90):6.2f}  "
          f"p99 {pct(two, 99):6.2f}  max {max(two, default=float('nan')):6.2f}  (n {len(two)})")
    print(f"extra (AU - JP, same report)      ms  p50 {pct(extra, 50):6.2f}  p90 {pct(extra, 90):6.2f}  "
          f"p99 {pct(extra, 99):6.2f}  max {max(extra, default=float('nan')):6.2f}  (n {len(extra)}; "
          f"ratio of p50s {pct(two, 50) / pct(one, 50):.2f}x)")
    n, bad, worst, naive = double_counted(boards[3])
    print(f"double counting at the AU board: {n} KR-sourced records checked, {bad} below their bound "
          f"(trace / CI minimum trace >= {Q_HALF:.3f}); lowest ratio {worst:.3f} (information summed twice "
          f"would give {naive:.3f} for KR+AU)")
    for st in stats:
        f = st["federation"] or {}
        rej = {k: f.get(k) for k in ("unknown_peer", "auth_fail", "replay", "skew", "malformed", "foreign_node")}
        print(f"hub {f.get('hub')}: tx_frames {f.get('tx_frames')} tx_records {f.get('tx_records')} "
              f"rx_records {f.get('rx_records')} withheld {f.get('withheld')} rejects {rej} "
              f"rx_delay_us {f.get('rx_delay_us')}")


if __name__ == "__main__":
    main()
