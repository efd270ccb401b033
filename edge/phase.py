# phase.py: flight phase of each fused track (boost or ballistic) for the relay
"""Which fused tracks are still under thrust, so that the relay predicts
impacts (and warns) only for tracks whose ballistic extrapolation holds.

The evidence, per track, each time the relay predicts impacts:

* the rate of the track's Jacobi integral (``binding.jacobi``: its energy
  per unit mass in the Earth-fixed frame), the least-squares slope over the
  last ``window_s`` seconds. Gravity with J2 keeps it constant; thrust
  raises it at a.v (a 40 m/s^2 booster at 2 km/s: 8e4 J/kg/s), while the
  noise of a converged fused track keeps the slope within a few 1e3;
* the boosting bit (PROTOCOL.md 5.5, quality flags) of its members' latest
  reports: a board that sees its own track under thrust says so.

A track is BOOST while either says thrust. It becomes BALLISTIC once its
slope, over a full window, has stayed within +-``rate_on`` for ``hold_s``
seconds and no member reports boosting: a young track's slope is noise of
either sign (a steep fall is no evidence of coasting), and a board's own
track wanders for tens of seconds after burnout, so the way in asks for
calm. The way out asks for strong thrust (``rate_exit``, on two looks
running), never a board's flag alone: a second burn is rare, a flapping
phase would withdraw and reissue warnings. Until its slope has
``min_span_s`` seconds of samples a track is UNKNOWN (and one first seen
after burnout waits a full window for its first prediction).
docs/FUSION.md gives the measured detection delays.

A thrust of 8e4 J/kg/s until t = 5 s, 1-s samples, a 3-s window: unknown
for 2 s, boost until the window holds no thrust (t = 8 s), ballistic one
``hold_s`` later:

    >>> ph = FlightPhase(window_s=3.0, min_span_s=2.0, hold_s=1.0, min_age_s=0.0)
    >>> [ph.update(7, t, -3.0e7 + 8e4 * min(t, 5.0), False) for t in range(11)]
    [0, 0, 1, 1, 1, 1, 1, 1, 1, 2, 2]
"""
from __future__ import annotations

from typing import Dict, List, Tuple

UNKNOWN, BOOST, BALLISTIC = 0, 1, 2
NAMES = {UNKNOWN: "unknown", BOOST: "boost", BALLISTIC: "ballistic"}

# PICTURE quality flags of each phase (PROTOCOL.md 5.5): bit 1 boosting, bit 2 ballistic.
FLAG_COASTING, FLAG_BOOSTING, FLAG_BALLISTIC, FLAG_FUSED = 1, 2, 4, 8
PHASE_FLAGS = {UNKNOWN: 0, BOOST: FLAG_BOOSTING, BALLISTIC: FLAG_BALLISTIC}

RATE_ON = 2.0e4      # J/kg/s: thrust of ~10 m/s^2 at 2 km/s; the board tracker's threshold too
RATE_EXIT = 1.0e5    # J/kg/s: thrust that takes a ballistic track back to boost (2 looks)
WINDOW_S = 8.0       # s of samples in the slope
MIN_SPAN_S = 4.0     # s of samples before the slope is believed
HOLD_S = 3.0         # s of calm (over full windows) before a track is ballistic
MIN_AGE_S = 20.0     # s since a track's first look before it may be ballistic
FLAG_AGE_S = 60.0    # s: a member's boosting bit holds a track in boost while it is younger


class _Track:
    __slots__ = ("samples", "phase", "quiet_since", "strong", "first_t", "evidence")

    def __init__(self, t_s: float) -> None:
        self.first_t = t_s
        self.samples: List[Tuple[float, float]] = []
        self.phase = UNKNOWN
        self.quiet_since = -1.0
        self.strong = 0            # looks in a row with a slope over rate_exit
        self.evidence: object = None   # the key of the reports behind the last sample


class FlightPhase:
    """Phase per track id: ``update(tid, t_s, jacobi, source_boosting)``
    returns UNKNOWN, BOOST or BALLISTIC; ``forget(tid)`` when it is gone."""

    def __init__(self, rate_on: float = RATE_ON, window_s: float = WINDOW_S,
                 min_span_s: float = MIN_SPAN_S, hold_s: float = HOLD_S, rate_exit: float = RATE_EXIT,
                 min_age_s: float = MIN_AGE_S, flag_age_s: float = FLAG_AGE_S) -> None:
        self.rate_on = rate_on
        self.flag_age_s = flag_age_s
        self.min_age_s = min_age_s
        self.rate_exit = rate_exit
        self.window_s = window_s
        self.min_span_s = min_span_s
        self.hold_s = hold_s
        self.tracks: Dict[int, _Track] = {}

    def phase(self, tid: int) -> int:
        tr = self.tracks.get(tid)
        return UNKNOWN if tr is None else tr.phase

    def forget(self, tid: int) -> None:
        self.tracks.pop(tid, None)

    def update(self, tid: int, t_s: float, jacobi: float, source_boosting: bool,
               evidence: object = None) -> int:
        """The phase after a look at the track's state at ``t_s``.
        ``evidence``: a key of the reports the state was fused from (e.g. the
        members' report ids); a look with the same key as the last one adds
        nothing. A state with no new report is the last one flown on
        ballistically, whose Jacobi integral is constant by construction: a
        radar gap under thrust would look like a calm coast."""
        tr = self.tracks.get(tid)
        if tr is None:
            tr = self.tracks[tid] = _Track(t_s)
        s = tr.samples
        if s and t_s <= s[-1][0]:
            return tr.phase            # no newer estimate: nothing learnt
        if evidence is not None:
            if evidence == tr.evidence:
                return tr.phase        # no new report behind it: nothing learnt
            tr.evidence = evidence
        if jacobi == jacobi:           # a NaN (diverged state) adds no sample
            s.append((t_s, jacobi))
        while s and s[0][0] < t_s - self.window_s:
            s.pop(0)
        span = s[-1][0] - s[0][0] if s else 0.0
        rate = slope(s) if span >= self.min_span_s else None
        if rate is None:
            return tr.phase
        tr.strong = tr.strong + 1 if rate > self.rate_exit else 0
        if tr.phase == BALLISTIC:
            if tr.strong >= 2:
                tr.phase, tr.quiet_since = BOOST, -1.0
            return tr.phase
        # A full window, allowing a late look (scans are not exactly 1 s apart).
        age = t_s - tr.first_t
        flagged = source_boosting and age < self.flag_age_s
        calm = abs(rate) < self.rate_on and span >= self.window_s - 1.0 and not flagged
        if not calm:
            tr.phase, tr.quiet_since = BOOST, -1.0
        else:
            if tr.quiet_since < 0:
                tr.quiet_since = t_s
            tr.phase = BALLISTIC if age >= self.min_age_s and t_s - tr.quiet_since >= self.hold_s else BOOST
        return tr.phase


def slope(samples: List[Tuple[float, float]]) -> float:
    """Least-squares slope of (t, y) samples (0 for fewer than two).

    >>> slope([(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)])
    2.0
    """
    n = len(samples)
    if n < 2:
        return 0.0
    tm = sum(t for t, _ in samples) / n
    ym = sum(y for _, y in samples) / n
    num = sum((t - tm) * (y - ym) for t, y in samples)
    den = sum((t - tm) ** 2 for t, _ in samples)
    return num / den if den > 0 else 0.0
