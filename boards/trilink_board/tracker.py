# tracker.py: the national local tracker (EKF on converted plots, M-of-N, GNN)
"""Local multi-target tracker in the nation's ENU frame.

Components, in Stone Soup's words:
- predictor: ballistic RK4 state prediction (``motion.propagate``, gravity
  with J2, Coriolis, centrifugal) with a linearised covariance step
  F = [[I, dt I], [0, I]] plus discrete white-acceleration noise. The noise
  level is ``q_boost`` while the target is under thrust and ``q_accel`` in
  ballistic flight. Thrust is detected from the Jacobi integral
  v^2/2 - U(r) - (w rho)^2/2, which is constant for unpowered flight in the
  Earth-fixed frame and rises under thrust: a track is "boosting" while its
  estimate rises faster than ``_BOOST_RATE`` over windows of ``_BOOST_WINDOW``
  seconds (or while the normalised innovations run high). New tracks start
  boosting, since nothing is known yet;
- updater: Kalman update with the plot converted to Cartesian (position and
  its covariance from the range/azimuth/elevation sigmas rotated into the
  nation frame), i.e. H = [I 0];
- hypothesiser/associator: chi-square gate, then global nearest neighbour by
  greedy smallest-distance pairing per scan;
- initiator: every unassociated plot that is not near a confirmed track
  (within ``_EXCLUDE`` gates: a rare miss must not clone a track) starts a
  tentative track (position from
  the plot, zero velocity with ``init_speed_sigma``); M hits in the first N
  looks confirm it (a look = a scan of a radar whose coverage holds the
  predicted position);
- deleter: a tentative track that can no longer reach M of N, a confirmed
  track without an update for ``coast_s`` or predicted below ground.

State and covariance live in float32 arrays; the numbers are local (metres
from the nation's origin), which keeps float32 adequate.

    >>> trk = Tracker(nation["tracker"], nation_frame, radars)
    >>> n = trk.process(radar_index, t, radar.plots, count)
    >>> for tr in trk.updated[:n]: print(tr.tid, tr.report_id, tr.x[0])
"""
import math
from array import array

from trilink_board import geo, motion

_EXCLUDE = 4.0         # a plot within this many gates of a confirmed track never starts a track
_NIS_ON = 8.0          # fading-average NIS above which a track counts as manoeuvring (3 dof mean is 3)
_NIS_FADE = 0.7
_BOOST_WINDOW = 4.0    # s between two looks at the Jacobi integral
_BOOST_RATE = 2.0e4    # J/kg/s: 10 m/s^2 of thrust at 2 km/s; coast-phase estimates stay well below


class Track:
    """One local track: tid, status (0 free, 1 tentative, 2 confirmed), t (s) of x and P,
    x (6: position m, velocity m/s, nation ENU), P (6x6 row-major), report_id of its last report."""

    def __init__(self):
        self.tid = 0
        self.status = 0
        self.t = 0.0
        self.t_update = 0.0
        self.x = array("f", [0.0] * 6)
        self.P = array("f", [0.0] * 36)
        self.looks = 0
        self.hits = 0
        self.updates = 0
        self.report_id = 0
        self.nis = 3.0
        self.man = True
        self.e_ref = 0.0
        self.e_t = -1.0

    def pos_sigma(self):
        """RMS position standard deviation: sqrt(trace(P_pos) / 3)."""
        P = self.P
        return math.sqrt(max(0.0, (P[0] + P[7] + P[14]) / 3.0))


class Tracker:
    """``Tracker(params, nation_frame, radars)``; params is config.load_nation(...)["tracker"]."""

    def __init__(self, params, frame, radars):
        self.p = params
        self.frame = frame
        self.radars = radars
        n = params["max_tracks"]
        self.tracks = [Track() for _ in range(n)]
        self.updated = [None] * n  # type: list  # confirmed tracks updated by the last process() call
        self.next_tid = 1
        self.next_report = 1
        self.dropped = 0
        self.full = 0                  # plots that found no free track slot
        self._s = array("f", [0.0] * 6)
        # A tentative track out of every radar's view stops being looked at: give up after N long periods.
        self._tent_coast = params["confirm_n"] * max([r.period for r in radars] or [1.0])
        # per-plot scratch: converted position (3) and covariance (6 unique terms)
        m = len(radars[0].plots) if radars else 128
        self._z = array("f", [0.0] * (3 * m))
        self._r = array("f", [0.0] * (6 * m))
        self._used = bytearray(m)
        self._near = bytearray(m)     # plot lies near a confirmed track: it starts no new one
        self._tused = bytearray(n)
        self._look = bytearray(n)
        self._pht = array("f", [0.0] * 18)
        self._k = array("f", [0.0] * 18)
        self._si = array("f", [0.0] * 9)

    def confirmed(self):
        """Count of confirmed tracks."""
        c = 0
        for tr in self.tracks:
            if tr.status == 2:
                c += 1
        return c

    def process(self, ri, t, plots, count):
        """Feed one scan of radar ``ri`` at time ``t``: ``plots[:count]``. Returns how many confirmed
        tracks were updated; they are ``self.updated[:n]``, each with a fresh ``report_id``."""
        radar = self.radars[ri]
        z = self._z
        R = self._r
        near = self._near
        for i in range(count):
            self._convert(radar, plots, i)
            self._used[i] = 0
            near[i] = 0
        p = self.p
        gate = p["gate"]
        wide = _EXCLUDE * gate
        pairs = []
        for k, tr in enumerate(self.tracks):
            self._tused[k] = 0
            self._look[k] = 0
            if tr.status == 0:
                continue
            self._predict(tr, t)
            x = tr.x
            # Every track is gated, but only one predicted inside the coverage
            # counts a look (a miss when nothing is assigned): near the edge of
            # coverage the prediction may fall just outside while the plot is in.
            e, n, u = radar.from_nation.apply(x[0], x[1], x[2])
            if radar.visible(e, n, u):
                self._look[k] = 1
            P = tr.P
            for i in range(count):
                j3 = 3 * i
                j6 = 6 * i
                dx = z[j3] - x[0]
                dy = z[j3 + 1] - x[1]
                dz = z[j3 + 2] - x[2]
                sxx = P[0] + R[j6]
                syy = P[7] + R[j6 + 3]
                szz = P[14] + R[j6 + 5]
                # d2 >= dx^2/sxx for any positive-definite S: a cheap first cut.
                if dx * dx > wide * sxx or dy * dy > wide * syy or dz * dz > wide * szz:
                    continue
                d2 = _mahal(dx, dy, dz, sxx, P[1] + R[j6 + 1], P[2] + R[j6 + 2], syy,
                            P[8] + R[j6 + 4], szz)
                if d2 <= gate:
                    pairs.append((d2, k, i))
                if d2 <= wide and tr.status == 2:
                    near[i] = 1
        pairs.sort()
        nup = 0
        for d2, k, i in pairs:
            if self._tused[k] or self._used[i]:
                continue
            self._tused[k] = 1
            self._look[k] = 1
            self._used[i] = 1
            tr = self.tracks[k]
            self._update(tr, i)
            tr.t_update = t
            tr.hits += 1
            if tr.status == 1 and tr.hits >= p["confirm_m"]:
                tr.status = 2
            if tr.status == 2:
                tr.report_id = self.next_report
                self.next_report += 1
                self.updated[nup] = tr
                nup += 1
        for k, tr in enumerate(self.tracks):
            if tr.status == 0:
                continue
            if self._look[k]:
                tr.looks += 1
            if tr.status == 1:
                if tr.hits + (p["confirm_n"] - tr.looks) < p["confirm_m"] or t - tr.t_update > self._tent_coast:
                    self._drop(tr)
            elif t - tr.t_update > p["coast_s"] or self.frame.altitude(tr.x[0], tr.x[1], tr.x[2]) < 0.0:
                self._drop(tr)
        for i in range(count):
            if not self._used[i] and not near[i]:
                self._initiate(t, i)
        return nup

    def _drop(self, tr):
        tr.status = 0
        self.dropped += 1

    def _convert(self, radar, plots, i):
        el = plots.el[i]
        az = plots.az[i]
        ce = math.cos(el)
        se = math.sin(el)
        sa = math.sin(az)
        ca = math.cos(az)
        r = plots.r[i]
        x, y, zz = radar.to_nation.apply(r * ce * sa, r * ce * ca, r * se)
        j3 = 3 * i
        self._z[j3] = x
        self._z[j3 + 1] = y
        self._z[j3 + 2] = zz
        cfg = radar.cfg
        rot = radar.to_nation.rotate
        # C = sum_k sigma_k^2 j_k j_k^T over the columns of d(position)/d(r, az, el), rotated.
        a = rot(ce * sa, ce * ca, se)
        b = rot(r * ce * ca, -r * ce * sa, 0.0)
        c = rot(-r * se * sa, -r * se * ca, r * ce)
        s1 = cfg["sigma_range_m"] ** 2
        s2 = cfg["sigma_az_rad"] ** 2
        s3 = cfg["sigma_el_rad"] ** 2
        R = self._r
        j6 = 6 * i
        idx = 0
        for m in range(3):
            for n in range(m, 3):
                R[j6 + idx] = s1 * a[m] * a[n] + s2 * b[m] * b[n] + s3 * c[m] * c[n]
                idx += 1

    def _predict(self, tr, t):
        dt = t - tr.t
        if dt <= 0.0:
            return
        s = self._s
        x = tr.x
        for i in range(6):
            s[i] = x[i]
        # RK4 steps of at most 2 s keep the ballistic prediction at metre level.
        steps = int(dt / 2.0) + 1
        h = dt / steps
        for _ in range(steps):
            motion.propagate(self.frame, s, h)
        for i in range(6):
            x[i] = s[i]
        P = tr.P
        dt2 = dt * dt
        q = self.p["q_boost"] if tr.man else self.p["q_accel"]
        q2 = q * q
        qpp = q2 * dt2 * dt2 / 4.0
        qpv = q2 * dt2 * dt / 2.0
        qvv = q2 * dt2
        for i in range(3):
            for j in range(3):
                a = P[i * 6 + j]
                b = P[i * 6 + j + 3]
                c = P[(i + 3) * 6 + j]
                d = P[(i + 3) * 6 + j + 3]
                P[i * 6 + j] = a + dt * (b + c) + dt2 * d
                P[i * 6 + j + 3] = b + dt * d
                P[(i + 3) * 6 + j] = c + dt * d
            P[i * 7] += qpp
            P[i * 7 + 3] += qpv
            P[(i + 3) * 6 + i] += qpv
            P[(i + 3) * 7] += qvv
        tr.t = t

    def _update(self, tr, i):
        x = tr.x
        P = tr.P
        j3 = 3 * i
        j6 = 6 * i
        R = self._r
        z = self._z
        si = self._si
        sxx = P[0] + R[j6]
        sxy = P[1] + R[j6 + 1]
        sxz = P[2] + R[j6 + 2]
        syy = P[7] + R[j6 + 3]
        syz = P[8] + R[j6 + 4]
        szz = P[14] + R[j6 + 5]
        if not _inv3(sxx, sxy, sxz, syy, syz, szz, si):
            return
        nu0 = z[j3] - x[0]
        nu1 = z[j3 + 1] - x[1]
        nu2 = z[j3 + 2] - x[2]
        nis = (nu0 * (si[0] * nu0 + si[1] * nu1 + si[2] * nu2) + nu1 * (si[3] * nu0 + si[4] * nu1 + si[5] * nu2)
               + nu2 * (si[6] * nu0 + si[7] * nu1 + si[8] * nu2))
        pht = self._pht
        K = self._k
        for r in range(6):
            for c in range(3):
                pht[r * 3 + c] = P[r * 6 + c]
        for r in range(6):
            a = pht[r * 3]
            b = pht[r * 3 + 1]
            g = pht[r * 3 + 2]
            K[r * 3] = a * si[0] + b * si[3] + g * si[6]
            K[r * 3 + 1] = a * si[1] + b * si[4] + g * si[7]
            K[r * 3 + 2] = a * si[2] + b * si[5] + g * si[8]
        for r in range(6):
            x[r] += K[r * 3] * nu0 + K[r * 3 + 1] * nu1 + K[r * 3 + 2] * nu2
        # P -= K (P H^T)^T, then symmetrise (float32 storage drifts otherwise).
        for r in range(6):
            k0 = K[r * 3]
            k1 = K[r * 3 + 1]
            k2 = K[r * 3 + 2]
            for c in range(r, 6):
                v = P[r * 6 + c] - (k0 * pht[c * 3] + k1 * pht[c * 3 + 1] + k2 * pht[c * 3 + 2])
                P[r * 6 + c] = v
                P[c * 6 + r] = v
        tr.updates += 1
        tr.nis = _NIS_FADE * tr.nis + (1.0 - _NIS_FADE) * nis
        if tr.updates >= 3 and tr.t - tr.e_t >= _BOOST_WINDOW:
            e = self._jacobi(x)
            if tr.e_t >= 0.0:
                tr.man = (e - tr.e_ref) / (tr.t - tr.e_t) > _BOOST_RATE or tr.nis > _NIS_ON
            tr.e_ref = e
            tr.e_t = tr.t

    def _jacobi(self, x):
        # v^2/2 - GM/r - (w^2/2) |k x r|^2 (J2 left out: it changes slowly along a trajectory)
        c = self.frame.centre
        k = self.frame.axis
        rx = x[0] - c[0]
        ry = x[1] - c[1]
        rz = x[2] - c[2]
        r2 = rx * rx + ry * ry + rz * rz
        z = rx * k[0] + ry * k[1] + rz * k[2]
        w = geo.OMEGA_E
        return (0.5 * (x[3] * x[3] + x[4] * x[4] + x[5] * x[5]) - geo.GM / math.sqrt(r2)
                - 0.5 * w * w * (r2 - z * z))

    def _initiate(self, t, i):
        for tr in self.tracks:
            if tr.status == 0:
                break
        else:
            self.full += 1
            return
        tr.status = 1
        tr.tid = self.next_tid
        self.next_tid += 1
        tr.t = t
        tr.t_update = t
        tr.looks = 1
        tr.hits = 1
        tr.updates = 0
        tr.report_id = 0
        tr.nis = 3.0
        tr.man = True
        tr.e_t = -1.0
        x = tr.x
        P = tr.P
        z = self._z
        R = self._r
        j6 = 6 * i
        for k in range(36):
            P[k] = 0.0
        for k in range(3):
            x[k] = z[3 * i + k]
            x[k + 3] = 0.0
        P[0] = R[j6]
        P[1] = P[6] = R[j6 + 1]
        P[2] = P[12] = R[j6 + 2]
        P[7] = R[j6 + 3]
        P[8] = P[13] = R[j6 + 4]
        P[14] = R[j6 + 5]
        v = self.p["init_speed_sigma"] ** 2
        P[21] = v
        P[28] = v
        P[35] = v


def _inv3(a, b, c, d, e, f, out):
    # Inverse of the symmetric [[a b c] [b d e] [c e f]] into out (row-major 3x3).
    c0 = d * f - e * e
    c1 = c * e - b * f
    c2 = b * e - c * d
    det = a * c0 + b * c1 + c * c2
    if not det > 0.0:
        return False
    inv = 1.0 / det
    out[0] = c0 * inv
    out[1] = out[3] = c1 * inv
    out[2] = out[6] = c2 * inv
    out[4] = (a * f - c * c) * inv
    out[5] = out[7] = (b * c - a * e) * inv
    out[8] = (a * d - b * b) * inv
    return True


def _mahal(dx, dy, dz, a, b, c, d, e, f):
    # dx^T S^-1 dx for the symmetric S = [[a b c] [b d e] [c e f]]; inf if S is not positive definite.
    c0 = d * f - e * e
    c1 = c * e - b * f
    c2 = b * e - c * d
    det = a * c0 + b * c1 + c * c2
    if not det > 0.0:
        return 1e30
    q = (c0 * dx * dx + (a * f - c * c) * dy * dy + (a * d - b * b) * dz * dz
         + 2.0 * (c1 * dx * dy + c2 * dx * dz + (b * c - a * e) * dy * dz))
    return q / det
