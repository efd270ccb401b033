"""Coasting (edge/coast.py) over the real Pipeline: a ballistic track whose
only radar loses it is flown on the model to its predicted impact in the
partner's picture (flagged coasting, with an impact that stays on the
truth), its warnings stay up until that impact and then go, and the track
is dropped; a radar that finds it again gives it back its fused id."""
import numpy as np

from edge_boards import JP_ORIGIN, KR_ORIGIN, from_enu, to_enu
from test_pipeline import Flight, fly, make_pipeline, report
from trilink_board import codec, messages, wire
from trilink_edge import coast, phase
from trilink_edge.warning import STATUS_OBSOLETE
from trilink_native import binding

T0_US = 2_000_000_000
KR = ((2, KR_ORIGIN),)


def run(p, fl, start_s, seconds, seen, tid=5, jp=None, rid0=0):
    """One relay second at a time from flight time ``start_s``: KR reports
    the truth while ``seen(t)`` (as board track ``tid``), then a
    housekeeping round, the impact job, and JP's PICTUREs decoded as its
    board would (``jp``: {"held", "recs": [(t s, record)]})."""
    for k in range(seconds):
        t = start_s + k
        t_us = T0_US + int((t - 300.0) * 1e6)
        if seen(t):
            report(p, 2, KR_ORIGIN, fl.ecef(t), t_us, rid0 + int(t) * 10, tid=tid)
        now = t_us * 1000
        p.dirty = True                     # the relay's housekeeping round, once a second
        p.round(now, refresh=True)
        p.apply_impacts(p.impact_job(now)(), now)
        item = p.destinations[1].take(500, now)
        while item is not None and jp is not None:
            batch = codec.decode(item.payload, jp["held"])
            jp["prec"] = batch.prec
            jp["recs"] += [(t, rtype, rec) for rtype, _s, rec in batch.items]
            item = p.destinations[1].take(500, now)


def truth_impact_s(fl, guess_s):
    """When the truth reaches the ground (bisection on its height)."""
    lo, hi = guess_s - 30.0, guess_s + 30.0
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        h = binding.ecef_to_geodetic(fl.ecef(mid)[None, :3])[0, 2]
        lo, hi = (mid, hi) if h > 0 else (lo, mid)
    return lo


def statuses(warnings, node):
    return [messages.decode(wire.WARNING, w.payload)["status"] for w in warnings if w.node == node]


def test_lost_track_coasted_to_its_impact_then_warnings_cancelled_and_dropped():
    p, warnings, _c = make_pipeline({1: {2}, 2: {1}, 3: set()}, warn_partners=True)
    fl = Flight()
    jp = {"held": {}, "recs": []}
    lost_s = 330.0                         # KR's radar loses it here, ~200 s before impact
    run(p, fl, 300.0, 31, lambda t: t < lost_s, jp=jp)
    d = p.destinations[1]
    (fid,) = d.impact
    t_imp = d.impact[fid][0]               # relay s
    impact_s = 300.0 + t_imp - T0_US / 1e6   # flight time of the predicted impact
    assert statuses(warnings, 1) == [messages.STATUS_ACTIVE]      # JP warned of an impact on it
    run(p, fl, 331.0, int(impact_s - 331.0) + 6, lambda t: False, jp=jp)
    coasted = [(t, r) for t, rt, r in jp["recs"] if t >= lost_s + coast.STALE_S and rt != codec.DROP]
    # coasted once a second right up to the predicted impact, flagged, with no source report
    ts = [t for t, _ in coasted]
    assert ts and ts[0] <= lost_s + coast.STALE_S + 1 and ts[-1] >= impact_s - 1.5
    assert max(np.diff(ts)) <= 1.0 + 1e-6
    assert all(r.tid == fid and r.flags & phase.FLAG_COASTING and r.flags & phase.FLAG_BALLISTIC
               and not r.sources and r.imp is not None for _t, r in coasted)
    # the coasted state and its impact stay on the truth (no measurement for ~200 s)
    land_s = truth_impact_s(fl, impact_s)
    assert abs(land_s - impact_s) < 2.0
    land_en = to_enu(fl.ecef(land_s), JP_ORIGIN)[:2]
    for t, r in coasted[::10]:
        pos = from_enu(r.state(jp["prec"])[:3] + [0.0, 0.0, 0.0], JP_ORIGIN)[:3]
        assert np.linalg.norm(pos - fl.ecef(t)[:3]) < 2_000.0
        assert np.linalg.norm(np.array(r.impact(jp["prec"])[:2]) - land_en) < 2_000.0
    # the warning stood until the predicted impact, then was made obsolete
    st = statuses(warnings, 1)
    assert st[-1] == STATUS_OBSOLETE and STATUS_OBSOLETE not in st[:-1]
    assert p.desk.live(1, fid) == [] and p.desk.live(2, fid) == []
    # dropped after its impact (+ margin): a DROP record, gone from the picture
    drops = [t for t, rt, r in jp["recs"] if rt == codec.DROP and r.tid == fid]
    assert drops and impact_s + coast.MARGIN_S - 1 <= drops[0] <= impact_s + coast.MARGIN_S + 2
    assert fid not in d.coast.tracks and fid not in d.snapshot[1]["fused_id"].tolist()


def test_reacquired_track_keeps_its_fused_id_and_its_warning():
    p, warnings, _c = make_pipeline({1: {2}, 2: {1}, 3: set()}, warn_partners=True)
    fl = Flight()
    jp = {"held": {}, "recs": []}
    run(p, fl, 300.0, 31, lambda t: t < 330.0, jp=jp)
    (fid,) = p.destinations[1].impact
    alerts = len(p.launches)
    # 25 s without a report: the fused picture times the track out (12 s) and
    # the relay coasts it; then KR's radar finds it again as a new board track
    run(p, fl, 331.0, 40, lambda t: t >= 355.0, tid=9, jp=jp, rid0=1_000_000)
    assert p.picture.stats()["initiated"] == 2                    # the fused picture made a new track ...
    later = [r for t, rt, r in jp["recs"] if t >= 356.0 and rt != codec.DROP]
    assert later and all(r.tid == fid for _t, _rt, r in jp["recs"])      # ... JP only ever saw one id
    assert not later[-1].flags & phase.FLAG_COASTING and later[-1].sources
    assert len(p.launches) == alerts                              # no second launch alert
    assert STATUS_OBSOLETE not in statuses(warnings, 1)           # the warning never went
    assert p.destinations[1].coast.reacquired == 1 and p.destinations[2].coast.reacquired == 1
    assert p.stats.reacquired == 2 and p.stats.coasted == 2          # the relay's stats()["pipeline"]


def test_track_lost_under_thrust_is_not_coasted():
    # Reported under thrust only (edge/phase.py: boost), then lost: the fused
    # picture's ballistic prediction of it would look calm to the phase
    # detector, but it was never judged ballistic on measurements, so it is
    # not flown on (it would be a ghost) and leaves the picture with its
    # sources. Nor does the phase detector learn from the prediction (calm
    # whatever the missile does): no impact, no warning from a boost state.
    p, _warnings, _c = make_pipeline({1: {2}, 2: {1}, 3: set()}, warn_partners=True)
    fl = Flight()
    fly(p, fl, T0_US, seconds=25, thrust_until_s=330.0, nodes=KR)
    d = p.destinations[1]
    assert d.phase.phase(1) == phase.BOOST
    run(p, fl, 326.0, 40, lambda t: False)
    assert d.coast.coasted == 0 and d.coast.tracks == {}
    assert d.phase.phase(1) == phase.BOOST and d.impact == {}     # never judged on predictions alone
    assert _warnings == []                                        # so no warning from a boost state
    assert d.snapshot[1]["fused_id"].tolist() == []
