#!/usr/bin/env python3
"""Benchmark the fusion kernel: C (batched, through the cffi binding) against
the numpy reference, FilterPy and scipy where they apply, side by side in one run.

    python tools/bench_fusion.py            # full run (results: docs/BENCH_FUSION.md)
    python tools/bench_fusion.py --quick    # fewer repeats, for a smoke test

Sections (each a function(quick) returning (case, implementation, seconds per
item) rows; add yours to SECTIONS). Within a case, the row whose
implementation starts with "C batched" is the base of the "vs C" ratios:
  predict+update   per-track ballistic predict (0.1 s) + position update, and
                   the linear CV predict+update that FilterPy can also do
  impact           impact prediction per track
  cffi overhead    per-track cost of predict+update at batch sizes 1, 8, 64
  two-track CI     covariance intersection per pair (golden section, closed form)
  full frame       2 sources x 100 tracks through the picture: gating,
                   assignment, CI (C) against the numpy reference + scipy
"""
from __future__ import annotations

import argparse
import platform
import sys
import time
from typing import Callable, List, Tuple

import numpy as np

from trilink_native import binding as b
from trilink_native.reference import motion as ref

Row = Tuple[str, str, float]  # (section, implementation, seconds per track)


def per_call(fn: Callable[[], object], repeat: int, number: int) -> float:
    """Best-of-`repeat` time of one call of fn, averaged over `number` calls."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - t0) / number)
    return best


def tracks(n: int, seed: int = 1) -> Tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = ref.irbm_burnout() + rng.normal(0, [1e3, 1e3, 1e3, 10, 10, 10], (n, 6))
    L = rng.normal(0, 1, (n, 6, 6)) * [30.0, 30.0, 30.0, 1.0, 1.0, 1.0]
    return x, L @ L.transpose(0, 2, 1) + np.eye(6) * 100.0


R_POS = np.diag([400.0, 400.0, 400.0])
H_POS = np.hstack([np.eye(3), np.zeros((3, 3))])


def c_step(x: np.ndarray, P: np.ndarray, z: np.ndarray, t_from: np.ndarray) -> None:
    """One C predict (0.1 s) + position update of a batch, in place."""
    b.predict(x, P, t_from, 0.1)
    b.update_position(x, P, z, R_POS)


def section_predict_update(q: bool) -> List[Row]:
    rows: List[Row] = []
    n = 64
    x0, P0 = tracks(n)
    z = x0[:, :3] + 5.0
    t_from = np.zeros(n)
    x, P = x0.copy(), P0.copy()

    def c_batch() -> None:
        x[:], P[:] = x0, P0  # same work every call: restart from the same tracks
        c_step(x, P, z, t_from)

    rows.append(("ballistic predict+update", "C batched (N=64)", per_call(c_batch, 5, 50 if q else 400) / n))

    def numpy_ref() -> None:
        for i in range(8):
            xi, Pi, _ = ref.predict(x0[i], P0[i], 0.1)
            ref.kf_update(xi, Pi, z[i], H_POS, R_POS)

    rows.append(("ballistic predict+update", "numpy reference", per_call(numpy_ref, 3, 3 if q else 10) / 8))

    # The linear CV filter FilterPy implements: same F, Q, H, R everywhere.
    from filterpy.kalman import KalmanFilter

    dt = 0.1
    F = np.eye(6)
    F[:3, 3:] = dt * np.eye(3)
    Q = ref.process_noise(1.0, dt)
    xl0, Pl0 = x0 - x0.mean(axis=0), P0

    xl, Pl = xl0.copy(), Pl0.copy()

    def c_lin() -> None:
        xl[:], Pl[:] = xl0, Pl0
        b.kf_predict(xl, Pl, F, Q)
        b.kf_update(xl, Pl, xl0[:, :3] + 5.0, H_POS, R_POS)

    rows.append(("linear CV predict+update", "C batched (N=64)", per_call(c_lin, 5, 50 if q else 400) / n))

    def numpy_lin() -> None:
        for i in range(n):
            xi, Pi = ref.kf_predict(xl0[i], Pl0[i], F, Q)
            ref.kf_update(xi, Pi, xl0[i, :3] + 5.0, H_POS, R_POS)

    rows.append(("linear CV predict+update", "numpy reference", per_call(numpy_lin, 3, 3 if q else 20) / n))

    kfs = []
    for i in range(n):
        kf = KalmanFilter(dim_x=6, dim_z=3)
        kf.F, kf.Q, kf.H, kf.R = F, Q, H_POS, R_POS
        kfs.append(kf)

    def filterpy_lin() -> None:
        for i, kf in enumerate(kfs):
            kf.x, kf.P = xl0[i].reshape(6, 1).copy(), Pl0[i].copy()
            kf.predict()
            kf.update(xl0[i, :3] + 5.0)

    rows.append(("linear CV predict+update", "FilterPy", per_call(filterpy_lin, 3, 3 if q else 20) / n))
    return rows


def section_impact(q: bool) -> List[Row]:
    n = 64
    x0, P0 = tracks(n, 2)
    t0 = np.zeros(n)
    japan = [(45.5, 141.6), (43.3, 146.0), (41.3, 141.5), (35.0, 140.9), (33.0, 136.0), (30.9, 130.6),
             (33.9, 129.6), (35.6, 133.2), (37.8, 138.7), (40.7, 139.8), (42.2, 139.8)]
    # 60 s before impact: the warning case (tracks were moved there first).
    imp = b.predict_impact(x0, P0, t0)
    xs, Ps = x0.copy(), P0.copy()
    b.predict(xs, Ps, t0 - (imp.t - 60.0), 0.0)  # t_from = -(T-60) -> advance each by T-60
    rows: List[Row] = []
    for label, xx, PP in (("impact, 60 s out", xs, Ps), ("impact, from burnout (~1200 s)", x0, P0)):
        rows.append((label, "C batched (N=64)",
                     per_call(lambda: b.predict_impact(xx, PP, t0, territories=[japan]), 3, 5 if q else 20) / n))
        polys = [np.radians(japan)]
        k = 1 if "burnout" in label else 4
        rows.append((label, "numpy reference",
                     per_call(lambda: [ref.impact(xx[i], PP[i], 0.0, territories=polys) for i in range(k)], 1,
                              1 if q else 2) / k))
    return rows


def section_overhead(q: bool) -> List[Row]:
    rows: List[Row] = []
    for n in (1, 8, 64, 1024):
        x0, P0 = tracks(n, 3)
        z = x0[:, :3] + 5.0
        t_from = np.zeros(n)
        x, P = x0.copy(), P0.copy()

        def run() -> None:
            x[:], P[:] = x0, P0
            c_step(x, P, z, t_from)

        number = max(5, (2000 if not q else 200) // n)
        rows.append(("cffi overhead: predict+update", f"C batch {n}", per_call(run, 5, number) / n))
    return rows


# ---- association, CI and track picture (native/c/assign.c, ci.c, picture.c) ----

def _ci_pairs(n: int, seed: int = 4) -> Tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x, P = tracks(2 * n, seed)
    return x.reshape(n, 2, 6), P.reshape(n, 2, 6, 6)


def section_ci(q: bool) -> List[Row]:
    """Two-track covariance intersection with the trace-optimal weight."""
    from trilink_native.reference import fusion as fref

    rows: List[Row] = []
    n = 256
    xs, Ps = _ci_pairs(n)
    for mode, label in (("trace", "two-track CI (golden section)"), ("fast", "two-track CI (closed form)")):
        rows.append((label, "C batched (N=256)", per_call(lambda: b.ci_batch(xs, Ps, mode), 5, 20 if q else 100) / n))
        rows.append((label, "C batch 1", per_call(lambda: b.ci_fuse(xs[0], Ps[0], mode), 5, 200 if q else 2000)))
        k = 4 if q else 32
        rows.append((label, "numpy reference",
                     per_call(lambda: [fref.ci_fuse(xs[i], Ps[i], mode) for i in range(k)], 3, 1 if q else 3) / k))
    return rows


def _frame_tracks(n: int, seed: int = 5):
    """Two sources' tracks of n targets 20 km apart, at one common time."""
    rng = np.random.default_rng(seed)
    truth = ref.irbm_burnout() + np.zeros((n, 6))
    truth[:, :3] += rng.normal(0, 20e3, (n, 3))
    Pa = np.broadcast_to(np.diag([300.0**2] * 3 + [10.0**2] * 3), (n, 6, 6)).copy()
    Pb = 2.0 * Pa
    xa = truth + rng.normal(size=(n, 6)) * np.array([300.0] * 3 + [0.0] * 3)
    xb = truth + rng.normal(size=(n, 6)) * np.array([420.0] * 3 + [0.0] * 3)
    return xa, Pa, xb, Pb


def section_frame(q: bool) -> List[Row]:
    """A full frame, 2 sources x 100 tracks: store the reports, gate every
    pair, assign, CI-fuse the pairs and emit the picture (times per frame)."""
    from scipy.optimize import linear_sum_assignment

    from trilink_native.reference import fusion as fref

    n = 100
    xa, Pa, xb, Pb = _frame_tracks(n)
    nodes = np.repeat([1, 2], n)
    ids = np.tile(np.arange(n), 2)
    xx, PP = np.concatenate([xa, xb]), np.concatenate([Pa, Pb])
    lsa = lambda c: linear_sum_assignment(c)  # noqa: E731
    rows: List[Row] = []
    for mode, case in (("trace", "full frame 2x100, CI trace-opt"), ("fast", "full frame 2x100, CI closed form")):
        pic = b.Picture(ci_mode=mode)
        t = [0.0]

        def c_frame() -> None:
            t[0] += 1.0  # a new frame time: every track is predicted (by 0 s: reports are fresh)
            pic.update(nodes, ids, ids, np.full(2 * n, t[0]), xx, PP)
            pic.associate(t[0])
            pic.fuse(t[0])

        c_frame()
        assert len(pic.fuse(t[0])["fused_id"]) == n, "bench frame must associate every pair"
        rows.append((case, "C batched (picture)", per_call(c_frame, 5, 20 if q else 100)))
        rows.append((case, "numpy ref + scipy",
                     per_call(lambda: fref.frame(xa, Pa, xb, Pb, mode=mode, assign_fn=lsa), 1 if q else 3, 1)))
    return rows


SECTIONS: List[Tuple[str, Callable[[bool], List[Row]]]] = [
    ("per-track predict+update", section_predict_update),
    ("impact prediction per track", section_impact),
    ("cffi overhead per track", section_overhead),
    ("two-track covariance intersection per pair", section_ci),
    ("full frame: 2 sources x 100 tracks (gating, assignment, CI)", section_frame),
]


def main(argv: List[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats (smoke test)")
    ap.add_argument("--only", help="run only sections whose title contains this text")
    args = ap.parse_args(argv)
    print(f"# bench_fusion  python {platform.python_version()}  numpy {np.__version__}  {platform.machine()}  "
          f"{platform.processor() or platform.platform()}")
    for title, fn in SECTIONS:
        if args.only and args.only not in title:
            continue
        rows = fn(args.quick)
        print(f"\n## {title}")
        print(f"{'case':34s} {'implementation':22s} {'per track':>12s} {'vs C':>9s}")
        base = {}
        for case, impl, sec in rows:
            if impl.startswith("C batched") or impl == "C batch 1024":
                base[case] = sec
        for case, impl, sec in rows:
            ratio = sec / base[case] if case in base else float("nan")
            unit = f"{sec * 1e6:9.2f} us" if sec < 1e-2 else f"{sec * 1e3:9.2f} ms"
            print(f"{case:34s} {impl:22s} {unit:>12s} {ratio:8.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
