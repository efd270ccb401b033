# launch.py: a new missile's estimated launch point, time, azimuth and class, and "is it one we announced"
"""The relay announces a launch once per missile and nation (PROTOCOL.md
4.5, kind 3) at the first look at a new fused track: this module makes the
estimate from that one state, and tells a new track that is another
missile from one that is not (a fragment of a breakup, a track that the
picture re-initiated or split off an announced one).

Estimate (docs/FUSION.md, "Launch alerts"): a climbing track (vertical
speed above a fifth of its speed) is taken to be still on its boost arc:
it rose vertically from rest, its speed growing in proportion to time, and
turned at a steady rate to its flight-path angle now (``_pitch``): that
gives the time since launch from its height and speed, and the ground
distance back along its azimuth to the launch point; a track seen
first flat or falling (its boost unseen) is flown back ballistically to
the ground. The uncertainty says how rough that is: the 95% ellipse grows
with the ground distance flown (semi-major along the azimuth 50% of it
plus 15 km, semi-minor 15% plus 8 km), the launch time's sigma with the
time flown (30%, at least 5 s; 40% when flown back ballistically). From
exact truth states the point is within 4 km and 3 s while the booster
burns and 50-140 km off for a track first seen after burnout (its
deceleration is no boost); from a young fused track (a few radar looks)
the noise adds up to ~20 km and ~40 s (docs/FUSION.md, "Warnings"). The class is
guessed from the speed seen (a lower bound while the booster burns).

    >>> x = np.array([*binding.geodetic_to_ecef([[39.2, 125.67, 20e3]])[0], 0.0, 0.0, 0.0])
    >>> est = estimate(x, 100.0)   # at rest at 20 km: no estimate (not a missile's state)
    >>> est is None
    True
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from trilink_native import binding
from trilink_board import messages as _msgs

MIN_SPEED = 150.0          # m/s: slower than this is no missile in flight (yet)
MAX_ALT = 5.0e6            # m
CLIMB = 0.2                # v_up / |v| above which the straight-line boost model is used
SAME_POS_M = 20_000.0      # two tracks this close, ...
SAME_VEL = 200.0           # ... this alike in velocity (m/s), ...
SAME_T_S = 2.0             # ... and launched within max(this, SAME_T_FRAC x time flown) are one missile
SAME_T_FRAC = 0.03
BACK_STEP_S = 10.0
BACK_MAX_S = 1800.0


@dataclass
class Launch:
    """An estimated launch: time (relay s) and its sigma, point (deg) and
    its 95% ellipse (m, degrees from north), azimuth (deg), class guess
    (messages.CLASS_*), and the time flown to the look (s)."""

    t_s: float
    sigma_t_s: float
    lat: float
    lon: float
    semi_major_m: float
    semi_minor_m: float
    orient_deg: float
    azimuth_deg: float
    class_guess: int
    flown_s: float


def _up(lat: float, lon: float) -> np.ndarray:
    la, lo = math.radians(lat), math.radians(lon)
    return np.array([math.cos(la) * math.cos(lo), math.cos(la) * math.sin(lo), math.sin(la)])


def _east_north(lat: float, lon: float):
    la, lo = math.radians(lat), math.radians(lon)
    e = np.array([-math.sin(lo), math.cos(lo), 0.0])
    n = np.array([-math.sin(la) * math.cos(lo), -math.sin(la) * math.sin(lo), math.cos(la)])
    return e, n


def azimuth(x: np.ndarray) -> float:
    """Heading (deg from north, clockwise) of an ECEF state's velocity."""
    lat, lon, _h = binding.ecef_to_geodetic(np.asarray(x[:3], dtype=float)[None])[0]
    e, n = _east_north(lat, lon)
    return math.degrees(math.atan2(float(x[3:] @ e), float(x[3:] @ n))) % 360.0


def class_of(speed: float) -> int:
    """messages.CLASS_* from a speed (m/s): SRBM below 2.5 km/s, MRBM below
    4, IRBM below 6, ICBM above."""
    if speed < 2500.0:
        return _msgs.CLASS_SRBM
    if speed < 4000.0:
        return _msgs.CLASS_MRBM
    if speed < 6000.0:
        return _msgs.CLASS_IRBM
    return _msgs.CLASS_ICBM


def _pitch(gamma: float) -> Tuple[float, float]:
    """(I, J) of the pitch-over boost model: a climb that starts vertical and
    turns at a steady rate to the flight-path angle ``gamma`` (rad) now,
    at a speed growing in proportion to time: height = v tau I, ground
    distance = v tau J, with d = pi/2 - gamma, I = int_0^1 u cos(d u) du,
    J = int_0^1 u sin(d u) du."""
    d = math.pi / 2.0 - gamma
    if d < 1e-4:
        return 0.5, d / 3.0
    i = (math.cos(d) - 1.0) / (d * d) + math.sin(d) / d
    j = math.sin(d) / (d * d) - math.cos(d) / d
    return i, j


def flown(x: np.ndarray) -> Optional[float]:
    """Seconds since launch by the pitch-over boost model (None: not climbing)."""
    lat, lon, h = binding.ecef_to_geodetic(np.asarray(x[:3], dtype=float)[None])[0]
    v = np.asarray(x[3:], dtype=float)
    vu = float(v @ _up(lat, lon))
    sp = float(np.linalg.norm(v))
    if not (sp >= MIN_SPEED and vu > CLIMB * sp and h > 0):
        return None
    i, _j = _pitch(math.asin(min(1.0, vu / sp)))
    return h / (sp * i)


def estimate(x: np.ndarray, t_s: float) -> Optional[Launch]:
    """The launch of the missile whose ECEF state at relay time ``t_s`` is
    ``x`` (module docstring), or None when ``x`` is no missile in flight."""
    x = np.asarray(x, dtype=float)
    lat, lon, h = binding.ecef_to_geodetic(x[:3][None])[0]
    v = x[3:]
    sp = float(np.linalg.norm(v))
    if not (sp >= MIN_SPEED and 0.0 < h < MAX_ALT) or not np.all(np.isfinite(x)):
        return None
    az = azimuth(x)
    tau = flown(x)
    if tau is not None:
        # back along the azimuth by the model's ground distance, on the ellipsoid
        sp = float(np.linalg.norm(v))
        _i, j = _pitch(math.asin(min(1.0, float(v @ _up(lat, lon)) / sp)))
        back = sp * tau * j
        e, n = _east_north(lat, lon)
        heading = (v @ e) * e + (v @ n) * n
        hn = float(np.linalg.norm(heading))
        ground = binding.geodetic_to_ecef(np.array([[lat, lon, 0.0]]))[0]
        p0 = ground - (heading / hn if hn > 0 else 0.0) * back
        lat0, lon0, _h0 = binding.ecef_to_geodetic(p0[None])[0]
        frac_t = 0.3
    else:
        # Seen first flat or falling: fly back (velocity reversed) to the ground.
        xs = np.array([[*x[:3], *(-v)]])
        tau = 0.0
        lat0, lon0 = lat, lon
        while tau < BACK_MAX_S:
            prev = xs.copy()
            binding.predict(xs, None, np.zeros(1), BACK_STEP_S)
            g = binding.ecef_to_geodetic(xs[:, :3])[0]
            if not np.all(np.isfinite(g)):
                return None
            if g[2] <= 0.0:
                gp = binding.ecef_to_geodetic(prev[:, :3])[0]
                f = gp[2] / (gp[2] - g[2]) if gp[2] > g[2] else 1.0
                tau += f * BACK_STEP_S
                lat0 = gp[0] + f * (g[0] - gp[0])
                lon0 = gp[1] + f * (((g[1] - gp[1]) + 180.0) % 360.0 - 180.0)
                break
            tau += BACK_STEP_S
        else:
            return None
        frac_t = 0.4
    e, n = _east_north(lat, lon)
    d = binding.geodetic_to_ecef(np.array([[lat0, lon0, 0.0], [lat, lon, 0.0]]))
    dist = float(np.linalg.norm(d[1] - d[0]))
    return Launch(t_s=t_s - tau, sigma_t_s=max(5.0, frac_t * tau), lat=float(lat0), lon=float(lon0),
                  semi_major_m=15000.0 + 0.5 * dist, semi_minor_m=8000.0 + 0.15 * dist, orient_deg=az % 180.0,
                  azimuth_deg=az, class_guess=class_of(sp), flown_s=tau)


def same_missile(x: np.ndarray, x_known: np.ndarray) -> bool:
    """Whether the new track's ECEF state ``x`` belongs to the missile of an
    announced track whose state at the same time is ``x_known``: as close
    as a fragment or a re-initiated track (``SAME_POS_M``, ``SAME_VEL``),
    and launched at the same time by the boost model (a salvo's next
    missile from the same site, seconds later, is lower and slower by
    what those seconds of thrust gave: its launch comes out later)."""
    x = np.asarray(x, dtype=float)
    x_known = np.asarray(x_known, dtype=float)
    if np.linalg.norm(x[:3] - x_known[:3]) > SAME_POS_M or np.linalg.norm(x[3:] - x_known[3:]) > SAME_VEL:
        return False
    a, b = flown(x), flown(x_known)
    if a is None or b is None:
        return True        # coasting or falling together: a fragment, not a launch
    return abs(a - b) <= max(SAME_T_S, SAME_T_FRAC * max(a, b))
