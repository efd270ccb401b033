# truth.py: ballistic truth for the simulated missiles, in launch-site ENU frames
"""Truth propagation: boost, ballistic flight under WGS-84 gravity with J2, breakups.

Each launch integrates in the east-north-up frame of its own launch site
(a ``geo.LocalFrame``). That frame is Earth-fixed, so the equations of motion
carry the Coriolis and centrifugal terms; gravity points at the Earth's
centre (point mass plus the J2 oblateness term), whose position and spin axis
are constants of the frame. There is no atmosphere: a "depressed" trajectory
is a low, fast ballistic arc, not an aerodynamic pull-up.

Why this frame is 32-bit safe: coordinates stay below ~5,000 km (0.5 m
resolution in float32), positions and velocities are stored in float32
arrays and updated with Kahan-compensated sums, so the many small RK4
increments do not round away.

Boost is a constant thrust acceleration ``accel`` for ``burn_s`` seconds, in
the launch azimuth's vertical plane: vertical for ``vertical_s``, then the
pitch (from the launch site's horizontal) falls linearly to ``gamma_deg``
over ``pitch_s`` seconds and holds there until burnout.
The classes below were tuned (tools/tune_trajectories.py) to the public
figures; tests/test_truth.py holds them to 10%.

    >>> t = Truth([{"name": "m1", "lat": 39.2, "lon": 125.67, "alt": 0.0,
    ...             "t": 0.0, "az": 72.0, "cls": "irbm"}])
    >>> t.advance(600.0)
    >>> t.p[2] > 500e3                # object 0's metres up, in Sunan's ENU
    True
"""
import math
from array import array

from trilink_board import geo, motion

# name -> (burn_s, vertical_s, accel m/s^2, gamma_deg, pitch_s)
CLASSES = {
    # Hwasong-12, October 2022: ~4,600 km, apogee ~970 km, ~22 min.
    "irbm": (160.0, 10.0, 41.09, 27.01, 54.65),
    # Hwasong-15, November 2017 (lofted): ~950 km, apogee ~4,475 km, ~53 min.
    "icbm_lofted": (240.0, 10.0, 35.02, 80.8, 101.36),
    # KN-23 class: ~600 km, apogee ~50 km, depressed (thrust ends slightly nose-down).
    "srbm_depressed": (60.0, 4.0, 63.99, -2.36, 21.0),
    # A minimum-energy SRBM: ~800 km, apogee ~200 km.
    "srbm": (70.0, 6.0, 45.68, 30.04, 30.0),
}

_D2R = math.pi / 180.0
_MAX_STEP = 0.5   # s: RK4 step; errors are metres over a 53-minute flight


class Truth:
    """All objects of a scenario, in columns. ``Truth(launches, breakups=())``; ``advance(t)``.

    ``launches`` are normalised dicts (see config.load_scenario): name, lat,
    lon, alt, t (launch time, s), az (deg), and either cls (a CLASSES name or a
    boost tuple) or burnout (dict t_s, alt_m, downrange_m, speed_mps,
    gamma_deg). ``breakups``: dicts launch (index), t_s (after launch),
    count, dv_sigma_mps. Fragments take their velocity kicks from ``rng``.

    Object ``i`` (oid ``i + 1``; missiles first, then each breakup's fragments) is
    ``p[3i:3i+3]``, ``v[3i:3i+3]`` (float32, launch ENU), ``t[i]`` (s, of p and v),
    ``state[i]`` (0 waiting, 1 flying, 2 impacted), ``frame[i]`` (its launch frame),
    ``parent[i]`` (oid of the missile a fragment came from, 0 for a missile),
    ``t_start`` (appears: launch, burnout or breakup), ``t_launch``, ``apogee`` (m above
    the ellipsoid) and ``t_impact``. Columns, not an object per object: a debris
    scenario's 61 objects took 41 KB of a 192 KB board heap as objects, 6 KB so.
    ``objects`` (host code, tests) is a list of views (truth_view.py) onto them.
    """

    def __init__(self, launches, breakups=(), rng=None):
        self.frames = []
        self._names = []              # the missiles' names (fragments: truth_view.py)
        n = len(launches)
        for b in breakups:
            n += b["count"]
        self.n = n
        self.p = array("f", bytes(12 * n))
        self.v = array("f", bytes(12 * n))
        self._cp = array("f", bytes(12 * n))   # Kahan compensation
        self._cv = array("f", bytes(12 * n))
        self.t = array("d", bytes(8 * n))
        self.t_start = array("d", bytes(8 * n))
        self.t_launch = array("d", bytes(8 * n))
        self.apogee = array("d", bytes(8 * n))
        self.t_impact = array("d", bytes(8 * n))
        self.state = bytearray(n)
        self.frame = array("H", bytes(2 * n))
        self.parent = array("H", bytes(2 * n))
        self.boost = [None] * len(launches)  # type: list  # (burn_s, vertical_s, accel, gamma_rad, sin az, cos az, pitch_s)
        self._breakups = []
        for i, ln in enumerate(launches):
            fr = geo.LocalFrame(ln["lat"], ln["lon"], ln.get("alt", 0.0))
            self.frames.append(fr)
            self._names.append(ln["name"])
            self.frame[i] = i
            self.t_launch[i] = ln["t"]
            az = ln["az"] * _D2R
            sa = math.sin(az)
            ca = math.cos(az)
            bo = ln.get("burnout")
            p = self.p
            v = self.v
            if bo is not None:
                g = bo["gamma_deg"] * _D2R
                d = bo["downrange_m"]
                p[3 * i] = d * sa
                p[3 * i + 1] = d * ca
                p[3 * i + 2] = bo["alt_m"]
                s = bo["speed_mps"]
                v[3 * i] = s * math.cos(g) * sa
                v[3 * i + 1] = s * math.cos(g) * ca
                v[3 * i + 2] = s * math.sin(g)
                self.t_start[i] = ln["t"] + bo["t_s"]
            else:
                c = ln["cls"]
                if isinstance(c, str):
                    c = CLASSES[c]
                self.boost[i] = (c[0], c[1], c[2], c[3] * _D2R, sa, ca, c[4])
                self.t_start[i] = ln["t"]
            self.t[i] = self.t_start[i]
        first = len(launches)
        for b in breakups:
            par = b["launch"]
            for k in range(b["count"]):
                self.frame[first + k] = self.frame[par]
                self.parent[first + k] = par + 1
            # [time, parent index, first fragment index, count, dv sigma, done]
            self._breakups.append([self.t_launch[par] + b["t_s"], par, first, b["count"],
                                   b["dv_sigma_mps"], False])
            first += b["count"]
        self._rng = rng

    @property
    def objects(self):
        """A list of views (``truth_view.TruthObject``: oid, name, p, v, state, ...) of every
        object, for host code and tests; the board reads the columns."""
        from trilink_board.truth_view import views
        return views(self)

    def name_of(self, i):
        """The name of object ``i``: the launch's, or ``NAME.k`` for its k-th fragment."""
        for br in self._breakups:
            if br[2] <= i < br[2] + br[3]:
                return self._names[br[1]] + "." + str(i - br[2] + 1)
        return self._names[i]

    def flying(self, i):
        """True while object ``i`` is in flight."""
        return self.state[i] == 1

    def advance(self, t):
        """Propagate every object to scenario time ``t`` (s); launches, breakups and impacts happen on the way."""
        for br in self._breakups:
            if not br[5] and br[0] <= t:
                self._propagate_all(br[0])
                self._break(br)
        self._propagate_all(t)

    def _propagate_all(self, t):
        st = self.state
        tt = self.t
        for i in range(self.n):
            if st[i] == 0 and self.parent[i] == 0 and self.t_start[i] <= t:
                st[i] = 1
                tt[i] = self.t_start[i]
            if st[i] == 1:
                b = self.boost[i] if i < len(self.boost) else None
                while tt[i] < t and st[i] == 1:
                    h = t - tt[i]
                    if h > _MAX_STEP:
                        h = _MAX_STEP
                    if b is not None:
                        # No step across a break of the thrust program (end of the vertical
                        # rise, of the pitch-over, burnout): RK4 across the cut-off lost up to
                        # h/6 of its delta-v, so the flown truth depended on the query times
                        # (boards scanning at different rates flew missiles ~200 m apart).
                        tb = tt[i] - self.t_launch[i]
                        for brk in (b[1], b[1] + b[6], b[0]):
                            if tb + 1e-9 < brk < tb + h:
                                h = brk - tb
                    self._rk4(i, h)

    def _break(self, br):
        br[5] = True
        par = br[1]
        if self.state[par] != 1:
            return
        rng = self._rng
        sig = br[4]
        p = self.p
        v = self.v
        for k in range(br[3]):
            i = br[2] + k
            for j in range(3):
                p[3 * i + j] = p[3 * par + j]
                v[3 * i + j] = v[3 * par + j] + (rng.gauss(0.0, sig) if rng is not None else 0.0)
            self.t[i] = self.t[par]
            self.t_start[i] = self.t[par]
            self.t_launch[i] = self.t_launch[par]
            self.apogee[i] = self.apogee[par]
            self.state[i] = 1

    def accel(self, i, t, px, py, pz, vx, vy, vz, t_on=None):
        """Acceleration (ax, ay, az) of object ``i`` in its launch frame: ``motion.accel`` plus thrust while
        boosting (judged at ``t_on``, default ``t``: an RK4 step passes its midpoint, so the stage at a
        step's end at burnout still thrusts)."""
        ax, ay, az = motion.accel(self.frames[self.frame[i]], px, py, pz, vx, vy, vz)
        b = self.boost[i] if i < len(self.boost) else None
        if b is not None:
            tb = t - self.t_launch[i]
            if (tb if t_on is None else t_on - self.t_launch[i]) < b[0]:
                if tb < b[1]:
                    th = 1.5707963267948966
                elif tb < b[1] + b[6]:
                    th = 1.5707963267948966 + (b[3] - 1.5707963267948966) * (tb - b[1]) / b[6]
                else:
                    th = b[3]
                ch = b[2] * math.cos(th)
                ax += ch * b[4]
                ay += ch * b[5]
                az += b[2] * math.sin(th)
        return ax, ay, az

    def _rk4(self, i, h):
        p = self.p
        v = self.v
        t = self.t[i]
        j = 3 * i
        x0, y0, z0 = p[j], p[j + 1], p[j + 2]
        u0, v0, w0 = v[j], v[j + 1], v[j + 2]
        h2 = 0.5 * h
        tm = t + h2
        a1 = self.accel(i, t, x0, y0, z0, u0, v0, w0, tm)
        a2 = self.accel(i, t + h2, x0 + h2 * u0, y0 + h2 * v0, z0 + h2 * w0,
                        u0 + h2 * a1[0], v0 + h2 * a1[1], w0 + h2 * a1[2], tm)
        u2 = u0 + h2 * a1[0]
        v2 = v0 + h2 * a1[1]
        w2 = w0 + h2 * a1[2]
        a3 = self.accel(i, t + h2, x0 + h2 * u2, y0 + h2 * v2, z0 + h2 * w2,
                        u0 + h2 * a2[0], v0 + h2 * a2[1], w0 + h2 * a2[2], tm)
        u3 = u0 + h2 * a2[0]
        v3 = v0 + h2 * a2[1]
        w3 = w0 + h2 * a2[2]
        u4 = u0 + h * a3[0]
        v4 = v0 + h * a3[1]
        w4 = w0 + h * a3[2]
        a4 = self.accel(i, t + h, x0 + h * u3, y0 + h * v3, z0 + h * w3, u4, v4, w4, tm)
        h6 = h / 6.0
        cp = self._cp
        cv = self._cv
        _kahan(p, cp, j, h6 * (u0 + 2.0 * u2 + 2.0 * u3 + u4))
        _kahan(p, cp, j + 1, h6 * (v0 + 2.0 * v2 + 2.0 * v3 + v4))
        _kahan(p, cp, j + 2, h6 * (w0 + 2.0 * w2 + 2.0 * w3 + w4))
        _kahan(v, cv, j, h6 * (a1[0] + 2.0 * a2[0] + 2.0 * a3[0] + a4[0]))
        _kahan(v, cv, j + 1, h6 * (a1[1] + 2.0 * a2[1] + 2.0 * a3[1] + a4[1]))
        _kahan(v, cv, j + 2, h6 * (a1[2] + 2.0 * a2[2] + 2.0 * a3[2] + a4[2]))
        t = t + h
        self.t[i] = t
        alt = self.frames[self.frame[i]].altitude(p[j], p[j + 1], p[j + 2])
        if alt > self.apogee[i]:
            self.apogee[i] = alt
        b = self.boost[i] if i < len(self.boost) else None
        if alt <= 0.0 and (b is None or t - self.t_launch[i] > b[0]):
            # Down within this step: the impact is where the chord crosses height 0,
            # not the step's end (up to h of flight, ~1 km, past it).
            a0 = self.frames[self.frame[i]].altitude(x0, y0, z0)
            f = a0 / (a0 - alt) if a0 > 0.0 else 1.0
            p[j] = x0 + f * (p[j] - x0)
            p[j + 1] = y0 + f * (p[j + 1] - y0)
            p[j + 2] = z0 + f * (p[j + 2] - z0)
            self.state[i] = 2
            self.t_impact[i] = t - h + f * h

    def impact_point(self, ob):
        """(lat, lon) where impacted object ``ob`` (an index or a view) came down (double precision, for analysis)."""
        i = ob if isinstance(ob, int) else ob.oid - 1
        j = 3 * i
        lat, lon, _ = self.frames[self.frame[i]].enu_to_geodetic(self.p[j], self.p[j + 1], self.p[j + 2])
        return lat, lon


def _kahan(arr, comp, i, inc):
    # The sum is read back from the float32 array, so the compensation sees the
    # rounding that the store did, on a 64-bit host exactly as on a 32-bit board.
    old = arr[i]
    y = inc - comp[i]
    arr[i] = old + y
    comp[i] = (arr[i] - old) - y
