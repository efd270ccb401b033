#!/usr/bin/env python3
"""Track codec benchmark (PROTOCOL.md section 5): bytes on the wire per input
update, and C vs pure-Python encode/decode throughput, in one run.

    python tools/bench_codec.py [--missiles 24] [--seconds 300] [--quick]

Stream: `--missiles` ballistic tracks after boost (the board's truth physics:
J2 gravity, rotating local ENU; apogees 100-1000 km), each fed at 10 Hz with
an AR(1) tracker error of ~15 m and a breathing covariance and two source
reports with board report ids (epoch << 20 | n), as a relay
would emit them: one PICTURE batch per 100 ms tick holding every track.
Each encoding's payloads go in frames of at most 1024 payload bytes; every
frame costs 28 bytes (header, tag, CRC) + 2 (COBS + 0x00) shared over its
records. "bytes/update" = all frame bytes / all input updates.
"""
from __future__ import annotations

import argparse
import math
import struct
import sys
import time
import zlib

import numpy as np

from trilink_board import codec, geo, motion
from trilink_native import binding as B

FRAME = 28 + 2          # frame overhead + COBS byte + delimiter (a 1024-byte payload needs 5 COBS bytes: ignored)
MAXP = 1024
RAW = 8 * (6 + 21) + 4 + 8   # float64 state + upper-triangle covariance + u32 id + u64 time
CAT062 = 60             # bytes: an ASTERIX CAT062 record with position, velocity, accuracies, time, track no.
LAT, LON = 39.2, 125.67


def stream(missiles, seconds, seed=11):
    """[(t_us, TrackBatch of all live tracks)] per 100 ms tick."""
    f = geo.LocalFrame(LAT, LON, 0.0)
    rng = np.random.default_rng(seed)
    states = []
    for m in range(missiles):
        az = rng.uniform(0, 2 * math.pi)
        sp = rng.uniform(1500, 4500)
        gam = rng.uniform(math.radians(35), math.radians(70))
        states.append([rng.uniform(-2e5, 2e5), rng.uniform(-2e5, 2e5), rng.uniform(60e3, 150e3),
                       sp * math.cos(gam) * math.sin(az), sp * math.cos(gam) * math.cos(az), sp * math.sin(gam)])
    errs = np.zeros((missiles, 3))
    ticks = []
    for k in range(int(seconds * 10)):
        t = k * 100000
        live = [i for i in range(missiles) if states[i][2] > 5000.0]
        if not live:
            break
        b = B.TrackBatch.empty(len(live))
        for j, i in enumerate(live):
            errs[i] = 0.98 * errs[i] + rng.normal(0, 15 * math.sqrt(1 - 0.98 ** 2), 3)
            spp = 30.0 * (1.5 + math.cos(k / 600.0 + i))
            P = np.diag([spp ** 2] * 3 + [(spp / 20) ** 2] * 3)
            for a in range(3):
                P[a, a + 3] = P[a + 3, a] = 0.8 * spp * spp / 20
            b.tid[j], b.t_us[j] = 100 + i, t
            b.x[j] = np.array(states[i]) + np.concatenate([errs[i], errs[i] * 0.2])
            b.P[j] = P
            b.nations[j] = 6
            b.n_src[j] = 2
            b.src_node[j, :2] = (1, 2)
            # board report ids (PROTOCOL 5.5): (epoch mod 1024) << 20 | n, each
            # board numbering its reports of every track per tick
            n_rep = missiles * k + i + 1
            b.src_rid[j, :2] = ((5 << 20) | n_rep, (9 << 20) | n_rep)
        ticks.append((t, b))
        for i in live:
            motion.propagate(f, states[i], 0.1)
    return ticks


def frames_for(record_sizes):
    """Bytes on the wire for records of the given sizes packed into <= 1024-byte payloads."""
    total, cur = 0, 0
    for s in record_sizes:
        if cur and cur + s > MAXP:
            total += cur + FRAME
            cur = 0
        cur += s
    return total + (cur + FRAME if cur else 0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--missiles", type=int, default=24)
    ap.add_argument("--seconds", type=float, default=300.0)
    ap.add_argument("--quick", action="store_true", help="a short run (CI smoke)")
    a = ap.parse_args(argv)
    if a.quick:
        a.missiles, a.seconds = 6, 30.0
    ticks = stream(a.missiles, a.seconds)
    n_in = sum(b.n for _, b in ticks)
    print("stream: %d missiles, %d ticks at 10 Hz, %d input updates" % (a.missiles, len(ticks), n_in))

    # raw float64 and zlib -9 of it (each frame's payload compressed on its own, and the whole stream)
    raw_wire = 0
    z_wire = 0
    raw_all = bytearray()
    for _, b in ticks:
        recs = []
        for j in range(b.n):
            iu = np.triu_indices(6)
            recs.append(struct.pack("<IQ", int(b.tid[j]), int(b.t_us[j])) + b.x[j].tobytes() + b.P[j][iu].tobytes())
        raw_wire += frames_for([len(r) for r in recs])
        per = MAXP // RAW
        for i in range(0, len(recs), per):
            z_wire += len(zlib.compress(b"".join(recs[i:i + per]), 9)) + FRAME
        raw_all += b"".join(recs)
    z_stream = len(zlib.compress(bytes(raw_all), 9))
    cat_wire = sum(frames_for([CAT062] * b.n) for _, b in ticks)

    # keyframe-only (C codec, every update a KEY), split into <= 1024-byte payloads
    key_wire = 0
    key_sizes = []
    for t, b in ticks:
        b.rtype[:] = B.REC_KEY
        start = 0
        while start < b.n:
            n = b.n - start
            while True:
                try:
                    p = B.codec_encode(B.CODEC_PICTURE, b.take(slice(start, start + n)), base_us=t)
                    break
                except B.CodecError as e:
                    if e.reason != "no_space":
                        raise
                    n = n * 3 // 4
            key_wire += len(p) + FRAME
            start += n
    # keyframe record sizes: one-record payloads minus their header (no sources: the bare record)
    for t, b in ticks[:: max(1, len(ticks) // 50)]:
        for j in range(b.n):
            one = b.take(slice(j, j + 1))
            one.n_src[:] = 0
            one.rtype[:] = B.REC_KEY
            p = B.codec_encode(B.CODEC_PICTURE, one, base_us=int(one.t_us[0]))
            empty = B.codec_encode(B.CODEC_PICTURE, B.TrackBatch.empty(0), base_us=int(one.t_us[0]))
            key_sizes.append(len(p) - len(empty))

    # full encoding: dead reckoning per destination (C), frames only when something is sent
    dr = B.DeadReckoner(B.CODEC_PICTURE, LAT)
    dr_wire = 0
    dr_frames = 0
    for t, b in ticks:
        b.rtype[:] = B.DR_UPDATE
        for p in dr.encode(b, base_us=t):
            dr_wire += len(p) + FRAME
            dr_frames += 1
    c = dr.counters

    print()
    print("bytes on the wire per input update (frame overhead %d B shared over each frame's records)" % FRAME)
    rows = [("raw float64 struct (%d B/record)" % RAW, raw_wire),
            ("zlib -9, each raw frame", z_wire),
            ("zlib -9, whole raw stream (no frames)", z_stream),
            ("CAT062-sized record (%d B assumed)" % CAT062, cat_wire),
            ("trilink keyframes only", key_wire),
            ("trilink full (keyframes + deltas + DR)", dr_wire)]
    for name, w in rows:
        print("  %-42s %9.2f B   %7.1fx smaller than raw" % (name, w / n_in, raw_wire / w))
    print("  keyframe record (PICTURE, covariance, no sources): mean %.1f B, max %d B (target <= 40)"
          % (np.mean(key_sizes), max(key_sizes)))
    print("  DR: %d of %d updates sent (%d keyframes, %d deltas, %.1f%% suppressed), %d frames;"
          " reasons: heartbeat %d, position %d, covariance %d"
          % (c["keyframes"] + c["deltas"], c["inputs"], c["keyframes"], c["deltas"],
             100.0 * c["suppressed"] / c["inputs"], dr_frames, c["heartbeat"], c["position"], c["covariance"]))

    # throughput: keyframe batches of 25 records (one 1024-byte payload)
    t0, b0 = ticks[len(ticks) // 3]
    nb = min(25, b0.n)
    bb = b0.take(slice(0, nb))
    bb.rtype[:] = B.REC_KEY
    bb.n_src[:] = 0
    payload = B.codec_encode(B.CODEC_PICTURE, bb, base_us=t0)
    prec = codec.Precision()
    ups = [codec.Update(int(bb.tid[j]), int(bb.t_us[j]), bb.x[j].tolist(), bb.P[j].reshape(36).tolist(),
                        0, int(bb.nations[j])) for j in range(nb)]

    def one(fn, min_time):
        n, t_start = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            el = time.perf_counter() - t_start
            if el >= min_time:
                return n * nb / el

    def rounds(fns, min_time=0.1 if not a.quick else 0.05, repeats=15 if not a.quick else 3):
        """Records/s of each fn in each of `repeats` rounds; a round times
        every fn once, in turn, so that load elsewhere on the machine hits
        the C and the Python side of a ratio alike."""
        return [[one(fn, min_time) for fn in fns] for _ in range(repeats)]

    def median(v):
        v = sorted(v)
        return (v[(len(v) - 1) // 2] + v[len(v) // 2]) / 2

    rs = rounds([
        lambda: B.codec_encode(B.CODEC_PICTURE, bb, base_us=t0),
        lambda: codec.encode(codec.PICTURE, prec, [(codec.KEY, codec.quantise(u, prec), 0) for u in ups], base_us=t0),
        lambda: B.codec_decode(payload),
        lambda: [r.cov() for _, _, r in codec.decode(payload).items]])
    c_enc, p_enc, c_dec, p_dec = (median([r[i] for r in rs]) for i in range(4))
    enc_x = [r[0] / r[1] for r in rs]
    dec_x = [r[2] / r[3] for r in rs]
    print()
    print("throughput, keyframe batches of %d records (%d B payload), records/s, median of %d interleaved rounds"
          " (ratio: median of the rounds' ratios, [min - max]):" % (nb, len(payload), len(rs)))
    print("  encode: C batch %12.0f   pure Python %9.0f   C/Python %6.0fx [%.0f - %.0f] (target >= 100x)"
          % (c_enc, p_enc, median(enc_x), min(enc_x), max(enc_x)))
    print("  decode: C batch %12.0f   pure Python %9.0f   C/Python %6.0fx [%.0f - %.0f]"
          % (c_dec, p_dec, median(dec_x), min(dec_x), max(dec_x)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
