# sim.py: one nation's sensor simulation: truth -> radars -> local tracker
"""Drive a scenario through one nation's radars and local tracker.

Events are radar scans, taken in time order (ties by radar index); before
each scan the truth is advanced to the scan time. The nation's board clock
is simulated with an offset and a drift (``SimClock``) so time sync has
something to find.

    >>> sim = Simulation(config.load_scenario("default"), config.load_nation("jp"))
    >>> while sim.step():
    ...     for tr in sim.tracker.updated[:sim.n_updated]:
    ...         print(sim.clock.local_us(sim.t), tr.tid, tr.report_id)
"""
import gc

from trilink_board import geo
from trilink_board.prng import Rng
from trilink_board.radar import FA_PLOTS, Radar
from trilink_board.tracker import Tracker
from trilink_board.truth import Truth


class SimClock:
    """Board clock model: local = t * (1 + drift_ppm 1e-6) + offset_s. ``SimClock(0.25, 12.0).local_us(10.0)``."""

    def __init__(self, offset_s, drift_ppm):
        self.offset_s = offset_s
        self.rate = 1.0 + drift_ppm * 1e-6

    def local_us(self, t):
        """Board clock in integer microseconds at scenario time ``t`` (s)."""
        return int((t * self.rate + self.offset_s) * 1000000.0)


class Simulation:
    """``Simulation(scenario, nation, seed=None)`` with dicts from config.load_scenario / load_nation.

    After each ``step()``: ``t`` (s), ``radar`` (index scanned), ``plots`` /
    ``n_plots`` (that scan's plots) and ``n_updated`` (confirmed tracks updated,
    ``tracker.updated[:n_updated]``). ``step()`` returns False past the scenario's duration.
    """

    def __init__(self, scenario, nation, seed=None):
        # Compiling modules and parsing JSON leave garbage; collecting it before
        # the large preallocations below keeps them from failing on a
        # fragmented 192 KB heap (the automatic collection at allocation
        # failure proved not enough under the unix port).
        gc.collect()
        if seed is None:
            seed = scenario["seed"]
        self.scenario = scenario
        self.nation = nation
        o = nation["origin"]
        self.frame = geo.LocalFrame(o["lat"], o["lon"], o["alt_m"])
        self.truth = Truth(scenario["launches"], scenario["breakups"], Rng(seed))
        node = nation["node"]
        self.radars = []
        # One plot per truth object and a few false alarms is all a scan can make: the shared
        # plot buffer is sized so (the debris scenario needs 77 plots, the default 18, not 96).
        n_plots = self.truth.n + FA_PLOTS
        for i, rc in enumerate(nation["radars"]):
            # One stream per radar and nation: adding a radar does not change the others' noise.
            rs = (seed * 1000003 + node * 7919 + i * 104729) & 0xFFFFFFFF
            self.radars.append(Radar(rc, i, self.frame, self.truth.frames, Rng(rs), n_plots))
        # Track slots likewise: one per object and room for tentative tracks of false alarms
        # (~550 bytes each; the nation's max_tracks stays the ceiling).
        tp = dict(nation["tracker"])
        tp["max_tracks"] = min(tp["max_tracks"], self.truth.n + FA_PLOTS)
        self.tracker = Tracker(tp, self.frame, self.radars)
        self.clock = SimClock(nation["clock"]["offset_s"], nation["clock"]["drift_ppm"])
        self.duration = scenario["duration_s"]
        self.t = 0.0
        self.radar = -1
        self.plots = None
        self.n_plots = 0
        self.n_updated = 0

    def step(self, until=None):
        """Run the next radar scan; False (nothing done) once it would pass ``until`` or the duration."""
        end = self.duration if until is None else until
        best = self.radars[0]  # config.load_nation guarantees at least one radar
        for r in self.radars:
            if r.next_scan < best.next_scan:
                best = r
        t = best.next_scan
        if t > end:
            return False
        self.truth.advance(t)
        n = best.scan(t, self.truth)
        self.t = t
        self.radar = best.index
        self.plots = best.plots
        self.n_plots = n
        self.n_updated = self.tracker.process(best.index, t, best.plots, n)
        return True
