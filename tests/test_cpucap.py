"""The relay's Pi-class CPU cap (host/cpucap.py, ``trilink bench --relay-cpu``):
bad caps are usage errors, a capped process really gets no more than its share
(a busy loop's CPU time over its wall time, read from /proc, and the cgroup's
own throttling count), and a capped bench reports its CPU and throttling.
Real cgroups; where this machine gives no writable cgroup the cap must say so
in one clear error, which is checked instead."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from trilink.bench import _parse_args, run_bench
from trilink.cpucap import CpuCap, CpuCapError


def _cap_or_none(pct: float, period_ms: float = 100.0):
    cap = CpuCap(pct, period_ms)
    try:
        cap.open()
    except CpuCapError as e:
        msg = str(e)
        assert msg.startswith("cannot cap the relay's CPU: ") and "root" in msg and "\n" not in msg
        return None
    return cap


def test_bad_caps_are_usage_errors(capsys):
    for bad in ("0", "-5", "x", "25/0.1", "25/5000", "25/y"):
        with pytest.raises(SystemExit) as e:
            _parse_args(["--relay-cpu", bad])
        assert e.value.code == 2, bad
    err = capsys.readouterr().err
    assert "--relay-cpu" in err and "PERCENT" in err
    assert _parse_args(["--relay-cpu", "25/10"]).relay_cpu == (25.0, 10.0)


def test_a_capped_busy_loop_gets_its_share_and_no_more():
    cap = _cap_or_none(20.0, 20.0)
    if cap is None:
        pytest.skip("no writable cgroup here; the error was checked")
    with cap:
        child = subprocess.Popen([sys.executable, "-c", "import time\nt = time.time() + 1.5\n"
                                  "while time.time() < t:\n    pass\n"])
        cap.add(child.pid)
        t0 = time.monotonic()
        time.sleep(1.2)
        with open(f"/proc/{child.pid}/stat") as fh:
            f = fh.read().rsplit(")", 1)[1].split()
        cpu = (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
        wall = time.monotonic() - t0
        child.wait(10)
        st = cap.stats()
    # 20% of a core over ~1.2 s is 0.24 s; scheduler ticks and the time before add() allow a little more.
    # A loaded machine gives the child less, never more, so this bound holds under any load.
    assert cpu <= 0.2 * wall + 0.15, (cpu, wall)
    assert st["throttled_periods"] >= 10 and st["throttled_s"] > 0.3, st
    assert cap.path is None and cap.stats() == st     # removed; the last reading kept


def test_capped_bench_reports_cpu_and_throttling():
    probe = _cap_or_none(25.0)
    if probe is None:
        pytest.skip("no writable cgroup here; the error was checked")
    probe.close()
    args = _parse_args(["--runtime", "cpython", "--start", "90", "--duration", "6", "--quiet", "--no-plot",
                        "--relay-cpu", "25"])
    rep = run_bench(args).report
    rc = rep["relay_cpu"]
    assert rc["cap"]["percent"] == 25.0 and rc["cap"]["period_ms"] == 100.0
    assert rc["cap"]["periods"] > 0 and rc["frames_in"] > 0 and 0 < rc["per_frame_ms"] < 50
    for n in ("jp", "kr"):        # how often tracks were updated, both ways, in the report (the cap's other figure)
        g = rep["update_gaps"][n]
        assert g["up"]["tracks"] > 0 and g["down"]["tracks"] > 0, g
        assert 0 <= g["down"]["tracks_within_1s"] <= g["down"]["tracks"] and g["down"]["longest_gap_s"] > 0
    checks = [c["check"] for c in rep["verdict"]["checks"]]
    assert any("under the 25% CPU cap" in c for c in checks), checks
