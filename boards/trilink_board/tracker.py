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
# Updates before the first Jacobi reference. A young track's velocity error dv adds ~v dv + dv^2/2
# to its Jacobi integral (Korea's 1 Hz, 0.15 deg radar: median dv 380 m/s after 3 updates, 190
# after 6), and a reference taken that early, too high, made a boosting missile look like
# coasting at the next window: q_accel then lost it under thrust and a second track took it over
# (srbm_sea, srbm_korea_only). After 8 updates (2 s of Japan's radars, 8 s of Korea's) such
# re-initiations fell from 16 to 3 over 6 scenarios x 6 seeds, judged-coasting-under-thrust
# updates from 476 to 282; the first coasting judgement comes 1.4 s later on average.
_REF_UPDATES = 8
_PAIRS_PER_TRACK = 8   # gated pairs kept per scan, per track slot (the debris cloud reached 900 = 22 per slot)
_PLOT_BITS = 7         # pair key = track slot << 7 | plot index (a scan has at most radar.MAX_PLOTS = 96)


class Track:
    """A view of one track slot, as ``Tracker.updated`` lists them: ``tid``, ``status``
    (2), ``t`` (s) of ``x`` and ``P``, ``x`` (6: position m, velocity m/s, nation ENU) and
    ``P`` (6x6 row-major) views of the tracker's float32 columns (valid until its next
    scan), ``report_id`` of this update, ``man`` (judged under thrust), ``k`` (its slot)."""

    def __init__(self, trk, k):
        self.k = k
        self.tid = trk.tid[k]
        self.status = trk.status[k]
        self.t = trk.t[k]
        self.report_id = trk.report_id[k]
        self.man = bool(trk.man[k])
        self.x = memoryview(trk.X)[6 * k:6 * k + 6]
        self.P = memoryview(trk.PP)[36 * k:36 * k + 36]

    def pos_sigma(self):
        """RMS position standard deviation: sqrt(trace(P_pos) / 3)."""
        P = self.P
        return math.sqrt(max(0.0, (P[0] + P[7] + P[14]) / 3.0))


class Tracker:
    """``Tracker(params, nation_frame, radars)``; params is config.load_nation(...)["tracker"].

    ``size`` track slots (``max_tracks``) in columns, slot k: ``tid[k]``, ``status[k]`` (0 free,
    1 tentative, 2 confirmed), ``t[k]`` (s) of ``X[6k:6k+6]`` and ``PP[36k:36k+36]``,
    ``report_id[k]`` of its last report, ``man[k]``; ~230 bytes a slot, where an object per
    track took ~600 on the 64-bit unix port (40 slots: 9 KB, not 24 KB, of a 192 KB heap).
    When every slot is taken a plot that would start a track is dropped (``full``)."""

    def __init__(self, params, frame, radars):
        self.p = params
        self.frame = frame
        self.radars = radars
        n = params["max_tracks"]
        self.size = n
        self.tid = array("I", bytes(4 * n))
        self.status = bytearray(n)
        self.t = array("d", bytes(8 * n))
        self.t_update = array("d", bytes(8 * n))
        self.X = array("f", bytes(24 * n))
        self.PP = array("f", bytes(144 * n))
        self.looks = array("I", bytes(4 * n))
        self.hits = array("I", bytes(4 * n))
        self.updates = array("I", bytes(4 * n))
        self.report_id = array("I", bytes(4 * n))
        self.nis = array("d", bytes(8 * n))
        self.man = bytearray(n)
        self.e_ref = array("d", bytes(8 * n))
        self.e_t = array("d", bytes(8 * n))
        # Slots of the confirmed tracks the last process() updated, in update order (``updated``:
        # as Track views); a board reads the columns through these rather than keep views.
        self.updated_k = array("H", bytes(2 * n))
        self.n_updated = 0
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
        # Gated (track, plot) pairs of one scan, preallocated: the smallest distances are kept
        # (a max-heap, then sorted in place). A list of tuples grew to 40 x 77 pairs on the
        # debris scenario's fragment cloud (~150 KB); past the cap the least likely pairs go.
        cap = _PAIRS_PER_TRACK * n
        self._pd = array("d", bytes(8 * cap))
        self._pk = array("I", bytes(4 * cap))
        self.pairs_dropped = 0          # gated pairs past the cap (the largest distances) since boot

    @property
    def updated(self):
        """A ``Track`` of each confirmed track the last ``process()`` updated (host code, tests)."""
        return [Track(self, self.updated_k[j]) for j in range(self.n_updated)]

    @property
    def tracks(self):
        """A ``Track`` view of every slot (host code and tests; the board reads the columns)."""
        return [Track(self, k) for k in range(self.size)]

    def confirmed(self):
        """Count of confirmed tracks."""
        c = 0
        for k in range(self.size):
            if self.status[k] == 2:
                c += 1
        return c

    def live_tids(self):
        """Track ids of the confirmed slots."""
        return [self.tid[k] for k in range(self.size) if self.status[k] == 2]

    def process(self, ri, t, plots, count):
        """Feed one scan of radar ``ri`` at time ``t``: ``plots[:count]``. Returns how many confirmed
        tracks were updated; their slots are ``self.updated_k[:n]`` (``self.updated``: views),
        each with a fresh ``report_id``."""
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
        pd = self._pd
        pk = self._pk
        cap = len(pk)
        np_ = 0
        st = self.status
        X = self.X
        PP = self.PP
        for k in range(self.size):
            self._tused[k] = 0
            self._look[k] = 0
            if st[k] == 0:
                continue
            self._predict(k, t)
            j6 = 6 * k
            x0 = X[j6]
            x1 = X[j6 + 1]
            x2 = X[j6 + 2]
            # Every track is gated, but only one predicted inside the coverage
            # counts a look (a miss when nothing is assigned): near the edge of
            # coverage the prediction may fall just outside while the plot is in.
            e, n, u = radar.from_nation.apply(x0, x1, x2)
            if radar.visible(e, n, u):
                self._look[k] = 1
            j36 = 36 * k
            p0 = PP[j36]
            p1 = PP[j36 + 1]
            p2 = PP[j36 + 2]
            p7 = PP[j36 + 7]
            p8 = PP[j36 + 8]
            p14 = PP[j36 + 14]
            for i in range(count):
                j3 = 3 * i
                j6 = 6 * i
                dx = z[j3] - x0
                dy = z[j3 + 1] - x1
                dz = z[j3 + 2] - x2
                sxx = p0 + R[j6]
                syy = p7 + R[j6 + 3]
                szz = p14 + R[j6 + 5]
                # d2 >= dx^2/sxx for any positive-definite S: a cheap first cut.
                if dx * dx > wide * sxx or dy * dy > wide * syy or dz * dz > wide * szz:
                    continue
                d2 = _mahal(dx, dy, dz, sxx, p1 + R[j6 + 1], p2 + R[j6 + 2], syy,
                            p8 + R[j6 + 4], szz)
                if d2 <= gate:
                    key = (k << _PLOT_BITS) | i
                    if np_ < cap:
                        pd[np_] = d2
                        pk[np_] = key
                        np_ += 1
                        _sift_up(pd, pk, np_ - 1)
                    else:
                        self.pairs_dropped += 1
                        if d2 < pd[0] or (d2 == pd[0] and key < pk[0]):
                            pd[0] = d2
                            pk[0] = key
                            _sift_down(pd, pk, 0, np_)
                if d2 <= wide and st[k] == 2:
                    near[i] = 1
        # Heapsort the max-heap in place: ascending (distance, track, plot), as tuples sort.
        end = np_
        while end > 1:
            end -= 1
            d = pd[0]
            pd[0] = pd[end]
            pd[end] = d
            key = pk[0]
            pk[0] = pk[end]
            pk[end] = key
            _sift_down(pd, pk, 0, end)
        nup = 0
        mask = (1 << _PLOT_BITS) - 1
        for j in range(np_):
            k = pk[j] >> _PLOT_BITS
            i = pk[j] & mask
            if self._tused[k] or self._used[i]:
                continue
            self._tused[k] = 1
            self._look[k] = 1
            self._used[i] = 1
            self._update(k, i)
            self.t_update[k] = t
            self.hits[k] += 1
            if st[k] == 1 and self.hits[k] >= p["confirm_m"]:
                st[k] = 2
            if st[k] == 2:
                self.report_id[k] = self.next_report
                self.next_report += 1
                self.updated_k[nup] = k
                nup += 1
        for k in range(self.size):
            if st[k] == 0:
                continue
            if self._look[k]:
                self.looks[k] += 1
            if st[k] == 1:
                if (self.hits[k] + (p["confirm_n"] - self.looks[k]) < p["confirm_m"]
                        or t - self.t_update[k] > self._tent_coast):
                    self._drop(k)
            elif (t - self.t_update[k] > p["coast_s"]
                  or self.frame.altitude(X[6 * k], X[6 * k + 1], X[6 * k + 2]) < 0.0):
                self._drop(k)
        for i in range(count):
            if not self._used[i] and not near[i]:
                self._initiate(t, i)
        self.n_updated = nup
        return nup

    def _drop(self, k):
        self.status[k] = 0
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

    def _predict(self, k, t):
        dt = t - self.t[k]
        if dt <= 0.0:
            return
        s = self._s
        X = self.X
        j = 6 * k
        for i in range(6):
            s[i] = X[j + i]
        # RK4 steps of at most 2 s keep the ballistic prediction at metre level.
        steps = int(dt / 2.0) + 1
        h = dt / steps
        for _ in range(steps):
            motion.propagate(self.frame, s, h)
        for i in range(6):
            X[j + i] = s[i]
        P = self.PP
        o = 36 * k
        dt2 = dt * dt
        q = self.p["q_boost"] if self.man[k] else self.p["q_accel"]
        q2 = q * q
        qpp = q2 * dt2 * dt2 / 4.0
        qpv = q2 * dt2 * dt / 2.0
        qvv = q2 * dt2
        for i in range(3):
            for j in range(3):
                a = P[o + i * 6 + j]
                b = P[o + i * 6 + j + 3]
                c = P[o + (i + 3) * 6 + j]
                d = P[o + (i + 3) * 6 + j + 3]
                P[o + i * 6 + j] = a + dt * (b + c) + dt2 * d
                P[o + i * 6 + j + 3] = b + dt * d
                P[o + (i + 3) * 6 + j] = c + dt * d
            P[o + i * 7] += qpp
            P[o + i * 7 + 3] += qpv
            P[o + (i + 3) * 6 + i] += qpv
            P[o + (i + 3) * 7] += qvv
        self.t[k] = t

    def _update(self, k, i):
        X = self.X
        xo = 6 * k
        P = self.PP
        o = 36 * k
        j3 = 3 * i
        j6 = 6 * i
        R = self._r
        z = self._z
        si = self._si
        sxx = P[o] + R[j6]
        sxy = P[o + 1] + R[j6 + 1]
        sxz = P[o + 2] + R[j6 + 2]
        syy = P[o + 7] + R[j6 + 3]
        syz = P[o + 8] + R[j6 + 4]
        szz = P[o + 14] + R[j6 + 5]
        if not _inv3(sxx, sxy, sxz, syy, syz, szz, si):
            return
        nu0 = z[j3] - X[xo]
        nu1 = z[j3 + 1] - X[xo + 1]
        nu2 = z[j3 + 2] - X[xo + 2]
        nis = (nu0 * (si[0] * nu0 + si[1] * nu1 + si[2] * nu2) + nu1 * (si[3] * nu0 + si[4] * nu1 + si[5] * nu2)
               + nu2 * (si[6] * nu0 + si[7] * nu1 + si[8] * nu2))
        pht = self._pht
        K = self._k
        for r in range(6):
            for c in range(3):
                pht[r * 3 + c] = P[o + r * 6 + c]
        for r in range(6):
            a = pht[r * 3]
            b = pht[r * 3 + 1]
            g = pht[r * 3 + 2]
            K[r * 3] = a * si[0] + b * si[3] + g * si[6]
            K[r * 3 + 1] = a * si[1] + b * si[4] + g * si[7]
            K[r * 3 + 2] = a * si[2] + b * si[5] + g * si[8]
        for r in range(6):
            X[xo + r] += K[r * 3] * nu0 + K[r * 3 + 1] * nu1 + K[r * 3 + 2] * nu2
        # P -= K (P H^T)^T, then symmetrise (float32 storage drifts otherwise).
        for r in range(6):
            k0 = K[r * 3]
            k1 = K[r * 3 + 1]
            k2 = K[r * 3 + 2]
            for c in range(r, 6):
                v = P[o + r * 6 + c] - (k0 * pht[c * 3] + k1 * pht[c * 3 + 1] + k2 * pht[c * 3 + 2])
                P[o + r * 6 + c] = v
                P[o + c * 6 + r] = v
        self.updates[k] += 1
        self.nis[k] = _NIS_FADE * self.nis[k] + (1.0 - _NIS_FADE) * nis
        tk = self.t[k]
        if self.updates[k] >= _REF_UPDATES and tk - self.e_t[k] >= _BOOST_WINDOW:
            e = self._jacobi(X, xo)
            if self.e_t[k] >= 0.0:
                self.man[k] = (e - self.e_ref[k]) / (tk - self.e_t[k]) > _BOOST_RATE or self.nis[k] > _NIS_ON
            self.e_ref[k] = e
            self.e_t[k] = tk

    def _jacobi(self, X, o):
        # v^2/2 - GM/r - (w^2/2) |k x r|^2 (J2 left out: it changes slowly along a trajectory)
        c = self.frame.centre
        k = self.frame.axis
        rx = X[o] - c[0]
        ry = X[o + 1] - c[1]
        rz = X[o + 2] - c[2]
        r2 = rx * rx + ry * ry + rz * rz
        z = rx * k[0] + ry * k[1] + rz * k[2]
        w = geo.OMEGA_E
        return (0.5 * (X[o + 3] * X[o + 3] + X[o + 4] * X[o + 4] + X[o + 5] * X[o + 5]) - geo.GM / math.sqrt(r2)
                - 0.5 * w * w * (r2 - z * z))

    def _initiate(self, t, i):
        st = self.status
        for k in range(self.size):
            if st[k] == 0:
                break
        else:
            self.full += 1
            return
        st[k] = 1
        self.tid[k] = self.next_tid
        self.next_tid += 1
        self.t[k] = t
        self.t_update[k] = t
        self.looks[k] = 1
        self.hits[k] = 1
        self.updates[k] = 0
        self.report_id[k] = 0
        self.nis[k] = 3.0
        self.man[k] = 1
        self.e_t[k] = -1.0
        X = self.X
        P = self.PP
        xo = 6 * k
        o = 36 * k
        z = self._z
        R = self._r
        j6 = 6 * i
        for j in range(36):
            P[o + j] = 0.0
        for j in range(3):
            X[xo + j] = z[3 * i + j]
            X[xo + j + 3] = 0.0
        P[o] = R[j6]
        P[o + 1] = P[o + 6] = R[j6 + 1]
        P[o + 2] = P[o + 12] = R[j6 + 2]
        P[o + 7] = R[j6 + 3]
        P[o + 8] = P[o + 13] = R[j6 + 4]
        P[o + 14] = R[j6 + 5]
        v = self.p["init_speed_sigma"] ** 2
        P[o + 21] = v
        P[o + 28] = v
        P[o + 35] = v


def _sift_up(pd, pk, j):
    # Max-heap on (pd, pk): move entry j up to its place.
    d = pd[j]
    key = pk[j]
    while j > 0:
        up = (j - 1) >> 1
        if pd[up] > d or (pd[up] == d and pk[up] > key):
            break
        pd[j] = pd[up]
        pk[j] = pk[up]
        j = up
    pd[j] = d
    pk[j] = key


def _sift_down(pd, pk, j, n):
    # Max-heap on (pd, pk) of n entries: move entry j down to its place.
    d = pd[j]
    key = pk[j]
    while True:
        c = 2 * j + 1
        if c >= n:
            break
        if c + 1 < n and (pd[c + 1] > pd[c] or (pd[c + 1] == pd[c] and pk[c + 1] > pk[c])):
            c += 1
        if d > pd[c] or (d == pd[c] and key > pk[c]):
            break
        pd[j] = pd[c]
        pk[j] = pk[c]
        j = c
    pd[j] = d
    pk[j] = key


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
