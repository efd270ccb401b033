"""Pipeline: reports in local ENU are fused in ECEF; each destination gets
only releasable sources in its own ENU frame; a missile landing in Japan
raises a WARNING to JP only, retransmitted until acknowledged."""
import json
import os

import numpy as np

from edge_boards import JP_ORIGIN, KR_ORIGIN, AU_ORIGIN, TEST_KEYS, BoardStandIn, from_enu, to_enu
from trilink_board import codec, messages, wire
from trilink_edge import coast, phase
from trilink_edge.destination import Frame6, NodeGeo
from trilink_edge.pipeline import Pipeline
from trilink_edge.warning import ORPHAN_GRACE_S, STATUS_ACTIVE, STATUS_OBSOLETE
from trilink_edge.scheduler import LinkScheduler, WARNING, udp_size
from trilink_native import binding
from trilink_native.reference import motion as refm

HERE = os.path.dirname(os.path.abspath(__file__))


def jp_territory():
    with open(os.path.join(HERE, "..", "boards", "nations", "jp.json")) as f:
        return [t["polygon"] for t in json.load(f)["territory"]]


class Flight:
    """A missile from Sunan landing in Honshu ~537 s after burnout."""

    def __init__(self):
        self.x0 = refm.irbm_burnout(speed=3000.0, gamma_deg=40.0, az_deg=100.0)

    def ecef(self, t):
        return binding.predict_one(self.x0, np.eye(6), t)[1]


def make_pipeline(release, warn_partners=False):
    geo = {1: NodeGeo(1, "jp", JP_ORIGIN, jp_territory()), 2: NodeGeo(2, "kr", KR_ORIGIN, []),
           3: NodeGeo(3, "au", AU_ORIGIN, [])}
    warnings, controls, launches = [], [], []

    def push(item):
        # launch alerts (kind 3) apart: ``p.launches``; the threat warnings in ``warnings``
        kind = messages.decode(wire.WARNING, item.payload)["kind"]
        (launches if kind == messages.KIND_LAUNCH else warnings).append(item)
    p = Pipeline(geo, release, push_warning=push, warn_partners=warn_partners,
                 push_control=lambda n, m, pl: controls.append((n, m, pl)), warning_retry_s=(0.25, 1.0))
    p.launches = launches
    return p, warnings, controls


def ack_all(p, items):
    """Acknowledge ``items`` as their boards would (sent, then WARNING_ACK)."""
    for it in items:
        it.on_sent(it, 0)
        p.warning_ack(it.node, messages.encode(wire.WARNING_ACK, {
            "warning_id": messages.decode(wire.WARNING, it.payload)["warning_id"]}))


def report(p, node, origin, x_ecef, t_us, rid, tid=5, rx_us=None):
    P = [0.0] * 36
    for i in range(6):
        P[7 * i] = 2500.0 if i < 3 else 25.0
    u = codec.Update(tid, t_us, [float(v) for v in to_enu(x_ecef, origin)], P, report_id=rid)
    prec = codec.Precision()
    payload = codec.encode(codec.REPORT, prec, [(codec.KEY, codec.quantise(u, prec), 0)])
    raw = binding.pack_frame(TEST_KEYS[node], node, node, 0, binding.MSG_TRACK_REPORT, 0, 1, payload,
                             binding.FLAG_RELAY_TIME)
    return p.ingest(node, binding.parse_frame(raw), (t_us if rx_us is None else rx_us) * 1000)


def fly(p, fl, t_us0, seconds=26, start_s=300.0, nodes=((1, JP_ORIGIN), (2, KR_ORIGIN)), thrust_until_s=None,
        received=None):
    """Both nations report the flight once a second from ``start_s`` for
    ``seconds`` s, each followed by a round and an impact prediction (the
    relay's own cadence): long enough for the track to be judged ballistic
    (edge/phase.py). With ``received`` (node -> {"held": {}, "recs": []}),
    each destination's PICTUREs are taken each second and decoded as its
    board would. Returns the relay time (ns) of the last round."""
    for k in range(seconds + 1):
        t_us = t_us0 + int((start_s - 300.0 + k) * 1_000_000)
        x = fl.ecef(start_s + k)
        if thrust_until_s is not None and start_s + k < thrust_until_s:
            x = x.copy()
            x[3:] *= 1.0 + 0.01 * (start_s + k - thrust_until_s)   # slower, and gaining: under thrust
        for i, (node, origin) in enumerate(nodes):
            report(p, node, origin, x, t_us, int(start_s + k) * 10 + i)
        now = t_us * 1000
        p.round(now)
        p.apply_impacts(p.impact_job(now)(), now)
        for node, got in (received or {}).items():
            item = p.destinations[node].take(500, now)
            while item is not None:
                got["recs"] += [rec for _r, _s, rec in codec.decode(item.payload, got["held"]).items]
                item = p.destinations[node].take(500, now)
    return now


def test_frame6_round_trip_matches_reference():
    f = Frame6(KR_ORIGIN)
    x = Flight().ecef(100.0)
    P = np.diag([1.0, 4.0, 9.0, 0.1, 0.2, 0.3])
    xl, Pl = f.from_ecef(x[None], P[None])
    np.testing.assert_allclose(xl[0], to_enu(x, KR_ORIGIN), atol=1e-6)
    xe, Pe = f.to_ecef(xl, Pl)
    np.testing.assert_allclose(xe[0], x, atol=1e-6)
    np.testing.assert_allclose(Pe[0], P, atol=1e-9)
    assert np.isclose(np.trace(Pl[0][:3, :3]), 14.0)


def test_release_policy_and_destination_frames():
    p, _w, _c = make_pipeline({1: {2}, 2: {1, 3}, 3: {2}})   # jp -> au not allowed
    fl = Flight()
    t0 = 1_000_000_000
    for k in range(4):
        t_us = t0 + k * 500_000
        x = fl.ecef(100.0 + 0.5 * k)
        report(p, 1, JP_ORIGIN, x, t_us, 100 + k)
        report(p, 2, KR_ORIGIN, x, t_us, 200 + k)
        p.round(t_us * 1000)
    pend = {n: d.pending for n, d in p.destinations.items()}
    assert set(pend[2]) and set(pend[1])
    (fid, pk), = pend[2].items()
    # KR is offered JP's reports (its own bring it nothing new)
    assert {nd for nd, _ in pk.sources} == {1}
    assert pk.nations == (1 << 1) | (1 << 2)                   # the fused state holds both nations' data
    # KR's copy is in KR's ENU frame and is the missile
    np.testing.assert_allclose(from_enu(pk.x, KR_ORIGIN)[:3], fl.ecef(101.5)[:3], atol=300.0)
    # AU: KR data only, never JP's
    (fid_au, pa), = pend[3].items()
    assert {nd for nd, _ in pa.sources} == {2} and not pa.nations & 2
    item = p.destinations[3].take(500, 0)
    b = codec.decode(item.payload, {})
    assert all(nd == 2 for _r, _s, rec in b.items for nd, _ in rec.sources)


def test_warning_to_threatened_nation_until_acked():
    p, warnings, _c = make_pipeline({1: {2}, 2: {1}, 3: set()})
    fl = Flight()
    t_us = 2_000_000_000
    now = fly(p, fl, t_us)
    ack_all(p, p.launches)
    assert [w.node for w in warnings] == [1]                    # JP only: the impact is in Honshu
    msg = messages.decode(wire.WARNING, warnings[0].payload)
    assert msg["status"] == STATUS_ACTIVE and msg["nation"] == 1
    assert abs(msg["impact_us"] / 1e6 - (t_us / 1e6 + 237.0)) < 20
    assert warnings[0].flags & binding.FLAG_ACK_REQ and warnings[0].flags & binding.FLAG_URGENT
    warnings[0].on_sent(warnings[0], now)
    p.desk.tick(now + 100_000_000)
    assert len(warnings) == 1
    p.desk.tick(now + 300_000_000)
    assert len(warnings) == 2 and warnings[1].flags & binding.FLAG_RETRANSMIT
    assert warnings[1].payload == warnings[0].payload             # same warning_id: the board dedupes
    warnings[1].on_sent(warnings[1], now + 300_000_000)
    p.warning_ack(1, messages.encode(wire.WARNING_ACK, {"warning_id": msg["warning_id"]}))
    p.desk.tick(now + 5_000_000_000)
    assert len(warnings) == 2 and p.stats.warnings_acked == 1 + len(p.launches)
    # every radar loses the track (it leaves the fused picture): it is coasted
    # (edge/coast.py) and the warning stands until the predicted impact has
    # passed; the coasted track is dropped (no impact job ran meanwhile), and
    # the orphaned warning is cancelled (obsolete), reliably
    for n in (1, 2):
        p.picture.drop(n, 5)
    p.dirty = True
    p.round(now + 6_000_000_000)
    p.desk.tick(now + 6_000_000_000)
    impact_ns = msg["impact_us"] * 1000
    p.desk.tick(impact_ns)
    assert len(warnings) == 2 and p.desk.outstanding() == 0      # acked, still up: nothing new sent
    p.dirty = True
    p.round(impact_ns + int((coast.MARGIN_S + 1) * 1e9), refresh=True)     # the relay's housekeeping round
    assert p.destinations[1].coast.ids() == set()
    p.desk.tick(impact_ns + int((ORPHAN_GRACE_S + 1) * 1e9))
    assert messages.decode(wire.WARNING, warnings[-1].payload)["status"] == STATUS_OBSOLETE


def test_no_impact_or_warning_under_thrust_then_warned_after_burnout():
    # The same flight as above (into Honshu), but its first 20 s gain 1% of
    # speed a second (thrust): the relay calls the track boosting, predicts
    # no impact from it and warns nobody; after burnout it is ballistic and
    # the warning goes out. The PICTURE records carry the phase in their
    # quality flags (PROTOCOL 5.5), with the fused bit (two nations).
    p, warnings, _c = make_pipeline({1: {2}, 2: {1}, 3: set()}, warn_partners=True)
    fl = Flight()
    t_us = 2_000_000_000
    kr = {"held": {}, "recs": []}
    fly(p, fl, t_us, seconds=20, thrust_until_s=321.0, received={2: kr})
    assert warnings == [] and p.stats.warnings_issued == len(p.launches) == 2   # launch alerts only: jp, kr
    d = p.destinations[2]
    assert d.impact == {} and set(d.flags.values()) == {phase.FLAG_BOOSTING}
    late = kr["recs"][-5:]
    assert late and all(r.flags == phase.FLAG_BOOSTING | phase.FLAG_FUSED and r.imp is None for r in late)
    assert all(r.imp is None for r in kr["recs"])
    fly(p, fl, t_us, seconds=25, start_s=321.0, received={2: kr})
    assert sorted(w.node for w in warnings) == [1, 2] and set(d.flags.values()) == {phase.FLAG_BALLISTIC}
    last = kr["recs"][-1]
    assert last.flags == phase.FLAG_BALLISTIC | phase.FLAG_FUSED and last.imp is not None


def test_partners_hear_of_a_threat_to_another_nation():
    # JP and KR share a picture; the missile lands in Honshu. In "partners" mode
    # (the relay's default) KR is warned too, and the WARNING names JP as the
    # threatened nation. AU has no releasable source, hence no picture: nothing.
    p, warnings, _c = make_pipeline({1: {2}, 2: {1}, 3: set()}, warn_partners=True)
    fl = Flight()
    t_us = 2_000_000_000
    now = fly(p, fl, t_us)
    assert sorted(w.node for w in warnings) == [1, 2]
    decoded = [messages.decode(wire.WARNING, w.payload) for w in warnings]
    assert all(m["nation"] == 1 and m["status"] == STATUS_ACTIVE for m in decoded)
    assert len({m["warning_id"] for m in decoded}) == 2             # acknowledged per destination
    # the track is lost: it is coasted and the warnings stay up to the
    # predicted impact; the cancellation then names the same threatened nation
    for n in (1, 2):
        p.picture.drop(n, 5)
    p.dirty = True
    p.round(now + 6_000_000_000)
    assert len(warnings) == 2
    after = decoded[0]["impact_us"] * 1000 + 1_000_000_000
    p.round(after, refresh=True)
    p.apply_impacts(p.impact_job(after)(), after)
    last = {w.node: messages.decode(wire.WARNING, w.payload) for w in warnings}
    assert all(m["status"] == STATUS_OBSOLETE and m["nation"] == 1 for m in last.values())


def test_records_stamped_after_their_receipt_are_clamped_and_counted():
    # JP's clock jumps 5 s ahead: its records claim to be measured after they
    # arrived. They are clamped to their receipt time and counted, and KR's
    # correctly stamped reports keep being fused (none refused as out of order).
    p, _w, _c = make_pipeline({1: {2}, 2: {1}, 3: set()})
    fl = Flight()
    t0 = 1_000_000_000
    for k in range(6):
        t_us = t0 + k * 500_000
        x = fl.ecef(100.0 + 0.5 * k)
        jp_stamp = t_us + (5_000_000 if k >= 2 else 0)
        assert report(p, 1, JP_ORIGIN, x, jp_stamp, 100 + k, rx_us=t_us) == 1
        assert report(p, 2, KR_ORIGIN, x, t_us + 1000, 200 + k, rx_us=t_us + 2000) == 1
        p.round((t_us + 2000) * 1000)
    assert p.stats.records_refused == 0, p.stats.records_refused
    assert p.stats.future_stamped == 4
    (fid, pend), = p.destinations[1].pending.items()                # JP still hears KR's newest report
    assert (2, 205) in pend.sources


def test_bad_payload_counted_not_raised():
    p, _w, controls = make_pipeline({})
    raw = binding.pack_frame(TEST_KEYS[1], 1, 1, 0, binding.MSG_TRACK_REPORT, 0, 1, b"\x01\x00\xff")
    assert p.ingest(1, binding.parse_frame(raw), 0) == 0 and p.stats.decode_errors == 1
    p.keyframe_request(1, b"\x05")                              # malformed KEYFRAME_REQ
    p.warning_ack(1, b"\x00")
    assert p.stats.decode_errors == 3


def test_keyframe_request_resends_the_track_now_with_the_refused_reports():
    """KR's board lost a PICTURE on the wire, so it cannot apply the next
    delta and asks for a keyframe: the track goes out again as a KEY at
    once (from the last round), naming the JP report of the refused delta,
    instead of waiting for JP's next report."""
    p, _w, _c = make_pipeline({1: {2}, 2: {1}})
    fl = Flight()
    t0 = 1_000_000_000
    kr = p.destinations[2]
    board = binding.CodecTable()          # what KR's board holds
    sent = []
    for k in range(3):
        t_us = t0 + k * 500_000
        report(p, 1, JP_ORIGIN, fl.ecef(100.0 + 0.5 * k), t_us, 100 + k)
        report(p, 2, KR_ORIGIN, fl.ecef(100.0 + 0.5 * k), t_us, 200 + k)
        p.round(t_us * 1000)
        sent.append(kr.take(1000, t_us * 1000))
    assert all(item is not None for item in sent)
    _h, b = binding.codec_decode(sent[0].build(), board)       # the KEY arrives
    assert b.status.tolist() == [binding.REC_OK]
    # sent[1] is lost on the wire; sent[2], a delta on it, cannot be applied
    _h, b = binding.codec_decode(sent[2].build(), board)
    assert b.status.tolist() == [binding.REC_NO_BASE]
    fid = int(b.tid[0])
    assert not kr.pending
    req = messages.encode(wire.KEYFRAME_REQ, {"track_ids": [fid]})
    assert p.keyframe_request(2, req, now_ns=(t0 + 1_100_000) * 1000) == 1
    item = kr.take(1000, (t0 + 1_100_000) * 1000)
    assert item is not None
    _h, b = binding.codec_decode(item.build(), board)
    assert b.status.tolist() == [binding.REC_OK] and b.rtype.tolist() == [binding.REC_KEY]
    assert [(int(b.src_node[0, j]), int(b.src_rid[0, j])) for j in range(b.n_src[0])] == [(1, 102)]
    # a track already pending goes out as a keyframe anyway: nothing more is offered
    report(p, 1, JP_ORIGIN, fl.ecef(101.5), t0 + 1_500_000, 103)
    p.round((t0 + 1_500_000) * 1000)
    assert fid in kr.pending and p.keyframe_request(2, req, now_ns=(t0 + 1_500_000) * 1000) == 0


def test_c_rx_path_and_python_path_decide_the_same():
    # The relay's receive path in one C call (tl_relay_ingest: decode into
    # preallocated arrays, rotate to ECEF, store) against the Python path it
    # replaced (codec_decode + Frame6.to_ecef), on the same flight from boost
    # to a warning: every PICTURE record each destination decodes (ids,
    # sources, nations, phase flags, position/velocity/covariance codes,
    # impact) and every warning agree, codes within one quantum (the two
    # paths add the rotation's terms in a different order).
    out = {}
    for hot in (True, False):
        p, warnings, _c = make_pipeline({1: {2}, 2: {1}, 3: set()}, warn_partners=True)
        p.hot_path = hot
        got = {1: {"held": {}, "recs": []}, 2: {"held": {}, "recs": []}}
        fly(p, Flight(), 2_000_000_000, seconds=20, thrust_until_s=321.0, received=got)
        fly(p, Flight(), 2_000_000_000, seconds=25, start_s=321.0, received=got)
        out[hot] = (got, [messages.decode(wire.WARNING, w.payload) for w in warnings + p.launches])
    (c_got, c_warn), (py_got, py_warn) = out[True], out[False]
    assert len(c_warn) >= 2 and [(w["nation"], w["kind"], w["status"]) for w in c_warn] == \
        [(w["nation"], w["kind"], w["status"]) for w in py_warn]
    for node in (1, 2):
        a, b = c_got[node]["recs"], py_got[node]["recs"]
        assert len(a) == len(b) > 40
        for ra, rb in zip(a, b):
            assert (ra.tid, ra.t_us, ra.flags, ra.nations, ra.sources) == (rb.tid, rb.t_us, rb.flags, rb.nations,
                                                                          rb.sources)
            codes_a, codes_b = ra.pq + ra.vq + ra.sig + ra.cor, rb.pq + rb.vq + rb.sig + rb.cor
            assert max(abs(x - y) for x, y in zip(codes_a, codes_b)) <= 1
            assert (ra.imp is None) == (rb.imp is None)
            if ra.imp is not None:
                ia, ib = ra.imp[:2] + ra.imp[3:], rb.imp[:2] + rb.imp[3:]
                assert max(abs(x - y) for x, y in zip(ia, ib)) <= 1 and abs(ra.imp[2] - rb.imp[2]) <= 1000


def test_c_ingest_and_python_ingest_store_the_same():
    # What tl_relay_ingest moved into C (the relay time map, the clamp of
    # future stamps, the store into the picture) against the Python path,
    # frame by frame: board-time and relay-time frames of several records, a
    # record stamped after its receipt, a record the picture refuses (older
    # than the one it holds), and an unclean frame (a DROP: the Python
    # bookkeeping on both paths). Every stored record (as the federation is
    # handed it), the counters, the report receipt times and the fused
    # picture's membership agree exactly; states and covariances to 1e-12
    # (the two paths add the rotation's terms in a different order).
    prec = codec.Precision()
    P = [0.0] * 36
    for i in range(6):
        P[7 * i] = 2500.0 if i < 3 else 25.0
    fl = Flight()
    t0 = 2_000_000_000

    def frame(node, origin, recs, flags, rid0):
        items = []
        for k, (tid, t_us, s) in enumerate(recs):
            u = codec.Update(tid, t_us or rid0, [float(v) for v in to_enu(fl.ecef(s), origin)], P,
                             report_id=rid0 + k)
            items.append((codec.DROP if t_us is None else codec.KEY, codec.quantise(u, prec), 0))
        payload = codec.encode(codec.REPORT, prec, items, base_us=min(t for _i, t, _s in recs if t is not None))
        return binding.parse_frame(binding.pack_frame(TEST_KEYS[node], node, node, 0, binding.MSG_TRACK_REPORT,
                                                      0, 1, payload, flags))

    rt = binding.FLAG_RELAY_TIME
    steps = []   # (node, frame, rx_us)
    for k in range(6):
        rx = t0 + k * 1_000_000 + 20_000
        s = 300.0 + k
        steps.append((1, frame(1, JP_ORIGIN, [(5, rx - 20_000, s), (6, rx - 30_000, s)], rt, 100 * k), rx))
        # board clock 7 s behind: shifted onto the relay's (newest record = receipt)
        steps.append((2, frame(2, KR_ORIGIN, [(5, rx - 7_000_000, s), (9, rx - 7_100_000, s - 0.1)], 0, 100 * k),
                      rx + 5_000))
    rx = t0 + 6_000_000
    steps.append((1, frame(1, JP_ORIGIN, [(5, rx + 400_000, 306.0)], rt, 900), rx))        # stamped ahead: clamped
    steps.append((1, frame(1, JP_ORIGIN, [(6, rx - 9_000_000, 297.0)], rt, 901), rx))      # older than held: refused
    steps.append((2, frame(2, KR_ORIGIN, [(9, rx, 306.0), (5, None, 306.0)], rt, 902), rx))  # a DROP: unclean
    out = {}
    for hot in (True, False):
        p, _w, _c = make_pipeline({1: {2}, 2: {1}, 3: set()})
        p.hot_path = hot
        stored = []
        p.on_stored = lambda *a, stored=stored: stored.append([np.array(v).tolist() for v in a])
        counts = [p.ingest(node, f, rx_us * 1000) for node, f, rx_us in steps]
        p.round(rx * 1000)
        fused = p.picture.fuse(rx / 1e6)
        st = p.stats
        out[hot] = (counts, stored, (st.records_in, st.records_refused, st.future_stamped, st.reports_in),
                    dict(p.report_rx), p.picture.stats(), {k: v.tolist() for k, v in fused.items()})
    assert out[True][2][1] >= 1 and out[True][2][2] == 1     # the refused and the clamped record happened
    assert out[True][0][-1] == 1 and out[True][4]["tracks"] == out[False][4]["tracks"]
    (c_counts, c_stored, c_stats, c_rx, c_pic, c_fused), (py_counts, py_stored, py_stats, py_rx, py_pic, py_fused) = \
        out[True], out[False]
    assert (c_counts, c_stats, c_rx, c_pic) == (py_counts, py_stats, py_rx, py_pic)
    assert len(c_stored) == len(py_stored) == 12 + 1 + 1   # every clean frame but the refused one, and the DROP's
    for a, b in zip(c_stored + [list(c_fused.values())], py_stored + [list(py_fused.values())]):
        for va, vb in zip(a, b):
            np.testing.assert_allclose(np.array(va, dtype=float), np.array(vb, dtype=float), rtol=1e-12, atol=1e-9)
            assert np.shape(va) == np.shape(vb)
    for key in ("fused_id", "nmem", "node", "track", "report"):
        assert c_fused[key] == py_fused[key]
