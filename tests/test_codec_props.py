"""Track codec properties: round trip within the quantisation steps, decoded
covariance positive definite (condition numbers up to 1e8), C and board
codec byte-identical on random input, and every malformed payload rejected
with the same documented reason by both implementations."""
from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from test_codec_vectors import VECS
from trilink_board import codec
from trilink_native import binding as B

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def make_cov(seed: int, cond: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    ev = np.exp(rng.uniform(0, math.log(cond), 6))
    ev[0], ev[-1] = 1.0, cond
    R = Q @ np.diag(ev) @ Q.T
    d = np.sqrt(np.diag(R))
    s = np.concatenate([np.exp(rng.uniform(math.log(0.5), math.log(2e4), 3)),
                        np.exp(rng.uniform(math.log(0.01), math.log(500), 3))])
    return (R / np.outer(d, d)) * np.outer(s, s)


def c_batch(updates, kind) -> B.TrackBatch:
    b = B.TrackBatch.empty(len(updates))
    for i, u in enumerate(updates):
        b.tid[i], b.t_us[i], b.x[i], b.P[i] = u.tid, u.t_us, u.x, np.reshape(u.P, (6, 6))
        b.flags[i], b.nations[i], b.report_id[i] = u.flags, u.nations, u.report_id
    return b


states = st.tuples(*[st.floats(-4e6, 4e6, allow_nan=False)] * 3, *[st.floats(-8e3, 8e3, allow_nan=False)] * 3)


@SETTINGS
@given(x=states, seed=st.integers(0, 2**32 - 1), logcond=st.floats(0, 8),
       pos_mm=st.sampled_from([1, 10, 1000, 5000]), vel_mm=st.sampled_from([1, 20, 50, 1000]),
       tid=st.integers(0, 2**32 - 1), t=st.integers(0, 2**63), rid=st.integers(0, 2**32 - 1))
def test_round_trip_within_steps_and_pd(x, seed, logcond, pos_mm, vel_mm, tid, t, rid):
    P = make_cov(seed, 10 ** logcond)
    u = codec.Update(tid, t, list(x), P.reshape(36).tolist(), 5, 6, rid)
    prec = codec.Precision(pos_mm, vel_mm)
    p = codec.encode(codec.REPORT, prec, [(codec.KEY, codec.quantise(u, prec), 0)])
    b = c_batch([u], codec.REPORT)
    b.rtype[0] = B.REC_KEY
    assert B.codec_encode(B.CODEC_REPORT, b, pos_mm, vel_mm, t) == p   # C == Python
    _, got = B.codec_decode(p)
    r = codec.decode(p).items[0][2]
    assert (got.tid[0], got.t_us[0], got.report_id[0], r.tid, r.t_us) == (tid, t, rid, tid, t)
    steps = np.array([prec.pos] * 3 + [prec.vel] * 3)
    assert np.all(np.abs(got.x[0] - np.array(x)) <= steps / 2 * (1 + 1e-9) + 1e-9 * np.abs(x))
    Pd = got.P[0]
    np.linalg.cholesky(Pd)                                 # positive definite
    assert np.array_equal(Pd, Pd.T)
    ratio = np.sqrt(np.diag(Pd) / np.diag(P))
    assert np.all(ratio <= 2 ** (1 / 16) * (1 + 1e-12)) and np.all(ratio >= 2 ** (-1 / 16) * (1 - 1e-12))


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), logcond=st.floats(0, 2))
def test_covariance_shape_kept(seed, logcond):
    """Whitened by the true covariance, the decoded one stays near identity:
    the quadratic form of any direction is off by less than a factor 2
    (condition numbers up to 1e2; see PROTOCOL.md 5.4 on worse ones)."""
    P = make_cov(seed, 10 ** logcond)
    sig, cor = codec.quantise_cov(P.reshape(36).tolist())
    Pd = np.array(codec.cov_from_codes(sig, cor)).reshape(6, 6)
    L = np.linalg.cholesky(P)
    W = np.linalg.solve(L, np.linalg.solve(L, Pd).T)
    ev = np.linalg.eigvalsh((W + W.T) / 2)
    assert ev.min() > 0.5 and ev.max() < 2.0


@SETTINGS
@given(p=st.floats(-1.5, 1.5))
def test_correlation_code_brackets_value(p):
    c = codec.cor_code(p)
    assert -63 <= c <= 63
    if abs(p) < codec._COR_T[-1]:
        # p lies in its code's bin: between the boundaries either side of tanh(c/16)
        lo = codec._COR_T[abs(c) - 1] if c else 0.0
        assert lo <= abs(p) < codec._COR_T[abs(c)]
        assert abs(math.atanh(codec.cor_value(c)) - math.atanh(max(-0.9999, min(0.9999, p)))) <= 1 / 32 + 1e-12


@SETTINGS
@given(v=st.floats(2.0 ** -100, 2.0 ** 100))
def test_sigma_code_is_nearest_quarter_octave(v):
    k = codec.sig_code(v)
    exact = 4 * math.log2(v)
    if codec.SIG_MIN < k < codec.SIG_MIN + 255:
        assert abs(k - exact) <= 0.5 + 1e-9
        assert codec.sig_var(k) == 2.0 ** (k / 4) or math.isclose(codec.sig_var(k), 2.0 ** (k / 4), rel_tol=1e-15)


def test_extreme_conditioning_still_pd():
    for seed in range(50):
        P = make_cov(seed, 1e8)
        sig, cor = codec.quantise_cov(P.reshape(36).tolist())
        np.linalg.cholesky(np.array(codec.cov_from_codes(sig, cor)).reshape(6, 6))
    # not even PD on input (correlations past 1): codes clamp, output still PD
    P = np.full((6, 6), 0.999999) + np.eye(6) * 1e-9
    P[0, 5] = P[5, 0] = -0.999999
    sig, cor = codec.quantise_cov(P.reshape(36).tolist())
    np.linalg.cholesky(np.array(codec.cov_from_codes(sig, cor)).reshape(6, 6))


# ---- errors ----

def _py_outcome(payload: bytes):
    try:
        d = codec.decode(payload, {})
    except codec.CodecError as e:
        return e.reason
    return [(t, s, r.tid, r.t_us, r.pq, r.vq, r.sig, r.cor, r.flags, r.nations) for t, s, r in d.items]


def _c_outcome(payload: bytes):
    try:
        _, b = B.codec_decode(payload, B.CodecTable(2048))
    except B.CodecError as e:
        return e.reason
    return b


PAYLOADS = [bytes.fromhex(b["payload"]) for v in VECS for b in v["batches"]]


def test_every_truncation_is_truncated_or_malformed_in_both():
    for p in PAYLOADS[:12]:
        for n in range(len(p)):
            a, c = _py_outcome(p[:n]), _c_outcome(p[:n])
            assert isinstance(a, str) and a == c, (p.hex(), n, a, c)
            assert a in ("truncated", "malformed")   # malformed: the cut left nonzero padding


def test_version_kind_precision_count_padding_and_trailing():
    p = PAYLOADS[0]
    cases = {
        bytes([1]) + p[1:]: "version",                     # codec 1: absolute source ids
        bytes([3]) + p[1:]: "version",
        bytes([0]) + p[1:]: "version",
        p[:1] + bytes([2]) + p[2:]: "malformed",          # batch kind
        p[:2] + b"\x00" + p[3:]: "malformed",             # pos step 0 (varint 1000 -> 0x68? cut)
        p + b"\x00": "malformed",                          # trailing byte
        bytes([2, 1, 0xE8, 0x07, 0x32, 0x00, 0x81, 0x08]): "malformed",   # 1025 records
        bytes([2, 1, 0xE8, 0x07, 0x32, 0x00, 0x01, 0xC0]): "malformed",   # record type 3
        bytes([2, 1, 0xE8, 0x07, 0x32, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]): "malformed",
        b"": "truncated",
        b"\x02": "truncated",
    }
    for payload, reason in cases.items():
        assert _py_outcome(payload) == reason, payload.hex()
        assert _c_outcome(payload) == reason, payload.hex()


def test_random_mutations_same_outcome_in_c_and_python():
    rng = random.Random(7)
    same_error = decoded = 0
    for _ in range(3000):
        p = bytearray(rng.choice(PAYLOADS))
        for _ in range(rng.randint(1, 4)):
            op = rng.random()
            if op < 0.6 and p:
                p[rng.randrange(len(p))] ^= 1 << rng.randrange(8)
            elif op < 0.8 and p:
                del p[rng.randrange(len(p)):]
            else:
                p.insert(rng.randrange(len(p) + 1), rng.randrange(256))
        a, c = _py_outcome(bytes(p)), _c_outcome(bytes(p))
        if isinstance(a, str):
            assert a == c, (bytes(p).hex(), a, c)
            same_error += 1
        else:
            assert not isinstance(c, str), (bytes(p).hex(), c)
            assert len(a) == c.n
            for i, (t, s, tid, tus, *_rest) in enumerate(a):
                assert (c.rtype[i], c.status[i], c.tid[i], c.t_us[i]) == (t, s, tid, tus)
            decoded += 1
    assert same_error > 1000 and decoded > 50


def test_encoder_errors():
    prec = codec.Precision()
    P = np.eye(6).reshape(36).tolist()
    for x, P_, reason in (([math.nan] + [0.0] * 5, P, "range"), ([1e17] + [0.0] * 5, P, "range"),
                          ([0.0] * 6, [0.0] * 36, "range"), ([0.0] * 6, [math.inf] + P[1:], "range")):
        with pytest.raises(codec.CodecError) as ei:
            codec.quantise(codec.Update(1, 0, x, P_), prec)
        assert ei.value.reason == reason
        b = c_batch([codec.Update(1, 0, x, P_)], codec.REPORT)
        with pytest.raises(B.CodecError) as ec:
            B.codec_encode(B.CODEC_REPORT, b)
        assert ec.value.reason == reason
    r = codec.quantise(codec.Update(1, 0, [0.0] * 6, P), prec)
    with pytest.raises(codec.CodecError) as ei:
        codec.encode(codec.REPORT, prec, [(codec.DELTA, r, 0)], held={})
    assert ei.value.reason == "no_base"
    b = c_batch([codec.Update(1, 0, [0.0] * 6, P)], codec.REPORT)
    b.rtype[0] = B.REC_DELTA
    with pytest.raises(B.CodecError) as ec:
        B.codec_encode(B.CODEC_REPORT, b, held=B.CodecTable(4))
    assert ec.value.reason == "no_base"
    # too many records for one payload: no_space in both, held unchanged
    many = [codec.Update(i, 0, [1e6] * 3 + [5e3] * 3, P) for i in range(40)]
    held: dict = {}
    with pytest.raises(codec.CodecError) as ei:
        codec.encode(codec.REPORT, prec, [(codec.KEY, codec.quantise(u, prec), 0) for u in many], held=held)
    assert ei.value.reason == "no_space" and held == {}
    table = B.CodecTable(64)
    with pytest.raises(B.CodecError) as ec:
        B.codec_encode(B.CODEC_REPORT, c_batch(many, codec.REPORT), held=table)
    assert ec.value.reason == "no_space" and len(table) == 0


def test_delta_against_wrong_base_is_flagged_not_misapplied():
    prec = codec.Precision()
    P = (np.eye(6) * 4).reshape(36).tolist()
    tx: dict = {}
    rx: dict = {}
    u0 = codec.Update(9, 0, [1e5, 2e5, 3e5, 100.0, 0.0, 0.0], P)
    codec.decode(codec.encode(codec.REPORT, prec, [(codec.KEY, codec.quantise(u0, prec), 0)], held=tx), rx)
    u1 = codec.Update(9, 10**6, [1e5 + 100, 2e5, 3e5 - 5, 100.0, 0.0, -9.8], P)
    lost = codec.encode(codec.REPORT, prec, [(codec.DELTA, codec.quantise(u1, prec), 0)], held=tx)
    u2 = codec.Update(9, 2 * 10**6, [1e5 + 200, 2e5, 3e5 - 20, 100.0, 0.0, -19.6], P)
    p2 = codec.encode(codec.REPORT, prec, [(codec.DELTA, codec.quantise(u2, prec), 0)], held=tx)
    assert codec.decode(p2, rx).items[0][1] == codec.NO_BASE      # frame `lost` never arrived
    rxc = B.CodecTable(4)
    B.codec_decode(bytes.fromhex(codec.encode(codec.REPORT, prec, [(codec.KEY, codec.quantise(u0, prec), 0)]).hex()), rxc)
    assert B.codec_decode(p2, rxc)[1].status[0] == B.REC_NO_BASE
    # in order, the same deltas apply and reproduce the codes exactly
    rx2: dict = {}
    tx2: dict = {}
    for u, t in ((u0, codec.KEY), (u1, codec.DELTA), (u2, codec.DELTA)):
        d = codec.decode(codec.encode(codec.REPORT, prec, [(t, codec.quantise(u, prec), 0)], held=tx2), rx2)
        assert d.items[0][1] == codec.OK and d.items[0][2] == tx2[9]
    assert lost  # (the lost payload was a real delta)


def test_source_id_delta_past_u32_is_malformed_in_both():
    # sources of one node: the first id whole (u32), the next as an se delta
    # (5.5); a delta of -1 ('010') and of +1 ('011') differ in one bit
    def payload(first: int, second: int) -> bytes:
        u = codec.Update(9, 1000, [1.0, 2.0, 3.0, 0.1, 0.2, 0.3], np.eye(6).ravel().tolist(),
                         sources=[(4, first), (4, second)])
        return codec.encode(codec.PICTURE, codec.Precision(), [(codec.KEY, codec.quantise(u, codec.Precision()), 0)])

    minus, plus = payload(16, 15), payload(16, 17)
    mask = bytes(a ^ b for a, b in zip(minus, plus))
    assert len(minus) == len(plus) and sum(bin(m).count("1") for m in mask) == 1
    top = payload(0xFFFFFFFF, 0xFFFFFFFE)
    assert codec.decode(top).items[0][2].sources == [(4, 0xFFFFFFFF), (4, 0xFFFFFFFE)]
    bad = bytes(a ^ m for a, m in zip(top, mask))      # 0xFFFFFFFF + 1
    assert _py_outcome(bad) == "malformed" and _c_outcome(bad) == "malformed"


def test_correlation_tables_are_the_protocol_listing():
    """codec._COR_T / _COR_V (stored as IEEE-double bytes to spare a board's heap) are exactly
    the integer mantissas of docs/PROTOCOL.md 5.4 divided by 2^53."""
    import re
    text = (Path(__file__).resolve().parent.parent / "docs" / "PROTOCOL.md").read_text()
    ct = text[text.index("CT (c = 0..62) ="):text.index("CV (c = 0..63) =")]
    cv = text[text.index("CV (c = 0..63) ="):]
    cv = cv[:cv.index("```")]
    mt = [int(x) for x in re.findall(r"\b\d{6,}\b", ct)]
    mv = [0] + [int(x) for x in re.findall(r"\b\d{6,}\b", cv)]
    assert len(mt) == len(codec._COR_T) == 63 and len(mv) == 64
    assert list(codec._COR_T) == [m / 2 ** 53 for m in mt]
    from trilink_board import codec_host
    assert list(codec_host._COR_V) == [m / 2 ** 53 for m in mv]
