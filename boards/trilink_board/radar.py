# radar.py: a simulated national radar: visibility and noisy plots
"""One radar site: what it can see, and the noisy plots it reports.

Visibility of a target (all must hold):
- the line of sight clears the Earth: the closest point of the segment
  radar -> target to the Earth's centre lies above the WGS-84 ellipsoid
  (geometric radar horizon from the Earth's curvature; no refraction);
- elevation >= the elevation mask; slant range <= the maximum range;
- azimuth inside the sector, if the radar has one (a fixed-face radar such
  as AN/TPY-2 looks over about 120 degrees).

Plots are range, azimuth (from north, clockwise) and elevation with Gaussian
noise of the configured sigmas, produced every 1/update_hz seconds, each
target detected with probability ``pd``, plus Poisson false alarms spread
over the coverage. All arithmetic is in the radar's own ENU frame.

    >>> r = Radar(cfg, 0, nation_frame, truth.frames, Rng(7))
    >>> n = r.scan(t, truth)            # r.plots[:n] are this scan's plots
"""
import math
from array import array

from trilink_board import geo

_TWO_PI = 6.283185307179586
MAX_PLOTS = 96
FA_PLOTS = 16     # room for false alarms above one plot per truth object (a Poisson count, mean << 1)
_shared = []  # type: list  # one plot buffer for all radars: scans are consumed one at a time


class Plot:
    """One detection, copied out of a ``Plots`` buffer: scan time t (s, scenario time), radar
    index, r (m), az, el (rad); oid is the truth id that caused it (0 = false alarm), kept for
    scoring only: the tracker never reads it."""

    def __init__(self, t=0.0, radar=0, r=0.0, az=0.0, el=0.0, oid=0):
        self.t = t
        self.radar = radar
        self.r = r
        self.az = az
        self.el = el
        self.oid = oid


class Plots:
    """``Plots(n)``: a scan's plots in columns, ``r``, ``az``, ``el`` (double, as computed),
    ``oid`` and the scan's ``t`` and ``radar``; ``plots[i]`` is a ``Plot`` copy of plot i
    (host code, tests), ``len(plots)`` the capacity. ~35 bytes a plot rather than ~200
    for an object each (the debris scenario's 77 plots: 3 KB, not 15 KB, of a 192 KB heap)."""

    def __init__(self, n):
        self.n = n
        self.t = 0.0
        self.radar = 0
        self.r = array("d", bytes(8 * n))
        self.az = array("d", bytes(8 * n))
        self.el = array("d", bytes(8 * n))
        self.oid = array("H", bytes(2 * n))

    def grow(self, n):
        """Make room for ``n`` plots, in place (every radar shares this buffer)."""
        k = n - self.n
        if k > 0:
            self.r.extend(array("d", bytes(8 * k)))
            self.az.extend(array("d", bytes(8 * k)))
            self.el.extend(array("d", bytes(8 * k)))
            self.oid.extend(array("H", bytes(2 * k)))
            self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError("plot index")
        return Plot(self.t, self.radar, self.r[i], self.az[i], self.el[i], self.oid[i])


def plot_buffer(n=MAX_PLOTS):
    """The shared, preallocated ``Plots`` of at least ``n`` plots (at most MAX_PLOTS), grown
    in place when asked for more: a scenario of k objects needs k + FA_PLOTS (sim.py)."""
    n = min(n, MAX_PLOTS)
    if not _shared:
        _shared.append(Plots(n))
    _shared[0].grow(n)
    return _shared[0]


class Radar:
    """``Radar(cfg, index, nation_frame, truth_frames, rng, n_plots=MAX_PLOTS)``; cfg is a radar dict
    of config.load_nation; ``n_plots``: the most plots one scan may need (the shared buffer's size)."""

    def __init__(self, cfg, index, nation_frame, truth_frames, rng, n_plots=MAX_PLOTS):
        self.cfg = cfg
        self.index = index
        self.name = cfg["name"]
        self.frame = geo.LocalFrame(cfg["lat"], cfg["lon"], cfg["alt_m"])
        self.to_nation = geo.FrameLink(self.frame, nation_frame)
        self.from_nation = geo.FrameLink(nation_frame, self.frame)
        self.from_truth = [geo.FrameLink(f, self.frame) for f in truth_frames]
        self.rng = rng
        self.period = 1.0 / cfg["update_hz"]
        # Stagger the radars of one nation so their scans interleave.
        self.next_scan = (index * 0.137) % self.period
        self.max_range = cfg["max_range_m"]
        self.mask = cfg["mask_rad"]
        self.sector_az = cfg["sector_az_rad"]
        self.sector_half = cfg["sector_half_rad"]
        # Shared by every radar (RP2040-sized heap): a scan's plots are valid until the next scan.
        self.plots = plot_buffer(n_plots)
        self.detections = 0
        self.overflow = 0

    def visible(self, e, n, u):
        """True if a target at (e, n, u) in this radar's ENU frame is in its coverage."""
        r2 = e * e + n * n + u * u
        if r2 > self.max_range * self.max_range or r2 < 1.0:
            return False
        h = math.sqrt(e * e + n * n)
        if math.atan2(u, h) < self.mask:
            return False
        if self.sector_half is not None:
            d = math.atan2(e, n) - self.sector_az
            d = (d + math.pi) % _TWO_PI - math.pi
            if abs(d) > self.sector_half:
                return False
        return self.clears_earth(e, n, u)

    def clears_earth(self, e, n, u):
        """True if the straight segment from the radar to (e, n, u) stays above the ellipsoid."""
        c = self.frame.centre
        d2 = e * e + n * n + u * u
        s = -(c[0] * e + c[1] * n + c[2] * u) / d2     # closest approach to the centre, 0..1 along the segment
        if s <= 0.0:
            return True          # the target is "above" the radar: the ray climbs away from the Earth
        if s > 1.0:
            s = 1.0
        qx = s * e - c[0]
        qy = s * n - c[1]
        qz = s * u - c[2]
        q = math.sqrt(qx * qx + qy * qy + qz * qz)
        k = self.frame.axis
        return q >= geo.ellipsoid_radius((qx * k[0] + qy * k[1] + qz * k[2]) / q)

    def due(self, t):
        """True if a scan is due at or before scenario time ``t``."""
        return self.next_scan <= t

    def scan(self, t, truth):
        """Make this scan's plots from ``truth`` (already advanced to ``t``); return their count.

        Advances ``next_scan`` by one period. Plots are in ``self.plots[:count]``.
        """
        self.next_scan += self.period
        cfg = self.cfg
        rng = self.rng
        sr = cfg["sigma_range_m"]
        sa = cfg["sigma_az_rad"]
        se = cfg["sigma_el_rad"]
        pd = cfg["pd"]
        n = 0
        plots = self.plots
        plots.t = t
        plots.radar = self.index
        cap = plots.n
        st = truth.state
        fr = truth.frame
        P = truth.p
        links = self.from_truth
        for i in range(truth.n):
            if st[i] != 1:
                continue
            j = 3 * i
            e, nn, u = links[fr[i]].apply(P[j], P[j + 1], P[j + 2])
            if not self.visible(e, nn, u):
                continue
            # Draw the detection and the noise for every visible target so a
            # missed detection does not shift the stream for the others.
            hit = rng.uniform() < pd
            gr = rng.gauss(0.0, sr)
            ga = rng.gauss(0.0, sa)
            ge = rng.gauss(0.0, se)
            if not hit:
                continue
            if n >= cap:
                self.overflow += 1
                continue
            h = math.sqrt(e * e + nn * nn)
            plots.r[n] = math.sqrt(h * h + u * u) + gr
            plots.az[n] = (math.atan2(e, nn) + ga) % _TWO_PI
            plots.el[n] = math.atan2(u, h) + ge
            plots.oid[n] = i + 1
            n += 1
        lam = cfg["fa_per_scan"]
        if lam > 0.0:
            # Poisson count by Knuth's product method (lambda is small).
            lim = math.exp(-lam)
            prod = rng.uniform()
            while prod > lim:
                if n < cap:
                    self._false_alarm(plots, n)
                    n += 1
                prod *= rng.uniform()
        self.detections += n
        return n

    def _false_alarm(self, plots, k):
        rng = self.rng
        plots.oid[k] = 0
        plots.r[k] = self.max_range * (0.05 + 0.95 * rng.uniform())
        if self.sector_half is not None:
            plots.az[k] = (self.sector_az + self.sector_half * (2.0 * rng.uniform() - 1.0)) % _TWO_PI
        else:
            plots.az[k] = _TWO_PI * rng.uniform()
        plots.el[k] = self.mask + 0.5 * rng.uniform()

    def plot_to_nation(self, pl):
        """(x, y, z) of a plot in the nation's ENU frame."""
        ce = math.cos(pl.el)
        return self.to_nation.apply(pl.r * ce * math.sin(pl.az), pl.r * ce * math.cos(pl.az),
                                    pl.r * math.sin(pl.el))
