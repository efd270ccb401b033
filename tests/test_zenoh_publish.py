"""The relay's picture on Eclipse Zenoh: real Zenoh sessions in peer mode on
127.0.0.1 (no router, multicast scouting off), a real relay over real UDP
sockets with board stand-ins, subscribers that hold one nation's key.

What could fail: a subscriber opening what its nation may not see (the
release policy applied on the links but not on Zenoh), a publication
another nation's key opens, the published picture differing from what the
destination's link got, the config accepting [zenoh] it cannot honour."""
from __future__ import annotations

import asyncio
import os
import socket
import time

import pytest

zenoh = pytest.importorskip("zenoh", reason="the zenoh extra (eclipse-zenoh) is not installed")
pytest.importorskip("cryptography")

from edge_boards import TEST_KEYS, Missile, fly  # noqa: E402
from test_relay_integration import make_boards, relay_config  # noqa: E402
from trilink.ports import free_port, free_ports  # noqa: E402
from trilink.keygen import write_private  # noqa: E402
from trilink.watch import Watcher  # noqa: E402
from trilink_edge import config as edge_config  # noqa: E402
from trilink_edge import zenoh_pub as zp  # noqa: E402
from trilink_edge.links import UdpLink  # noqa: E402
from trilink_edge.relay import Relay  # noqa: E402


def tcp_port() -> int:
    """A free TCP port (the name other tests import from here)."""
    return free_port(socket.SOCK_STREAM)

# TEST-ONLY keys, one per nation and one for health/stats.
SEAL_KEYS = {name: (b"TEST-ONLY-zenoh-seal-" + name.encode()).ljust(32, b"0") for name in ("jp", "kr", "au", "ops")}


def write_seal_keys(path, names=("jp", "kr", "au", "ops")):
    doc = {"format": "trilink-keys/1", "relay": 0,
           "keys": [{"key_id": 100 + i, "node": 100 + i, "name": n, "key": SEAL_KEYS[n].hex()}
                    for i, n in enumerate(names)]}
    write_private(str(path), doc, force=True)
    return path


def zenoh_section(tmp_path, port, relay="us", **extra):
    d = {"enabled": True, "relay": relay, "key_file": str(write_seal_keys(tmp_path / "zkeys.json")),
         "listen": [f"tcp/127.0.0.1:{port}"], "health_period_s": 0.5, "stats_period_s": 1.0,
         "snapshot_period_s": 0.5}
    d.update(extra)
    return d


def with_zenoh(tmp_path, ports, zport, release):
    cfg = relay_config(tmp_path, ports, release=release)
    doc = {"zenoh": zenoh_section(tmp_path, zport)}
    # the integration config plus a [zenoh] section, validated the normal way
    import dataclasses
    z = edge_config.from_dict({**_as_dict(cfg, tmp_path, ports, release), "zenoh": doc["zenoh"]}, "test.toml",
                              str(tmp_path))
    return dataclasses.replace(cfg, zenoh=z.zenoh)


def _as_dict(cfg, tmp_path, ports, release):
    from test_relay_integration import NATIONS
    from edge_boards import AU_ORIGIN
    return {
        "relay": {"node": 0, "state_file": str(tmp_path / "state.json"), "stats": "off", "allow_test_keys": True},
        "nodes": {
            "jp": {"id": 1, "key_id": 1, "nation_file": os.path.join(NATIONS, "jp.json")},
            "kr": {"id": 2, "key_id": 2, "nation_file": os.path.join(NATIONS, "kr.json")},
            "au": {"id": 3, "key_id": 3, "nation": "au",
                   "origin": {"lat": AU_ORIGIN[0], "lon": AU_ORIGIN[1], "alt_m": 0.0}}},
        "links": {name: {"kind": "udp", "bind": f"127.0.0.1:{ports[i]}", "peer": f"127.0.0.1:{ports[3 + i]}",
                         "boards": [name]} for i, name in enumerate(("jp", "kr", "au"))},
        "release": release,
    }


report = fly     # HELLO from every board, boards 1 and 2 report, the others heartbeat (the relay already running)


def watcher(zport, names, relay="us"):
    return Watcher(relay, {n: SEAL_KEYS[n] for n in names}, zp.zenoh_config(connect=[f"tcp/127.0.0.1:{zport}"]))


def test_each_nation_opens_only_its_released_picture(tmp_path):
    """JP's data is released to KR, KR's to AU, nothing to JP. JP and KR
    report one missile. KR's subscriber gets the fused track (JP and KR
    sources); AU's gets KR's data only, never a JP source or nation bit;
    JP's opens no track and none of the publications it receives."""
    ports = free_ports(6)
    zport = free_port(socket.SOCK_STREAM)
    release = {"jp": ["kr"], "kr": ["au"], "au": []}
    cfg = with_zenoh(tmp_path, ports, zport, release)
    links = {name: UdpLink(name, ("127.0.0.1", ports[i]), ("127.0.0.1", ports[3 + i]))
             for i, name in enumerate(("jp", "kr", "au"))}
    boards = make_boards(ports)
    w_jp, w_kr, w_au, w_ops = (watcher(zport, n) for n in (["jp"], ["kr"], ["au"], ["ops"]))

    async def main():
        for lk in links.values():
            await lk.open()
        relay = Relay(cfg, links=links, keys=TEST_KEYS)
        assert relay.publisher is not None
        task = asyncio.ensure_future(relay.run())
        await asyncio.sleep(0.3)            # the relay's session is listening
        for w in (w_jp, w_kr, w_au, w_ops):
            w.start()
        await asyncio.sleep(0.5)            # subscriptions propagated to the relay's session
        await report(boards, Missile(), 3.0)
        await asyncio.sleep(1.2)            # a snapshot and a health period after the last report
        counters = relay.publisher.counters()
        await relay.stop()
        await asyncio.wait_for(task, 2.0)
        return counters

    try:
        counters = asyncio.run(main())
        snaps = {n: w.snapshot() for n, w in (("jp", w_jp), ("kr", w_kr), ("au", w_au), ("ops", w_ops))}
    finally:
        for w in (w_jp, w_kr, w_au, w_ops):
            w.close()
    assert counters["dropped"] == 0 and counters["errors"] == 0 and counters["offered"] > 0
    kr_recs = [r for n, r in w_kr.records if r.get("op") != "drop"]
    au_recs = [r for n, r in w_au.records if r.get("op") != "drop"]
    assert kr_recs and au_recs
    # KR holds the fused track: it carries JP's reports (released to KR;
    # its own are not sent back) and names both nations
    assert {s[0] for r in kr_recs for s in r["sources"]} == {1}
    assert any({1, 2} <= set(r["nations"]) for r in kr_recs)
    # AU may see KR's data but never JP's: no JP source, no JP nation bit, in any record it opened
    assert {s[0] for r in au_recs for s in r["sources"]} == {2}
    assert all(1 not in r["nations"] for r in au_recs)
    # every record a subscriber opened came from its own nation's key expression
    assert {n for n, _ in w_kr.records} == {"kr"} and {n for n, _ in w_au.records} == {"au"}
    # JP: nothing is released to it, so it opens no track, though it received
    # (and could not open) the others' publications
    assert not w_jp.records
    assert all(not recs for recs in snaps["jp"]["pictures"].get("jp", {}).values())
    assert snaps["jp"]["unopened"] > 0 and snaps["au"]["unopened"] > 0
    # The ops key opens health: every node's link is up, and nothing else
    h = snaps["ops"]["health"]
    assert h is not None and set(h["nodes"]) == {"jp", "kr", "au"}
    assert h["nodes"]["jp"]["up"] and h["nodes"]["kr"]["up"]
    assert not snaps["ops"]["pictures"]
    # The published picture is what KR's board decoded from its link: the
    # same fused track ids and the same latest position (both decode the
    # same payloads against held copies).
    kr_board = boards[2].sb
    board_tids = {rec.tid for _rt, rec in kr_board.pictures}
    assert {r["tid"] for r in kr_recs} == board_tids
    last_board = [rec for _rt, rec in kr_board.pictures][-1]
    from trilink_board import codec
    x_board = last_board.state(codec.Precision())
    last_pub = [r for r in kr_recs if r["tid"] == last_board.tid][-1]
    assert max(abs(a - b) for a, b in zip(x_board[:3], last_pub["enu"][:3])) < 2.0   # metres: one codec step


def test_envelope_is_bound_to_key_and_key_expression():
    env = zp.seal(SEAL_KEYS["kr"], "trilink/us/picture/kr", zp.KIND_PICTURE, 1, 5, b'{"x":1}')
    assert zp.open_envelope(SEAL_KEYS["kr"], "trilink/us/picture/kr", env).body == b'{"x":1}'
    assert zp.open_envelope(SEAL_KEYS["jp"], "trilink/us/picture/kr", env) is None
    assert zp.open_envelope(SEAL_KEYS["kr"], "trilink/us/picture/jp", env) is None
    flipped = bytearray(env)
    flipped[-1] ^= 1
    assert zp.open_envelope(SEAL_KEYS["kr"], "trilink/us/picture/kr", bytes(flipped)) is None
    # the header is authenticated too: a changed sequence number is refused
    hdr = bytearray(env)
    hdr[8] ^= 1
    assert zp.open_envelope(SEAL_KEYS["kr"], "trilink/us/picture/kr", bytes(hdr)) is None


def test_config_needs_a_key_per_nation(tmp_path):
    ports = free_ports(6)
    release = {"jp": ["kr"], "kr": [], "au": []}
    doc = _as_dict(None, tmp_path, ports, release)
    keys = write_seal_keys(tmp_path / "zk.json", names=("jp", "kr", "ops"))
    doc["zenoh"] = {"enabled": True, "key_file": str(keys)}
    with pytest.raises(edge_config.ConfigError, match=r"test.toml: zenoh.key_file: .*no key named 'au'"):
        edge_config.from_dict(doc, "test.toml", str(tmp_path))
    doc["zenoh"] = {"enabled": True}
    with pytest.raises(edge_config.ConfigError, match=r"test.toml: zenoh.key_file: missing"):
        edge_config.from_dict(doc, "test.toml", str(tmp_path))
    doc["zenoh"] = {"enabled": True, "relay": "us/kr", "key_file": str(keys)}
    with pytest.raises(edge_config.ConfigError, match=r"test.toml: zenoh.relay: "):
        edge_config.from_dict(doc, "test.toml", str(tmp_path))
    # the relay's key-file rules hold for the seal keys: private, and no test key outside tests
    doc["zenoh"] = {"enabled": True, "key_file": str(write_seal_keys(tmp_path / "zk2.json"))}
    doc["relay"] = dict(doc["relay"], allow_test_keys=False)
    with pytest.raises(edge_config.ConfigError, match=r"zk2.json: key 100 is a test key"):
        edge_config.from_dict(doc, "test.toml", str(tmp_path))
    doc["relay"]["allow_test_keys"] = True
    os.chmod(tmp_path / "zk2.json", 0o644)
    with pytest.raises(edge_config.ConfigError, match=r"test.toml: zenoh.key_file: .*mode 0644: readable by group"):
        edge_config.from_dict(doc, "test.toml", str(tmp_path))
    # off (the default): the relay runs as before, no publisher
    doc["zenoh"] = {"enabled": False}
    cfg = edge_config.from_dict(doc, "test.toml", str(tmp_path))
    assert Relay(cfg, links={}, keys=TEST_KEYS).publisher is None


def test_zenoh_config_without_the_package_is_one_line(tmp_path):
    """A [zenoh] config on an install without eclipse-zenoh: trilink-edge
    --check exits 2 with one line naming the file and the key."""
    import subprocess
    import sys
    from edge_rig import write_keys, relay_toml
    keys, kid = write_keys(tmp_path, {"jp": 1, "kr": 2})
    zk = write_seal_keys(tmp_path / "zk.json")
    path = relay_toml(tmp_path, {"jp": 1, "kr": 2}, kid, {"jp": ("udp", 1, 2), "kr": ("udp", 3, 4)},
                      {"jp": ["kr"]}, extra=f'[zenoh]\nenabled = true\nkey_file = "{zk}"\n')
    # zenoh made unimportable for this one process (sys.modules entry None)
    code = ("import sys; sys.modules['zenoh'] = None; from trilink_edge import cli; "
            f"sys.exit(cli.main(['--config', {str(path)!r}, '--check']))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "relay.toml: zenoh.enabled: needs the eclipse-zenoh package" in lines[0]


def test_watcher_resumes_after_a_relay_restart(tmp_path):
    """The relay stops and a new one starts on the same config and port: the
    watcher (connecting, as `trilink watch --connect` does) reconnects by
    itself and opens the new run's publications, whose sequence numbers
    start again at 1 (the replay rule is per run)."""
    ports = free_ports(6)
    zport = free_port(socket.SOCK_STREAM)
    cfg = with_zenoh(tmp_path, ports, zport, {"jp": ["kr"], "kr": ["jp"], "au": []})
    boards = make_boards(ports)
    w = watcher(zport, ["kr"])
    w.start()
    runs = []

    async def one_relay():
        links = {name: UdpLink(name, ("127.0.0.1", ports[i]), ("127.0.0.1", ports[3 + i]))
                 for i, name in enumerate(("jp", "kr", "au"))}
        for lk in links.values():
            await lk.open()
        relay = Relay(cfg, links=links, keys=TEST_KEYS)
        task = asyncio.ensure_future(relay.run())
        await asyncio.sleep(0.3)
        started = time.monotonic()
        run_id = relay.publisher.sinks[0].run
        # report until the watcher opened this run's publications (bounded)
        while run_id not in w.runs and time.monotonic() - started < 15.0:
            await report(boards, Missile(), 0.5)
        runs.append((run_id, started))
        await relay.stop()
        await asyncio.wait_for(task, 2.0)

    try:
        asyncio.run(one_relay())
        asyncio.run(one_relay())
    finally:
        w.close()
    (run1, _t1), (run2, t2) = runs
    assert run1 != run2
    assert run1 in w.runs and run2 in w.runs, (runs, w.runs)
    # the new run reached the watcher well within the reconnect bound
    assert w.runs[run2] - t2 < 15.0
    assert w.replayed == 0
