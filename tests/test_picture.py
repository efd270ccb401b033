"""Fused track picture (native/c/picture.c): association across sources,
persistence, stable ids, release-aware fusion, deletion and bad input."""
import numpy as np
import pytest

from trilink_native import binding

P0 = np.diag([300.0**2] * 3 + [10.0**2] * 3)
NOISE = np.array([200.0] * 3 + [0.0] * 3)


def _targets(n: int, spacing: float = 50e3) -> np.ndarray:
    """n ballistic-looking ECEF states 300 km up, `spacing` apart, 3 km/s."""
    x = np.zeros((n, 6))
    x[:, 0] = 6.678e6
    x[:, 1] = np.arange(n) * spacing
    x[:, 4] = 3.0e3
    x[:, 5] = 1.0e3
    return x


def _report(pic, node, ids, x, t, rids=None, P=P0):
    n = len(ids)
    rids = np.arange(n) + 100 * node if rids is None else rids
    st = pic.update([node] * n, ids, rids, [t] * n, x, np.broadcast_to(P, (n, 6, 6)))
    assert (st == 0).all()


def _pairs(out):
    """{fused id: sorted ((node, track), ...)}"""
    return {int(f): tuple(sorted(zip(out["node"][i, :m].tolist(), out["track"][i, :m].tolist())))
            for i, (f, m) in enumerate(zip(out["fused_id"], out["nmem"]))}


def test_two_sources_associate_each_target_with_stable_ids():
    rng = np.random.default_rng(1)
    pic = binding.Picture()
    truth = _targets(20)
    ids1, ids2 = np.arange(20) + 1000, rng.permutation(20) + 2000
    first = None
    for k in range(5):
        t = float(k)
        _report(pic, 1, ids1, truth + rng.normal(size=(20, 6)) * NOISE, t)
        _report(pic, 2, ids2, truth + rng.normal(size=(20, 6)) * NOISE, t,
                rids=np.arange(20) + 7000 + k)
        pic.associate(t)
        out = pic.fuse(t)
        pairs = _pairs(out)
        assert len(pairs) == 20 and (out["nmem"] == 2).all()
        for members in pairs.values():
            (n1, a), (n2, b) = members
            assert (n1, n2) == (1, 2) and ids2[a - 1000] == b  # same truth index
        first = first or pairs
        assert pairs == first  # ids do not change between rounds
        # report ids of the last reports travel with the members
        assert set(out["report"][:, 1].tolist()) == set(range(7000 + k, 7020 + k))
    assert pic.stats()["switched"] == 0 and pic.stats()["fused"] == 20


def test_release_mask_fuses_only_releasable_sources():
    pic = binding.Picture()
    truth = _targets(3)
    _report(pic, 1, [1, 2, 3], truth, 0.0)
    _report(pic, 2, [1, 2, 3], truth + [100, 0, 0, 0, 0, 0], 0.0, P=4 * P0)
    pic.associate(0.0)
    both, only1, only2 = pic.fuse(0.0), pic.fuse(0.0, sources=[1]), pic.fuse(0.0, sources=[2])
    assert both["fused_id"].tolist() == only1["fused_id"].tolist() == only2["fused_id"].tolist()
    assert (only1["nmem"] == 1).all() and (only1["node"][:, 0] == 1).all()
    np.testing.assert_array_equal(only1["x"], truth)  # one member: its own state, unchanged
    np.testing.assert_array_equal(only2["x"], truth + [100, 0, 0, 0, 0, 0])
    assert pic.fuse(0.0, sources=[5])["fused_id"].size == 0
    assert pic.fuse(0.0, mask=0)["fused_id"].size == 0
    # the fused state is the CI of the members (source 1 dominates: 4x smaller P)
    x, P, w = binding.ci_fuse([truth[0], truth[0] + [100, 0, 0, 0, 0, 0]], [P0, 4 * P0])
    np.testing.assert_allclose(both["x"][0], x, rtol=0, atol=1e-6)
    np.testing.assert_allclose(both["weight"][0, :2], w[np.argsort([1, 2])], atol=1e-9)


def test_fused_state_is_ci_of_members_predicted_to_the_common_time():
    pic = binding.Picture()
    truth = _targets(1)
    _report(pic, 1, [1], truth, 0.0)
    moved = truth.copy()
    st, x2, P2, _ = binding.predict_one(truth[0], 2 * P0, 1.5)
    _report(pic, 2, [9], x2[None], 1.5, P=P2)
    pic.associate(2.0)
    out = pic.fuse(2.0)
    xa, Pa = truth.copy(), P0[None].copy()
    binding.predict(xa, Pa, np.zeros(1), 2.0)
    xb, Pb = x2[None].copy(), P2[None].copy()
    binding.predict(xb, Pb, np.full(1, 1.5), 2.0)
    x, P, _ = binding.ci_fuse([xa[0], xb[0]], [Pa[0], Pb[0]])
    assert out["nmem"].tolist() == [2]
    np.testing.assert_allclose(out["x"][0], x, rtol=1e-12, atol=1e-6)
    np.testing.assert_allclose(out["P"][0], P, rtol=1e-9, atol=1e-9)
    del moved


def _close_pair_picture(**cfg):
    pic = binding.Picture(**cfg)
    truth = _targets(2, spacing=600.0)  # within each other's gate
    _report(pic, 1, [1, 2], truth, 0.0)
    _report(pic, 2, [1, 2], truth, 0.0)
    pic.associate(0.0)
    return pic, truth


def test_one_noisy_update_does_not_flip_an_association():
    for bonus in (0.0, 4.0):
        pic, truth = _close_pair_picture(stay_bonus=bonus)
        before = {n: pic.lookup(2, n) for n in (1, 2)}
        assert before[1] != before[2] and pic.lookup(1, 1) == before[1]
        # source 2's track 1 jumps onto target 2 and back: one bad round
        _report(pic, 2, [1, 2], truth[::-1], 1.0)
        _report(pic, 1, [1, 2], truth, 1.0)
        pic.associate(1.0)
        assert {n: pic.lookup(2, n) for n in (1, 2)} == before
        _report(pic, 2, [1, 2], truth, 2.0)
        _report(pic, 1, [1, 2], truth, 2.0)
        pic.associate(2.0)
        assert {n: pic.lookup(2, n) for n in (1, 2)} == before
        assert pic.stats()["switched"] == 0


def test_a_persistent_change_switches_after_switch_frames_rounds():
    pic, truth = _close_pair_picture(stay_bonus=0.0, switch_frames=3)
    ids = {(nd, n): pic.lookup(nd, n) for nd in (1, 2) for n in (1, 2)}
    for k in range(1, 4):
        _report(pic, 1, [1, 2], truth, float(k))
        _report(pic, 2, [1, 2], truth[::-1], float(k))  # source 2 swapped its ids for good
        pic.associate(float(k))
        if k < 3:
            assert pic.stats()["switched"] == 0
    assert pic.stats()["switched"] == 2
    # the tracks are again paired by truth, both fused ids survive
    assert pic.lookup(1, 1) == pic.lookup(2, 2) and pic.lookup(1, 2) == pic.lookup(2, 1)
    assert {pic.lookup(1, 1), pic.lookup(1, 2)} == {ids[(1, 1)], ids[(1, 2)]}


def test_initiation_merge_keeps_the_older_id_and_deletion():
    pic = binding.Picture(timeout=5.0)
    truth = _targets(1)
    _report(pic, 1, [7], truth, 0.0)
    pic.associate(0.0)
    _report(pic, 2, [8], truth + [30e3, 0, 0, 0, 0, 0], 0.0)  # biased: outside the gate
    pic.associate(0.0)
    a, b = pic.lookup(1, 7), pic.lookup(2, 8)
    assert a and b and a < b and pic.stats()["initiated"] == 2
    _report(pic, 2, [8], truth, 0.5)  # bias resolved: the lone track merges at once
    pic.associate(0.5)
    assert pic.lookup(1, 7) == pic.lookup(2, 8) == a
    assert pic.stats()["merged"] == 1 and pic.stats()["fused"] == 1
    # source 1 stops reporting: its track times out, the fused track lives on
    for k in range(1, 8):
        _report(pic, 2, [8], truth, 0.5 + k)
        pic.associate(0.5 + k)
    assert pic.stats()["timed_out"] == 1
    with pytest.raises(binding.PictureError) as e:
        pic.lookup(1, 7)
    assert e.value.code == 17
    assert pic.fuse(7.5)["fused_id"].tolist() == [a]
    pic.drop(2, 8)
    assert pic.stats()["fused"] == 0 and pic.fuse(7.5)["fused_id"].size == 0


def test_bad_input_is_refused_and_leaves_other_tracks_untouched():
    pic = binding.Picture()
    truth = _targets(3)
    _report(pic, 1, [1, 2, 3], truth, 5.0)
    _report(pic, 2, [1, 2, 3], truth, 5.0)
    pic.associate(5.0)
    before = pic.fuse(5.0)
    bad_x = truth[:1].copy()
    bad_x[0, 2] = np.nan
    not_pd = -P0
    cases = [
        ([1], [1], 4.0, truth[:1], P0, 3),  # older than the stored track
        ([1], [2], 6.0, bad_x, P0, 1),  # NaN
        ([1], [3], 6.0, truth[:1], not_pd, 2),  # not positive definite
        ([1], [3], np.inf, truth[:1], P0, 1),  # infinite time
        ([64], [3], 6.0, truth[:1], P0, 18),  # node id above 63
        ([1], [4], 6.0, np.zeros((1, 6)), P0, 5),  # at the Earth's centre
    ]
    for node, tid, t, x, P, code in cases:
        st = pic.update(node, tid, [0], [t], x, P[None])
        assert st.tolist() == [code]
    after = pic.fuse(5.0)
    for key in before:
        np.testing.assert_array_equal(before[key], after[key])
    with pytest.raises(binding.PictureError):
        pic.drop(1, 99)
    with pytest.raises(binding.PictureError):
        pic.lookup(3, 1)
    with pytest.raises(binding.PictureError):
        pic.associate(float("nan"))
    with pytest.raises(ValueError):
        pic.update([1], [1], [0], [1.0], truth[:2], P0[None])
    with pytest.raises(ValueError):
        pic.fuse(5.0, sources=[70])
    # a mixed batch: the good records are stored, the bad one is not
    st = pic.update([1, 1], [10, 11], [0, 0], [6.0, 6.0], [truth[0], bad_x[0]], [P0, P0])
    assert st.tolist() == [0, 1]
    assert pic.stats()["tracks"] == 7


def test_tables_are_bounded():
    pic = binding.Picture()
    cap = 256
    x = _targets(cap + 5, spacing=10e3)
    st = pic.update([1] * (cap + 5), np.arange(cap + 5), np.zeros(cap + 5), np.zeros(cap + 5), x,
                    np.broadcast_to(P0, (cap + 5, 6, 6)))
    assert (st[:cap] == 0).all() and (st[cap:] == 16).all()
    pic.associate(0.0)
    assert pic.stats()["fused"] == cap and len(pic.fuse(0.0)["fused_id"]) == cap


def test_first_round_matches_the_numpy_reference_frame():
    from scipy.optimize import linear_sum_assignment

    from trilink_native.reference import fusion as ref

    rng = np.random.default_rng(11)
    n = 30
    truth = _targets(n, spacing=1500.0)  # close enough that gates overlap
    xa = truth + rng.normal(size=(n, 6)) * np.array([300.0] * 3 + [5.0] * 3)
    xb = truth + rng.normal(size=(n, 6)) * np.array([300.0] * 3 + [5.0] * 3)
    xb[:3, 0] += 50e3  # three of b's tracks match nothing
    Pb = np.broadcast_to(2 * P0, (n, 6, 6))
    pic = binding.Picture()
    _report(pic, 1, np.arange(n), xa, 0.0)
    _report(pic, 2, np.arange(n), xb, 0.0, P=2 * P0)
    pic.associate(0.0)
    out = pic.fuse(0.0)
    got = {}
    for i, m in enumerate(out["nmem"]):
        key = tuple(sorted(zip(out["node"][i, :m].tolist(), out["track"][i, :m].tolist())))
        got[key] = (out["x"][i], out["P"][i])
    want = ref.frame(xa, np.broadcast_to(P0, (n, 6, 6)), xb, Pb,
                     assign_fn=lambda c: linear_sum_assignment(c))
    assert len(got) == len(want)
    for ia, jb, x, P in want:
        key = tuple(k for k in ((1, ia), (2, jb)) if k[1] is not None)
        np.testing.assert_allclose(got[key][0], x, rtol=0, atol=1e-4)
        np.testing.assert_allclose(got[key][1], P, rtol=1e-6)
