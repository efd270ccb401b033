"""`trilink-edge`: --help, --check, and a real daemon over UDP loopback that
stops within 1 s of SIGTERM with its capture flushed."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any, List

import pytest

from trilink.ports import free_port
from trilink_edge import cli, config_toml
from trilink_edge.recorder import iter_capture
from trilink_edge.stats import fetch_stats

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def keyfile(path: Any) -> str:
    entries = [{"key_id": i, "node": i, "name": n, "key": (b"TEST-ONLY-%s" % n.encode()).ljust(32, b"-").hex()}
               for i, n in ((1, "jp"), (2, "kr"))]
    path.write_text(json.dumps({"format": "trilink-keys/1", "relay": 0, "keys": entries}))
    os.chmod(path, 0o600)
    return str(path)


def write_config(tmp_path: Any, peer_port: int, stats_port: int) -> str:
    keyfile(tmp_path / "keys.json")
    return config_toml.write(tmp_path / "relay.toml", {
        "relay": {"allow_test_keys": True, "key_file": "keys.json", "state_file": "state.json",
                  "stats": f"127.0.0.1:{stats_port}", "stats_interval_s": 0.2},
        "nodes": {"jp": {"id": 1, "nation_file": f"{ROOT}/boards/nations/jp.json"},
                  "kr": {"id": 2, "nation_file": f"{ROOT}/boards/nations/kr.json"}},
        "links": {"jp": {"kind": "udp", "bind": "127.0.0.1:0", "peer": f"127.0.0.1:{peer_port}", "boards": ["jp"]},
                  "kr": {"kind": "udp", "bind": "127.0.0.1:0", "boards": ["kr"]}},
        "release": {"jp": ["kr"]},
        "recorder": {"path": "cap/relay.pcapng"},
    })


def test_help(capsys: Any) -> None:
    with pytest.raises(SystemExit) as e:
        cli.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "--config" in out and "--check" in out and "trilink-edge" in out
    with pytest.raises(SystemExit):
        cli._parse_args([])                       # --config is required


def test_check_ok_and_errors(tmp_path: Any, capsys: Any) -> None:
    cfg = write_config(tmp_path, 9, 9)
    assert cli.main(["--config", cfg, "--check"]) == 0
    out = capsys.readouterr().out
    assert "relay.toml: OK: relay node 0, 2 nodes, 2 links" in out and "release jp -> kr" in out
    # A key file without kr's key: the error names the config key and the key file.
    kf = json.loads((tmp_path / "keys.json").read_text())
    kf["keys"] = kf["keys"][:1]
    (tmp_path / "keys.json").write_text(json.dumps(kf))
    assert cli.main(["--config", cfg, "--check"]) == 2
    err = capsys.readouterr().err
    assert "relay.toml: nodes.kr.key_id: key 2 is not in" in err and "keys.json" in err
    (tmp_path / "bad.toml").write_text("[links.jp]\nkind = 3\n")
    assert cli.main(["--config", str(tmp_path / "bad.toml")]) == 2
    assert "bad.toml: links.jp.kind: expected a non-empty string" in capsys.readouterr().err
    assert cli.main(["--config", cfg, "--stats", "nope"]) == 2


def test_sigterm_stops_within_1s_with_capture_flushed(tmp_path: Any) -> None:
    board = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    board.bind(("127.0.0.1", 0))
    stats_port = free_port(socket.SOCK_STREAM)
    cfg = write_config(tmp_path, board.getsockname()[1], stats_port)
    proc = subprocess.Popen([sys.executable, "-m", "trilink_edge.cli", "--config", cfg],
                            cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        doc = None
        t0 = time.monotonic()
        while time.monotonic() - t0 < 20:
            try:
                doc = fetch_stats(("127.0.0.1", stats_port), timeout=0.5)
                if doc["links"]["jp"]["frames_out"] >= 2:
                    break
            except OSError:
                pass
            time.sleep(0.05)
        assert doc is not None, "stats endpoint never answered"
        assert doc["links"]["jp"]["up"] == 1 and doc["links"]["kr"]["tx_dropped"] >= 0
        t_term = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=5)
        took = time.monotonic() - t_term
        out, err = proc.communicate()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert took < 1.0, f"took {took:.2f} s to stop"
    assert "SIGTERM: stopping" in err and "stopped" in err
    board.settimeout(0.2)
    got: List[bytes] = []
    try:
        while True:
            got.append(board.recv(2048))
    except socket.timeout:
        pass
    rec = [r for r in iter_capture(str(tmp_path / "cap" / "relay.pcapng")) if r.link == "jp" and r.direction == "tx"]
    assert len(got) >= 2
    assert [r.data for r in rec] == got      # every frame sent is in the capture, nothing more


def test_corrupt_state_file_is_one_line_exit_2_and_check_reads_it(tmp_path: Any) -> None:
    cfg = write_config(tmp_path, 9, 0)
    (tmp_path / "state.json").write_text('{"format": "trilink-relay-state/2", "epoch": "x"')
    for args in (["--check"], []):
        p = subprocess.run([sys.executable, "-m", "trilink_edge.cli", "--config", cfg, *args],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 2, p.stderr
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and "state.json" in lines[0] and "Traceback" not in p.stderr
