"""Two hubs federated through Eclipse Zenoh, as a user runs them: two real
``trilink-edge`` processes (a US hub serving JP and KR, an AU hub serving
AU), three real board processes (``boards/main.py`` under CPython, over UDP
on 127.0.0.1) flying one sky (the default scenario from 70 s: Korea alone
tracks the IRBM until Japan's radar gets it from 88 s), and the hubs' own
Zenoh peer sessions on loopback (the US hub listens, the AU hub connects; no
router, multicast scouting off). Mid-window the US hub gets SIGTERM and is
started again on the same config, later the AU hub; nothing is done at the
other side.

Every assertion is on what the relays' captures say they sent each board,
verified with the board's key and decoded with the board's codec: what the
AU board decoded. What could fail: KR's track never reaching the AU board
(no forwarding between processes, wrong endpoints, a key file the relay
will not load), anything of Japan's reaching it (the US hub's policy not
applied across the federation), a side not taking the other's frames
again within 5 s of its restart (a Zenoh session that does not reconnect,
a replay window that refuses the new process's frames), a crash or a
refused-frame counter moving during the run."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request

import pytest

pytest.importorskip("zenoh", reason="the zenoh extra (eclipse-zenoh) is not installed")
pytest.importorskip("cryptography")

from edge_rig import BOARDS, board_argv, decode_tx, exe, relay_now_us, stop_relay, write_keys  # noqa: E402
from test_federation import write_fed_keys  # noqa: E402
from trilink.ports import free_port, free_ports  # noqa: E402
from trilink_board import codec  # noqa: E402
from trilink_edge import config_toml  # noqa: E402
from trilink_edge import federation as fd  # noqa: E402
from trilink_edge.recorder import capture_files, iter_capture  # noqa: E402

NODES = {"jp": 1, "kr": 2, "au": 3}
HUB_OF = {"jp": "us", "kr": "us", "au": "au"}
START_S = 70.0      # default scenario: KR tracks the IRBM from 37 s, JP from 88 s
WINDOW_S = 32.0
LEAD_S = 4.0        # spawn -> window start (both relays' Zenoh sessions, boot, time sync)
US_RESTART_S = 9.0  # window time of the US hub's SIGTERM + start again
AU_RESTART_S = 22.0
RESUME_S = 5.0
RELEASE = {"jp": ["kr"], "kr": ["jp", "au"], "au": ["kr"]}


def hub_doc(tmp, hub, inst, ports, zport, fed_keys, stats_port, kid):
    """The relay config of one hub process (instance ``inst``: its own capture, the hub's state file)."""
    nations = [n for n in NODES if HUB_OF[n] == hub]
    other = "au" if hub == "us" else "us"
    fed = {"enabled": True, "hub": hub, "key_file": fed_keys, "heartbeat_s": 0.25,
           "peers": {other: {"serves": [n for n in NODES if HUB_OF[n] == other],
                             "nodes": {n: NODES[n] for n in NODES if HUB_OF[n] == other}}}}
    fed["listen" if hub == "us" else "connect"] = [f"tcp/127.0.0.1:{zport}"]
    return {
        "relay": {"key_file": tmp / "keys.json", "state_file": tmp / f"{hub}-state.json",
                  "stats": f"127.0.0.1:{stats_port}", "stats_interval_s": 0, "stats_frames_s": 2},
        "nodes": {n: {"id": NODES[n], "key_id": kid[NODES[n]], "nation_file": os.path.join(BOARDS, "nations", n + ".json")}
                  for n in nations},
        "links": {n: {"kind": "udp", "bind": f"127.0.0.1:{ports[n][0]}", "peer": f"127.0.0.1:{ports[n][1]}",
                      "boards": [n]} for n in nations},
        # each hub's policy: AU's alone would let JP's data in; the US hub's withholds it
        "release": RELEASE if hub == "us" else {"au": ["kr", "jp"], "kr": ["au"], "jp": ["au"]},
        "recorder": {"path": tmp / f"cap-{hub}{inst}" / "relay.pcapng"},
        "federation": fed,
    }


def start_hub(tmp, hub, inst, ports, zport, fed_keys, stats_port, kid):
    path = tmp / f"{hub}{inst}.toml"
    config_toml.write(path, hub_doc(tmp, hub, inst, ports, zport, fed_keys, stats_port, kid))
    return subprocess.Popen([exe("trilink-edge"), "--config", str(path)], stderr=subprocess.PIPE, text=True)


def get_stats(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=2) as r:
        return json.loads(r.read())


def wait_until(pred, timeout):
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        try:
            if pred():
                return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fedreal")
    keys, kid = write_keys(tmp, NODES)
    assert set(kid) == set(NODES.values())
    fed_keys = write_fed_keys(tmp / "fed-keys.json", key=os.urandom(32))
    ports = dict(zip(NODES, zip(free_ports(3), free_ports(3))))   # nation -> (relay port, board port)
    zport = free_port(socket.SOCK_STREAM)
    sport = dict(zip(("us", "au"), free_ports(2, socket.SOCK_STREAM)))
    procs, stops, events = {}, {}, {}

    def hub(name, inst):
        procs[name + str(inst)] = start_hub(tmp, name, inst, ports, zport, fed_keys, sport[name], kid)

    def restart(name, inst):
        stops[name + str(inst - 1)] = stop_relay(procs[name + str(inst - 1)])
        events[name] = time.monotonic_ns()
        hub(name, inst)

    hub("us", 1)
    hub("au", 1)
    boards = {}
    try:
        # both relays answer /stats and the AU hub has heard the US hub: then the boards' sky starts
        assert wait_until(lambda: get_stats(sport["au"])["federation"]["peers"]["us"]["up"], 30.0), \
            "the AU hub never saw the US hub"
        epoch_us = relay_now_us(LEAD_S)
        links = {n: f"udp:127.0.0.1:{ports[n][1]}:127.0.0.1:{ports[n][0]}" for n in NODES}
        for n in NODES:
            boards[n] = subprocess.Popen(board_argv(tmp, n, links[n], START_S, WINDOW_S, epoch_us),
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name, at, inst in (("us", US_RESTART_S, 2), ("au", AU_RESTART_S, 2)):
            time.sleep(max(0.0, (epoch_us + at * 1e6) / 1e6 - time.monotonic()))
            restart(name, inst)
        outs = {n: p.communicate(timeout=LEAD_S + WINDOW_S + 60) for n, p in boards.items()}
        time.sleep(0.5)
        final = {h: get_stats(sport[h]) for h in ("us", "au")}
        for name in ("us2", "au2"):
            stops[name] = stop_relay(procs[name])
    finally:
        for p in list(boards.values()) + list(procs.values()):
            if p.poll() is None:
                p.kill()
                p.wait(5)
    caps = {}
    for inst in ("us1", "us2", "au1", "au2"):
        caps[inst] = [r for path in capture_files(str(tmp / f"cap-{inst}" / "relay.pcapng"))
                      for r in iter_capture(path)]
    return {"keys": keys, "kid": kid, "outs": outs, "codes": {n: p.returncode for n, p in boards.items()},
            "stops": stops, "events": events, "caps": caps, "final": final, "epoch_us": epoch_us}


def sent_to(run, inst, nation):
    """[(t_ns, rtype, record)] the hub process ``inst`` sent the ``nation`` board, decoded with its key."""
    node = NODES[nation]
    _f, records = decode_tx(run["caps"][inst], nation, node, run["keys"][node], run["kid"][node])
    return [(r.t_ns, rt, rec) for r, rt, rec in records]


def with_source(records, node):
    return [(t, rec) for t, rt, rec in records if rt != codec.DROP and any(nd == node for nd, _ in rec.sources)]


def test_processes_ran_and_stopped_cleanly(run):
    for n, code in run["codes"].items():
        assert code == 0, (n, run["outs"][n][1][-2000:])
    for inst, (rc, took, err) in run["stops"].items():
        assert rc == 0 and took < 2.0, (inst, rc, took, err[-2000:])
        assert "Traceback" not in err, (inst, err[-3000:])
    for hub in ("us", "au"):
        fed = run["final"][hub]["federation"]
        assert all(fed[k] == 0 for k in fd.REJECTS), (hub, fed)


def test_kr_only_track_reaches_the_au_board_through_both_hubs(run):
    kr = with_source(sent_to(run, "au1", "au"), NODES["kr"])
    early = [t for t, _ in kr if t < run["epoch_us"] * 1000 + (88.0 - START_S) * 1e9]
    assert early, f"no KR-sourced record reached the AU board before JP could see the missile ({len(kr)} at all)"
    # they came over the federation: the AU hub took the US hub's records, and no refused frame
    fed_au = run["final"]["au"]["federation"]
    assert fed_au["rx_records"] > 0 and fed_au["peers"]["us"]["up"], fed_au

def test_nothing_of_japan_reaches_au_on_any_process(run):
    jp = NODES["jp"]
    n_au = 0
    for inst in ("au1", "au2"):
        for _t, rt, rec in sent_to(run, inst, "au"):
            n_au += 1
            if rt == codec.DROP:
                continue
            assert all(nd != jp for nd, _ in rec.sources), (inst, rec.sources)
            assert not rec.nations & (1 << jp), (inst, rec.nations)
    assert n_au > 0
    # Japan did see the missile in the window, and its reports were held back by the US hub
    assert with_source(sent_to(run, "us2", "kr"), jp), "JP never reported: the check above proves nothing"
    assert run["final"]["us"]["federation"]["withheld"] > 0
    assert run["final"]["au"]["federation"]["foreign_node"] == 0


def test_after_a_us_hub_restart_the_au_board_gets_kr_again_within_5_s(run):
    t0 = run["events"]["us"]
    after = [t for t, _ in with_source(sent_to(run, "au1", "au"), NODES["kr"]) if t > t0]
    assert after, "no KR-sourced record reached the AU board after the US hub's restart"
    assert (after[0] - t0) / 1e9 < RESUME_S, (after[0] - t0) / 1e9


def test_after_an_au_hub_restart_its_board_gets_kr_again_within_5_s(run):
    t0 = run["events"]["au"]
    after = [t for t, _ in with_source(sent_to(run, "au2", "au"), NODES["kr"]) if t > t0]
    assert after, "the restarted AU hub never sent its board a KR-sourced record"
    assert (after[0] - t0) / 1e9 < RESUME_S, (after[0] - t0) / 1e9
    # and the US hub took the new AU process's heartbeats without anything done there
    assert run["final"]["us"]["federation"]["peers"]["au"]["up"]
