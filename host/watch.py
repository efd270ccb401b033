"""trilink watch: subscribe to a relay's Zenoh publications and print the live picture.

Opens only what the key file's keys open (docs/PROTOCOL.md section 8): a
watcher given Korea's key sees Korea's released picture and warnings, and
nothing else, however much else the Zenoh network carries::

    $ trilink watch --connect tcp/127.0.0.1:7447 --relay us --key-file zenoh-keys.d/kr.json
    $ trilink watch --connect tcp/127.0.0.1:7447 --relay us --key-file zenoh-keys.json --json --duration 10
    $ trilink watch --connect tcp/127.0.0.1:7447 --relay us --key-file zenoh-keys.d/kr.json --http 127.0.0.1:8080

Needs the ``zenoh`` extra (``pip install ".[zenoh]"``).
"""
from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

__all__ = ["main", "_parse_args", "Watcher", "format_picture"]
HISTORY_POINTS = 600       # ground-track points kept per track


def _parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="trilink watch",
        description="Subscribe to a relay's picture on Eclipse Zenoh (the relay's [zenoh] section) and print "
                    "it live: each nation's released tracks, warnings and, with the ops key, link health.")
    p.add_argument("--key-file", required=True, metavar="JSON",
                   help="trilink-keys/1 file holding the keys of the nations to watch (and 'ops' for health)")
    p.add_argument("--relay", default="relay", help="the relay's name ([zenoh] relay; default: relay)")
    p.add_argument("--connect", action="append", default=[], metavar="ENDPOINT",
                   help="Zenoh endpoint to connect to, e.g. tcp/127.0.0.1:7447 (repeatable)")
    p.add_argument("--listen", action="append", default=[], metavar="ENDPOINT",
                   help="Zenoh endpoint to listen on (repeatable)")
    p.add_argument("--nation", action="append", default=[], help="watch only this nation (repeatable)")
    p.add_argument("--multicast-scouting", action="store_true", help="find the relay by multicast scouting")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between printed pictures (default 1)")
    p.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (0: until Ctrl-C)")
    p.add_argument("--json", action="store_true", help="print one JSON document per interval instead of a table")
    p.add_argument("--http", metavar="HOST:PORT",
                   help="also serve a live map of the picture on this address (e.g. 127.0.0.1:8080)")
    a = p.parse_args(list(argv))
    if a.interval <= 0:
        p.error("--interval must be positive")
    return a


class Watcher:
    """A Zenoh subscriber to ``trilink/<relay>/**`` that opens the envelopes
    its keys open and keeps, per nation, the picture of each destination
    node (tid -> record), the warnings (by warning id) and the last health.

        w = Watcher("us", {"kr": key}, zenoh_pub.zenoh_config(connect=["tcp/127.0.0.1:7447"]))
        w.start(); ...; w.snapshot(); w.close()
    """

    def __init__(self, relay: str, keys: Mapping[str, bytes], zconf: Any,
                 nations: Optional[Sequence[str]] = None) -> None:
        from trilink_edge import zenoh_pub as zp
        self.zp = zp
        self.relay = relay
        self.keys = dict(keys)
        self.nations = set(nations) if nations else None
        self._aead = {n: zp._aead(k) for n, k in self.keys.items()}
        self.zconf = zconf
        self.lock = threading.Lock()
        self.pictures: Dict[str, Dict[int, Dict[int, Dict[str, Any]]]] = {}
        self.warnings: Dict[str, Dict[int, Dict[str, Any]]] = {}
        self.health: Optional[Dict[str, Any]] = None
        self.stats: Optional[Dict[str, Any]] = None
        self.opened = 0
        self.unopened = 0          # publications our keys do not open (another nation's, or forged)
        self.replayed = 0
        self.runs: Dict[int, float] = {}   # relay run id -> time.monotonic() of its first publication opened
        self.records: List[Tuple[str, Dict[str, Any]]] = []   # every picture record opened, with its nation
        self.territories: List[Dict[str, Any]] = []
        # ground tracks: (nation, node, tid) -> recent [lat, lon] points
        self.history: Dict[Tuple[str, int, int], List[List[float]]] = {}
        self.updates = 0           # picture publications applied (a live page shows it moving)
        self._last_seq: Dict[Tuple[str, int], int] = {}
        self._session: Any = None
        self._sub: Any = None

    def start(self) -> None:
        import zenoh
        self._session = zenoh.open(self.zconf)
        self._sub = self._session.declare_subscriber(f"trilink/{self.relay}/**", self._on_sample)

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def _seal_name(self, key_expr: str) -> Optional[str]:
        parts = key_expr.split("/")
        if len(parts) == 4 and parts[2] in ("picture", "warning"):
            return parts[3]
        if len(parts) == 3 and parts[2] in ("health", "stats"):
            return "ops"
        return None

    def _on_sample(self, sample: Any) -> None:
        key_expr = str(sample.key_expr)
        data = sample.payload.to_bytes()
        name = self._seal_name(key_expr)
        if name is not None and self.nations is not None and name != "ops" and name not in self.nations:
            return
        aead = self._aead.get(name) if name is not None else None
        opened = self.zp.open_envelope(b"", key_expr, data, aead=aead) if aead is not None else None
        with self.lock:
            if opened is None or name is None:
                self.unopened += 1
                return
            last = self._last_seq.get((key_expr, opened.run), 0)
            if opened.seq <= last:
                self.replayed += 1
                return
            self._last_seq[(key_expr, opened.run)] = opened.seq
            self.runs.setdefault(opened.run, time.monotonic())
            self.opened += 1
            self._apply(name, opened.kind, json.loads(opened.body))

    def _apply(self, name: str, kind: int, doc: Dict[str, Any]) -> None:
        zp = self.zp
        if kind in (zp.KIND_PICTURE, zp.KIND_SNAPSHOT):
            per_node = self.pictures.setdefault(name, {})
            node = int(doc["node"])
            if kind == zp.KIND_SNAPSHOT:
                per_node[node] = {}
            pic = per_node.setdefault(node, {})
            if kind == zp.KIND_SNAPSHOT and doc.get("territories"):
                self.territories = doc["territories"]
            self.updates += 1
            for r in doc["records"]:
                self.records.append((name, r))
                key = (name, node, int(r["tid"]))
                if r.get("op") == "drop":
                    pic.pop(int(r["tid"]), None)
                    self.history.pop(key, None)
                else:
                    pic[int(r["tid"])] = r
                    h = self.history.setdefault(key, [])
                    if not h or h[-1] != [r["lat"], r["lon"]]:
                        h.append([r["lat"], r["lon"]])
                        del h[:-HISTORY_POINTS]
        elif kind == zp.KIND_WARNING:
            w = doc["warning"]
            self.warnings.setdefault(name, {})[int(w["warning_id"])] = w
        elif kind == zp.KIND_HEALTH:
            self.health = doc
        elif kind == zp.KIND_STATS:
            self.stats = doc

    def snapshot(self) -> Dict[str, Any]:
        """The watched state as one JSON-able document."""
        with self.lock:
            return {"relay": self.relay, "opened": self.opened, "unopened": self.unopened,
                    "replayed": self.replayed,
                    "pictures": {n: {str(node): list(p.values()) for node, p in per.items()}
                                 for n, per in self.pictures.items()},
                    "warnings": {n: list(w.values()) for n, w in self.warnings.items()},
                    "health": self.health, "updates": self.updates, "territories": self.territories,
                    "history": [{"nation": k[0], "node": k[1], "tid": k[2], "points": v}
                                for k, v in self.history.items()]}


def format_picture(doc: Mapping[str, Any]) -> str:
    """A text table of a ``Watcher.snapshot()``."""
    lines = [f"relay {doc['relay']}: {doc['opened']} publications opened, {doc['unopened']} not ours"]
    for nation, per in sorted(doc["pictures"].items()):
        for node, recs in sorted(per.items()):
            lines.append(f"  {nation} (node {node}): {len(recs)} tracks")
            for r in sorted(recs, key=lambda r: r["tid"]):
                imp = r.get("impact")
                where = (f"  impact {imp['lat']:.2f},{imp['lon']:.2f}" if imp else "")
                speed = sum(v * v for v in r["vel_local"]) ** 0.5
                lines.append(f"    track {r['tid']:>6}  {r['lat']:8.3f} {r['lon']:9.3f}  {r['h'] / 1e3:7.1f} km  "
                             f"{speed:7.0f} m/s  nations {','.join(str(n) for n in r['nations'])}{where}")
    for nation, ws in sorted(doc["warnings"].items()):
        for w in ws:
            if w.get("status") != 2:
                lines.append(f"  WARNING to {nation}: track {w['track_id']} impact {w['lat']:.2f},{w['lon']:.2f}")
    h = doc.get("health")
    if h:
        up = ", ".join(f"{n}:{'up' if d['up'] else 'DOWN'}" for n, d in sorted(h["nodes"].items()))
        lines.append(f"  health: {up}; fused tracks {h.get('tracks', 0)}")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    try:
        from trilink_edge import zenoh_pub as zp
        import zenoh  # noqa: F401
    except ImportError:
        print('trilink watch: needs the eclipse-zenoh package: pip install ".[zenoh]"', file=sys.stderr)
        return 2
    try:
        keys = zp.load_seal_keys(args.key_file)
    except ValueError as e:
        print(f"trilink watch: --key-file: {args.key_file}: {e}", file=sys.stderr)
        return 2
    w = Watcher(args.relay, keys, zp.zenoh_config("peer", args.listen, args.connect, args.multicast_scouting),
                args.nation or None)
    w.start()
    server = None
    if args.http:
        from trilink.livemap import serve
        host, _sep, port = args.http.rpartition(":")
        try:
            server = serve(w, host or "127.0.0.1", int(port))
        except (OSError, ValueError) as e:
            print(f"trilink watch: --http {args.http}: {e}", file=sys.stderr)
            w.close()
            return 2
        print(f"live map: http://{server.server_address[0]}:{server.server_address[1]}/", flush=True)
    start = time.monotonic()
    try:
        while True:
            time.sleep(args.interval)
            doc = w.snapshot()
            print(json.dumps(doc) if args.json else format_picture(doc), flush=True)
            if args.duration and time.monotonic() - start >= args.duration:
                break
    except KeyboardInterrupt:
        pass
    finally:
        if server is not None:
            server.shutdown()
        w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
