"""trilink zenohbench: the bench twice in one sitting, publishing on Zenoh off then on, with N subscribers.

Runs ``trilink bench``'s rig (relay process, real boards, emulated serial or
UDP) once as it is and once with a ``[zenoh]`` section and ``--subscribers``
Zenoh subscribers (peer mode, 127.0.0.1, multicast scouting off: each
subscriber listens, the relay connects to them), alternating ``--rounds``
times; prints, per run, each path's end-to-end p50/p99 and, with
publishing, the write-to-receive latency of every picture publication at
every subscriber (the relay's write of the frame to the link, on
``time.monotonic``, to the subscriber's callback having opened the
envelope), and the publisher's counters from the health publication.
``--variants before,default`` runs publishing on once per publisher set-up
(``before``: ``[zenoh] process = false, coalesce = false``, a thread of the
relay publishing each frame; ``default``: the relay's own). Then the
floor, Zenoh alone (a bare publisher to the same number of subscribers,
one publication every 30 ms) and the machine alone (one UDP datagram
between two processes every 30 ms), and a summary side by side::

    $ trilink zenohbench --link udp --duration 20 --subscribers 10 --json zb.json
    $ trilink zenohbench --rounds 2 --runtime cpython
    $ trilink zenohbench --link serial --start 85 --duration 20 --subscribers 10 --variants before,default

docs/BENCH_ZENOH.md records a run.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from trilink.ports import free_ports

__all__ = ["main", "_parse_args", "Subscriber", "run"]


def _parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="trilink zenohbench",
                                description="The bench with Zenoh publishing off and on, in one sitting, "
                                            "with N subscribers measuring write-to-receive latency.")
    p.add_argument("--scenario", default="default")
    p.add_argument("--nations", default="jp,kr")
    p.add_argument("--link", choices=("serial", "udp"), default="serial")
    p.add_argument("--runtime", choices=("micropython", "cpython"), default=None)
    p.add_argument("--start", type=float, default=80.0, help="scenario time the window starts at (default 80)")
    p.add_argument("--duration", type=float, default=20.0, help="window per run, seconds (default 20)")
    p.add_argument("--subscribers", type=int, default=10, help="Zenoh subscribers with publishing on (default 10)")
    p.add_argument("--rounds", type=int, default=1, help="off/on pairs (default 1)")
    p.add_argument("--variants", default="default",
                   help="publisher set-ups with publishing on, comma-separated: default (the relay's: its own "
                        "process, coalescing), before (a thread of the relay, one publication per frame)")
    p.add_argument("--no-floor", action="store_true",
                   help="skip the floor run (Zenoh alone: a bare publisher to the same number of subscribers)")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON")
    p.add_argument("--child", metavar="SPEC", help=argparse.SUPPRESS)   # the subscribers' own process
    return p.parse_args(list(argv))


class Subscriber:
    """One Zenoh peer listening on 127.0.0.1:port, subscribed to every
    publication of the relay; records write-to-receive latency (µs) of the
    picture publications it opens."""

    def __init__(self, relay: str, keys: Dict[str, bytes], port: int) -> None:
        from trilink_edge import zenoh_pub as zp
        self.zp = zp
        self.relay = relay
        self.port = port
        self.aead = {n: zp._aead(k) for n, k in keys.items()}
        self.lat_us: List[int] = []       # the relay's write of the frame to its link -> received here
        self.pub_us: List[int] = []       # the publisher's put -> received here (Zenoh alone)
        self.unopened = 0
        self.health: Optional[Dict[str, Any]] = None
        self.raw: List[Any] = []          # (received µs, key expression, bytes)
        self.session: Any = None

    def start(self) -> None:
        import zenoh
        self.session = zenoh.open(self.zp.zenoh_config(listen=[f"tcp/127.0.0.1:{self.port}"]))
        self.session.declare_subscriber(f"trilink/{self.relay}/**", self._on)

    def _on(self, sample: Any) -> None:
        # Only the time and the bytes here: the callbacks of all subscribers
        # share this process's GIL, and opening in them would queue the
        # later subscribers behind the earlier ones' decryption.
        now_us = time.monotonic_ns() // 1000
        self.raw.append((now_us, str(sample.key_expr), sample.payload.to_bytes()))

    def results(self) -> None:
        """Open what was received (after the run) into lat_us, pub_us, health."""
        for now_us, key, data in self.raw:
            parts = key.split("/")
            name = parts[3] if len(parts) == 4 else "ops"
            a = self.aead.get(name)
            env = self.zp.open_envelope(b"", key, data, aead=a) if a is not None else None
            if env is None:
                self.unopened += 1
                continue
            doc = json.loads(env.body)
            if env.kind == self.zp.KIND_PICTURE:
                self.lat_us.append(now_us - int(doc["t_us"]))
                self.pub_us.append(now_us - int(doc["pub_us"]))
            elif env.kind == self.zp.KIND_HEALTH:
                self.health = doc
        self.raw = []

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None


def _child(spec_json: str) -> int:
    """The subscribers' process: listen, say "ready", wait for stdin to
    close, print every subscriber's samples as one JSON line."""
    spec = json.loads(spec_json)
    keys = {n: bytes.fromhex(k) for n, k in spec["keys"].items()}
    subs = [Subscriber(spec["relay"], keys, port) for port in spec["ports"]]
    for s in subs:
        s.start()
    print("ready", flush=True)
    sys.stdin.read()
    for s in subs:
        s.close()
        s.results()
    print(json.dumps([{"lat_us": s.lat_us, "pub_us": s.pub_us, "unopened": s.unopened, "health": s.health} for s in subs]), flush=True)
    return 0


class SubscriberProcess:
    """N subscribers in a process of their own, so that their callbacks
    share neither the GIL nor the CPU time of the bench's emulators."""

    def __init__(self, relay: str, keys: Dict[str, bytes], n: int, avoid: Sequence[int] = ()) -> None:
        import subprocess
        self.ports = free_ports(n, socket.SOCK_STREAM)
        while set(self.ports) & set(avoid):      # a port handed out already (the relay's stats) but not bound yet
            self.ports = free_ports(n, socket.SOCK_STREAM)
        spec = json.dumps({"relay": relay, "keys": {k: v.hex() for k, v in keys.items()}, "ports": self.ports})
        self.proc = subprocess.Popen([sys.executable, "-m", "trilink.zenohbench", "--child", spec],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError(f"subscriber process did not start: {line!r}")

    def finish(self) -> List[Dict[str, Any]]:
        out, _ = self.proc.communicate("", timeout=60)
        return json.loads(out.strip().splitlines()[-1])


def floor(subscribers: int, count: int = 200, gap_s: float = 0.03, records: int = 1) -> Dict[str, Any]:
    """Zenoh alone on this machine: a bare publisher (this process, no
    relay, one ZenohSink as the relay's publisher uses) puts ``count``
    picture publications of ``records`` records, one every ``gap_s``, to
    ``subscribers`` subscribers in a process of their own; put -> received
    µs over every reception. The floor under the relay's figure."""
    from trilink_edge import zenoh_pub as zp
    keys = {"kr": os.urandom(32), "ops": os.urandom(32)}
    sp = SubscriberProcess("floor", keys, subscribers)
    sink = zp.ZenohSink("floor", keys, {2: "kr"}, {"connect": [f"tcp/127.0.0.1:{p}" for p in sp.ports]})
    rec = {"tid": 1, "op": "key", "t_us": 0, "enu": [1e5] * 6, "P": [[1.0] * 6] * 6, "lat": 36.9, "lon": 127.4,
           "h": 1e5, "vel_local": [1.0] * 3, "sigma_local": [1.0] * 6, "flags": 0, "nations": [2],
           "sources": [[2, 1000]], "impact": None}
    try:
        sink.open()
        time.sleep(1.5)                  # the sessions have met
        for _ in range(count):
            sink.picture(2, (36.9, 127.4, 0.0), time.monotonic_ns() // 1000, [dict(rec, tid=i) for i in range(records)])
            time.sleep(gap_s)
        time.sleep(0.3)
    finally:
        sink.close()
        results = sp.finish()
    pub = sorted(x for r in results for x in r["pub_us"])
    return {"subscribers": subscribers, "count": len(pub), "gap_s": gap_s, "records": records,
            "p50": _pct(pub, 50), "p90": _pct(pub, 90), "p99": _pct(pub, 99), "max": pub[-1] if pub else None}


def udp_floor(gap_s: float = 0.03, count: int = 200) -> Dict[str, Any]:
    """The machine's own wake-up tail: one UDP datagram from this process
    to a child every ``gap_s`` on 127.0.0.1, sent -> received µs."""
    import multiprocessing as mp
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    parent, child = mp.get_context("fork").Pipe()
    proc = mp.get_context("fork").Process(target=_udp_rx, args=(rx, count, child))
    proc.start()
    time.sleep(0.2)
    for _ in range(count):
        tx.sendto(str(time.monotonic_ns() // 1000).encode(), rx.getsockname())
        time.sleep(gap_s)
    lat = sorted(parent.recv())
    proc.join()
    rx.close()
    tx.close()
    return {"gap_s": gap_s, "count": len(lat), "p50": _pct(lat, 50), "p99": _pct(lat, 99), "max": lat[-1]}


def _udp_rx(sock: socket.socket, count: int, out: Any) -> None:
    lat = []
    for _ in range(count):
        d = sock.recv(64)
        lat.append(time.monotonic_ns() // 1000 - int(d))
    out.send(lat)


def _pct(v: List[int], q: float) -> Optional[float]:
    if not v:
        return None
    s = sorted(v)
    return s[min(len(s) - 1, int(q / 100 * len(s)))]


VARIANTS = {"default": "", "before": "process = false\ncoalesce = false\n"}


def _one(args: argparse.Namespace, publish: bool, runtime: str, variant: str = "default") -> Dict[str, Any]:
    from trilink.bench_analysis import analyse
    from trilink.bench_rig import Rig, RigPlan
    from trilink.keygen import make_keys, write_private
    subs: List[SubscriberProcess] = []
    relay_name = "bench"
    plan = RigPlan(nations=args.nations.split(","), scenario=args.scenario, link=args.link, runtime=runtime,
                   start_s=args.start, duration_s=args.duration)

    class PublishingRig(Rig):
        def _relay_config(self, *a: Any, **k: Any) -> Path:
            path = Rig._relay_config(self, *a, **k)
            if publish:
                names = sorted(set(plan.nations)) + ["ops"]
                doc = make_keys([(n, 200 + i) for i, n in enumerate(names)], 0)
                kpath = self.dir / "zenoh-keys.json"
                write_private(str(kpath), doc, force=True)
                keys = {e["name"]: bytes.fromhex(e["key"]) for e in doc["keys"]}
                stats_port = k["stats_port"] if "stats_port" in k else a[4]    # Rig._relay_config's 5th argument
                subs.append(SubscriberProcess(relay_name, keys, args.subscribers, avoid=[stats_port]))
                eps = ", ".join(f'"tcp/127.0.0.1:{port}"' for port in subs[0].ports)
                with open(path, "a") as f:
                    f.write(f'\n[zenoh]\nenabled = true\nrelay = "{relay_name}"\nkey_file = "{kpath}"\n'
                            f'connect = [{eps}]\nhealth_period_s = 1.0\nstats_period_s = 0\n{VARIANTS[variant]}')
            return path

    results: List[Dict[str, Any]] = []
    try:
        with PublishingRig(plan) as rig:
            out = rig.run()
            report, _samples, _cap = analyse(out)
    finally:
        for sp in subs:
            results = sp.finish()
    res: Dict[str, Any] = {"publish": publish, "variant": variant if publish else None,
                           "paths": {p: {k: d.get(k) for k in ("count", "p50_ms", "p99_ms", "relay_p50_ms")}
                                     for p, d in report["paths"].items()},
                           "relay_ms": report.get("relay_ms")}
    if publish:
        lat = [x for r in results for x in r["lat_us"]]
        res["subscribers"] = len(results)
        res["write_to_receive_us"] = {"count": len(lat), "p50": _pct(lat, 50), "p99": _pct(lat, 99),
                                      "max": max(lat) if lat else None}
        pub = [x for r in results for x in r["pub_us"]]
        res["publish_to_receive_us"] = {"count": len(pub), "p50": _pct(pub, 50), "p99": _pct(pub, 99),
                                        "max": max(pub) if pub else None}
        res["per_subscriber_count"] = [len(r["lat_us"]) for r in results]
        health = next((r["health"] for r in results if r["health"]), None)
        res["publisher"] = health.get("publish") if health else None
    return res


def run(args: argparse.Namespace) -> List[Dict[str, Any]]:
    from trilink.bench_rig import resolve_runtime
    runtime = resolve_runtime(args.runtime or "micropython", lambda s: None)
    variants = args.variants.split(",")
    for v in variants:
        if v not in VARIANTS:
            raise SystemExit(f"trilink zenohbench: --variants: {v!r} is not one of {', '.join(VARIANTS)}")
    results = []
    for _ in range(args.rounds):
        for publish, variant in [(False, "default")] + [(True, v) for v in variants]:
            r = _one(args, publish, runtime, variant)
            r["runtime"] = runtime
            results.append(r)
            print(json.dumps(r), flush=True)
    if not args.no_floor and args.subscribers:
        fl = floor(args.subscribers, count=200, gap_s=0.03)
        fl["floor"] = True
        results.append(fl)
        print(json.dumps(fl), flush=True)
        uf = udp_floor(0.03)
        uf["udp_floor"] = True
        results.append(uf)
        print(json.dumps(uf), flush=True)
    summary(results)
    return results


def summary(results: List[Dict[str, Any]]) -> None:
    """The runs side by side: each path's end-to-end p50/p99, the relay's part, and the publication's latency."""
    print("# summary (ms; publication: write->received and put->received at every subscriber)")
    for r in results:
        if r.get("udp_floor"):
            print(f"the machine alone: one UDP datagram between two processes every {r['gap_s'] * 1e3:.0f} ms: "
                  f"p50 {r['p50'] / 1e3:.2f} p99 {r['p99'] / 1e3:.2f} max {r['max'] / 1e3:.2f} (n {r['count']})")
            continue
        if r.get("floor"):
            print(f"zenoh alone: a bare publisher, one publication every {r['gap_s'] * 1e3:.0f} ms to "
                  f"{r['subscribers']} subscribers: put->received p50 {r['p50'] / 1e3:.2f} p99 {r['p99'] / 1e3:.2f} "
                  f"max {r['max'] / 1e3:.2f} (n {r['count']})")
            continue
        label = f"on {r['variant']}" if r["publish"] else "off"
        paths = "  ".join(f"{p} p50 {d['p50_ms']:.2f} p99 {d['p99_ms']:.2f}" for p, d in sorted(r["paths"].items())
                          if d.get("p50_ms") is not None and d.get("p99_ms") is not None)
        line = f"{label:11s} {paths}"
        rel = r.get("relay_ms") or {}
        if rel.get("p50") is not None and rel.get("p99") is not None:
            line += f"  relay p50 {rel['p50']:.2f} p99 {rel['p99']:.2f}"
        if r["publish"]:
            w, z = r["write_to_receive_us"], r["publish_to_receive_us"]
            if w["count"]:
                line += (f"  | write->received p50 {w['p50'] / 1e3:.2f} p99 {w['p99'] / 1e3:.2f}  put->received p50 "
                         f"{z['p50'] / 1e3:.2f} p99 {z['p99'] / 1e3:.2f} (n {w['count']})")
        print(line, flush=True)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    if args.child:
        return _child(args.child)
    try:
        import zenoh  # noqa: F401
    except ImportError:
        print('trilink zenohbench: needs the eclipse-zenoh package: pip install ".[zenoh]"', file=sys.stderr)
        return 2
    results = run(args)
    if args.json:
        Path(args.json).write_text(json.dumps({"schema": "trilink-zenohbench/1", "runs": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
