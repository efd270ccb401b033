"""Tune the boost parameters of boards/trilink_board/truth.py CLASSES to public figures.

Run: python tools/tune_trajectories.py
Prints, per class, (burn_s, vertical_s, accel, gamma_deg, pitch_s) and the range,
apogee and flight time they give; paste the tuples into truth.CLASSES.
"""
from __future__ import annotations


import numpy as np
from scipy.optimize import least_squares

from trilink_board import geo, truth

# class -> (range km, apogee km, flight min or None, burn_s, vertical_s, guess (accel, gamma, pitch_s))
# With no flight-time target, pitch_s stays at its guess.
TARGETS = {
    "irbm": (4600.0, 970.0, 22.0, 160.0, 10.0, (40.0, 25.0, 50.0)),
    "icbm_lofted": (950.0, 4475.0, 53.0, 240.0, 10.0, (35.0, 81.0, 100.0)),
    "srbm_depressed": (600.0, 50.0, None, 60.0, 4.0, (59.0, 2.0, 21.0)),
    "srbm": (800.0, 200.0, None, 70.0, 6.0, (40.0, 35.0, 30.0)),
}


def fly(params: tuple[float, ...]) -> tuple[float, float, float]:
    t = truth.Truth([{"name": "m", "lat": 39.2, "lon": 125.67, "alt": 0.0, "t": 0.0, "az": 72.0, "cls": params}])
    ob = t.objects[0]
    tt = 0.0
    while ob.state != 2 and tt < 6000:
        tt += 20.0
        t.advance(tt)
    lat, lon = t.impact_point(ob)
    return geo.great_circle_m(39.2, 125.67, lat, lon) / 1e3, ob.apogee / 1e3, ob.t_impact / 60.0


def main() -> None:
    for name, (rng_km, apo_km, tof_min, burn, vert, guess) in TARGETS.items():
        def params(x: np.ndarray) -> tuple[float, ...]:
            ps = float(x[2]) if tof_min is not None else guess[2]
            return (burn, vert, float(x[0]), float(x[1]), ps)

        def resid(x: np.ndarray) -> list[float]:
            r, a, tof = fly(params(x))
            out = [(r - rng_km) / rng_km, (a - apo_km) / apo_km]
            if tof_min is not None:
                out.append((tof - tof_min) / tof_min)
            return out

        x0 = np.array(guess if tof_min is not None else guess[:2])
        lo = [10.0, -10.0, 5.0][: len(x0)]
        hi = [120.0, 89.0, burn - vert][: len(x0)]
        sol = least_squares(resid, x0, bounds=(lo, hi), diff_step=1e-3)
        p = tuple(round(v, 2) for v in params(sol.x))
        print(f'"{name}": {p},  # ->', tuple(round(v, 1) for v in fly(p)))


if __name__ == "__main__":
    main()
