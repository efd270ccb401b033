"""Local tracker on the default scenario: accuracy, fast confirmation, no false tracks."""
from __future__ import annotations

import math

import pytest

from board_sim_helpers import implied_sigma, load, truth_positions


def run(nation: str):  # type: ignore[no-untyped-def]
    sim = load("default", nation)
    plots_of: dict[int, int] = {}          # oid -> plots so far
    confirm_after: dict[int, int] = {}     # oid -> plots seen before its first report
    per_track: dict[int, list[tuple[float, int, float, float]]] = {}   # tid -> (t, oid, err, implied sigma)
    while sim.step():
        for i in range(sim.n_plots):
            o = sim.plots[i].oid
            if o:
                plots_of[o] = plots_of.get(o, 0) + 1
        if not sim.n_updated:
            continue
        truth = truth_positions(sim)
        radar = sim.radars[sim.radar]
        rc = sim.nation["radars"][sim.radar]
        for tr in sim.tracker.updated[: sim.n_updated]:
            oid, err = min(((o, math.dist(p, tuple(tr.x[:3]))) for o, p in truth.items()),
                           key=lambda a: a[1], default=(0, math.inf))
            e, n, u = radar.from_nation.apply(*truth[oid]) if oid else (0.0, 0.0, 1.0)
            r = math.sqrt(e * e + n * n + u * u)
            sig = implied_sigma(rc, r, math.atan2(u, math.hypot(e, n)))
            per_track.setdefault(tr.tid, []).append((sim.t, oid, err, sig))
            if oid and oid not in confirm_after:
                confirm_after[oid] = plots_of.get(oid, 0)
    return sim, plots_of, confirm_after, per_track


@pytest.fixture(scope="module", params=["jp", "kr"])
def result(request):  # type: ignore[no-untyped-def]
    return request.param, run(request.param)


def test_every_missile_is_tracked_and_confirmed_within_5_plots(result) -> None:  # type: ignore[no-untyped-def]
    nation, (sim, plots_of, confirm_after, _) = result
    assert set(plots_of) == {1, 2}, nation          # both missiles were seen
    for oid in plots_of:
        assert oid in confirm_after, (nation, oid)
        assert confirm_after[oid] <= 5, (nation, oid, confirm_after[oid])


def test_position_rmse_below_3x_the_measurement_sigma(result) -> None:  # type: ignore[no-untyped-def]
    nation, (_, _, _, per_track) = result
    rows = [row for rows in per_track.values() for row in rows]
    rmse = math.sqrt(sum(r[2] ** 2 for r in rows) / len(rows))
    sig = math.sqrt(sum(r[3] ** 2 for r in rows) / len(rows))
    assert rmse < 3.0 * sig, (nation, rmse, sig)
    # and the filter does better than a single plot would, once it has settled
    assert rmse < 1.5 * sig, (nation, rmse, sig)


def test_no_false_or_duplicate_tracks(result) -> None:  # type: ignore[no-untyped-def]
    nation, (sim, _, _, per_track) = result
    owner: dict[int, int] = {}
    spans: dict[int, list[tuple[float, float, int]]] = {}
    for tid, rows in per_track.items():
        oids = {r[1] for r in rows}
        assert len(oids) == 1 and 0 not in oids, (nation, tid, oids)     # one truth object per track
        assert all(r[2] < 6.0 * r[3] + 500.0 for r in rows), (nation, tid)  # and it stays on it
        owner[tid] = rows[0][1]
        spans.setdefault(rows[0][1], []).append((rows[0][0], rows[-1][0], tid))
    for oid, sp in spans.items():                 # never two live tracks on one object
        sp.sort()
        for (a0, a1, _), (b0, b1, _) in zip(sp, sp[1:]):
            assert b0 > a1, (nation, oid, sp)
    assert sim.tracker.full == 0


def test_reports_carry_increasing_report_ids_and_valid_covariance() -> None:
    sim = load("default", "kr")
    last = 0
    while sim.step(until=300.0):
        for tr in sim.tracker.updated[: sim.n_updated]:
            assert tr.report_id == last + 1
            last = tr.report_id
            P = tr.P
            assert all(P[i * 7] > 0 for i in range(6))
            assert all(abs(P[i * 6 + j] - P[j * 6 + i]) <= 1e-6 * abs(P[i * 6 + j]) + 1e-9
                       for i in range(6) for j in range(6))
    assert last > 50
