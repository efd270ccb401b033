#!/usr/bin/env python3
"""Write tests/vectors/codec_v2.json: track codec batches (PROTOCOL.md §5)
made by the reference codec (boards/trilink_board/codec.py).

    python tools/make_codec_vectors.py            # rewrites the file
    python tools/make_codec_vectors.py --check    # exit 1 if it would change

Each vector is a *sequence* of batches from one sender to one receiver,
starting with no held copies, so deltas have a base. A record gives its
float inputs with every double as 16 hex digits of its IEEE-754 bits
(little-endian, struct "<d"): JSON decimal parsing is not exact on every
interpreter, the bits are. Each batch gives the expected payload (hex).
Edge cases: half-step positions, variances at powers of two and at the
quarter-octave boundaries (and one ulp below), partial correlations at the
code boundaries (and one ulp below), negative times, large ids, every record
type and SEND_* combination, sources, impacts, non-default precisions, and
random tracks with condition numbers up to 1e8.

The output is a function of this file and the codec alone, on any numpy or
platform: the random inputs come from Python's ``random.random()`` stream
(the one part of the random module whose sequence is guaranteed across
versions) and are shaped with IEEE-754 basic operations only (+ - * /,
sqrt, ldexp, floor): no LAPACK, BLAS or libm transcendental touches a bit
of a vector.
"""
import argparse
import json
import math
import os
import random
import struct
import sys

from trilink_board import codec

HERE = os.path.dirname(os.path.abspath(__file__))

OUT = os.path.join(HERE, "..", "tests", "vectors", "codec_v2.json")


def fhex(v):
    return struct.pack("<d", float(v)).hex()


def below(v):
    return math.nextafter(v, -math.inf)


def eye_p(var=(100.0, 100.0, 100.0, 1.0, 1.0, 1.0)):
    return [[var[i] if i == j else 0.0 for j in range(6)] for i in range(6)]


class Rng:
    """Deterministic random inputs from ``random.random()`` alone.

    >>> Rng(1).uniform(2.0, 3.0) == Rng(1).uniform(2.0, 3.0)
    True
    """

    def __init__(self, seed):
        self._r = random.Random(seed)

    def uniform(self, lo, hi, n=None):
        if n is not None:
            return [self.uniform(lo, hi) for _ in range(n)]
        return lo + (hi - lo) * self._r.random()

    def integers(self, lo, hi):
        """An int in [lo, hi)."""
        return lo + int((hi - lo) * self._r.random())

    def normal(self, mu=0.0, sigma=1.0, n=None):
        """Irwin-Hall (sum of 12 uniforms, minus 6): close enough to normal
        for test inputs, and exact arithmetic."""
        if n is not None:
            return [self.normal(mu, sigma) for _ in range(n)]
        s = 0.0
        for _ in range(12):
            s += self._r.random()
        return mu + sigma * (s - 6.0)

    def log2_uniform(self, lo_exp, hi_exp):
        """A value between 2**lo_exp and 2**hi_exp, log-uniform to within a
        piecewise-linear mantissa."""
        return pow2(self.uniform(lo_exp, hi_exp))


def pow2(t):
    """About 2**t, exactly reproducible: ldexp of a linear mantissa (ldexp
    is exact; pow and exp are libm's and may differ in the last bit)."""
    e = math.floor(t)
    return math.ldexp(1.0 + (t - e), e)


def _dot(a, b):
    s = 0.0
    for u, v in zip(a, b):
        s += u * v
    return s


def is_pd(P):
    """True when the Cholesky factorisation of P has positive pivots."""
    n = len(P)
    L = [[0.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1):
            s = P[i][j] - _dot(L[i][:j], L[j][:j])
            if i == j:
                if not s > 0.0:
                    return False
                L[i][i] = math.sqrt(s)
            else:
                L[i][j] = s / L[j][j]
    return True


def rand_cov(rng, log2_cond):
    """Random SPD covariance: position sigmas ~1 m..5 km, velocity
    ~0.05..200 m/s, random correlations, eigen-spectrum stretched to
    condition number ~2**log2_cond. The rotation is Gram-Schmidt on random
    rows."""
    Q = []
    while len(Q) < 6:
        v = rng.normal(n=6)
        for q in Q:
            d = _dot(v, q)
            v = [a - d * b for a, b in zip(v, q)]
        nv = math.sqrt(_dot(v, v))
        if nv > 1e-6:
            Q.append([a / nv for a in v])
    ev = [rng.log2_uniform(0.0, log2_cond) for _ in range(6)]
    ev[0], ev[-1] = 1.0, pow2(log2_cond)
    R = [[sum(Q[k][i] * ev[k] * Q[k][j] for k in range(6)) for j in range(6)] for i in range(6)]
    d = [math.sqrt(R[i][i]) for i in range(6)]
    s = [rng.log2_uniform(0.0, 12.29) for _ in range(3)] + [rng.log2_uniform(-4.32, 7.64) for _ in range(3)]
    return [[R[i][j] / (d[i] * d[j]) * (s[i] * s[j]) for j in range(6)] for i in range(6)]


def flat(P):
    return [float(v) for row in P for v in row]


def scaled(P, k):
    return [[v * k for v in row] for row in P]


def rec(tid, t, x, P, rtype=codec.KEY, send=0, flags=0, nations=0, report_id=0, sources=(), impact=None):
    return {"rtype": rtype, "send": send, "tid": tid, "t_us": t, "x": [fhex(v) for v in x],
            "P": [fhex(v) for v in flat(P)], "flags": flags, "nations": nations,
            "report_id": report_id, "sources": [list(s) for s in sources],
            "impact": None if impact is None else [fhex(impact[0]), fhex(impact[1]), impact[2],
                                                   fhex(impact[3]), fhex(impact[4]), fhex(impact[5])]}


def to_update(r):
    """codec.Update of a vector record (shared with the tests)."""
    x = [struct.unpack("<d", bytes.fromhex(h))[0] for h in r["x"]]
    P = [struct.unpack("<d", bytes.fromhex(h))[0] for h in r["P"]]
    imp = r["impact"]
    if imp is not None:
        f = lambda h: struct.unpack("<d", bytes.fromhex(h))[0]  # noqa: E731
        imp = (f(imp[0]), f(imp[1]), imp[2], f(imp[3]), f(imp[4]), f(imp[5]))
    return codec.Update(r["tid"], r["t_us"], x, P, r["flags"], r["nations"], r["report_id"],
                        [tuple(s) for s in r["sources"]], imp)


def run(seq):
    """Fill in each batch's payload with the reference encoder."""
    held = {}
    for b in seq["batches"]:
        prec = codec.Precision(b["pos_mm"], b["vel_mm"])
        items = []
        for r in b["records"]:
            if r["rtype"] == codec.DROP:
                q = codec.Rec()
                q.tid, q.t_us = r["tid"], r["t_us"]
                q.report_id = r["report_id"]
            else:
                q = codec.quantise(to_update(r), prec)
            items.append((r["rtype"], q, r["send"]))
        b["payload"] = codec.encode(b["kind"], prec, items, base_us=b["base_us"], held=held).hex()
    return seq


def batch(kind, records, base_us=None, pos_mm=1000, vel_mm=50):
    return {"kind": kind, "pos_mm": pos_mm, "vel_mm": vel_mm,
            "base_us": records[0]["t_us"] if base_us is None else base_us, "records": records}


def vectors():
    rng = Rng(20240603)
    R, PIC = codec.REPORT, codec.PICTURE
    K, D, X = codec.KEY, codec.DELTA, codec.DROP
    x0 = [123456.4, -654321.5, 400000.5, 2500.025, -1234.575, 800.0]
    out = []
    # 1. one keyframe, default precision, half-step rounding both signs
    out.append({"name": "key_half_steps", "batches": [batch(R, [rec(7, 10**12, x0, eye_p(), report_id=1001)])]})
    # 2. empty batches of both kinds
    out.append({"name": "empty", "batches": [batch(R, [], base_us=0) | {"records": []},
                                             batch(PIC, [], base_us=2**63 + 5) | {"records": []}]})
    # 3. variances at powers of two and at the sigma-code boundaries (and one ulp below)
    recs = []
    tid = 1
    for k in (-100, -60, -24, -1, 0, 1, 17, 39, 60, 100):
        recs.append(rec(tid, 5000, x0, eye_p([2.0 ** k] * 6)))
        tid += 1
    for i in range(4):
        t = codec._SIG_T[i]
        for e in (-20, 0, 3, 21):
            v = math.ldexp(t, e)
            recs.append(rec(tid, 5000, x0, eye_p([v, below(v), v, below(v), v, below(v)])))
            tid += 1
    out.append({"name": "sigma_boundaries", "batches": [batch(R, recs[:20]), batch(R, recs[20:])]})
    # 4. partial correlations at the code boundaries (unit variances: p = P[i][0] exactly)
    recs = []
    for c in range(0, 63, 2):
        P = eye_p([1.0] * 6)
        t = codec._COR_T[c]
        for i, v in ((1, t), (2, below(t)), (3, -t), (4, -below(t)), (5, codec._COR_T[c + 1] if c < 62 else 1.0)):
            P[i][0] = P[0][i] = v
        # keep P positive definite: the other correlations stay 0 only for small ones
        recs.append(rec(100 + c, 9000, x0, P if is_pd(P) else eye_p([1.0] * 6)))
    P = eye_p([1.0] * 6)
    for i in range(1, 6):
        P[i][0] = P[0][i] = codec._COR_T[60 + (i % 3)]
    recs.append(rec(200, 9000, x0, P))   # not PD: codes clamp, decode is PD anyway
    out.append({"name": "correlation_boundaries", "batches": [batch(PIC, recs[:17]), batch(PIC, recs[17:])]})
    # 5. a DR-like sequence: key, deltas with every SEND_* combination, drop, re-key
    seq = []
    x = [200e3, 300e3, 150e3, -1500.0, 2200.0, 900.0]
    P = rand_cov(rng, 13.3)
    t = 50 * 10**6
    seq.append(batch(PIC, [rec(42, t, x, P, K, 0, 3, 6, sources=[(1, (5 << 20) | 77), (2, (1023 << 20) | 5)],
                               impact=(900e3, 1.1e6, t + 400 * 10**6, 12e3, 4e3, 171.5)),
                           rec(43, t + 3, [v * 0.5 for v in x], rand_cov(rng, 3.3), K, 0, 1, 2)]))
    for step in range(8):
        t += 1_700_000
        x = [a + b * 1.7 for a, b in zip(x, [x[3], x[4], x[5], 0.0, 0.0, -9.8])]
        x[5] -= 0.3 * step
        Pn = scaled(P, 1.0 + 0.3 * step)
        send = step % 8
        imp = (905e3 + step * 33, 1.1e6 - step * 7, t + (400 - step) * 10**6, 11e3, 4.1e3, 172.0 + step)
        seq.append(batch(PIC, [rec(42, t, x, Pn, D, send, 3 + (step >= 4), 6 | (step >= 6),
                                   sources=[(1, (5 << 20) | (78 + step)), (2, (1023 << 20) | (9 - step))] if step % 3 else [],
                                   impact=imp),
                               rec(43, t + 10, [v * 0.5 for v in x], rand_cov(rng, 3.3), D, send & 1, 1, 2)],
                         base_us=t - 1000))
    seq.append(batch(PIC, [rec(43, t + 20, x, P, X), rec(42, t + 30, x, P, D, 0)]))
    seq.append(batch(PIC, [rec(43, t + 40, [v * 0.5 for v in x], P, K, 0, 1, 2),
                           rec(43, t + 50, [v * 0.5 + 1 for v in x], P, D, 1, 1, 2)]))
    out.append({"name": "picture_deltas", "batches": seq})
    # 5b. board report ids (5.5: epoch << 20 | n): per node the first id whole, then
    # deltas of either sign, repeated nodes in one record, and the u32 extremes
    recs = []
    xb = [10e3, 20e3, 30e3, 100.0, -50.0, 10.0]
    for i in range(6):
        src = [(1, (7 << 20) | (1000 + 3 * i + k)) for k in range(2)]
        src += [(2, (300 << 20) | (500 - i)), (3, (1023 << 20) | (2**20 - 1 - 2 * i))]
        recs.append(rec(600 + i, 3 * 10**6 + i, xb, eye_p(), K, 0, 1, 7, sources=src))
    recs.append(rec(700, 3 * 10**6 + 9, xb, eye_p(), K, 0, 1, 7,
                    sources=[(255, 0xFFFFFFFF), (255, 0), (255, 0xFFFFFFFF), (0, 0), (0, 1 << 20)]))
    out.append({"name": "board_report_ids", "batches": [batch(PIC, recs), batch(PIC, recs[4:][::-1])]})
    # 6. reports: increasing report ids, sorted and unsorted ids, negative time deltas
    recs = []
    for i in range(12):
        tid = [5, 9, 2, 400000, 4294967295, 0, 17, 18, 19, 3, 1, 65536][i]
        recs.append(rec(tid, 10**9 + 137 * (i % 5) - 300 * (i % 2), [v * k for v, k in zip(rng.normal(0, 3e5, 6), [1, 1, 1, 0.01, 0.01, 0.01])],
                        rand_cov(rng, rng.uniform(0.0, 26.6)), K, 0, i, 1 << (i % 3), 4000000 + i * (1 + i % 2)))
    seq = [batch(R, recs, base_us=10**9)]
    recs2 = [dict(r) for r in recs[:6]]
    for r in recs2:
        r["rtype"], r["send"], r["t_us"], r["report_id"] = D, 3, r["t_us"] + 100000, r["report_id"] + 100
    seq.append(batch(R, recs2))
    out.append({"name": "report_ids_and_times", "batches": seq})
    # 7. non-default precisions
    for pos_mm, vel_mm in ((1, 1), (7, 3), (65535, 65535), (250, 10)):
        xr = [31415.9265, -2718.2818, 1414.2135, 1.6180339, -299.792458, 6.62607]
        recs = [rec(1, 0, xr, rand_cov(rng, 10.0), K, 0, 255, 0xFFFFFFFF, 0xFFFFFFFF)]
        b1 = batch(R, recs, pos_mm=pos_mm, vel_mm=vel_mm)
        r2 = dict(recs[0])
        r2.update(rtype=D, send=1, t_us=1_234_567, x=[fhex(v + 3.3) for v in xr])
        out.append({"name": "precision_%d_%d" % (pos_mm, vel_mm),
                    "batches": [b1, batch(R, [r2], pos_mm=pos_mm, vel_mm=vel_mm)]})
    # 8. random ballistic-like keyframes, condition numbers 1 .. 1e8
    recs = []
    for i in range(40):
        x = rng.uniform(-2e6, 2e6, 2) + rng.uniform(-3e5, 1.2e6, 1) + rng.uniform(-6000, 6000, 3)
        recs.append(rec(1000 + i, 7 * 10**6 + i * 1000, x, rand_cov(rng, 26.6 * i / 39), K, 0,
                        rng.integers(0, 256), rng.integers(1, 8),
                        sources=[(int(rng.integers(1, 4)), int(rng.integers(0, 2**32)))] * int(i % 4),
                        impact=None if i % 2 else (rng.uniform(-3e6, 3e6), rng.uniform(-3e6, 3e6),
                                                   7 * 10**6 + int(rng.integers(0, 2 * 10**9)),
                                                   rng.uniform(0, 5e4), rng.uniform(0, 1e4), rng.uniform(-400, 400))))
    out.append({"name": "random_keyframes", "batches": [batch(PIC, recs[i:i + 10]) for i in range(0, 40, 10)]})
    for v in out:
        for b in v["batches"]:
            for r in b["records"]:
                for k in ("flags", "nations", "report_id", "tid", "t_us"):
                    r[k] = int(r[k])
        run(v)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if the file would change")
    a = ap.parse_args(argv)
    text = json.dumps({"format": "trilink-codec-vectors/1", "codec_version": codec.VERSION,
                       "vectors": vectors()}, indent=1) + "\n"
    if a.check:
        with open(OUT) as fh:
            return 0 if fh.read() == text else 1
    with open(OUT, "w") as fh:
        fh.write(text)
    print("wrote", OUT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
