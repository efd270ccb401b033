"""ASTERIX CAT062 export, checked with an independent decoder (libasterix,
edition 1.21): every exported record decodes, and its position, velocity,
track number, time, altitude and accuracies match the released picture
within the encoding's resolution. The picture comes from real codec
payloads (the C codec) decoded as the destination's board decodes them,
and, end to end, from a relay over UDP whose [asterix] section sends the
export to a UDP port."""
from __future__ import annotations

import asyncio
import math
import socket

import numpy as np
import pytest

ast_base = pytest.importorskip("asterix.base", reason="libasterix (the test extra) is not installed")
import asterix.generated as ast_gen  # noqa: E402

from trilink_edge import asterix as tx  # noqa: E402
from trilink_edge.released import ReleasedPicture  # noqa: E402
from trilink_native import binding  # noqa: E402

CAT062 = ast_gen.Cat_062_1_21
KR_ORIGIN = (36.9, 127.4, 0.0)


def decode_all(data: bytes):
    """Every CAT062 record in a byte string of datablocks (libasterix)."""
    blocks = ast_base.RawDatablock.parse(ast_base.Bits.from_bytes(data))
    assert not isinstance(blocks, ValueError), blocks
    out = []
    for db in blocks:
        assert db.get_category() == 62
        recs = CAT062.cv_uap.parse(db.get_raw_records())
        assert not isinstance(recs, ValueError), recs
        out.extend(recs)
    return out


def q(item, sub, unit):
    return item.variation.get_item(sub).variation.content.as_quantity(unit)


def fields(r):
    """What the test compares, read through libasterix only."""
    d = {"tid": r.get_item("040").variation.as_uint(),
         "tod": r.get_item("070").variation.content.as_quantity("s"),
         "lat": q(r.get_item("105"), "LAT", "°"), "lon": q(r.get_item("105"), "LON", "°"),
         "vx": q(r.get_item("185"), "VX", "m/s"), "vy": q(r.get_item("185"), "VY", "m/s"),
         "sac": r.get_item("010").variation.get_item("SAC").variation.as_uint(),
         "sic": r.get_item("010").variation.get_item("SIC").variation.as_uint()}
    i130 = r.get_item("130")
    d["alt_ft"] = None if i130 is None else i130.variation.content.as_quantity("ft")
    i220 = r.get_item("220")
    d["roc_ftmin"] = None if i220 is None else i220.variation.content.as_quantity("ft/min")
    acc = r.get_item("500").variation
    d["apc"] = (q(acc.get_item("APC"), "X", "m"), q(acc.get_item("APC"), "Y", "m"))
    d["atv"] = (q(acc.get_item("ATV"), "X", "m/s"), q(acc.get_item("ATV"), "Y", "m/s"))
    st = r.get_item("080").variation
    d["status"] = {n: st.get_item(n).as_uint() for n in ("MON", "MRH", "SRC", "CNF")}
    mv = r.get_item("200").variation
    d["movement"] = {n: mv.get_item(n).as_uint() for n in ("LONG", "VERT")}
    d["sp"] = tx.decode_sp(r.get_item("SP").variation.get_bytes())   # libasterix strips the length byte
    return d


def picture_payload(states):
    """A PICTURE payload (C codec, KEY records with covariance) of ENU states."""
    n = len(states)
    b = binding.TrackBatch.empty(n)
    for i, (tid, x, sig) in enumerate(states):
        b.tid[i] = tid
        b.t_us[i] = 1_000_000 + 1000 * i
        b.x[i] = x
        b.P[i] = np.diag([sig[0] ** 2] * 3 + [sig[1] ** 2] * 3)
        b.nations[i] = 0b110 if i % 2 else 0b100
        b.flags[i] = 0x10 if i == 0 else 0x04
        b.rtype[i] = binding.REC_KEY
    return binding.codec_encode(binding.CODEC_PICTURE, b)


def check_record(f, rec):
    """One decoded record against the picture record it encodes."""
    assert f["tid"] == rec["tid"] & 0xFFFF
    assert abs(f["lat"] - rec["lat"]) <= tx.LATLON_LSB / 2 + 1e-9
    assert abs(f["lon"] - rec["lon"]) <= tx.LATLON_LSB / 2 + 1e-9
    ve, vn, vu = rec["vel_local"]
    assert abs(f["vx"] - ve) <= tx.VEL_LSB / 2 + 1e-9 and abs(f["vy"] - vn) <= tx.VEL_LSB / 2 + 1e-9
    h_ft = rec["h"] / tx.FT
    if abs(h_ft / tx.ALT_LSB_FT) <= 32767:
        assert f["alt_ft"] is not None and abs(f["alt_ft"] - h_ft) <= tx.ALT_LSB_FT / 2 + 1e-6
    else:
        assert f["alt_ft"] is None      # out of I062/130's range: omitted, never wrapped
    roc = vu / tx.FT * 60.0
    if abs(roc / tx.ROC_LSB_FTMIN) <= 32767:
        assert f["roc_ftmin"] is not None and abs(f["roc_ftmin"] - roc) <= tx.ROC_LSB_FTMIN / 2 + 1e-6
    else:
        assert f["roc_ftmin"] is None
    # I062/080: one nation = monosensor, tentative = CNF; I062/200 vertical mode from the climb rate
    assert f["status"]["MON"] == (1 if len(rec["nations"]) <= 1 else 0)
    assert f["status"]["CNF"] == (1 if rec["flags"] & 0x10 else 0)
    assert (f["status"]["MRH"], f["status"]["SRC"]) == (1, 2)
    assert f["movement"]["VERT"] == (1 if vu > 1.0 else 2 if vu < -1.0 else 0)
    assert f["movement"]["LONG"] == (1 if rec["flags"] & 0x02 else 0)
    # SP: the true height and vertical speed in every phase of flight
    assert abs(f["sp"]["h_m"] - rec["h"]) <= 0.05 + 1e-6 and abs(f["sp"]["vu_mps"] - vu) <= 0.005 + 1e-6
    se, sn = rec["sigma_local"][:2]
    for got, want in zip(f["apc"], (se, sn)):
        assert got == pytest.approx(min(want, 65535 * 0.5), abs=0.25 + 1e-9)
    for got, want in zip(f["atv"], rec["sigma_local"][3:5]):
        assert got == pytest.approx(min(want, 255 * 0.25), abs=0.125 + 1e-9)


def test_every_record_decodes_and_matches_the_picture(tmp_path):
    # tracks near Korea at several heights, speeds and accuracies: low and
    # climbing, at an IRBM apogee (beyond I062/130), descending fast, a
    # covariance beyond what ATV can carry (saturated).
    states = [(1, [10e3, 20e3, 5e3, 300.0, -200.0, 150.0], (50.0, 2.0)),
              (2, [800e3, 300e3, 950e3, 2500.0, 1200.0, 5.0], (400.0, 30.0)),
              (70001, [-150e3, 400e3, 40e3, -900.0, -3000.0, -2500.0], (120.0, 8.0)),
              (4, [50e3, -60e3, 200e3, 10.0, 10.0, -10.0], (2000.0, 90.0))]
    view = ReleasedPicture(KR_ORIGIN)
    recs = view.apply(picture_payload(states))
    assert len(recs) == len(states)
    sink = tx.AsterixSink(2, None, str(tmp_path / "kr.ast"), sac=7, sic=9)
    sink.open()
    sink.tick(2_000_000, {2: view})
    sink.close()
    decoded = [fields(r) for r in decode_all((tmp_path / "kr.ast").read_bytes())]
    assert len(decoded) == len(states)
    by_tid = {r["tid"] & 0xFFFF: r for r in view.tracks.values()}
    for f in decoded:
        assert (f["sac"], f["sic"]) == (7, 9)
        check_record(f, by_tid[f["tid"]])
    # the apogee track was beyond I062/130 and the 62 km one inside it
    assert {f["tid"] for f in decoded if f["alt_ft"] is None} == {2, 4}


def test_datablocks_split_below_the_datagram_size():
    rec = {"tid": 5, "t_us": 0, "lat": 40.0, "lon": 130.0, "h": 1000.0, "vel_local": [1.0, 2.0, 3.0],
           "sigma_local": [1.0] * 6, "flags": 0, "nations": [1]}
    records = [tx.encode_record(dict(rec, tid=i), 0, 1, 10.0) for i in range(200)]
    blocks = tx.datablocks(records)
    assert len(blocks) > 1 and all(len(b) <= tx.MAX_BLOCK for b in blocks)
    assert [f["tid"] for b in blocks for f in map(fields, decode_all(b))] == list(range(200))


def test_relay_exports_the_released_picture_over_udp(tmp_path):
    """A relay (real UDP links, board stand-ins) with [asterix] node = kr
    sends CAT062 to a UDP port: every datagram decodes, and every record is
    one of the fused tracks KR's board decoded from its link, at a position
    and velocity within the encoding's resolution of one of that track's
    decoded states."""
    from edge_boards import TEST_KEYS, Missile
    from trilink_edge.links import UdpLink
    from test_relay_integration import make_boards
    from trilink.ports import free_ports
    from test_zenoh_publish import _as_dict, report
    from trilink_edge import config as edge_config
    from trilink_edge.relay import Relay
    from trilink_edge.released import record_of, enu_rotation
    from trilink_board import codec

    ports = free_ports(7)
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.setblocking(False)
    doc = _as_dict(None, tmp_path, ports, {"jp": ["kr"], "kr": ["jp"], "au": []})
    doc["asterix"] = {"enabled": True, "node": "kr", "udp": f"127.0.0.1:{rx.getsockname()[1]}", "period_s": 0.25,
                      "sac": 3, "sic": 4}
    cfg = edge_config.from_dict(doc, "test.toml", str(tmp_path))
    links = {name: UdpLink(name, ("127.0.0.1", ports[i]), ("127.0.0.1", ports[3 + i]))
             for i, name in enumerate(("jp", "kr", "au"))}
    boards = make_boards(ports)
    datagrams = []

    async def main():
        for lk in links.values():
            await lk.open()
        relay = Relay(cfg, links=links, keys=TEST_KEYS)
        task = asyncio.ensure_future(relay.run())
        await asyncio.sleep(0.2)

        async def drain():
            while True:
                await asyncio.sleep(0.02)
                while True:
                    try:
                        datagrams.append(rx.recv(65536))
                    except BlockingIOError:
                        break
        d = asyncio.ensure_future(drain())
        await report(boards, Missile(), 3.0)
        await asyncio.sleep(0.6)
        await relay.stop()
        await asyncio.wait_for(task, 2.0)
        d.cancel()

    try:
        asyncio.run(main())
    finally:
        rx.close()
    assert datagrams, "no ASTERIX datagram"
    decoded = [fields(r) for dg in datagrams for r in decode_all(dg)]
    assert decoded and all((f["sac"], f["sic"]) == (3, 4) for f in decoded)
    # KR's board's decoded states, per track, in geodetic form
    prec = codec.Precision()
    R = enu_rotation(KR_ORIGIN[0], KR_ORIGIN[1])
    p0 = binding.geodetic_to_ecef(np.array([KR_ORIGIN]))[0]
    seen = {}
    for _rt, rec in boards[2].sb.pictures:
        b = binding.TrackBatch.empty(1)
        b.tid[0] = rec.tid
        b.x[0] = rec.state(prec)
        b.P[0] = np.eye(6)
        seen.setdefault(rec.tid & 0xFFFF, []).append(record_of(b, 0, KR_ORIGIN, R, p0))
    assert seen
    for f in decoded:
        assert f["tid"] in seen, "a track KR's link never carried"
        best = min(seen[f["tid"]], key=lambda r: abs(r["lat"] - f["lat"]) + abs(r["lon"] - f["lon"]))
        assert abs(best["lat"] - f["lat"]) <= tx.LATLON_LSB / 2 + 1e-7
        assert abs(best["lon"] - f["lon"]) <= tx.LATLON_LSB / 2 + 1e-7
        assert abs(best["vel_local"][0] - f["vx"]) <= tx.VEL_LSB / 2 + 0.01
        assert abs(best["vel_local"][1] - f["vy"]) <= tx.VEL_LSB / 2 + 0.01
        assert math.isclose(best["h"], f["sp"]["h_m"], abs_tol=0.1)
