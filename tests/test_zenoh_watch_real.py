"""`trilink watch` on a real relay process with real boards: `trilink-edge`
with a [zenoh] section (peer mode, listening on 127.0.0.1, multicast
scouting off), JP, KR and AU boards (CPython firmware) over UDP loopback on
the default scenario, and one `trilink watch --json` process per nation,
each with that nation's key alone. The release policy lets JP's data reach
KR only; KR's reaches JP and AU.

What could fail: the watcher printing nothing (no session, wrong key
expressions, the envelope not opening), AU's watcher showing a track
carrying JP information, the relay not stopping cleanly with the publisher
thread."""
from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

pytest.importorskip("zenoh", reason="the zenoh extra (eclipse-zenoh) is not installed")

from edge_rig import board_argv, exe, relay_now_us, relay_toml, stop_relay, udp_port, write_keys  # noqa: E402
from trilink.ports import free_port  # noqa: E402
from trilink.keygen import write_private  # noqa: E402

NODES = {"jp": 1, "kr": 2, "au": 3}
START_S = 95.0      # the IRBM is seen by JP (from 88 s) and KR (37-317 s)
WINDOW_S = 7.0
LEAD_S = 3.0


def seal_key_files(tmp):
    """zenoh-keys.json (every nation and ops) and one file per name, of
    fresh random keys (trilink keygen's): the relay takes no test key."""
    from trilink.keygen import make_keys
    doc = make_keys([(n, 100 + i) for i, n in enumerate(("jp", "kr", "au", "ops"))], 0)
    write_private(str(tmp / "zenoh-keys.json"), doc, force=True)
    for e in doc["keys"]:
        write_private(str(tmp / f"{e['name']}.json"), dict(doc, keys=[e]), force=True)
    return tmp / "zenoh-keys.json"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("zwatch")
    keys, kid = write_keys(tmp, NODES)
    seal_key_files(tmp)
    zport = free_port(socket.SOCK_STREAM)
    ports = {n: (udp_port(), udp_port()) for n in NODES}
    extra = (f'[zenoh]\nenabled = true\nrelay = "us"\nkey_file = "{tmp / "zenoh-keys.json"}"\n'
             f'listen = ["tcp/127.0.0.1:{zport}"]\nhealth_period_s = 0.5\nsnapshot_period_s = 0.5\n')
    cfg = relay_toml(tmp, NODES, kid, {n: ("udp",) + ports[n] for n in NODES},
                     {"jp": ["kr"], "kr": ["jp", "au"], "au": []}, extra=extra)
    # watchers first: a Zenoh peer retries its connect until the relay listens
    watchers = {}
    for n in ("kr", "au", "ops"):
        kf = tmp / f"{n}.json"
        watchers[n] = subprocess.Popen(
            [sys.executable, "-m", "trilink.cli", "watch", "--connect", f"tcp/127.0.0.1:{zport}", "--relay", "us",
             "--key-file", str(kf), "--json", "--interval", "0.5", "--duration", f"{LEAD_S + WINDOW_S + 3:g}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    relay = subprocess.Popen([exe("trilink-edge"), "--config", str(cfg)], stderr=subprocess.PIPE, text=True)
    boards = {}
    epoch_us = relay_now_us(LEAD_S)
    try:
        for n in NODES:
            link = f"udp:127.0.0.1:{ports[n][1]}:127.0.0.1:{ports[n][0]}"
            boards[n] = subprocess.Popen(board_argv(tmp, n, link, START_S, WINDOW_S, epoch_us, "cpython"),
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        outs = {n: p.communicate(timeout=LEAD_S + WINDOW_S + 30) for n, p in boards.items()}
        watched = {n: p.communicate(timeout=LEAD_S + WINDOW_S + 30) for n, p in watchers.items()}
        rc, stop_s, err = stop_relay(relay)
    finally:
        for p in list(boards.values()) + list(watchers.values()) + [relay]:
            if p.poll() is None:
                p.kill()
    docs = {n: [json.loads(line) for line in out.splitlines() if line.startswith("{")]
            for n, (out, _e) in watched.items()}
    return {"docs": docs, "watch_rc": {n: p.returncode for n, p in watchers.items()},
            "watch_err": {n: e for n, (_o, e) in watched.items()}, "outs": outs,
            "relay_rc": rc, "stop_s": stop_s, "relay_err": err}


def tracks(doc, nation):
    return [r for recs in doc["pictures"].get(nation, {}).values() for r in recs]


def test_watchers_print_the_released_picture(run):
    assert run["watch_rc"] == {"kr": 0, "au": 0, "ops": 0}, run["watch_err"]
    kr = run["docs"]["kr"]
    assert kr, run["watch_err"]["kr"]
    # KR's watcher shows the fused IRBM: JP's and KR's data in one track
    assert any({1, 2} <= set(r["nations"]) for d in kr for r in tracks(d, "kr")), kr[-1]
    # ... over the default scenario's region (KR frame decoded to WGS-84)
    last = [r for r in tracks(kr[-1], "kr")]
    assert last and all(30 < r["lat"] < 50 and 120 < r["lon"] < 150 for r in last)


def test_au_watcher_never_shows_japans_data(run):
    au = run["docs"]["au"]
    assert au and any(tracks(d, "au") for d in au), "AU's watcher showed no track"
    for d in au:
        for r in tracks(d, "au"):
            assert 1 not in r["nations"]
            assert all(s[0] != 1 for s in r["sources"])
        # and it opened nothing but its own nation's publications
        assert set(d["pictures"]) <= {"au"} and not d["health"]


def test_ops_watcher_sees_health_and_relay_stops_cleanly(run):
    docs = [d for d in run["docs"]["ops"] if d["health"] is not None]
    assert docs and all(not d["pictures"] for d in docs)
    # while the boards ran, the health publication showed every link up
    assert any({n for n, h in d["health"]["nodes"].items() if h["up"]} == {"jp", "kr", "au"} for d in docs)
    assert docs[-1]["health"]["publish"]["dropped"] == 0 and docs[-1]["health"]["publish"]["offered"] > 0
    assert run["relay_rc"] == 0 and run["stop_s"] < 1.5, run["relay_err"][-2000:]
    assert "Traceback" not in run["relay_err"]


def test_text_table_lists_every_track(run):
    from trilink.watch import format_picture
    doc = next(d for d in reversed(run["docs"]["kr"]) if tracks(d, "kr"))
    text = format_picture(doc)
    listed = [line for line in text.splitlines() if line.strip().startswith("track ")]
    assert len(listed) == len(tracks(doc, "kr"))
    assert all(f" {r['tid']} " in " ".join(listed) + " " for r in tracks(doc, "kr"))
