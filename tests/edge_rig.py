# edge_rig.py: keys, relay config and real board processes for the relay's integration tests
"""Helpers that build what a relay test with real boards needs: a key file,
a relay config (serial links on null-modem ptys, UDP links on loopback),
board command lines (CPython ``boards/main.py`` or the MicroPython unix port
on the mpy-cross-compiled firmware) and frames decoded from the capture.

    >>> keys, kid = write_keys(tmp, {"jp": 1, "kr": 2})
    >>> cfg = relay_toml(tmp, {"jp": 1, "kr": 2}, kid, {"jp": ("serial", "/dev/pts/5")}, {"jp": ["kr"]})
"""
from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Dict, List, Mapping, Sequence, Tuple

from trilink.keygen import make_keys, write_private
from trilink.ports import free_port as udp_port  # noqa: F401  (the edge tests' name for a free UDP port)
from trilink_board import codec, wire
from trilink_edge import config_toml

HERE = os.path.dirname(os.path.abspath(__file__))
BOARDS = os.path.join(HERE, "..", "boards")


def exe(name: str) -> str:
    """A console script installed beside this interpreter (trilink-edge)."""
    return os.path.join(os.path.dirname(sys.executable), name)


def write_keys(tmp: Path, nodes: Mapping[str, int]) -> Tuple[Dict[int, bytes], Dict[int, int]]:
    """keys.json in tmp; returns (node -> key, node -> key id)."""
    doc = make_keys(list(nodes.items()), 0)
    write_private(str(tmp / "keys.json"), doc, force=True)
    return ({k["node"]: bytes.fromhex(k["key"]) for k in doc["keys"]},
            {k["node"]: k["key_id"] for k in doc["keys"]})


def relay_toml(tmp: Path, nodes: Mapping[str, int], kid: Mapping[int, int],
               links: Mapping[str, Tuple[str, ...]], release: Mapping[str, Sequence[str]],
               extra: str = "", stats_port: int = 0) -> Path:
    """relay.toml in tmp. ``links[name]`` = ("serial", device) or ("udp", bind_port, peer_port);
    ``extra`` is TOML text appended (sections of its own)."""
    doc = {
        "relay": {"key_file": tmp / "keys.json", "state_file": tmp / "state.json",
                  "stats": f"127.0.0.1:{stats_port}" if stats_port else "off", "stats_interval_s": 0,
                  "stats_frames_s": 2},
        "nodes": {n: {"id": node, "key_id": kid[node], "nation_file": os.path.join(BOARDS, "nations", n + ".json")}
                  for n, node in nodes.items()},
        "links": {n: ({"kind": "serial", "device": spec[1]} if spec[0] == "serial" else
                      {"kind": "udp", "bind": f"127.0.0.1:{spec[1]}", "peer": f"127.0.0.1:{spec[2]}"})
                  | {"boards": [n]} for n, spec in links.items()},
        "release": {s: list(ds) for s, ds in release.items()},
        "recorder": {"path": tmp / "cap" / "relay.pcapng"},
    }
    path = tmp / "relay.toml"
    path.write_text(config_toml.dumps(doc) + "\n" + extra)
    return path


def board_argv(tmp: Path, nation: str, link: str, start_s: float, duration_s: float, epoch_us: int,
               runtime: str = "cpython", scenario: str = "default") -> List[str]:
    """The command line of one board process (``link`` in the board's --link syntax)."""
    if runtime == "micropython":
        from trilink.bench_rig import build_flash_tree
        flash = tmp / "flash" / "main.py"
        if not flash.exists():
            build_flash_tree(Path(BOARDS), tmp / "flash")
        head = ["micropython", "-X", "heapsize=192K", str(flash)]
    else:
        head = [sys.executable, os.path.join(BOARDS, "main.py")]
    return head + ["--nation", os.path.join(BOARDS, "nations", nation + ".json"), "--link", link,
                   "--scenario", os.path.join(BOARDS, "scenarios", scenario + ".json"),
                   "--keys", str(tmp / "keys.json"), "--start", f"{start_s:g}", "--duration", f"{duration_s:g}",
                   "--epoch", str(epoch_us), "--state", str(tmp / (nation + ".state")), "--stats", "2", "--quiet"]


def relay_now_us(lead_s: float = 0.0) -> int:
    """The relay's timebase (the host's monotonic clock, shared by every process), plus lead_s."""
    return time.monotonic_ns() // 1000 + int(lead_s * 1e6)


def decode_tx(recs, link: str, node: int, key: bytes, key_id: int):
    """(frames, [(capture record, rtype, codec record)]) the relay sent on ``link``,
    verified with the board's key, PICTURE records decoded in order (deltas
    against the copies a board would hold)."""
    ring = wire.Keyring(node, (0,))
    ring.add(key_id, node, key)
    held: dict = {}
    frames, records = [], []
    for r in recs:
        if r.link != link or r.direction != "tx":
            continue
        f = ring.verify(wire.parse(r.data))
        frames.append((r, f))
        if f.mtype == wire.PICTURE:
            for rtype, _status, rec in codec.decode(bytes(f.payload), held).items:
                records.append((r, rtype, rec))
    return frames, records


def stop_relay(relay) -> Tuple[int, float, str]:
    """SIGTERM a relay process: (its exit code, seconds it took to stop, its stderr)."""
    t0 = time.monotonic()
    relay.send_signal(signal.SIGTERM)
    rc = relay.wait(10)
    return rc, time.monotonic() - t0, relay.stderr.read()


def max_window(events, window_ns: int = 1_000_000_000) -> int:
    """The most bytes in any window of 1 s over sorted (t_ns, bytes, ...) events."""
    best, s, j = 0, 0, 0
    for t, n, *_ in events:
        s += n
        while events[j][0] <= t - window_ns:
            s -= events[j][1]
            j += 1
        best = max(best, s)
    return best
