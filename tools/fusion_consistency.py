#!/usr/bin/env python3
"""Monte Carlo consistency of the fused picture on a two-radar IRBM scenario.

Truth: a Hwasong-12-class ballistic flight from Sunan over northern Japan
(``reference.motion.irbm_burnout``: apogee ~970 km, ~4,600 km, ~1,200 s).
Radars (simulated): AN/TPY-2 at Shariki 40.89N 140.30E (node 1, "jp"; range
<= 2,500 km, sigma 5 m / 0.1 mrad) and a Green Pine at 36.9N 127.4E (node 2,
"kr"; range <= 800 km, sigma 30 m / 1 mrad), both above 1 degree elevation,
every 2 s. Each radar runs a range/azimuth/elevation EKF (C, batched over the
runs); each run has one ``binding.Picture`` that associates and CI-fuses the
two national tracks every 2 s (predicted forward when a radar loses the
missile). Reports, per time step, the fused NEES averaged over the runs
against the 95% bounds [5.34, 6.70] for 100 runs, the position RMSE of the
fused and single-source tracks, and the impact point predicted from the
fused track 60 s before impact against the truth.

    python tools/fusion_consistency.py            # 100 runs (docs/FUSION.md)
    python tools/fusion_consistency.py --runs 20
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from trilink_native import binding as b
from trilink_native.reference import motion as ref

SITES = {1: (40.89, 140.30, 0.0), 2: (36.9, 127.4, 0.0)}
MAX_RANGE = {1: 2500e3, 2: 800e3}
SIGMA = {1: (5.0, 1e-4, 1e-4), 2: (30.0, 1e-3, 1e-3)}
MIN_ELEV = np.radians(1.0)
P0 = np.diag([500.0**2] * 3 + [50.0**2] * 3)
MODEL = b.MotionModel(q=0.01)
DT = 2.0
NEES_BOUNDS_100 = (5.34, 6.70)


def truth_track(dt: float = DT):
    """Truth states every dt from burnout until just before impact, and the impact time."""
    x = ref.irbm_burnout()
    xs, ts = [], []
    t = 0.0
    while b.ecef_to_geodetic(x[None, :3])[0, 2] > 0.0:
        xs.append(x.copy())
        ts.append(t)
        _, x, _, _ = b.predict_one(x, None, dt, MODEL)
        t += dt
    imp = b.predict_impact(np.array(xs[-1])[None], np.eye(6)[None] * 1e-6, ts[-1], model=MODEL)
    return np.array(ts), np.array(xs), float(imp.t[0]), imp.ecef[0]


def visible(node: int, pos: np.ndarray) -> bool:
    r, _az, el = b.rae_from_ecef(pos, SITES[node])
    return bool(r <= MAX_RANGE[node] and el >= MIN_ELEV)


def run(n_runs: int = 100, seed: int = 1) -> dict:
    rng = np.random.default_rng(seed)
    ts, truth, t_imp, imp_truth = truth_track()
    k_warn = int(np.argmin(np.abs(ts - (t_imp - 60.0))))
    steps = k_warn + 1
    est = {n: (None, None) for n in SITES}  # per radar: x [runs,6], P [runs,6,6]
    last = {n: None for n in SITES}
    pics = [b.Picture(q=MODEL.q, timeout=2000.0) for _ in range(n_runs)]
    nees = np.full(steps, np.nan)
    sq_err = {"fused": np.zeros(steps), 1: np.zeros(steps), 2: np.zeros(steps)}
    have = {1: np.zeros(steps, bool), 2: np.zeros(steps, bool)}
    updated = {1: np.zeros(steps, bool), 2: np.zeros(steps, bool)}
    fused_count_bad = 0
    x_warn = P_warn = None
    for k in range(steps):
        t, xt = ts[k], truth[k]
        fresh = []
        for n in SITES:
            if not visible(n, xt[:3]):
                continue
            R = np.diag(np.square(SIGMA[n]))
            if last[n] is None:
                x = xt + rng.multivariate_normal(np.zeros(6), P0, n_runs)
                P = np.repeat(P0[None], n_runs, 0)
            else:
                x, P = est[n]
                b.predict(x, P, np.full(n_runs, last[n]), t, MODEL)
            z = b.rae_from_ecef(xt[:3], SITES[n]) + rng.normal(0.0, SIGMA[n], (n_runs, 3))
            st = b.update_rae(x, P, z, R, SITES[n])
            assert (st == 0).all()
            est[n], last[n] = (x, P), t
            fresh.append(n)
            updated[n][k] = True
        xf = np.empty((n_runs, 6))
        Pf = np.empty((n_runs, 6, 6))
        for r, pic in enumerate(pics):
            if fresh:
                nodes = np.array(fresh)
                pic.update(nodes, nodes * 10, np.full(len(fresh), k), np.full(len(fresh), t),
                           np.array([est[n][0][r] for n in fresh]),
                           np.array([est[n][1][r] for n in fresh]))
            pic.associate(t)
            out = pic.fuse(t)
            if len(out["fused_id"]) != 1:
                fused_count_bad += 1
            xf[r], Pf[r] = out["x"][0], out["P"][0]
        e = xf - xt
        nees[k] = np.mean(np.einsum("ri,ri->r", e, np.linalg.solve(Pf, e[..., None])[..., 0]))
        sq_err["fused"][k] = np.mean(np.sum(e[:, :3] ** 2, 1))
        for n in SITES:  # single-source tracks, predicted to t like the picture does
            if last[n] is None:
                continue
            have[n][k] = True
            xs = est[n][0].copy()
            if last[n] < t:
                b.predict(xs, None, np.full(n_runs, last[n]), t, MODEL)
            sq_err[n][k] = np.mean(np.sum((xs[:, :3] - xt[:3]) ** 2, 1))
        if k == k_warn:
            x_warn, P_warn = xf, Pf
    imp = b.predict_impact(x_warn, P_warn, ts[k_warn], model=MODEL)
    miss = np.linalg.norm(imp.ecef - imp_truth, axis=1)
    both = have[1] & have[2] & updated[1] & updated[2]
    lo, hi = NEES_BOUNDS_100
    rmse = lambda v, m: float(np.sqrt(np.mean(v[m])))  # noqa: E731
    return {
        "runs": n_runs, "steps": steps, "impact_t": t_imp, "warn_t": float(ts[k_warn]),
        "nees_mean": float(np.mean(nees)), "nees_max": float(np.max(nees)),
        "nees_in_or_below": float(np.mean(nees <= hi)), "nees_in_bounds": float(np.mean((nees >= lo) & (nees <= hi))),
        "rmse_both_fused": rmse(sq_err["fused"], both), "rmse_both_jp": rmse(sq_err[1], both),
        "rmse_both_kr": rmse(sq_err[2], both),
        "rmse_all_fused": rmse(sq_err["fused"], have[1] & have[2]), "rmse_all_jp": rmse(sq_err[1], have[1] & have[2]),
        "rmse_all_kr": rmse(sq_err[2], have[1] & have[2]),
        "impact_miss_mean": float(miss.mean()), "impact_miss_max": float(miss.max()),
        "impact_ok": int((imp.status == 0).sum()), "fused_count_bad": fused_count_bad,
        "both_steps": int(both.sum()),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    res = run(args.runs, args.seed)
    for k, v in res.items():
        print(f"{k:20s} {v:.4g}" if isinstance(v, float) else f"{k:20s} {v}")
    print(f"{'wall_s':20s} {time.perf_counter() - t0:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
