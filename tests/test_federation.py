"""Two hubs federated through Eclipse Zenoh: real Zenoh sessions in peer
mode on 127.0.0.1 (no router, multicast scouting off), two real relays
(in one process here: tests/test_federation_real.py runs two trilink-edge
processes with real boards) over real UDP sockets with board stand-ins.

The US hub serves JP and KR, the AU hub serves AU. The US policy lets
Korea's data reach Australia, not Japan's; Australia's reaches Korea only.

What could fail: a KR report never reaching the AU board (no forwarding,
wrong key expression, the envelope not opening, the remote node not a
source of the AU destination), JP's data reaching AU (the sending hub's
policy not applied), AU's reaching JP (the receiving hub's policy not
applied), a report forwarded back to the hub it came from (echo), a fused
covariance smaller than a proper covariance intersection of its sources
(double counting), a forged, replayed or reflected frame changing a
picture, a restarted hub not rejoining by itself within 5 s."""
from __future__ import annotations

import asyncio
import os
import time

import numpy as np
import pytest

zenoh = pytest.importorskip("zenoh", reason="the zenoh extra (eclipse-zenoh) is not installed")
pytest.importorskip("cryptography")

from edge_boards import (AU_ORIGIN, JP_ORIGIN, KR_ORIGIN, NAMES, TEST_KEYS, BoardStandIn, Missile,  # noqa: E402
                         UdpBoard, enu_basis, fly)
from test_relay_integration import NATIONS, free_ports  # noqa: E402
from test_zenoh_publish import tcp_port  # noqa: E402
from trilink.keygen import write_private  # noqa: E402
from trilink_board import codec  # noqa: E402
from trilink_edge import config as edge_config  # noqa: E402
from trilink_edge import federation as fd  # noqa: E402
from trilink_edge.links import UdpLink  # noqa: E402
from trilink_edge.relay import Relay  # noqa: E402

PAIR_KEY = b"TEST-ONLY-federation-au+us-00000"
SIGMA = {1: 80.0, 2: 50.0, 3: 60.0}       # each board's position sigma (m)
Q_HALF = 2.0 ** -0.125                     # half a step of the codec's variance code (a quarter octave)


def write_fed_keys(path, key=PAIR_KEY, name="au+us"):
    doc = {"format": "trilink-keys/1", "relay": 0, "keys": [{"key_id": 1, "node": 1, "name": name, "key": key.hex()}]}
    write_private(str(path), doc, force=True)
    return str(path)


def hub_configs(tmp_path, ports, zport, au_connect=()):
    """(US config, AU config): US serves jp, kr on ports[0:2] (boards ports[3:5]),
    AU serves au on ports[2] (board ports[5]); US listens on zport, AU connects."""
    keyf = write_fed_keys(tmp_path / "fed-keys.json")
    relay = {"node": 0, "stats": "off", "allow_test_keys": True}
    us = {
        "relay": dict(relay, state_file=str(tmp_path / "us-state.json")),
        "nodes": {"jp": {"id": 1, "key_id": 1, "nation_file": os.path.join(NATIONS, "jp.json")},
                  "kr": {"id": 2, "key_id": 2, "nation_file": os.path.join(NATIONS, "kr.json")}},
        "links": {n: {"kind": "udp", "bind": f"127.0.0.1:{ports[i]}", "peer": f"127.0.0.1:{ports[3 + i]}",
                      "boards": [n]} for i, n in enumerate(("jp", "kr"))},
        "release": {"jp": ["kr"], "kr": ["jp", "au"], "au": ["kr"]},
        "federation": {"enabled": True, "hub": "us", "key_file": keyf, "listen": [f"tcp/127.0.0.1:{zport}"],
                       "heartbeat_s": 0.25,
                       "peers": {"au": {"serves": ["au"], "nodes": {"au": 3}}}},
    }
    au = {
        "relay": dict(relay, state_file=str(tmp_path / "au-state.json")),
        "nodes": {"au": {"id": 3, "key_id": 3, "nation": "au",
                         "origin": {"lat": AU_ORIGIN[0], "lon": AU_ORIGIN[1], "alt_m": 0.0}}},
        "links": {"au": {"kind": "udp", "bind": f"127.0.0.1:{ports[2]}", "peer": f"127.0.0.1:{ports[5]}",
                         "boards": ["au"]}},
        # AU's own policy would let JP's data in: the US hub's withholds it
        "release": {"au": ["jp", "kr"], "kr": ["au"], "jp": ["au"]},
        "federation": {"enabled": True, "hub": "au", "key_file": keyf, "connect": [f"tcp/127.0.0.1:{zport}", *au_connect],
                       "heartbeat_s": 0.25,
                       "peers": {"us": {"serves": ["jp", "kr"], "nodes": {"jp": 1, "kr": 2}}}},
    }
    return (edge_config.from_dict(us, "us.toml", str(tmp_path)), edge_config.from_dict(au, "au.toml", str(tmp_path)))


def boards_for(ports):
    out = {}
    for n, o in ((1, JP_ORIGIN), (2, KR_ORIGIN), (3, AU_ORIGIN)):
        sb = BoardStandIn(n, NAMES[n], n, TEST_KEYS[n], o, sigma_m=SIGMA[n])
        out[n] = UdpBoard(sb, ports[2 + n], ports[n - 1])
    return out


def links_us(ports):
    return {n: UdpLink(n, ("127.0.0.1", ports[i]), ("127.0.0.1", ports[3 + i])) for i, n in enumerate(("jp", "kr"))}


def links_au(ports):
    return {"au": UdpLink("au", ("127.0.0.1", ports[2]), ("127.0.0.1", ports[5]))}


async def start(cfg, links, keys):
    for lk in links.values():
        await lk.open()
    relay = Relay(cfg, links=links, keys=keys)
    task = asyncio.ensure_future(relay.run())
    return relay, task


async def drive(boards, missile, seconds, senders, t0=300.0, period=0.2, until=None):
    return await fly(boards, missile, seconds, senders, t0, period, poll_s=0.005, until=until)


def us_keys():
    return {1: TEST_KEYS[1], 2: TEST_KEYS[2]}


def au_keys():
    return {3: TEST_KEYS[3]}


def ci_min_trace(Ps):
    """min over omega of trace((sum w_i P_i^-1)^-1), two sources (a fine grid)."""
    A, B = (np.linalg.inv(P) for P in Ps)
    return min(np.trace(np.linalg.inv(w * A + (1 - w) * B)) for w in np.linspace(0.0, 1.0, 2001))


def source_cov(node, origin_to):
    """A stand-in board's report covariance (its own ENU) in the ENU frame of ``origin_to``."""
    P = np.diag([SIGMA[node] ** 2] * 3 + [25.0] * 3)
    o = {1: JP_ORIGIN, 2: KR_ORIGIN, 3: AU_ORIGIN}[node]
    R = enu_basis(origin_to[0], origin_to[1]) @ enu_basis(o[0], o[1]).T
    T = np.zeros((6, 6))
    T[:3, :3] = R
    T[3:, 3:] = R
    return T @ P @ T.T


@pytest.fixture(scope="module")
def federated(tmp_path_factory):
    """JP, KR and AU report one missile for 4 s through two federated hubs."""
    tmp = tmp_path_factory.mktemp("fed")
    ports = free_ports(6)
    zport = tcp_port()
    cfg_us, cfg_au = hub_configs(tmp, ports, zport)
    boards = boards_for(ports)

    async def main():
        us, t_us = await start(cfg_us, links_us(ports), us_keys())
        au, t_au = await start(cfg_au, links_au(ports), au_keys())
        await asyncio.sleep(0.8)            # the Zenoh sessions have met
        await drive(boards, Missile(), 4.0, senders=(1, 2, 3))
        await asyncio.sleep(0.4)
        out = {"us": us.stats(), "au": au.stats(),
               "us_picture": set(us.pipeline.report_rx), "au_picture": set(au.pipeline.report_rx)}
        await us.stop()
        await au.stop()
        await asyncio.wait_for(asyncio.gather(t_us, t_au), 3.0)
        return out

    out = asyncio.run(main())
    out["boards"] = boards
    return out


def kr_only_config(tmp, ports, zport):
    return hub_configs(tmp, ports, zport)


def test_kr_track_reaches_the_au_board_through_both_hubs(federated):
    au_board = federated["boards"][3].sb
    recs = [rec for _rt, rec in au_board.pictures if rec.sources]
    kr = [rec for rec in recs if any(nd == 2 for nd, _rid in rec.sources)]
    assert kr, f"the AU board got no record carrying a KR report ({len(recs)} records)"
    # the KR reports it got are reports the KR board sent
    sent = set(federated["boards"][2].sb.sent_reports)
    assert {rid for rec in kr for nd, rid in rec.sources if nd == 2} <= sent
    fed_au = federated["au"]["federation"]
    assert fed_au["peers"]["us"]["up"] and fed_au["rx_records"] > 0
    assert all(fed_au[k] == 0 for k in fd.REJECTS), fed_au


def test_release_policy_of_both_hubs_holds_on_the_decoded_board_streams(federated):
    b = federated["boards"]
    # US policy: JP's data never leaves for AU, whatever AU's policy allows
    au_srcs = b[3].sb.source_nodes()
    assert 2 in au_srcs and 1 not in au_srcs, au_srcs
    assert all(not (rec.nations >> 1) & 1 for _rt, rec in b[3].sb.pictures if rec.sources)
    # ... and the AU hub never held a JP report at all
    assert not any(node == 1 for node, _tid in federated["au_picture"])
    # US policy for the remote AU node: Korea sees it, Japan does not
    assert 3 in b[2].sb.source_nodes()
    assert 3 not in b[1].sb.source_nodes()
    fed_us = federated["us"]["federation"]
    assert fed_us["withheld"] > 0          # JP's records, every one of them


def test_nothing_is_forwarded_back_and_nothing_is_counted_twice(federated):
    b = federated["boards"]
    fed_us, fed_au = federated["us"]["federation"], federated["au"]["federation"]
    # the AU hub forwarded exactly its own board's records: none of the KR ones it got from the US hub
    au_records = len(b[3].sb.sent_reports)
    assert fed_au["tx_records"] <= au_records and fed_us["rx_records"] == fed_au["tx_records"]
    assert fed_us["rx_records"] > 0 and fed_us["foreign_node"] == 0
    assert {node for node, _ in federated["us_picture"]} == {1, 2, 3}
    # one missile: one fused track at AU, each source node at most once on every record
    au_recs = [rec for _rt, rec in b[3].sb.pictures if rec.sources]
    assert len({rec.tid for rec in au_recs}) == 1, {rec.tid for rec in au_recs}
    # fused KR + AU: never tighter than a covariance intersection of the two reports
    bound = ci_min_trace([source_cov(2, AU_ORIGIN), source_cov(3, AU_ORIGIN)])
    naive = np.trace(np.linalg.inv(sum(np.linalg.inv(source_cov(n, AU_ORIGIN)) for n in (2, 3))))
    assert naive < 0.75 * Q_HALF * bound      # the check below tells information summed twice from CI
    fused = [rec for rec in au_recs if rec.nations == (1 << 2) | (1 << 3)]
    assert fused, "no KR+AU fused record at the AU board"
    for rec in fused:
        P = np.array(codec.cov_from_codes(rec.sig, rec.cor), dtype=float).reshape(6, 6)
        assert np.trace(P) >= Q_HALF * bound, (np.trace(P), bound)


def test_forged_replayed_and_reflected_frames_are_refused_and_counted(tmp_path):
    """A rogue Zenoh peer on the US hub's endpoint records every federation
    frame, then, with the boards silent, replays AU's, reflects the US
    hub's own back at it, sends garbage, a frame sealed with another key,
    one under an unknown hub's name, and (holding the pair key, as a
    compromised AU hub would) a frame naming a JP board it may not speak
    for. The US hub's picture does not change and each is counted."""
    ports = free_ports(6)
    zport, rport = tcp_port(), tcp_port()
    # the rogue listens where the AU hub also connects (a tap on its network), and connects to the US hub
    cfg_us, cfg_au = hub_configs(tmp_path, ports, zport, au_connect=[f"tcp/127.0.0.1:{rport}"])
    boards = boards_for(ports)
    seen = []

    async def main():
        us, t_us = await start(cfg_us, links_us(ports), us_keys())
        au, t_au = await start(cfg_au, links_au(ports), au_keys())
        rogue = zenoh.open(fd_zconf(zport, rport))
        rogue.declare_subscriber("trilink/fed/**", lambda s: seen.append((str(s.key_expr), bytes(s.payload))))
        await asyncio.sleep(0.8)
        await drive(boards, Missile(), 2.0, senders=(2, 3))
        await au.stop()                                   # AU's real frames stop too
        await asyncio.wait_for(t_au, 3.0)
        await asyncio.sleep(0.3)
        before = (dict(vars(us.pipeline.stats)), us.pipeline.picture.stats(), dict(us.pipeline.report_rx))
        c0 = dict(us.federation.counters)
        from_au = [p for k, p in seen if k == "trilink/fed/au/us"]
        from_us = [p for k, p in seen if k == "trilink/fed/us/au"]
        assert from_au and from_us
        for p in from_au:                                  # replays
            rogue.put("trilink/fed/au/us", p)
        for p in from_us[:5]:                              # reflections
            rogue.put("trilink/fed/au/us", p)
        rogue.put("trilink/fed/au/us", b"\x00" * 80)       # garbage
        other = fd._aead(fd.derive_key(b"TEST-ONLY-some-other-key-0000000", "au", "us"))
        recs = fd.pack_records(3, [7], [1], np.array([time.time_ns() // 1000]), np.ones((1, 6)) * 6.4e6,
                               np.eye(6)[None] * 100.0, [0])
        body = bytes([1]) + recs.tobytes()
        rogue.put("trilink/fed/au/us", fd.seal(other, "trilink/fed/au/us", fd.KIND_REPORTS,
                                               time.time_ns() // 1000, body))
        pair = fd._aead(fd.derive_key(PAIR_KEY, "au", "us"))
        rogue.put("trilink/fed/xx/us", fd.seal(pair, "trilink/fed/xx/us", fd.KIND_REPORTS,
                                               time.time_ns() // 1000, body))
        jp = fd.pack_records(1, [7], [1], np.array([time.time_ns() // 1000]), np.ones((1, 6)) * 6.4e6,
                             np.eye(6)[None] * 100.0, [0])
        rogue.put("trilink/fed/au/us", fd.seal(pair, "trilink/fed/au/us", fd.KIND_REPORTS,
                                               time.time_ns() // 1000 + 1, bytes([1]) + jp.tobytes()))
        old = fd.seal(pair, "trilink/fed/au/us", fd.KIND_REPORTS, time.time_ns() // 1000 - 10_000_000, body)
        await asyncio.sleep(0.3)
        rogue.put("trilink/fed/au/us", old)                # authentic but 10 s old: refused (behind or skewed)
        await asyncio.sleep(0.7)
        after = (dict(vars(us.pipeline.stats)), us.pipeline.picture.stats(), dict(us.pipeline.report_rx))
        c1 = dict(us.federation.counters)
        rogue.close()
        await us.stop()
        await asyncio.wait_for(t_us, 3.0)
        return before, after, c0, c1, len(from_au)

    before, after, c0, c1, n_au = asyncio.run(main())
    d = {k: c1[k] - c0[k] for k in fd.REJECTS}
    assert d["replay"] + d["skew"] == n_au + 1, d          # every replayed frame, and the stale one
    assert d["auth_fail"] == 5 + 1 + 1, d                   # 5 reflections, garbage, the other key
    assert d["unknown_peer"] == 1 and d["foreign_node"] == 1, d
    assert c1["rx_records"] == c0["rx_records"]
    for k in ("records_in", "records_refused", "reports_in"):
        assert after[0][k] == before[0][k], k
    assert after[2] == before[2]


def fd_zconf(zport, rport):
    from trilink_edge.zenoh_pub import zenoh_config
    return zenoh_config(connect=[f"tcp/127.0.0.1:{zport}"], listen=[f"tcp/127.0.0.1:{rport}"])


def test_restarted_hub_rejoins_by_itself_within_5_s(tmp_path):
    """The US hub (the one the AU hub connects to) stops and starts again,
    a new relay on the same config: with nothing done at the AU hub, it
    takes the new hub's frames and its board gets KR's reports again
    within 5 s of the restart; nothing forbidden reaches it meanwhile."""
    ports = free_ports(6)
    zport = tcp_port()
    cfg_us, cfg_au = hub_configs(tmp_path, ports, zport)
    boards = boards_for(ports)
    missile = Missile()

    async def main():
        us, t_us = await start(cfg_us, links_us(ports), us_keys())
        au, t_au = await start(cfg_au, links_au(ports), au_keys())
        await asyncio.sleep(0.8)
        await drive(boards, missile, 1.5, senders=(1, 2))
        assert au.federation.peer_state["us"]["rx_records"] > 0
        await us.stop()
        await asyncio.wait_for(t_us, 3.0)
        await asyncio.sleep(1.0)
        joins = au.federation.peer_state["us"]["joins"]
        n_before = len(boards[3].sb.pictures)
        t0 = time.monotonic()
        us2, t_us2 = await start(cfg_us, links_us(ports), us_keys())
        au_fed = au.federation
        sent = boards[2].sb

        def resumed():
            new = boards[3].sb.pictures[n_before:]
            return any(nd == 2 and rid in sent.sent_reports for _rt, rec in new for nd, rid in rec.sources)
        took = await drive(boards, missile, 8.0, senders=(1, 2), t0=310.0, until=resumed)
        took = None if took is None else time.monotonic() - t0
        joined = au_fed.peer_state["us"]["joins"] > joins
        await us2.stop()
        await au.stop()
        await asyncio.wait_for(asyncio.gather(t_us2, t_au), 3.0)
        return took, joined

    took, joined = asyncio.run(main())
    assert took is not None and took < 5.0, took
    assert joined
    assert 1 not in boards[3].sb.source_nodes()
