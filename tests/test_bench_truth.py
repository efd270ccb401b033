"""The bench's figures against hand-made inputs (host/bench_truth.py, bench.verdict):

* a PICTURE impact (east, north in a nation's ENU frame) converted on the ellipsoid:
  a point offset from the truth by a known distance (pymap3d's geodesic, computed
  independently) gives that error, where the old height-0-in-the-local-frame reading
  is hundreds of km off;
* RMSE per destination and per sensor nation under their own names;
* the time to first warning counts only warnings naming the nation, None without one;
* per-warning records: timeline, named nation, predicted point, error, ellipse coverage;
* a path whose source sent nothing is not failed.
"""
from __future__ import annotations

import dataclasses
import math
import sys
from typing import List

import pymap3d
from pymap3d.vincenty import vdist, vreckon
import pytest

from conftest import BOARDS
from trilink.bench import verdict
from trilink.bench_capture import Capture, Fused, Report, Warning
from trilink.bench_truth import TruthCheck, impact_point, in_ellipse, surface_distance_m

sys.path.insert(0, str(BOARDS))
from trilink_board import config, geo  # noqa: E402

JP, KR = 1, 2
EPOCH = 10**9
START = 80.0


def _origins():
    out = {}
    for name, node in (("jp", JP), ("kr", KR)):
        o = config.load_nation(name)["origin"]
        out[node] = (o["lat"], o["lon"], o["alt_m"])
    return out


@pytest.mark.parametrize("dist_m,az", [(5000.0, 30.0), (71000.0, 200.0), (300.0, 90.0)])
def test_impact_point_on_the_ellipsoid_gives_the_geodesic_error(dist_m: float, az: float) -> None:
    lat0, lon0, h0 = _origins()[JP]
    frame = geo.LocalFrame(lat0, lon0, h0)
    tlat, tlon = 33.948, 177.581               # the IRBM's truth, ~3,600 km from Japan's origin
    plat, plon = vreckon(tlat, tlon, dist_m, az)
    e, n, _u = pymap3d.geodetic2enu(plat, plon, 0.0, lat0, lon0, h0)
    lat, lon = impact_point(frame, e, n)
    assert abs(lat - plat) < 1e-7 and abs(lon - plon) < 1e-7
    want = vdist(tlat, tlon, plat, plon)[0]
    assert surface_distance_m(lat, lon, tlat, tlon) == pytest.approx(want, rel=1e-4, abs=0.5)
    # the old reading (height 0 in the local frame) lands ~d^2/2R away: hundreds of km here
    flat = frame.enu_to_geodetic(e, n, 0.0)
    assert surface_distance_m(flat[0], flat[1], plat, plon) > 100_000.0


def test_ellipse_holds_what_it_should() -> None:
    c = (40.0, 134.0)
    north_5km = vreckon(*c, 5000.0, 0.0)
    east_5km = vreckon(*c, 5000.0, 90.0)
    assert in_ellipse(*north_5km, *c, 8000.0, 2000.0, 0.0)          # major axis north
    assert not in_ellipse(*east_5km, *c, 8000.0, 2000.0, 0.0)
    assert in_ellipse(*east_5km, *c, 8000.0, 2000.0, 90.0)          # major axis east
    assert not in_ellipse(*north_5km, *c, 8000.0, 2000.0, 90.0)


def _truth_positions(tc: TruthCheck, ts: float):
    from trilink.bench_truth import _truth
    tr = _truth(tc.scenario)
    tr.advance(ts)
    return {name: xyz for name, xyz in tc._positions(tr)}


def test_rmse_by_destination_and_by_sensor_under_their_names() -> None:
    tc = TruthCheck(config.load_scenario("default"), START, EPOCH)
    origins = _origins()
    frames = {k: geo.LocalFrame(*v) for k, v in origins.items()}
    fused: List[Fused] = []
    reports: List[Report] = []
    # truth + a known offset: fused to jp 300 m off, to kr 400 m; jp's own reports 100 m, kr's 200 m
    for ts in (95.0, 100.0, 105.0):
        t_us = int(EPOCH + (ts - START) * 1e6)
        x, y, z = _truth_positions(tc, ts)["HS-12"]
        for node, df, dr in ((JP, 300.0, 100.0), (KR, 400.0, 200.0)):
            e, n, u = frames[node].ecef_to_enu(x, y, z)
            fused.append(Fused(node, 5, t_us, [e + df, n, u, 0, 0, 0], None, t_us * 1000))
            reports.append(Report(node, len(reports), 7, t_us, True, t_us * 1000, 40, 1, b"", [e, n + dr, u, 0, 0, 0]))
    acc = tc.accuracy(fused, origins, {JP: "jp", KR: "kr"}, reports)
    assert acc["rmse_m_by_destination"] == {"jp": 300.0, "kr": 400.0}
    assert acc["rmse_m_by_sensor"] == {"jp": 100.0, "kr": 200.0}
    assert acc["rmse_m"] == pytest.approx(math.sqrt((300.0 ** 2 + 400.0 ** 2) / 2), abs=0.1)


def _warning(dst: int, wid: int, status: int, nation: int, ts: float, lat: float, lon: float,
             a: int = 20000, b: int = 5000) -> Warning:
    t_ns = int(EPOCH + (ts - START) * 1e6) * 1000
    return Warning(dst, t_ns, wid, 5, status, nation, int(EPOCH + (361.5 - START) * 1e6), lat, lon, 36, a, b, 0.0)


def test_first_warning_counts_only_warnings_naming_the_nation() -> None:
    tc = TruthCheck(config.load_scenario("default"), START, EPOCH)
    _, _, tlat, tlon = tc.impacts["KN-23"]
    cap = Capture()
    # a warning naming jp, to both: decoded by kr at t=101 and by jp at t=150
    cap.warnings += [_warning(KR, 1, 0, JP, 100.5, tlat, tlon), _warning(JP, 2, 0, JP, 149.5, tlat, tlon)]
    cap.acks += [(KR, int(EPOCH + 21e6) * 1000, 1, 0), (JP, int(EPOCH + 70e6) * 1000, 2, 0)]
    by_tid = {(KR, 5): "KN-23", (JP, 5): "KN-23"}
    first = tc.first_warnings(cap, {"jp": JP, "kr": KR}, by_tid, None)
    launch = tc.impacts["KN-23"][0]
    assert first["jp"]["s"] == pytest.approx(150.0 - launch, abs=0.01) and first["jp"]["missile"] == "KN-23"
    assert first["kr"]["s"] is None and first["kr"]["warning_id"] is None      # nothing named kr
    assert not first["jp"]["at_window_start"]
    # a missile flying before the window and warned of in its first seconds: flagged as a bound
    cap2 = Capture(warnings=[_warning(JP, 3, 0, JP, 80.5, tlat, tlon)], acks=[(JP, int(EPOCH + 1e6) * 1000, 3, 0)])
    by2 = {(JP, 5): "HS-12"}
    f2 = tc.first_warnings(cap2, {"jp": JP, "kr": KR}, by2, None)
    assert f2["jp"]["at_window_start"] and f2["jp"]["s"] == pytest.approx(81.0 - 10.0, abs=0.01)


def test_warning_records_timeline_point_and_coverage() -> None:
    tc = TruthCheck(config.load_scenario("default"), START, EPOCH)
    _, _, tlat, tlon = tc.impacts["KN-23"]
    near = vreckon(tlat, tlon, 2000.0, 0.0)      # 2 km north of the truth
    far = vreckon(tlat, tlon, 30000.0, 90.0)     # 30 km east
    cap = Capture()
    w1 = _warning(JP, 9, 0, JP, 200.0, *far)
    cap.warnings += [w1, dataclasses.replace(w1, tx_ns=w1.tx_ns + 10**9),     # a retransmission
                     _warning(JP, 9, 1, JP, 210.0, *near), _warning(JP, 9, 2, JP, 230.0, *near)]
    cap.acks.append((JP, w1.tx_ns + 5 * 10**6, 9, 0))
    recs = tc.warning_records(cap, {"jp": JP, "kr": KR}, {(JP, 5): "KN-23"}, None)
    assert len(recs) == 1
    r = recs[0]
    assert [(e["status"], e["t_sent_s"]) for e in r["timeline"]] == [("ACTIVE", 200.0), ("UPDATED", 210.0),
                                                                      ("OBSOLETE", 230.0)]
    assert r["timeline"][0]["t_decoded_s"] == pytest.approx(200.0, abs=0.01)
    assert (r["destination"], r["nation"], r["final_status"]) == ("jp", "jp", "OBSOLETE")
    # the capture's kind when it decodes one (PROTOCOL 4.5), else the older name of the same thing
    assert r["kind"] in ("territory", "impact on territory")
    # the last live prediction (UPDATED, 2 km north, 20 x 5 km ellipse along north) holds the truth
    assert r["error_km"] == pytest.approx(2.0, abs=0.02) and r["ellipse_holds_truth"]
    assert r["predicted"]["ellipse_m"] == [20000, 5000, 0.0]


def test_a_path_whose_source_sent_nothing_is_not_failed() -> None:
    rep = {"link": "udp", "relay_ms": {"share_p50": None}, "boards": {}, "relay_returncode": 0,
           "paths": {"jp->kr": {"count": 0, "source_records": 0}, "kr->jp": {"count": 0, "source_records": 12}}}
    checks = {c["check"]: c["ok"] for c in verdict(rep, None)["checks"]}
    assert checks["jp->kr delivered reports"] is True
    assert checks["kr->jp delivered reports"] is False
    assert checks["reports delivered on some path"] is False        # and a run that carried nothing fails
    rep["paths"]["kr->jp"] = {"count": 4, "source_records": 12, "p50_ratio": 1.1, "p99_ratio": 1.2, "p99_ms": 9.0}
    checks = {c["check"]: c["ok"] for c in verdict(rep, None)["checks"]}
    assert checks["jp->kr delivered reports"] and checks["reports delivered on some path"]


def test_fused_and_sensor_samples_are_compared_only_where_two_nations_see_the_missile() -> None:
    # Korea reports the missile from t = 0 to 10 s, Japan from 6 to 20 s (every 1 s): two nations
    # see it on [6 - 2, 10 + 2] (within SEEN_WITHIN_S of a report of each), one nation elsewhere.
    from trilink.bench_truth import SEEN_WITHIN_S, seen_by, two_nations
    assert SEEN_WITHIN_S == 2.0
    seen = {("M", "kr"): [float(t) for t in range(0, 11)], ("M", "jp"): [float(t) for t in range(6, 21)]}
    assert seen_by(seen[("M", "kr")], 12.0) and not seen_by(seen[("M", "kr")], 12.5)
    assert seen_by(seen[("M", "jp")], 4.0) and not seen_by(seen[("M", "jp")], 3.9)
    assert not seen_by([], 1.0)
    fused = [(t / 2.0, "M", "midcourse", t) for t in range(0, 41)]             # every 0.5 s, error = 2 t
    kept = two_nations(fused, seen)
    assert [d for _m, _ph, d in kept] == [float(k) for k in range(8, 25)]      # t = 4.0 .. 12.0 s
    # a sensor's own samples are kept where another nation sees the missile too; another missile's never
    kr_own = [(float(t), "M", "boost", 1.0) for t in range(0, 11)] + [(5.0, "N", "boost", 9.0)]
    assert len(two_nations(kr_own, seen, nation="kr")) == 7                    # t = 4 .. 10 s
    assert two_nations(kr_own, seen, nation="jp") == [("M", "boost", 1.0)] * 11
