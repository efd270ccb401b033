"""The relay process (`trilink-edge --config`) with REAL board processes:
JP under CPython over a pty pair (the null-modem emulator, 115200 baud),
KR under the MicroPython unix port over UDP loopback, AU under CPython over
UDP. The release policy lets JP's data reach KR only (never AU). Every
assertion is on frames decoded from the relay's own capture with the keys
and the board's reference codec: what each board was actually sent."""
from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

from edge_rig import board_argv, decode_tx, exe, relay_now_us, relay_toml, stop_relay, udp_port, write_keys
from trilink_board import codec, messages, wire
from trilink_board.geo import LocalFrame
from trilink_edge.recorder import REFUSED_SUFFIX, capture_files, iter_capture

NODES = {"jp": 1, "kr": 2, "au": 3}
START_S = 95.0      # scenario time of the window: the IRBM is seen by JP (from 88 s) and KR (37-317 s)
WINDOW_S = 7.0
LEAD_S = 3.0        # spawn -> window start: boot and time sync (MicroPython included)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One run of relay + three boards; returns what the tests inspect."""
    from trilink.nullmodem import NullModem
    if shutil.which("micropython") is None:
        pytest.fail("the micropython unix port is required (see README)")
    tmp = tmp_path_factory.mktemp("real")
    keys, kid = write_keys(tmp, NODES)
    ports = {n: (udp_port(), udp_port()) for n in ("kr", "au")}   # (relay, board)
    with NullModem(baud=115200) as nm:
        cfg = relay_toml(tmp, NODES, kid, {"jp": ("serial", nm.b_path), "kr": ("udp",) + ports["kr"],
                                           "au": ("udp",) + ports["au"]},
                         {"jp": ["kr"], "kr": ["jp", "au"], "au": ["jp", "kr"]})
        relay = subprocess.Popen([exe("trilink-edge"), "--config", str(cfg)], stderr=subprocess.PIPE, text=True)
        links = {"jp": f"tty:{nm.a_path}@115200",
                 "kr": f"udp:127.0.0.1:{ports['kr'][1]}:127.0.0.1:{ports['kr'][0]}",
                 "au": f"udp:127.0.0.1:{ports['au'][1]}:127.0.0.1:{ports['au'][0]}"}
        runtimes = {"jp": "cpython", "kr": "micropython", "au": "cpython"}
        boards = {}
        epoch_us = relay_now_us(LEAD_S)
        try:
            for n in NODES:
                boards[n] = subprocess.Popen(board_argv(tmp, n, links[n], START_S, WINDOW_S, epoch_us, runtimes[n]),
                                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            outs = {n: p.communicate(timeout=LEAD_S + WINDOW_S + 30) for n, p in boards.items()}
            time.sleep(0.3)
            rc, stop_s, err = stop_relay(relay)
        finally:
            for p in list(boards.values()) + [relay]:
                if p.poll() is None:
                    p.kill()
    recs = [r for path in capture_files(str(tmp / "cap" / "relay.pcapng")) for r in iter_capture(path)]
    return {"recs": recs, "keys": keys, "kid": kid, "outs": outs, "codes": {n: p.returncode for n, p in boards.items()},
            "relay_rc": rc, "stop_s": stop_s, "relay_err": err, "path": str(tmp / "cap" / "relay.pcapng"),
            "epoch_us": epoch_us}


def _decoded(run, link):
    node = NODES[link]
    frames, records = decode_tx(run["recs"], link, node, run["keys"][node], run["kid"][node])
    return [f for _r, f in frames], [(rt, rec) for _r, rt, rec in records]


def test_boards_ran_and_relay_stopped_cleanly(run):
    for n, code in run["codes"].items():
        assert code == 0, (n, run["outs"][n])
    assert run["relay_rc"] == 0 and run["stop_s"] < 1.0, run["relay_err"][-2000:]
    assert "Traceback" not in run["relay_err"]


def test_tracks_cross_only_through_the_relay_as_released(run):
    _f, kr = _decoded(run, "kr")
    _f, jp = _decoded(run, "jp")
    _f, au = _decoded(run, "au")
    # JP's reports reach KR, KR's reach JP: the fused records name them as sources.
    assert any(nd == NODES["jp"] for _rt, rec in kr for nd, _rid in rec.sources), "no JP report reached KR"
    assert any(nd == NODES["kr"] for _rt, rec in jp for nd, _rid in rec.sources), "no KR report reached JP"
    # AU gets fused updates (KR's and its own data), but never one carrying JP information.
    au_updates = [rec for rt, rec in au if rt != codec.DROP]
    assert au_updates, "AU received no fused update"
    for rec in au_updates:
        assert all(nd != NODES["jp"] for nd, _rid in rec.sources)
        assert not rec.nations & (1 << NODES["jp"])
    # Boards never talk to each other: every frame in the capture is to or from the relay.
    for r in run["recs"]:
        hdr = wire.parse(r.data)
        assert (hdr.src == 0) == (r.direction == "tx") and (hdr.dst in (0, 255)) == (r.direction == "rx")


def test_stats_frames_sent_and_delivery_frames_received(run):
    for link in NODES:
        frames, _ = _decoded(run, link)
        stats = [f for f in frames if f.mtype == wire.STATS]
        assert stats, f"no STATS frame to {link}"
    rx_types = {wire.parse(r.data).mtype for r in run["recs"] if r.direction == "rx"}
    assert wire.DELIVERY in rx_types and wire.TRACK_REPORT in rx_types


def test_capture_frame_count_in_tshark(run):
    tshark = shutil.which("tshark")
    if tshark is None:
        pytest.fail("tshark is required (.ci/run installs it)")
    def rows_of(path):
        out = subprocess.run([tshark, "-r", path, "-T", "fields", "-e", "frame.interface_name",
                              "-e", "frame.p2p_dir"], capture_output=True, text=True, check=True).stdout.split("\n")
        return [ln.split("\t") for ln in out if ln.strip()]
    rows = rows_of(run["path"])
    assert len(rows) == len(run["recs"])
    # Frames the relay refused (e.g. a board's frames before it answered the
    # relay's challenge) are in their own capture beside it; the links count them in.
    refused_path = run["path"] + REFUSED_SUFFIX
    refused = [r for p in (capture_files(refused_path) if os.path.exists(refused_path) else []) for r in rows_of(p)]
    # The relay's own counters: its final log line at stop (links' frames in/out).
    import re
    line = [ln for ln in run["relay_err"].splitlines() if "links: " in ln][-1]
    for link in NODES:
        m = re.search(rf"\b{link} (?:up|DOWN) in (\d+)/\d+B out (\d+)/", line)
        assert m, line
        frames_in, frames_out = int(m.group(1)), int(m.group(2))
        accepted = sum(1 for name, d in rows if name == link and d == "1")
        assert accepted + sum(1 for name, _d in refused if name == link) == frames_in and accepted > 0
        assert sum(1 for name, d in rows if name == link and d == "0") == frames_out > 0


def test_launch_alert_to_every_board_once_acknowledged_and_shown(run):
    # The IRBM is new to the relay at the window's start (in boost): each board whose
    # releasable picture holds it (all three: AU through KR's data) gets one launch
    # alert (WARNING kind 3) naming its own nation, within 5 s of the first track
    # report, with the launch estimated near Sunan (39.20N 125.67E) at t = 10 s; the
    # board acknowledges it and prints it once (MicroPython's KR included).
    first_report_ns = min(r.t_ns for r in run["recs"] if r.direction == "rx"
                          and wire.parse(r.data).mtype == wire.TRACK_REPORT)
    for link, node in NODES.items():
        frames, _ = decode_tx(run["recs"], link, node, run["keys"][node], run["kid"][node])
        alerts = [(r, messages.decode(wire.WARNING, f.payload)) for r, f in frames if f.mtype == wire.WARNING]
        launch = {m["warning_id"]: (r, m) for r, m in alerts if m["kind"] == messages.KIND_LAUNCH}
        assert len(launch) == 1, (link, [m for _r, m in alerts])
        (r, m), = launch.values()
        assert m["nation"] == node and m["status"] == messages.STATUS_ACTIVE
        assert (r.t_ns - first_report_ns) / 1e9 < 5.0
        t_launch = START_S + (m["impact_us"] - run["epoch_us"]) / 1e6
        assert abs(t_launch - 10.0) < 10.0, t_launch
        e, n, _u = LocalFrame(39.20, 125.67, 0.0).geodetic_to_enu(m["lat_e7"] * 1e-7, m["lon_e7"] * 1e-7, 0.0)
        assert (e * e + n * n) ** 0.5 < 30e3, (e, n)
        assert 60.0 < m["azimuth_cdeg"] / 100.0 < 95.0                 # flown east-north-east (77.2 deg)
        out = run["outs"][link][0]
        shown = [ln for ln in out.splitlines() if (": WARNING %d " % m["warning_id"]) in ln]
        assert len(shown) == 1 and " LAUNCH launch " in shown[0], out[-2000:]
    acked = {struct_wid(r.data) for r in run["recs"] if r.direction == "rx"
             and wire.parse(r.data).mtype == wire.WARNING_ACK}
    assert acked, "no WARNING_ACK reached the relay"


def struct_wid(raw: bytes) -> int:
    f = wire.parse(raw)
    return messages.decode(wire.WARNING_ACK, bytes(f.payload))["warning_id"]
