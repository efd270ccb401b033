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
    >>> t.objects[0].p[2] > 500e3     # metres up, in Sunan's ENU
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


class TruthObject:
    """One flying object: a missile or a fragment. Position/velocity in launch ENU (float32)."""

    def __init__(self, oid, name, frame_index, parent):
        self.oid = oid
        self.name = name
        self.frame_index = frame_index
        self.parent = parent          # oid of the missile a fragment came from, 0 for a missile
        self.p = array("f", (0.0, 0.0, 0.0))
        self.v = array("f", (0.0, 0.0, 0.0))
        self._cp = array("f", (0.0, 0.0, 0.0))   # Kahan compensation
        self._cv = array("f", (0.0, 0.0, 0.0))
        self.t = 0.0                  # scenario time of p, v
        self.t_start = 0.0            # appears (launch, burnout or breakup)
        self.state = 0                # 0 waiting, 1 flying, 2 impacted
        self.boost = None             # (burn_s, vertical_s, accel, gamma_rad, sin az, cos az) or None
        self.t_launch = 0.0
        self.apogee = 0.0             # m above the ellipsoid
        self.t_impact = 0.0

    def flying(self):
        """True while the object is in flight."""
        return self.state == 1


class Truth:
    """All objects of a scenario. ``Truth(launches, breakups=())``; ``advance(t)``.

    ``launches`` are normalised dicts (see config.load_scenario): name, lat,
    lon, alt, t (launch time, s), az (deg), and either cls (a CLASSES name or a
    boost tuple) or burnout (dict t_s, alt_m, downrange_m, speed_mps,
    gamma_deg). ``breakups``: dicts launch (index), t_s (after launch),
    count, dv_sigma_mps. Fragments take their velocity kicks from ``rng``.
    """

    def __init__(self, launches, breakups=(), rng=None):
        self.frames = []
        self.objects = []
        self._breakups = []
        oid = 1
        for i, ln in enumerate(launches):
            fr = geo.LocalFrame(ln["lat"], ln["lon"], ln.get("alt", 0.0))
            self.frames.append(fr)
            ob = TruthObject(oid, ln["name"], i, 0)
            oid += 1
            ob.t_launch = ln["t"]
            az = ln["az"] * _D2R
            sa = math.sin(az)
            ca = math.cos(az)
            bo = ln.get("burnout")
            if bo is not None:
                g = bo["gamma_deg"] * _D2R
                d = bo["downrange_m"]
                ob.p[0] = d * sa
                ob.p[1] = d * ca
                ob.p[2] = bo["alt_m"]
                s = bo["speed_mps"]
                ob.v[0] = s * math.cos(g) * sa
                ob.v[1] = s * math.cos(g) * ca
                ob.v[2] = s * math.sin(g)
                ob.t_start = ln["t"] + bo["t_s"]
            else:
                c = ln["cls"]
                if isinstance(c, str):
                    c = CLASSES[c]
                ob.boost = (c[0], c[1], c[2], c[3] * _D2R, sa, ca, c[4])
                ob.t_start = ln["t"]
            ob.t = ob.t_start
            self.objects.append(ob)
        for b in breakups:
            parent = self.objects[b["launch"]]
            first = len(self.objects)
            for k in range(b["count"]):
                self.objects.append(TruthObject(oid, parent.name + "." + str(k + 1), parent.frame_index,
                                                parent.oid))
                oid += 1
            self._breakups.append([parent.t_launch + b["t_s"], parent, first, b["count"],
                                   b["dv_sigma_mps"], False])
        self._rng = rng

    def advance(self, t):
        """Propagate every object to scenario time ``t`` (s); launches, breakups and impacts happen on the way."""
        for br in self._breakups:
            if not br[5] and br[0] <= t:
                self._propagate_all(br[0])
                self._break(br)
        self._propagate_all(t)

    def _propagate_all(self, t):
        for ob in self.objects:
            if ob.state == 0 and ob.parent == 0 and ob.t_start <= t:
                ob.state = 1
                ob.t = ob.t_start
            if ob.state == 1:
                while ob.t < t and ob.state == 1:
                    h = t - ob.t
                    if h > _MAX_STEP:
                        h = _MAX_STEP
                    self._rk4(ob, h)

    def _break(self, br):
        br[5] = True
        parent = br[1]
        if parent.state != 1:
            return
        rng = self._rng
        sig = br[4]
        for k in range(br[3]):
            fr = self.objects[br[2] + k]
            for i in range(3):
                fr.p[i] = parent.p[i]
                fr.v[i] = parent.v[i] + (rng.gauss(0.0, sig) if rng is not None else 0.0)
            fr.t = parent.t
            fr.t_start = parent.t
            fr.t_launch = parent.t_launch
            fr.apogee = parent.apogee
            fr.state = 1

    def accel(self, ob, t, px, py, pz, vx, vy, vz):
        """Acceleration (ax, ay, az) in the launch frame: ``motion.accel`` plus thrust while boosting."""
        ax, ay, az = motion.accel(self.frames[ob.frame_index], px, py, pz, vx, vy, vz)
        b = ob.boost
        if b is not None:
            tb = t - ob.t_launch
            if tb < b[0]:
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

    def _rk4(self, ob, h):
        p = ob.p
        v = ob.v
        t = ob.t
        x0, y0, z0 = p[0], p[1], p[2]
        u0, v0, w0 = v[0], v[1], v[2]
        a1 = self.accel(ob, t, x0, y0, z0, u0, v0, w0)
        h2 = 0.5 * h
        a2 = self.accel(ob, t + h2, x0 + h2 * u0, y0 + h2 * v0, z0 + h2 * w0,
                        u0 + h2 * a1[0], v0 + h2 * a1[1], w0 + h2 * a1[2])
        u2 = u0 + h2 * a1[0]
        v2 = v0 + h2 * a1[1]
        w2 = w0 + h2 * a1[2]
        a3 = self.accel(ob, t + h2, x0 + h2 * u2, y0 + h2 * v2, z0 + h2 * w2,
                        u0 + h2 * a2[0], v0 + h2 * a2[1], w0 + h2 * a2[2])
        u3 = u0 + h2 * a2[0]
        v3 = v0 + h2 * a2[1]
        w3 = w0 + h2 * a2[2]
        u4 = u0 + h * a3[0]
        v4 = v0 + h * a3[1]
        w4 = w0 + h * a3[2]
        a4 = self.accel(ob, t + h, x0 + h * u3, y0 + h * v3, z0 + h * w3, u4, v4, w4)
        h6 = h / 6.0
        _kahan(p, ob._cp, 0, h6 * (u0 + 2.0 * u2 + 2.0 * u3 + u4))
        _kahan(p, ob._cp, 1, h6 * (v0 + 2.0 * v2 + 2.0 * v3 + v4))
        _kahan(p, ob._cp, 2, h6 * (w0 + 2.0 * w2 + 2.0 * w3 + w4))
        _kahan(v, ob._cv, 0, h6 * (a1[0] + 2.0 * a2[0] + 2.0 * a3[0] + a4[0]))
        _kahan(v, ob._cv, 1, h6 * (a1[1] + 2.0 * a2[1] + 2.0 * a3[1] + a4[1]))
        _kahan(v, ob._cv, 2, h6 * (a1[2] + 2.0 * a2[2] + 2.0 * a3[2] + a4[2]))
        ob.t = t + h
        alt = self.frames[ob.frame_index].altitude(p[0], p[1], p[2])
        if alt > ob.apogee:
            ob.apogee = alt
        if alt <= 0.0 and (ob.boost is None or ob.t - ob.t_launch > ob.boost[0]):
            ob.state = 2
            ob.t_impact = ob.t

    def impact_point(self, ob):
        """(lat, lon) where an impacted object came down (double precision, for analysis)."""
        lat, lon, _ = self.frames[ob.frame_index].enu_to_geodetic(ob.p[0], ob.p[1], ob.p[2])
        return lat, lon


def _kahan(arr, comp, i, inc):
    # The sum is read back from the float32 array, so the compensation sees the
    # rounding that the store did, on a 64-bit host exactly as on a 32-bit board.
    old = arr[i]
    y = inc - comp[i]
    arr[i] = old + y
    comp[i] = (arr[i] - old) - y
