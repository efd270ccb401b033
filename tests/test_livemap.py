"""`trilink watch --http`: the live map in a real headless browser
(Chromium, Debian's package; .ci/run installs it when missing), fed by a
real relay process with real boards (CPython firmware over UDP) through
Zenoh. Two loads of the page some seconds apart while the boards run: each
shows Korea's tracks (rows of the track table, drawn by the page's own
script from /state), and the second has applied more publications than
the first.

What could fail: the page not loading or its script failing (no rows),
the state not reaching it, the page not updating."""
from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

pytest.importorskip("zenoh", reason="the zenoh extra (eclipse-zenoh) is not installed")

from edge_rig import board_argv, exe, relay_now_us, relay_toml, udp_port, write_keys  # noqa: E402
from trilink.ports import free_ports  # noqa: E402
from test_zenoh_watch_real import seal_key_files  # noqa: E402

NODES = {"jp": 1, "kr": 2}
START_S = 95.0
WINDOW_S = 12.0
LEAD_S = 3.0


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("chromium is not installed (.ci/run installs Debian's package)")
    return ""


def dump_dom(browser: str, url: str) -> str:
    r = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=2500",
                        "--dump-dom", url], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


def test_live_map_shows_and_updates_the_picture(tmp_path):
    browser = chromium()
    keys, kid = write_keys(tmp_path, NODES)
    seal_key_files(tmp_path)
    zport, http_port = free_ports(2, socket.SOCK_STREAM)
    ports = {n: (udp_port(), udp_port()) for n in NODES}
    extra = (f'[zenoh]\nenabled = true\nrelay = "us"\nkey_file = "{tmp_path / "zenoh-keys.json"}"\n'
             f'listen = ["tcp/127.0.0.1:{zport}"]\nsnapshot_period_s = 0.5\n')
    cfg = relay_toml(tmp_path, NODES, kid, {n: ("udp",) + ports[n] for n in NODES}, {"jp": ["kr"], "kr": ["jp"]},
                     extra=extra)
    watch = subprocess.Popen(
        [sys.executable, "-m", "trilink.cli", "watch", "--connect", f"tcp/127.0.0.1:{zport}", "--relay", "us",
         "--key-file", str(tmp_path / "kr.json"), "--http", f"127.0.0.1:{http_port}", "--interval", "1",
         "--duration", f"{LEAD_S + WINDOW_S + 5:g}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    relay = subprocess.Popen([exe("trilink-edge"), "--config", str(cfg)], stderr=subprocess.PIPE, text=True)
    boards = {}
    epoch_us = relay_now_us(LEAD_S)
    url = f"http://127.0.0.1:{http_port}/"
    try:
        for n in NODES:
            link = f"udp:127.0.0.1:{ports[n][1]}:127.0.0.1:{ports[n][0]}"
            boards[n] = subprocess.Popen(board_argv(tmp_path, n, link, START_S, WINDOW_S, epoch_us, "cpython"),
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # first load once the window has run a few seconds; the second later, boards still running
        time.sleep(LEAD_S + 4.0)
        first = dump_dom(browser, url)
        time.sleep(3.0)
        second = dump_dom(browser, url)
        for p in boards.values():
            p.communicate(timeout=LEAD_S + WINDOW_S + 30)
        watch.communicate(timeout=30)
        relay.send_signal(signal.SIGTERM)
        relay.wait(10)
    finally:
        for p in list(boards.values()) + [watch, relay]:
            if p.poll() is None:
                p.kill()

    def updates(dom: str) -> int:
        m = re.search(r'id="updates">(\d+)<', dom)
        assert m, dom[:2000]
        return int(m.group(1))

    for dom in (first, second):
        rows = re.findall(r'<tr data-tid="(\d+)" data-nation="(\w+)">', dom)
        assert rows, dom[:3000]
        assert {nation for _tid, nation in rows} == {"kr"}
        assert int(re.search(r'id="polls">(\d+)<', dom).group(1)) >= 1
    assert updates(second) > updates(first) > 0
