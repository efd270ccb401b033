"""Whole-flight windows, the suite tool's usage errors, and one short real bench judged against the truth.

The suite's own run (whole flights, minutes each) is not a test: docs/SUITE.md has the command and
its table. Here: ``--window`` computed from the truth, a bad scenario refused before anything runs,
and 20 s of the srbm_sea flight's descent (its terminal phase) on the real chain (CPython
boards over emulated serial), whose judged report must carry what docs/BENCH.md promises.
"""
from __future__ import annotations

import json

import pytest

from trilink import suite
from trilink.bench import _parse_args, flight_window, run_bench
from trilink.bench_rig import RigError


def test_flight_window_from_the_truth() -> None:
    start, dur = flight_window("srbm_sea", "full")
    assert start == 5.0                                   # launch at 10 s, 5 s before
    assert 240.0 < start + dur <= 270.0                   # impact ~241 s + 10, within duration_s 270
    s2, d2 = flight_window("default", "KN-23")
    assert s2 == 125.0 and 360.0 < s2 + d2 < 380.0        # the KN-23 alone: ~4 min
    with pytest.raises(RigError, match="not 'full' nor a launch"):
        flight_window("srbm_sea", "HS-12")


def test_suite_refuses_a_bad_scenario_before_running(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "bad", "launches": []}))
    with pytest.raises(SystemExit) as e:
        suite.main(["--only", f"{bad}", "--out", str(tmp_path / "o")])
    assert e.value.code == 2
    assert "bad.json" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_suite_table_only_from_json(tmp_path, capsys) -> None:
    assert suite.main(["--table-only", "--only", "srbm_sea", "--out", str(tmp_path)]) == 1   # nothing there
    assert "no report" in capsys.readouterr().err


def test_short_real_bench_is_judged_against_the_truth() -> None:
    # 20 s of srbm_sea's descent (impact at ~241 s): the terminal phase
    args = _parse_args(["--scenario", "srbm_sea", "--runtime", "cpython", "--start", "196", "--duration", "20",
                        "--quiet", "--no-plot"])
    rep = run_bench(args).report
    j = rep["judge"]
    m = j["missiles"]["SRBM-S"]
    assert m["t_launch_s"] == 10.0 and 235.0 < m["t_impact_s"] < 250.0
    assert m["first_track_s"] is not None
    assert "terminal" in m["rmse_m_by_phase"]["fused"]
    # the fused picture in the terminal phase, against the truth: within a couple of km
    assert m["rmse_m_by_phase"]["fused"]["terminal"]["rmse_m"] < 2000.0
    assert m["rmse_m_by_phase"]["fused"]["terminal"]["n"] > 10
    # nobody's territory: whatever was warned of, nothing territorial may be correct, and no launch
    # alert is owed for a missile already tracked when the run began
    for n in ("jp", "kr"):
        assert m["nations"][n]["truth"] in (None, "eez")
        assert j["warning_counts"][n]["territory"]["correct"] == 0
    assert all(sum(v["switches"].values()) == 0 and not v["ghosts"] for v in j["identity"].values())
    assert j["gospa"] and all(g["ticks"] > 10 for g in j["gospa"].values())
    assert j["params"]["gospa_c_m"] == 10e3
    text = suite.table({"srbm_sea@end": rep})
    assert text.splitlines()[2].startswith("| srbm_sea@end | 196-216 s |")
