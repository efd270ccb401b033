"""`trilink replay`: counts a capture per link, direction and type, and feeds
its received frames through a relay's sessions and pipeline."""
from __future__ import annotations

import json
import os
import time
from typing import Any

from trilink import replay
from trilink_edge import config_toml
from trilink_edge.recorder import Recorder
from trilink_native import binding
from textmatch import has

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
KEYS = {1: b"TEST-ONLY-jp".ljust(32, b"-"), 2: b"TEST-ONLY-kr".ljust(32, b"-")}


def test_counts_and_feed(tmp_path: Any, capsys: Any) -> None:
    (tmp_path / "keys.json").write_text(json.dumps({"format": "trilink-keys/1", "relay": 0, "keys": [
        {"key_id": k, "node": k, "name": n, "key": KEYS[k].hex()} for k, n in ((1, "jp"), (2, "kr"))]}))
    os.chmod(tmp_path / "keys.json", 0o600)
    config_toml.write(tmp_path / "relay.toml", {
        "relay": {"allow_test_keys": True, "key_file": "keys.json"},
        "nodes": {"jp": {"id": 1, "nation_file": f"{ROOT}/boards/nations/jp.json"},
                  "kr": {"id": 2, "nation_file": f"{ROOT}/boards/nations/kr.json"}},
        "links": {"jp": {"kind": "udp", "bind": "127.0.0.1:0", "boards": ["jp"]},
                  "kr": {"kind": "udp", "bind": "127.0.0.1:0", "boards": ["kr"]}},
    })
    cap = str(tmp_path / "c.pcapng")
    t = time.monotonic_ns()
    with Recorder(cap) as rec:
        for i in range(5):   # good heartbeats from jp, counters rising
            rec.record("jp", "rx", binding.pack_frame(KEYS[1], 1, 1, 0, binding.MSG_HEARTBEAT, i, (1 << 28) + i,
                                                      bytes(20)), t + i)
        # a replayed counter, and kr's frame arriving on jp's link
        rec.record("jp", "rx", binding.pack_frame(KEYS[1], 1, 1, 0, binding.MSG_HEARTBEAT, 9, 1 << 28, bytes(20)), t + 9)
        rec.record("jp", "rx", binding.pack_frame(KEYS[2], 2, 2, 0, binding.MSG_HEARTBEAT, 0, 1 << 28, bytes(20)), t + 10)
        rec.record("kr", "tx", binding.pack_frame(KEYS[2], 2, 0, 2, binding.MSG_HELLO, 0, 1, bytes(13)), t + 11)
    assert replay.main([cap]) == 0
    out = capsys.readouterr().out
    assert has(out, "8 frames in")
    assert has(out, "jp         rx  HEARTBEAT       7") and has(out, "kr         tx  HELLO           1")
    assert replay.count(replay.iter_records(cap))[("jp", "rx", "HEARTBEAT")] == 7
    assert replay.main([cap, "--config", str(tmp_path / "relay.toml")]) == 0
    out = capsys.readouterr().out
    assert has(out, "pipeline: rx 7, accepted 5, rejected 2, track_reports 0")
    assert replay.main([str(tmp_path / "none.pcapng")]) == 2
