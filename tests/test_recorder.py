"""The relay's capture: pcapng that tshark opens with the recorded frame count,
links and directions recoverable, rotation by size, a cap on the files."""
from __future__ import annotations

import os
import shutil
import struct
import subprocess
import time
from typing import Any, List

import pytest

from trilink_edge.recorder import (LINK_PORT_BASE, RELAY_PORT, CaptureError, Recorder, capture_files,
                                   iter_capture)
from trilink_native import binding

KEY = b"TEST-ONLY" * 3 + b"TEST-"
TSHARK = shutil.which("tshark")
LUA = os.path.join(os.path.dirname(__file__), "..", "tools", "trilink.lua")


def frame(i: int, size: int = 20) -> bytes:
    return binding.pack_frame(KEY, 1, 1 + i % 3, 0, binding.MSG_STATS, i & 0xFFFF, i + 1,
                              bytes((i + k) & 0xFF for k in range(size)))


def tshark(*args: str) -> List[str]:
    assert TSHARK, "tshark is needed (.ci/run installs it: apt-get install tshark)"
    out = subprocess.run([TSHARK, *args], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return [line for line in out.stdout.splitlines() if line]


def test_tshark_opens_capture_with_recorded_count_links_and_directions(tmp_path: Any) -> None:
    path = str(tmp_path / "relay.pcapng")
    sent = []
    with Recorder(path, links=["jp", "kr"]) as rec:
        for i in range(300):
            link = ("jp", "kr", "au")[i % 3]
            direction = "rx" if i % 2 else "tx"
            f = frame(i, (0, 20, 600, 1024)[i % 4])
            rec.record(link, direction, f, time.monotonic_ns())
            sent.append((link, direction, f))
    assert rec.recorded == 300 and rec.dropped == 0
    assert sum(rec.counts.values()) == 300 and rec.counts[("au", "rx")] == 50
    rows = tshark("-r", path, "-T", "fields", "-e", "frame.interface_name", "-e", "frame.p2p_dir",
                  "-e", "udp.srcport", "-e", "udp.dstport", "-e", "udp.length", "-e", "ip.checksum.status",
                  "-o", "ip.check_checksum:TRUE")
    assert len(rows) == 300
    for (link, direction, f), row in zip(sent, rows):
        name, p2p, sport, dport, ulen, ipck = row.split("\t")
        assert name == link
        assert p2p == ("1" if direction == "rx" else "0")   # Wireshark: 1 received, 0 sent
        idx = ("jp", "kr", "au").index(link)
        ports = (LINK_PORT_BASE + idx, RELAY_PORT) if direction == "rx" else (RELAY_PORT, LINK_PORT_BASE + idx)
        assert (int(sport), int(dport)) == ports
        assert int(ulen) == 8 + len(f) and ipck == "1"     # 1 = good IPv4 header checksum
    back = list(iter_capture(path))
    assert [(r.link, r.direction, r.data) for r in back] == sent
    assert all(back[i].t_ns <= back[i + 1].t_ns for i in range(len(back) - 1))


def test_wall_and_monotonic_timestamps(tmp_path: Any) -> None:
    path = str(tmp_path / "t.pcapng")
    t_ns = time.monotonic_ns()
    with Recorder(path) as rec:
        rec.record("jp", "rx", frame(1), t_ns)
    (r,) = list(iter_capture(path))
    assert r.t_ns == t_ns                                   # the relay's timebase comes back exactly
    assert abs(r.wall_ns - time.time_ns()) < 5e9
    epoch = tshark("-r", path, "-T", "fields", "-e", "frame.time_epoch")[0]
    assert abs(float(epoch) - r.wall_ns / 1e9) < 1e-6


def test_lua_dissector_reads_header_fields(tmp_path: Any) -> None:
    path = str(tmp_path / "d.pcapng")
    with Recorder(path) as rec:
        rec.record("jp", "rx", frame(7, 33), time.monotonic_ns())
    rows = tshark("-X", f"lua_script:{LUA}", "-r", path, "-T", "fields", "-e", "trilink.src", "-e", "trilink.type",
                  "-e", "trilink.seq", "-e", "trilink.counter", "-e", "trilink.length")
    assert rows == ["2\t0x30\t7\t8\t33"]


def test_rotation_by_size_and_cap_on_files(tmp_path: Any) -> None:
    path = str(tmp_path / "cap" / "relay.pcapng")   # the folder is created
    n, size = 400, 200
    with Recorder(path, rotate_bytes=8192, max_files=3) as rec:
        for i in range(n):
            rec.record("jp" if i % 2 else "kr", "rx", frame(i, size), time.monotonic_ns())
    files = capture_files(path)
    assert [os.path.basename(f) for f in files] == ["relay.pcapng.2", "relay.pcapng.1", "relay.pcapng"]
    assert sorted(os.listdir(tmp_path / "cap")) == ["relay.pcapng", "relay.pcapng.1", "relay.pcapng.2"]
    for f in files:
        assert os.path.getsize(f) <= 8192
    assert rec.rotations > 3                        # older files were deleted, not kept
    per_file = [len(list(iter_capture(f))) for f in files]
    for f, k in zip(files, per_file):
        assert len(tshark("-r", f, "-T", "fields", "-e", "frame.number")) == k
    # The files kept are the newest records, consecutive and in order, each file self-contained.
    kept = [r.data for f in files for r in iter_capture(f)]
    assert kept == [frame(i, size) for i in range(n - len(kept), n)]
    assert rec.recorded == n


def test_link_first_seen_after_rotation_keeps_ids(tmp_path: Any) -> None:
    path = str(tmp_path / "r.pcapng")
    with Recorder(path, rotate_bytes=4096, max_files=5) as rec:
        for i in range(40):
            rec.record("jp", "tx", frame(i, 100), time.monotonic_ns())
        rec.record("late", "rx", frame(99), time.monotonic_ns())
    last = list(iter_capture(path))
    assert last[-1].link == "late" and all(r.link == "jp" for r in last[:-1])
    assert tshark("-r", path, "-T", "fields", "-e", "frame.interface_name")[-1] == "late"


def test_flush_makes_records_readable_while_open(tmp_path: Any) -> None:
    path = str(tmp_path / "f.pcapng")
    rec = Recorder(path)
    for i in range(10):
        rec.record("jp", "rx", frame(i), time.monotonic_ns())
    assert rec.flush(5.0)
    assert len(list(iter_capture(path))) == 10
    rec.record("jp", "rx", frame(11), time.monotonic_ns())
    rec.close()
    rec.close()                                      # idempotent
    assert len(list(iter_capture(path))) == 11
    rec.record("jp", "rx", frame(12), time.monotonic_ns())   # after close: counted, not written
    assert rec.dropped == 1


def test_bad_files_raise_capture_error(tmp_path: Any) -> None:
    p = tmp_path / "x.pcapng"
    p.write_bytes(b"not a capture at all")
    with pytest.raises(CaptureError):
        list(iter_capture(str(p)))
    good = str(tmp_path / "g.pcapng")
    with Recorder(good) as rec:
        rec.record("jp", "rx", frame(1), 0)
    data = open(good, "rb").read()
    p.write_bytes(data[:-10])                        # truncated mid-block
    with pytest.raises(CaptureError, match="truncated|bad block"):
        list(iter_capture(str(p)))
    with pytest.raises(ValueError):
        Recorder(str(tmp_path / "y"), rotate_bytes=100)


def test_writer_error_of_any_kind_stops_the_capture_loudly(tmp_path: Any, caplog: Any) -> None:
    import logging
    path = str(tmp_path / "relay.pcapng")
    rec = Recorder(path)
    with caplog.at_level(logging.ERROR, logger="trilink_edge.recorder"):
        rec.record("x" * 70000, "rx", frame(1), time.monotonic_ns())   # no pcapng option holds that name
        rec.flush(2.0)
        for i in range(5):
            rec.record("jp", "rx", frame(i), time.monotonic_ns())
        rec.close()
    assert rec.error and "writer failed" in rec.error
    assert rec.dropped == 6 and rec.recorded == 0            # counted, not queued for a dead writer
    assert len([r for r in caplog.records if "capture stopped" in r.getMessage()]) == 1
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert not os.path.exists(path + ".refused")           # made only for a refused frame
