# deadreckon.py: the dead-reckoning motion model and the per-destination sender (PROTOCOL.md 5.6)
"""How a receiver extrapolates the track copy it holds, and how a sender
decides, per destination, whether the receiver's extrapolation is still
good enough (DIS-style dead reckoning). The C twin is native/c/drmodel.c
and tl_dr in native/c/codec.c.

The model: a free body in the nation's Earth-fixed local ENU frame, WGS-84
point mass plus J2 gravity toward the Earth's centre, Coriolis and
centrifugal terms of the rotating Earth, RK4 with a fixed step (default
1 s): floor(dt/step) full steps, then one step of the remainder.

    >>> m = Model(39.2, 0.0)
    >>> x = [0.0, 0.0, 100e3, 1000.0, 0.0, 0.0]
    >>> y = m.extrapolate(x, 10.0)
    >>> round(y[2]), round(y[0])                 # ~ 100 km - g t^2 / 2, 10 km east
    (99531, 10000)
"""
import math

from trilink_board import codec

_A = 6378137.0
_F = 1.0 / 298.257223563
_GM = 3.986004418e14
_J2 = 1.08262982e-3
_OMEGA = 7.292115e-5


class Model:
    """``Model(origin_lat_deg, origin_h_m, step_s=1.0)``."""

    def __init__(self, lat_deg, h_m=0.0, step_s=1.0):
        e2 = _F * (2.0 - _F)
        la = lat_deg * (math.pi / 180.0)
        s = math.sin(la)
        c = math.cos(la)
        n = _A / math.sqrt(1.0 - e2 * s * s)
        self.cn = n * e2 * s * c          # Earth's centre at (0, cn, cu) in ENU
        self.cu = -(n + h_m) + n * e2 * s * s
        self.kn = c                       # spin axis (0, kn, ku)
        self.ku = s
        self.step = step_s if step_s > 0.0 else 1.0

    def accel(self, x):
        """Acceleration [ae, an, au] m/s^2 at state x."""
        rx = x[0]
        ry = x[1] - self.cn
        rz = x[2] - self.cu
        r2 = rx * rx + ry * ry + rz * rz
        r = math.sqrt(r2)
        kn = self.kn
        ku = self.ku
        z = ry * kn + rz * ku
        gm_r3 = _GM / (r2 * r)
        j = 1.5 * _J2 * _A * _A / r2
        fa = -gm_r3 * (1.0 + j * (1.0 - 5.0 * z * z / r2))
        fk = -gm_r3 * j * 2.0 * z
        w = _OMEGA
        ww = w * w
        cx = kn * x[5] - ku * x[4]
        cy = ku * x[3]
        cz = -kn * x[3]
        return [fa * rx - 2.0 * w * cx + ww * rx,
                fa * ry + fk * kn - 2.0 * w * cy + ww * (ry - z * kn),
                fa * rz + fk * ku - 2.0 * w * cz + ww * (rz - z * ku)]

    def _rk4(self, s, h):
        h2 = 0.5 * h
        k1 = self.accel(s)
        k2 = self.accel([s[i] + h2 * s[3 + i] for i in range(3)] +
                        [s[3 + i] + h2 * k1[i] for i in range(3)])
        k3 = self.accel([s[i] + h2 * (s[3 + i] + h2 * k1[i]) for i in range(3)] +
                        [s[3 + i] + h2 * k2[i] for i in range(3)])
        k4 = self.accel([s[i] + h * (s[3 + i] + h2 * k2[i]) for i in range(3)] +
                        [s[3 + i] + h * k3[i] for i in range(3)])
        out = [0.0] * 6
        for i in range(3):
            v1 = s[3 + i]
            v2 = v1 + h2 * k1[i]
            v3 = v1 + h2 * k2[i]
            v4 = v1 + h * k3[i]
            out[i] = s[i] + h / 6.0 * (v1 + 2.0 * v2 + 2.0 * v3 + v4)
            out[3 + i] = v1 + h / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i])
        return out

    def extrapolate(self, x, dt_s):
        """A new state list: x advanced by dt_s >= 0 seconds."""
        s = list(x)
        if not dt_s > 0.0:
            return s
        n = math.floor(dt_s / self.step)
        if n > 10000000:
            n = 10000000
        tail = dt_s - n * self.step
        for _ in range(int(n)):
            s = self._rk4(s, self.step)
        if tail > 0.0:
            s = self._rk4(s, tail)
        return s


# counter names, in tl_dr_counters order
COUNTERS = ("inputs", "keyframes", "deltas", "drops", "suppressed", "heartbeat", "position",
            "covariance", "meta", "impact", "new_track", "stale")


class Sender:
    """Dead-reckoning suppression toward one receiver (mirror of C tl_dr).

        >>> snd = Sender(codec.REPORT, 39.2)
        >>> P = [0.0] * 36
        >>> for i in range(6): P[7 * i] = 25.0
        >>> u = codec.Update(1, 0, [0.0, 0.0, 1e5, 1e3, 0.0, 0.0], P)
        >>> payload, sent = snd.encode([u])
        >>> sent, snd.counts["keyframes"]
        ([(0, 0)], 1)
    """

    def __init__(self, kind, lat_deg, h_m=0.0, prec=None, step_s=1.0, threshold_m=50.0,
                 heartbeat_us=5000000, cov_sig_codes=2, cov_cor_codes=4, impact_m=100.0,
                 impact_t_us=100000):
        self.kind = kind
        self.prec = prec if prec is not None else codec.Precision()
        self.model = Model(lat_deg, h_m, step_s)
        self.threshold_m = threshold_m
        self.heartbeat_us = heartbeat_us
        self.cov_sig_codes = cov_sig_codes
        self.cov_cor_codes = cov_cor_codes
        self.impact_m = impact_m
        self.impact_t_us = impact_t_us
        self.held = {}       # tid -> codec.Rec: the receiver's copy as we believe it
        self.pending = {}    # tid -> [(node, rid)] sources of suppressed updates
        self.counts = {}
        for k in COUNTERS:
            self.counts[k] = 0

    def request_keyframe(self, tid=None):
        """KEYFRAME_REQ: the next update of ``tid`` (None: every track) is a keyframe."""
        if tid is None:
            self.held = {}
        elif tid in self.held:
            del self.held[tid]

    def decide(self, u, r):
        """(record type or None, SEND_* bits, reason counter) for update u
        with codes r against the held copy."""
        h = self.held.get(u.tid)
        if h is None:
            return codec.KEY, 0, "new_track"
        dt = u.t_us - h.t_us
        if dt < 0:
            return None, 0, "stale"
        send = 0
        reason = None
        if max([abs(r.sig[i] - h.sig[i]) for i in range(6)]) >= self.cov_sig_codes or \
                max([abs(r.cor[i] - h.cor[i]) for i in range(15)]) >= self.cov_cor_codes:
            send |= codec.SEND_COV
            reason = "covariance"
        if r.flags != h.flags or r.nations != h.nations:
            send |= codec.SEND_META
            reason = reason or "meta"
        if self.kind == codec.PICTURE and self._impact_moved(r.imp, h.imp):
            send |= codec.SEND_IMPACT
            reason = reason or "impact"
        if reason is None:
            if dt >= self.heartbeat_us:
                reason = "heartbeat"
            else:
                y = self.model.extrapolate(h.state(self.prec), dt * 1e-6)
                de = y[0] - u.x[0]
                dn = y[1] - u.x[1]
                du = y[2] - u.x[2]
                if math.sqrt(de * de + dn * dn + du * du) > self.threshold_m:
                    reason = "position"
        if reason is None:
            return None, 0, None
        if not codec.delta_ok(h, u.t_us, self.prec):
            return codec.KEY, 0, reason
        return codec.DELTA, send, reason

    def _impact_moved(self, a, b):
        if (a is None) != (b is None):
            return True
        if a is None:
            return False
        p = self.prec.pos
        de = (a[0] - b[0]) * p
        dn = (a[1] - b[1]) * p
        if math.sqrt(de * de + dn * dn) > self.impact_m or abs(a[2] - b[2]) > self.impact_t_us:
            return True
        for i in (3, 4):
            if abs(a[i] - b[i]) > b[i] // 10 + 1:
                return True
        do = abs(a[5] - b[5])
        return min(do, codec.ORIENT_CODES - do) > 200

    def encode(self, updates, drops=(), base_us=None):
        """Payload (None when nothing is sent) and [(index, rtype)] for the
        updates sent; ``drops``: track ids to drop (DROP records)."""
        items = []
        sent = []
        for i in range(len(updates)):
            u = updates[i]
            self.counts["inputs"] += 1
            r = codec.quantise(u, self.prec)
            rtype, send, reason = self.decide(u, r)
            if reason is not None:
                self.counts[reason] += 1
            if rtype is None:
                if reason != "stale":
                    self.counts["suppressed"] += 1
                    if self.kind == codec.PICTURE and u.sources:
                        self.pending[u.tid] = (self.pending.get(u.tid, []) + list(u.sources))[-16:]
                continue
            if self.kind == codec.PICTURE:
                r.sources = (self.pending.pop(u.tid, []) + list(r.sources))[-16:]
            self.counts["keyframes" if rtype == codec.KEY else "deltas"] += 1
            items.append((rtype, r, send))
            sent.append((i, rtype))
        for tid in drops:
            r = codec.Rec()
            r.tid = tid
            r.t_us = updates[-1].t_us if updates else (base_us or 0)
            items.append((codec.DROP, r, 0))
            self.counts["drops"] += 1
            if tid in self.pending:
                del self.pending[tid]
        if not items:
            return None, sent
        return codec.encode(self.kind, self.prec, items, base_us=base_us, held=self.held), sent
