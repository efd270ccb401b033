"""The truth judge (host/bench_judge.py) on hand-made truth and warnings, GOSPA on hand-made sets,
identity switches and ghosts, and the suite's table on a hand-made report:

* a warning of the right kind to the threatened nation is correct, and its time to validity is
  taken from the first step whose 95% ellipse holds the true impact;
* a warning to a nation the truth does not threaten is false; no warning to a threatened one is
  missed; a cancel long before the true impact is an early cancel; issuing again after a cancel, or
  changing kind while up, is a flap;
* today's records (kind "impact on territory", "open sea") and the new kinds judge alike;
* GOSPA against values worked by hand (c, p = 2, alpha = 2).
"""
from __future__ import annotations

import math
from typing import List, Optional, Tuple

import pytest

import board_sim_helpers  # noqa: F401
from trilink import bench_judge as bj
from trilink import suite
from trilink_board import config

SQUARE = [[35.0, 139.0], [35.0, 140.0], [36.0, 140.0], [36.0, 139.0]]       # "jp": one square degree
STRIP = [[37.0, 126.0], [37.0, 128.0], [37.5, 128.0], [37.5, 126.0]]        # "kr"
EEZ = [[34.0, 138.0], [34.0, 141.0], [37.0, 141.0], [37.0, 138.0]]          # around the square


def _flight(lat: float, lon: float, track: Optional[List[Tuple[float, float, float, float]]] = None) -> bj.Flight:
    return bj.Flight("M", 10.0, 39.0, 125.0, 70.0, 150.0, 200.0, 300.0, lat, lon,
                     track or [(100.0, 38.0, 130.0, 80e3)])


def _nations(eez: bool = True) -> dict:
    return {"jp": bj.Nation("jp", [SQUARE], [EEZ] if eez else None), "kr": bj.Nation("kr", [STRIP])}


def _warning(dst: str, named: str, kind: str, steps: List[Tuple[float, str]], lat: float = 35.5,
             lon: float = 139.5, ell: Tuple[float, float, float] = (20e3, 10e3, 0.0),
             missile: Optional[str] = "M") -> bj.WarningRec:
    return bj.WarningRec(dst, named, kind, missile, [bj.Step(t, s, lat, lon, ell) for t, s in steps])


def test_truth_threat_territory_eez_overflight_none() -> None:
    n = _nations()
    assert bj.truth_threat(_flight(35.5, 139.5), n["jp"]) == ("territory", ["territory"])
    assert bj.truth_threat(_flight(34.5, 139.5), n["jp"]) == ("eez", ["eez"])
    # without EEZ polygons an EEZ impact is no threat the judge can hold the relay to
    assert bj.truth_threat(_flight(34.5, 139.5), _nations(eez=False)["jp"]) == (None, [])
    over = _flight(38.0, 131.0, [(100.0, 37.2, 127.0, 50e3), (299.0, 38.0, 131.0, 1e3)])
    assert bj.truth_threat(over, n["kr"]) == ("overflight", ["overflight"])
    assert bj.truth_threat(over, n["jp"]) == (None, [])


def test_flights_from_the_scenario_truth() -> None:
    fl = bj.flights(config.load_scenario("srbm_korea"))["SRBM-KR"]
    assert fl.t_burnout == pytest.approx(70.0) and fl.t_launch == 10.0
    assert fl.t_launch < fl.t_burnout < fl.t_apogee <= fl.t_terminal < fl.t_impact
    assert [fl.phase(t) for t in (5.0, 30.0, fl.t_apogee - 1, fl.t_terminal + 1)] == \
        [None, "boost", "midcourse", "terminal"]
    kr = bj.Nation.load(str(board_sim_helpers.BOARDS / "nations" / "kr.json"))
    assert bj.truth_threat(fl, kr)[0] == "territory"


def test_a_correct_warning_its_valid_time_and_no_flap() -> None:
    fl = {"M": _flight(35.5, 139.5)}
    far = _warning("jp", "jp", "territory", [(90.0, "ACTIVE")], lat=35.5, lon=141.0)     # ~136 km off
    good = bj.Step(120.0, "UPDATED", 35.52, 139.5, (20e3, 10e3, 0.0))                    # ~2 km north
    far.steps.append(good)
    far.steps.append(bj.Step(301.0, "OBSOLETE", 35.52, 139.5, (20e3, 10e3, 0.0)))
    j = bj.judge_warnings(fl, _nations(), [far], t_end=310.0, first_track={"M": 40.0})
    v = j["missiles"]["M"]["jp"]
    assert v["outcome"] == {"territory": "correct"}
    assert v["first_warning_s"] == pytest.approx(80.0) and v["first_valid_warning_s"] == pytest.approx(110.0)
    assert v["first_valid_warning_after_burnout_s"] == pytest.approx(50.0)
    assert v["flaps"] == 0 and not v["early_cancel"]
    c = j["counts"]["jp"]["territory"]
    assert (c["correct"], c["false"], c["missed"]) == (1, 0, 0)
    assert j["missiles"]["M"]["kr"]["outcome"] == {}        # owed nothing, sent nothing


def test_false_missed_and_early_cancel() -> None:
    fl = {"M": _flight(35.5, 139.5)}
    to_kr = _warning("kr", "kr", "territory", [(100.0, "ACTIVE"), (301.0, "OBSOLETE")], lat=37.2, lon=127.0)
    j = bj.judge_warnings(fl, _nations(), [to_kr], t_end=310.0)
    assert j["counts"]["kr"]["territory"]["false"] == 1
    assert j["counts"]["jp"]["territory"]["missed"] == 1
    # cancelled at T-50 s: correct kind, but not up until the impact
    early = _warning("jp", "jp", "territory", [(100.0, "ACTIVE"), (250.0, "OBSOLETE")])
    j = bj.judge_warnings(fl, _nations(), [early], t_end=310.0)
    v = j["missiles"]["M"]["jp"]
    assert v["early_cancel"] and v["cancelled_s_before_impact"] == pytest.approx(50.0)
    assert j["counts"]["jp"]["territory"]["early_cancel"] == 1
    # a cancel at the impact is not early
    ok = _warning("jp", "jp", "territory", [(100.0, "ACTIVE"), (298.0, "OBSOLETE")])
    assert not bj.judge_warnings(fl, _nations(), [ok], t_end=310.0)["missiles"]["M"]["jp"]["early_cancel"]
    # a warning following no missile is false too
    ghost = _warning("jp", "jp", "territory", [(100.0, "ACTIVE")], missile=None)
    j = bj.judge_warnings(fl, _nations(), [ok, ghost], t_end=310.0)
    assert j["false_records"] == 1 and j["counts"]["jp"]["territory"]["false"] == 1


def test_flap_reissue_and_kind_change() -> None:
    fl = {"M": _flight(35.5, 139.5)}
    a = _warning("jp", "jp", "territory", [(100.0, "ACTIVE"), (104.0, "OBSOLETE")])
    b = _warning("jp", "jp", "territory", [(106.0, "ACTIVE"), (300.0, "OBSOLETE")])
    v = bj.judge_warnings(fl, _nations(), [a, b], t_end=310.0)["missiles"]["M"]["jp"]
    assert v["issued"] == 2 and v["flaps"] == 1
    # one warning whose kind goes eez -> territory while up: one flap
    w = _warning("jp", "jp", "territory", [(100.0, "ACTIVE"), (110.0, "UPDATED"), (300.0, "OBSOLETE")])
    w.steps[0].kind = "eez"
    v = bj.judge_warnings(fl, _nations(), [w], t_end=310.0)["missiles"]["M"]["jp"]
    assert v["flaps"] == 1 and v["warned"] == ["eez", "territory"]
    assert v["outcome"]["eez"] == "false" and v["outcome"]["territory"] == "correct"
    # an impact warning and an overflight warning up side by side, updated in turn: two
    # warnings with their own lifecycles, no flap of either
    imp = _warning("jp", "jp", "eez", [(100.0, "ACTIVE"), (110.0, "UPDATED"), (130.0, "UPDATED")])
    over = _warning("jp", "jp", "overflight", [(101.0, "ACTIVE"), (111.0, "UPDATED"), (131.0, "UPDATED")])
    v = bj.judge_warnings(fl, _nations(), [imp, over], t_end=310.0)["missiles"]["M"]["jp"]
    assert v["issued"] == 2 and v["flaps"] == 0
    # ... while the overflight warning re-issued is one flap
    again = _warning("jp", "jp", "overflight", [(140.0, "OBSOLETE"), (150.0, "ACTIVE")])
    over.steps += again.steps
    v = bj.judge_warnings(fl, _nations(), [imp, over], t_end=310.0)["missiles"]["M"]["jp"]
    assert v["issued"] == 3 and v["flaps"] == 1


def test_todays_records_and_launch_alerts() -> None:
    rec = {"destination": "jp", "nation": "jp", "kind": "impact on territory", "missile": "M",
           "timeline": [{"t_sent_s": 100.0, "t_decoded_s": 100.02, "status": "ACTIVE",
                         "predicted": {"lat": 35.5, "lon": 139.5, "ellipse_m": [5000, 2000, 10.0]}}]}
    w = bj.WarningRec.from_record(rec)
    assert (w.kind, w.steps[0].t, w.steps[0].ellipse) == ("territory", 100.02, (5000, 2000, 10.0))
    sea = bj.WarningRec.from_record(dict(rec, nation="sea", kind="open sea"))
    assert sea.kind is None
    fl = {"M": _flight(35.5, 139.5)}
    alert = _warning("kr", "kr", "launch", [(44.0, "ACTIVE")])
    j = bj.judge_warnings(fl, _nations(), [w, alert], t_end=310.0, first_track={"M": 40.0})
    assert j["missiles"]["M"]["kr"]["launch_alert_from_track_s"] == pytest.approx(4.0)
    assert j["counts"]["kr"]["launch"]["correct"] == 1 and j["counts"]["jp"]["launch"]["missed"] == 1
    assert j["missiles"]["M"]["jp"]["outcome"] == {"territory": "correct", }


def test_gospa_by_hand() -> None:
    c = 10e3
    # perfect
    assert bj.gospa([[0, 0, 0]], [[0, 0, 0]], c)["gospa"] == 0.0
    # one pair 3 km apart: sqrt(3000^2)
    assert bj.gospa([[0, 0, 0]], [[3000, 0, 0]], c)["gospa"] == pytest.approx(3000.0)
    # one missed truth: c^p/alpha -> c/sqrt(2)
    g = bj.gospa([[0, 0, 0]], [], c)
    assert g["gospa"] == pytest.approx(c / math.sqrt(2)) and (g["missed"], g["false"]) == (1, 0)
    # two truths, estimates near each but crossed in order: the optimal assignment pairs them right
    g = bj.gospa([[0, 0, 0], [50e3, 0, 0]], [[50e3, 400, 0], [0, 300, 0]], c)
    assert g["gospa"] == pytest.approx(math.sqrt(300 ** 2 + 400 ** 2)) and g["missed"] == 0
    # an estimate 20 km away: beyond c it is one missed and one false, c^2/2 each
    g = bj.gospa([[0, 0, 0]], [[20e3, 0, 0]], c)
    assert (g["missed"], g["false"]) == (1, 1) and g["gospa"] == pytest.approx(c)


def _salvo_ticks(n: int = 20) -> list:
    # Two missiles of a salvo on one path 3 km apart at 2 km/s; track 1 follows A but lags
    # towards B by 1.6 km every other second (nearer B then: 1.4 km), track 2 follows B.
    ticks = []
    for t in range(n):
        a, b = 2000.0 * t, 2000.0 * t + 3000.0
        ticks.append((float(t), {"A": (a, 0.0, 0.0), "B": (b, 0.0, 0.0)},
                      {1: (a + (1600.0 if t % 2 else 400.0), 0.0, 0.0), 2: (b + 300.0, 0.0, 0.0)}))
    return ticks


def test_identity_assigns_a_salvo_as_gospa_does_not_each_track_to_its_nearest() -> None:
    # Nearest-per-record would hand B to track 1 every other second (and leave A to no track).
    assert bj.identity(_salvo_ticks()) == {"switches": {"A": 0, "B": 0}, "ghosts": [], "duplicates": []}


def test_identity_switch_ghost_duplicate() -> None:
    ticks = _salvo_ticks()
    for t, truth, est in ticks:
        if t >= 10:                    # track 1 lost; track 3 takes A over: one switch
            est[3] = est.pop(1)
        if t < 5:                      # 50 km from everything: a ghost
            est[4] = (truth["A"][0], 50e3, 0.0)
        if 2 <= t < 8:                 # a second track on B, held by track 2 (nearer): a duplicate
            est[5] = (truth["B"][0] - 800.0, 0.0, 0.0)
    r = bj.identity(ticks)
    assert r["switches"] == {"A": 1, "B": 0}
    assert r["ghosts"] == [4] and r["duplicates"] == [5]


def test_fused_vs_best_only_where_two_nations_see() -> None:
    fused = {"M": {"boost": {"rmse_m": 500.0, "n": 20}, "terminal": {"rmse_m": 90.0, "n": 20}}}
    sensors = {"jp": {"M": {"terminal": {"rmse_m": 80.0, "n": 20}}},
               "kr": {"M": {"boost": {"rmse_m": 480.0, "n": 20}, "terminal": {"rmse_m": 120.0, "n": 20}}}}
    out = bj.fused_vs_best(fused, sensors)
    assert out == [{"missile": "M", "phase": "terminal", "fused_m": 90.0, "best": "jp", "best_m": 80.0,
                    "ok": False}]


def test_suite_table_marks_targets() -> None:
    rep = {"window_s": [0.0, 320.0], "paths": {"jp->kr": {"count": 10, "p50_ratio": 1.1, "p99_ratio": 1.9}},
           "boards": {"jp": {"returncode": 0, "peak_live_heap": 150 * 1024},
                      "kr": {"returncode": 0, "peak_live_heap": 170 * 1024}},
           "judge": {"eez_judged": {"jp": False, "kr": False},
                     "warning_counts": {"jp": {"territory": {"false": 0, "missed": 1}}},
                     "identity": {"jp": {"switches": {"M": 0}, "ghosts": [], "duplicates": []}},
                     "missiles": {"M": {"t_impact_s": 300.0, "first_track_s": 40.0, "fused_vs_best": [],
                                        "impact_checkpoints": [
                                            {"t_to_go_s": 60.0, "error_km": 0.4, "ellipse_holds_truth": True},
                                            {"t_to_go_s": 30.0, "error_km": 0.2, "ellipse_holds_truth": False}],
                                        "nations": {"jp": {"truth": "territory", "outcome": {"territory": "missed"},
                                                           "launch_alert_from_track_s": 3.0, "flaps": 0,
                                                           "first_valid_warning_after_burnout_s": None}}}}}}
    row = suite.judge_row(rep)["row"]
    assert row["warnings"][0] is False and "1 missed territory" in row["warnings"][1]
    assert row["launch_alert"][0] is True
    assert row["valid_warning"][0] is False
    assert row["impact_t60"] == (True, "max 0.40 km")
    assert row["coverage"] == (None, "1/2")
    assert row["heap"][0] is False and row["latency"][0] is False
    text = suite.table({"x": rep})
    assert "| x | 0-320 s |" in text and "1/2 = 50%" in text
