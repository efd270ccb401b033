"""The relay's key checks: a private key file (one line naming the
file and its mode otherwise), distinct key bytes per board, no TEST-ONLY or
all-zero key unless [relay] allow_test_keys; the stats endpoint caps its
connections and ":port" means loopback."""
from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys

import pytest

from trilink.keygen import make_keys, write_private
from trilink_edge import config as edge_config
from trilink_edge import config_toml
from trilink_edge import keyfile, stats as edge_stats
from trilink_edge.relay import Relay

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def setup(tmp_path, keys=None, mode=0o600, extra=None):
    doc = make_keys([("jp", 1), ("kr", 2)], 0)
    if keys is not None:
        for entry, key in zip(doc["keys"], keys):
            entry["key"] = key.hex()
    write_private(str(tmp_path / "keys.json"), doc, force=True)
    os.chmod(tmp_path / "keys.json", mode)
    return config_toml.write(tmp_path / "relay.toml", {
        "relay": {"key_file": "keys.json", "state_file": "state.json", "stats": "off", **(extra or {})},
        "nodes": {"jp": {"id": 1, "nation_file": f"{ROOT}/boards/nations/jp.json"},
                  "kr": {"id": 2, "nation_file": f"{ROOT}/boards/nations/kr.json"}},
        "links": {"jp": {"kind": "udp", "bind": "127.0.0.1:0", "boards": ["jp", "kr"]}},
    })


def check(path):
    return subprocess.run([sys.executable, "-m", "trilink_edge.cli", "--config", path, "--check"],
                          capture_output=True, text=True, timeout=30)


def test_keygen_keys_pass(tmp_path):
    p = check(setup(tmp_path))
    assert p.returncode == 0, p.stderr


def test_group_or_world_readable_key_file_is_one_line_naming_file_and_mode(tmp_path):
    for mode in (0o644, 0o640, 0o604):
        p = check(setup(tmp_path, mode=mode))
        assert p.returncode == 2
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and "keys.json" in lines[0] and f"mode {mode:04o}" in lines[0]


def test_symlinked_key_file_is_refused_in_one_line_naming_it(tmp_path):
    cfg = setup(tmp_path)
    os.rename(tmp_path / "keys.json", tmp_path / "real.json")     # the target itself is 0600
    os.symlink(tmp_path / "real.json", tmp_path / "keys.json")
    p = check(cfg)
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 2 and len(lines) == 1, p.stderr
    assert "keys.json: a symbolic link" in lines[0] and "real.json" in lines[0]
    with pytest.raises(edge_config.ConfigError, match="symbolic link"):
        Relay(edge_config.load(cfg))


def test_duplicate_key_bytes_are_refused(tmp_path):
    key = os.urandom(32)
    p = check(setup(tmp_path, keys=[key, key]))
    assert p.returncode == 2 and "same bytes" in p.stderr and p.stderr.count("\n") == 1


@pytest.mark.parametrize("key", [b"TEST-ONLY-KEY-jp-0000000000000001"[:32], bytes(32)])
def test_test_and_zero_keys_need_the_test_flag(tmp_path, key):
    cfg = setup(tmp_path, keys=[key, os.urandom(32)])
    p = check(cfg)
    assert p.returncode == 2 and "test key" in p.stderr
    cfg = setup(tmp_path, keys=[key, os.urandom(32)], extra={"allow_test_keys": True})
    assert check(cfg).returncode == 0


def test_relay_refuses_injected_duplicate_or_test_keys(tmp_path):
    cfg = edge_config.load(setup(tmp_path))
    key = os.urandom(32)
    with pytest.raises(edge_config.ConfigError, match="same bytes"):
        Relay(cfg, keys={1: key, 2: key})
    with pytest.raises(edge_config.ConfigError, match="test key"):
        Relay(cfg, keys={1: bytes(32), 2: key})


def test_stats_port_alone_binds_loopback_and_connections_are_capped():
    cfg = edge_config.from_dict({"relay": {"stats": ":0"}, "nodes": {"jp": {"id": 1, "origin": {"lat": 1, "lon": 1}}},
                                 "links": {"jp": {"kind": "udp", "bind": "127.0.0.1:0", "boards": ["jp"]}}})
    assert cfg.relay.stats_addr == ("127.0.0.1", 0)
    full = edge_config.from_dict({"relay": {"stats": "0.0.0.0:0"}, "nodes": {"jp": {"id": 1, "origin": {"lat": 1, "lon": 1}}},
                                  "links": {"jp": {"kind": "udp", "bind": "127.0.0.1:0", "boards": ["jp"]}}})
    assert full.relay.stats_addr == ("0.0.0.0", 0)

    async def main():
        st = edge_stats.Stats()
        server = await edge_stats.serve(st, "127.0.0.1", 0, max_connections=4)
        port = server.sockets[0].getsockname()[1]
        held = []
        for _ in range(10):            # half-open: connected, nothing sent
            r, w = await asyncio.open_connection("127.0.0.1", port)
            held.append((r, w))
        await asyncio.sleep(0.2)
        closed = 0
        for r, w in held:
            try:
                data = await asyncio.wait_for(r.read(1), 0.1)
                closed += data == b""
            except asyncio.TimeoutError:
                pass
        snap = st.snapshot()["stats_endpoint"]
        for r, w in held:
            w.close()
        server.close()
        return closed, snap

    closed, snap = asyncio.run(main())
    assert closed == 6 and snap["refused"] == 6 and snap["open"] <= 4
