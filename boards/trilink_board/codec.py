# codec.py: track update records, keyframes and deltas (docs/PROTOCOL.md section 5)
# One module of ~1,100 lines on purpose: split three ways (constants and quantisation, bit
# packing and encode, Held/Table/decode: each re-exported from here) the debris board of
# tests/test_board_heap.py ran out of its 192 KB heap (MemoryError in encode): the extra
# module objects and re-exported names cost more than a 192 KB board has to spare.
"""The track codec of docs/PROTOCOL.md section 5 in pure Python, for
MicroPython boards and CPython tools. It agrees byte for byte with the C
kernel (native/c/codec.c); tests/vectors/codec_v2.json binds both.

A track update is quantised to integer codes (``quantise``), a batch of
(record type, codes, what to send) items is bit-packed (``encode``) and a
payload is unpacked against the receiver's copies of the tracks
(``decode``). ``held`` is a dict track id -> ``Rec``: the copy the
receiver holds, which a sender mirrors per destination.

    >>> prec = Precision()                       # 1 m, 0.05 m/s
    >>> P = [0.0] * 36
    >>> for i in range(6): P[7 * i] = 100.0 if i < 3 else 4.0
    >>> u = Update(7, 1000000, [1e5, 2e5, 3e5, 1e3, -2e3, 5e2], P, report_id=41)
    >>> held = {}
    >>> payload = encode(REPORT, prec, [(KEY, quantise(u, prec), 0)], held=held)
    >>> b = decode(payload, {})
    >>> rtype, status, rec = b.items[0]
    >>> rec.state(b.prec)[0], rec.report_id
    (100000.0, 41)

Errors: ``CodecError`` with ``reason`` "truncated", "version" or
"malformed" from ``decode``; "range" (a value the format cannot carry) or
"no_base" (a delta without a held copy) or "no_space" from ``encode``.
Floats are IEEE doubles here (the MicroPython unix port); a float32 board
port must hand in positions and velocities already on the quantisation
grid so that its codes equal the relay's (section 5.3).
"""
import math
import struct
from array import array

VERSION = 2  # 2: PICTURE source ids per node, u(32) then se deltas (5.5)
REPORT = 0    # batch kind: TRACK_REPORT payload (board -> relay)
PICTURE = 1   # batch kind: PICTURE payload (relay -> board)
KEY = 0       # record types
DELTA = 1
DROP = 2
SEND_COV = 1  # what a DELTA item carries besides the state (KEY carries all)
SEND_META = 2
SEND_IMPACT = 4
# per-record decode status
OK = 0
NO_BASE = 1   # delta without a matching held copy: ask for a keyframe (KEYFRAME_REQ)
DUP = 2       # the held copy already is this update (retransmission): ignored
GONE = 3      # DROP record: the held copy was removed

MAX_RECORDS = 1024
MAX_SOURCES = 16
MAX_STEP = 65535
SIG_MIN = -96          # code of the smallest variance, 2^(-96/4) = 2^-24
SIG_BITS = 8
COR_MAX = 63
COR_BITS = 7
ORIENT_CODES = 18000   # 0.01 degree, ellipse axis modulo 180 degrees
G_MM = 9807            # mm/s^2, the delta predictor's constant gravity
MAX_DELTA_US = 1 << 30
MAX_VEL_MM = 1 << 31
_QMAX = float(1 << 52)  # largest |code| of a quantised value
_CODE_LIMIT = 1 << 52

_S53 = 9007199254740992  # 2^53: the tables are integer mantissas / 2^53 (exact everywhere)
# The correlation table as little-endian IEEE doubles in array('d') (its twin, the
# values the codes stand for, is in codec_host.py: only a decoder that rebuilds
# covariances needs it, and a board never does): the integer
# mantissas of docs/PROTOCOL.md 5.4 divided by 2^53 (tests/test_codec_props.py checks
# every entry against that listing). Kept as bytes because a module of 127 literal
# integers above 2^30 and their floats costs a 192 KB board about 9 KB of heap.
# tanh((c + 0.5) / 16), c = 0..62: boundaries of the correlation codes
_COR_T = array("d", (
    b"\xe0\xb1\x92\x99\x55\xfd\x9f\x3f\x90\xb0\x7f\x24\x10\xee\xb7\x3f\x24\x8c\x10\x7b\xbc\xd6\xc3\x3f\x90\x7c\x6a\x41\xd0\x8f\xcb\x3f"
    b"\x46\x48\x6b\x9e\x39\x8a\xd1\x3f\x08\x86\x1d\x56\x2c\x2c\xd5\x3f\x3a\x3c\xb3\x14\x7e\xa8\xd8\x3f\xdc\x24\x97\xab\xe6\xfa\xdb\x3f"
    b"\x5c\x47\x36\x1a\x21\x20\xdf\x3f\x10\xf6\x0b\x7e\xf4\x0a\xe1\x3f\xc7\x33\x32\xf7\x76\x6d\xe2\x3f\x2e\x74\xcb\x8b\x5f\xb7\xe3\x3f"
    b"\xdc\x10\xb0\x95\xd8\xe8\xe4\x3f\x23\x7c\xae\x9a\x60\x02\xe6\x3f\x80\xcb\x7f\x1b\xbb\x04\xe7\x3f\x6f\x84\xcd\xa4\xe1\xf0\xe7\x3f"
    b"\x6a\x0f\xb8\xc6\xf5\xc7\xe8\x3f\x92\x91\xa0\x63\x34\x8b\xe9\x3f\x96\x6b\x55\x98\xea\x3b\xea\x3f\x80\xd5\xda\x58\x6c\xdb\xea\x3f"
    b"\x2a\x12\xed\xbe\x0c\x6b\xeb\x3f\x1e\x12\xdb\xf1\x17\xec\xeb\x3f\xf9\x0a\x84\x81\xce\x5f\xec\x3f\x27\x70\xc0\x06\x62\xc7\xec\x3f"
    b"\x7c\x04\xdb\xd8\xf2\x23\xed\x3f\x42\x3c\x9a\xa8\x8e\x76\xed\x3f\x48\x7b\x85\xd4\x2f\xc0\xed\x3f\xa7\x61\x98\x4e\xbd\x01\xee\x3f"
    b"\x5a\x0a\xbf\xf0\x0a\x3c\xee\x3f\x7b\xd2\xbc\x22\xda\x6f\xee\x3f\x2b\x4e\x2c\xb9\xda\x9d\xee\x3f\x74\x98\xe5\xf9\xab\xc6\xee\x3f"
    b"\x59\x1a\x2d\xb6\xdd\xea\xee\x3f\x76\x4b\x8f\x6e\xf1\x0a\xef\x3f\x30\xd5\x40\x77\x5b\x27\xef\x3f\x9f\x3a\x48\x16\x84\x40\xef\x3f"
    b"\x1e\xe5\xac\x96\xc8\x56\xef\x3f\xa1\xee\x76\x4d\x7c\x6a\xef\x3f\x8f\xe8\x82\x8e\xe9\x7b\xef\x3f\xe7\xeb\x1b\x90\x52\x8b\xef\x3f"
    b"\x79\xba\x01\x3d\xf2\x98\xef\x3f\xc6\x37\x04\xf5\xfc\xa4\xef\x3f\x65\xe6\xba\x3c\xa1\xaf\xef\x3f\xe6\xa9\x1e\x5d\x08\xb9\xef\x3f"
    b"\xdd\x9e\xf4\xf3\x56\xc1\xef\x3f\x3e\xf2\x0f\x76\xad\xc8\xef\x3f\x99\xaf\x7a\xa4\x28\xcf\xef\x3f\x55\x06\x96\xf5\xe1\xd4\xef\x3f"
    b"\xd3\x49\x3c\xf3\xef\xd9\xef\x3f\x8f\x11\xe4\x8e\x66\xde\xef\x3f\x8f\xfd\xb5\x6c\x57\xe2\xef\x3f\x0f\xfc\x76\x26\xd2\xe5\xef\x3f"
    b"\xb1\x68\x18\x87\xe4\xe8\xef\x3f\x11\xa6\xae\xbf\x9a\xeb\xef\x3f\x51\x61\x7e\x96\xff\xed\xef\x3f\x52\xd7\xc0\x90\x1c\xf0\xef\x3f"
    b"\x60\x6b\xb0\x17\xfa\xf1\xef\x3f\x17\xc8\x60\x99\x9f\xf3\xef\x3f\x2e\xae\xd8\xa5\x13\xf5\xef\x3f\x16\x87\xd7\x08\x5c\xf6\xef\x3f"
    b"\x24\xc8\xa5\xe0\x7d\xf7\xef\x3f\xe4\x25\x45\xb2\x7d\xf8\xef\x3f\xc1\x79\x4c\x7b\x5f\xf9\xef\x3f"))
# 2^(-(3.5 - i) / 4), i = 0..3: where a frexp mantissa in [0.5, 1) rounds up a quarter octave
_SIG_T = [x / _S53 for x in (4911210218475899, 5840446135085607, 6945500098633947, 8259638134547591)]
# 2^(i / 4), i = 0..3 (mantissas / 2^52)
_SIG_Q = [x / 4503599627370496 for x in (4503599627370496, 5355712719992597, 6369051672525773,
                                         7574121564787629)]
_VAR_MIN = math.ldexp(1.0, -100)
_VAR_MAX = math.ldexp(1.0, 100)
_REM_MIN = math.ldexp(1.0, -52)


class CodecError(ValueError):
    """A payload that does not decode, or a value the format cannot carry.
    ``reason``: "truncated", "version", "malformed", "range", "no_base", "no_space"."""

    def __init__(self, reason, detail=""):
        ValueError.__init__(self, reason + (": " + detail if detail else ""))
        self.reason = reason


class Precision:
    """Quantisation steps carried in every batch header: position in mm,
    velocity in mm/s (1..65535). ``Precision(1000, 50)`` = 1 m, 0.05 m/s."""

    def __init__(self, pos_mm=1000, vel_mmps=50):
        if not (1 <= pos_mm <= MAX_STEP and 1 <= vel_mmps <= MAX_STEP):
            raise CodecError("range", "precision steps must be 1..65535")
        self.pos_mm = pos_mm
        self.vel_mmps = vel_mmps
        self.pos = pos_mm / 1000.0
        self.vel = vel_mmps / 1000.0

    def __eq__(self, other):
        return self.pos_mm == other.pos_mm and self.vel_mmps == other.vel_mmps


class Update:
    """One track update in floats: x = [e, n, u, ve, vn, vu] (m, m/s, local
    ENU), P 6x6 row-major (36), impact = (east_m, north_m, t_us, semi_major_m,
    semi_minor_m, orient_deg) or None, sources = [(node, report_id), ...]."""

    def __init__(self, tid, t_us, x, P, flags=0, nations=0, report_id=0, sources=(), impact=None):
        self.tid = tid
        self.t_us = t_us
        self.x = x
        self.P = P
        self.flags = flags
        self.nations = nations
        self.report_id = report_id
        self.sources = sources
        self.impact = impact


class Rec:
    """The integer codes of one track update (what the wire carries and
    what a receiver holds). ``imp`` = [qe, qn, t_us, qa, qb, qo] or None."""

    def __init__(self):
        self.tid = 0
        self.t_us = 0
        self.upd = 0
        self.report_id = 0
        self.pq = [0, 0, 0]
        self.vq = [0, 0, 0]
        self.sig = [0] * 6
        self.cor = [0] * 15
        self.flags = 0
        self.nations = 0
        self.sources = []
        self.imp = None
        self.sent = 0   # decode: SEND_* bits this record carried

    def copy(self):
        r = Rec()
        r.tid = self.tid
        r.t_us = self.t_us
        r.upd = self.upd
        r.report_id = self.report_id
        r.pq = list(self.pq)
        r.vq = list(self.vq)
        r.sig = list(self.sig)
        r.cor = list(self.cor)
        r.flags = self.flags
        r.nations = self.nations
        r.sources = list(self.sources)
        r.imp = None if self.imp is None else list(self.imp)
        r.sent = self.sent
        return r

    def state(self, prec):
        """[e, n, u, ve, vn, vu] in m, m/s."""
        p = prec.pos
        v = prec.vel
        return [self.pq[0] * p, self.pq[1] * p, self.pq[2] * p,
                self.vq[0] * v, self.vq[1] * v, self.vq[2] * v]

    def cov(self):
        """6x6 row-major covariance, positive definite by construction."""
        return cov_from_codes(self.sig, self.cor)

    def impact(self, prec):
        """(east_m, north_m, t_us, semi_major_m, semi_minor_m, orient_deg) or None."""
        if self.imp is None:
            return None
        q = self.imp
        return (q[0] * prec.pos, q[1] * prec.pos, q[2], q[3] * prec.pos, q[4] * prec.pos,
                q[5] / 100.0)

    def __eq__(self, o):
        return (self.tid == o.tid and self.t_us == o.t_us and self.upd == o.upd
                and self.report_id == o.report_id and self.pq == o.pq and self.vq == o.vq
                and self.sig == o.sig and self.cor == o.cor and self.flags == o.flags
                and self.nations == o.nations and self.imp == o.imp)


# ---- quantisation (section 5.3): identical integer results in C and here ----

def qround(v):
    """Round half away from zero: floor(|v| + 0.5) with v's sign, as an int."""
    if not (abs(v) < _QMAX):   # also rejects NaN
        raise CodecError("range", "value off the quantisation range")
    a = int(math.floor(abs(v) + 0.5))
    return -a if v < 0 else a


def rdiv(a, b):
    """Integer a / b (b > 0) rounded half away from zero."""
    q = (abs(a) + b // 2) // b
    return -q if a < 0 else q


def sig_code(var):
    """Code k = round(4 log2 var) (a quarter octave of variance, an eighth
    of sigma), from frexp and the exact table _SIG_T, clamped to 8 bits."""
    m, e = math.frexp(var)
    k = 4 * e - 4
    for t in _SIG_T:
        if m >= t:
            k += 1
    if k < SIG_MIN:
        return SIG_MIN
    if k > SIG_MIN + 255:
        return SIG_MIN + 255
    return k


def sig_var(k):
    """Variance 2^(k/4) of code k (exact: table times a power of two)."""
    from trilink_board.codec_host import sig_var as f
    return f(k)


def cor_code(p):
    """Code c in -63..63 of a partial correlation p: |p| counted against _COR_T."""
    a = abs(p)
    lo = 0
    hi = COR_MAX
    while lo < hi:
        mid = (lo + hi) // 2
        if a >= _COR_T[mid]:
            lo = mid + 1
        else:
            hi = mid
    return -lo if p < 0 else lo


def cor_value(c):
    """The partial correlation tanh(c / 16) that code c stands for."""
    from trilink_board.codec_host import cor_value as f
    return f(c)


def cov_from_codes(sig, cor):
    """6x6 row-major covariance D L L^T D from the codes (codec_host.py: a board never
    reconstructs a covariance)."""
    from trilink_board.codec_host import cov_from_codes as f
    return f(sig, cor)


def quantise_cov(P):
    """(sig[6], cor[15]) codes of a 6x6 covariance (row-major, lower triangle
    read). Correlations are coded as the partial correlations of the
    Cholesky factor of the correlation matrix, each quantised on its own
    (open loop; a closed loop, quantising against the already quantised
    factor, diverges on ill-conditioned matrices). An input that is not
    positive definite gets its remainders floored at 2^-52: codes clamp."""
    for v in P:
        if not (abs(v) <= _VAR_MAX):
            raise CodecError("range", "covariance entry not finite or too large")
    sig = []
    s = []
    for i in range(6):
        v = P[7 * i]
        if not (_VAR_MIN <= v <= _VAR_MAX):
            raise CodecError("range", "variance must be in [2^-100, 2^100]")
        sig.append(sig_code(v))
        s.append(math.sqrt(v))
    inv = [1.0 / v for v in s]    # reciprocals once: fewer divisions, same in C
    L = [0.0] * 36
    invd = [0.0] * 6
    cor = []
    for i in range(6):
        rem = 1.0
        for j in range(i):
            acc = P[6 * i + j] * inv[i] * inv[j]
            for k in range(j):
                acc -= L[6 * i + k] * L[6 * j + k]
            lij = acc * invd[j]
            if rem < _REM_MIN:
                rem = _REM_MIN
            cor.append(cor_code(lij / math.sqrt(rem)))
            L[6 * i + j] = lij
            rem = rem - lij * lij
        if rem < _REM_MIN:
            rem = _REM_MIN
        L[7 * i] = math.sqrt(rem)
        invd[i] = 1.0 / L[7 * i]
    return sig, cor


def quantise(u, prec):
    """``Rec`` of the ``Update`` u at precision ``prec``."""
    r = Rec()
    if not (0 <= u.tid < (1 << 32)) or not (0 <= u.t_us < (1 << 64)):
        raise CodecError("range", "track id or time")
    if not (0 <= u.flags < 256) or not (0 <= u.nations < (1 << 32)):
        raise CodecError("range", "flags or nations")
    if not (0 <= u.report_id < (1 << 32)):
        raise CodecError("range", "report id")
    r.tid = u.tid
    r.t_us = u.t_us
    r.report_id = u.report_id
    r.flags = u.flags
    r.nations = u.nations
    x = u.x
    r.pq = [qround(x[0] / prec.pos), qround(x[1] / prec.pos), qround(x[2] / prec.pos)]
    r.vq = [qround(x[3] / prec.vel), qround(x[4] / prec.vel), qround(x[5] / prec.vel)]
    r.sig, r.cor = quantise_cov(u.P)
    if len(u.sources) > MAX_SOURCES:
        raise CodecError("range", "more than 16 sources")
    for node, rid in u.sources:
        if not (0 <= node < 256 and 0 <= rid < (1 << 32)):
            raise CodecError("range", "source")
    r.sources = [(node, rid) for node, rid in u.sources]
    if u.impact is not None:
        e, n, t, a, b, o = u.impact
        qa = qround(a / prec.pos)
        qb = qround(b / prec.pos)
        if qa < 0 or qb < 0 or not (0 <= t < (1 << 64)) or not (abs(o) < 1e6):
            raise CodecError("range", "impact")
        r.imp = [qround(e / prec.pos), qround(n / prec.pos), t, qa, qb,
                 qround(o * 100.0) % ORIENT_CODES]
    return r


# ---- bit packing (section 5.2) ----

class _Writer:
    def __init__(self):
        self.out = bytearray()
        self.acc = 0
        self.n = 0

    def bits(self, v, n):
        self.acc = (self.acc << n) | v
        self.n += n
        while self.n >= 8:
            self.n -= 8
            self.out.append((self.acc >> self.n) & 0xFF)
        self.acc &= (1 << self.n) - 1

    def ue(self, v):
        v += 1
        n = _bitlen(v)
        self.bits(0, n - 1)
        self.bits(v, n)

    def se(self, v):
        self.ue(2 * v if v >= 0 else -2 * v - 1)

    def group(self, vals):
        zs = [2 * v if v >= 0 else -2 * v - 1 for v in vals]
        w = 0
        for z in zs:
            b = _bitlen(z)
            if b > w:
                w = b
        self.bits(w, 6)
        for z in zs:
            self.bits(z, w)

    def finish(self):
        if self.n:
            self.bits(0, 8 - self.n)
        return bytes(self.out)


class _Reader:
    def __init__(self, data, pos):
        self.reset(data, pos)

    def reset(self, data, pos):
        self.data = data
        self.bit = pos * 8
        self.end = len(data) * 8

    def bits(self, n):
        if self.bit + n > self.end:
            raise CodecError("truncated")
        v = 0
        d = self.data
        b = self.bit
        for _ in range(n):
            v = (v << 1) | ((d[b >> 3] >> (7 - (b & 7))) & 1)
            b += 1
        self.bit = b
        return v

    def ue(self):
        z = 0
        while self.bits(1) == 0:
            z += 1
            if z > 63:
                raise CodecError("malformed", "exp-Golomb code over 64 bits")
        return ((1 << z) | self.bits(z)) - 1

    def se(self):
        z = self.ue()
        return -((z + 1) >> 1) if z & 1 else z >> 1

    def group_into(self, out, at, k):
        w = self.bits(6)
        for i in range(at, at + k):
            z = self.bits(w)
            out[i] = -((z + 1) >> 1) if z & 1 else z >> 1


def _nations(rd):
    v = rd.ue()
    if v >= (1 << 32):
        raise CodecError("malformed", "nations")
    return v


def _bitlen(v):
    n = 0
    while v:
        v >>= 1
        n += 1
    return n


def _varint(out, v):
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)


def _read_varint(data, pos):
    v = 0
    shift = 0
    while True:
        if pos >= len(data):
            raise CodecError("truncated")
        b = data[pos]
        pos += 1
        v |= (b & 0x7F) << shift
        if not b & 0x80:
            break
        shift += 7
        if shift > 63:
            raise CodecError("malformed", "varint over 64 bits")
    if v >= (1 << 64):
        raise CodecError("malformed", "varint over 64 bits")
    return v, pos


def predict(h, dt, prec):
    """Integer prediction of the codes (pos[3], vel[3]) of held copy ``h``
    ``dt`` microseconds later: straight line plus constant gravity on up."""
    ps = prec.pos_mm
    vs = prec.vel_mmps
    pp = [h.pq[i] + rdiv(h.vq[i] * vs * dt, ps * 1000000) for i in range(3)]
    dtm = dt // 1000
    pp[2] -= rdiv(G_MM * dtm * dtm, 2000000 * ps)
    pv = list(h.vq)
    pv[2] -= rdiv(G_MM * dtm, 1000 * vs)
    return pp, pv


def delta_ok(h, t_us, prec):
    """True when a delta against held copy h can reach time t_us."""
    dt = t_us - h.t_us
    if not (0 <= dt < MAX_DELTA_US):
        return False
    for v in h.vq:
        if not (abs(v) * prec.vel_mmps < MAX_VEL_MM):
            return False
    return True


def _check_codes(r):
    for v in r.pq + r.vq:
        if not (-_CODE_LIMIT < v < _CODE_LIMIT):
            raise CodecError("malformed", "state code out of range")
    for k in r.sig:
        if not (SIG_MIN <= k <= SIG_MIN + 255):
            raise CodecError("malformed", "sigma code out of range")
    for c in r.cor:
        if not (-COR_MAX <= c <= COR_MAX):
            raise CodecError("malformed", "correlation code out of range")
    if not (0 <= r.nations < (1 << 32)):
        raise CodecError("malformed", "nations")


def encode(kind, prec, items, base_us=None, held=None):
    # One function (~130 lines), like Table._parse: the per-record loop of a board's reports.
    """Payload of one batch. items: [(KEY|DELTA|DROP, Rec, SEND_* bits)].
    held (dict tid -> Rec, the receiver's copies) is needed for DELTA and is
    updated as the receiver will update it, only when encoding succeeds.

        >>> encode(PICTURE, Precision(), [], base_us=5).hex()
        '0201e807320500'
    """
    if kind not in (REPORT, PICTURE):
        raise CodecError("range", "batch kind")
    if len(items) > MAX_RECORDS:
        raise CodecError("range", "more than 1024 records")
    if base_us is None:
        base_us = items[0][1].t_us if items else 0
    if not (0 <= base_us < (1 << 64)):
        raise CodecError("range", "base time")
    head = bytearray((VERSION, kind))
    _varint(head, prec.pos_mm)
    _varint(head, prec.vel_mmps)
    _varint(head, base_us)
    base_rid = 0
    if kind == REPORT:
        base_rid = items[0][1].report_id if items else 0
        _varint(head, base_rid)
    _varint(head, len(items))
    w = _Writer()
    prev_id = 0
    prev_t = base_us
    prev_rid = base_rid
    # PICTURE sources: node -> its previous report id in this batch; a board's
    # ids are large (epoch << 20) but close together, so only the first one
    # of each node is sent whole (5.5)
    prev_src = {}  # type: dict
    staged = {}  # type: dict
    for rtype, r, send in items:
        if rtype not in (KEY, DELTA, DROP):
            raise CodecError("range", "record type")
        h = staged.get(r.tid) if r.tid in staged else (held.get(r.tid) if held is not None else None)
        w.bits(rtype, 2)
        if rtype != DROP:
            upd = 0 if h is None else (h.upd + 1) % 16
            if rtype == DELTA and (h is None or not delta_ok(h, r.t_us, prec)):
                raise CodecError("no_base" if h is None else "range", "delta for track %d" % r.tid)
            w.bits(upd, 4)
        if not (-(1 << 62) < r.t_us - prev_t < (1 << 62)):
            raise CodecError("range", "record time too far from the previous")
        w.se(r.tid - prev_id)
        w.se(r.t_us - prev_t)
        prev_id = r.tid
        prev_t = r.t_us
        if rtype == DROP:
            staged[r.tid] = None
            continue
        if kind == REPORT:
            w.se(r.report_id - prev_rid)
            prev_rid = r.report_id
        n = r.copy()
        n.upd = upd
        if rtype == KEY:
            w.group(r.pq)
            w.group(r.vq)
            for k in r.sig:
                w.bits(k - SIG_MIN, SIG_BITS)
            for c in r.cor:
                w.bits(c + COR_MAX, COR_BITS)
            w.bits(r.flags, 8)
            w.ue(r.nations)
        else:
            assert h is not None  # a DELTA without a base raised no_base above
            pp, pv = predict(h, r.t_us - h.t_us, prec)
            w.group([r.pq[i] - pp[i] for i in range(3)])
            w.group([r.vq[i] - pv[i] for i in range(3)])
            if send & SEND_COV:
                w.bits(1, 1)
                for i in range(6):
                    w.se(r.sig[i] - h.sig[i])
                for i in range(15):
                    w.se(r.cor[i] - h.cor[i])
            else:
                w.bits(0, 1)
                n.sig = list(h.sig)
                n.cor = list(h.cor)
            if send & SEND_META:
                w.bits(1, 1)
                w.bits(r.flags, 8)
                w.ue(r.nations)
            else:
                w.bits(0, 1)
                n.flags = h.flags
                n.nations = h.nations
        n.imp = None
        if kind == PICTURE:
            if r.sources:
                w.bits(1, 1)
                w.ue(len(r.sources) - 1)
                for node, rid in r.sources:
                    w.bits(node, 8)
                    last = prev_src.get(node)
                    if last is None:
                        w.bits(rid, 32)
                    else:
                        w.se(rid - last)
                    prev_src[node] = rid
            else:
                w.bits(0, 1)
            imp = r.imp if (rtype == KEY or send & SEND_IMPACT) else None
            if imp is not None:
                if not (-_CODE_LIMIT < rdiv(imp[2] - r.t_us, 1000) < _CODE_LIMIT):
                    raise CodecError("range", "impact time")
                w.bits(1, 1)
                w.group([imp[0], imp[1]])
                w.se(rdiv(imp[2] - r.t_us, 1000))
                w.ue(imp[3])
                w.ue(imp[4])
                w.bits(imp[5], 15)
                n.imp = [imp[0], imp[1], r.t_us + 1000 * rdiv(imp[2] - r.t_us, 1000),
                         imp[3], imp[4], imp[5]]
            else:
                w.bits(0, 1)
                n.imp = None if rtype == KEY else (None if h is None else h.imp)
        n.sources = []
        staged[r.tid] = n
    payload = bytes(head) + w.finish()
    if len(payload) > 1024:
        raise CodecError("no_space", "payload over 1024 bytes")
    if held is not None:
        for tid in staged:
            if staged[tid] is None:
                if tid in held:
                    del held[tid]
            else:
                held[tid] = staged[tid]
    return payload


class Batch:
    """A decoded payload: kind, prec, base_us and items [(rtype, status, Rec)]."""

    def __init__(self, kind, prec, base_us, items):
        self.kind = kind
        self.prec = prec
        self.base_us = base_us
        self.items = items


# Held: a REPORT record's codes packed (t_us, report_id, upd, flags, nations, pq, vq, sig, cor)
_HELD = "<QIBBI3q3q6h15b"
_HELD_SIZE = 93


class Held:
    """The receiver's copies of a sender's REPORT records (``encode(REPORT, ..., held=h)``)
    in ``rows`` preallocated rows of 93 bytes each, not a ``Rec`` each (~700 bytes on the
    64-bit unix port, and a dict that grows: a board reporting 40 tracks failed so at
    192K). The dict interface ``encode`` and a board use: ``get(tid)`` (a fresh ``Rec``,
    or None), ``h[tid] = rec``, ``tid in h``, ``del h[tid]``, ``len(h)``, ``clear()``;
    ``keep(tids)`` forgets every other track. When every row is taken a new copy replaces
    the one of the oldest record (``evicted``): that track's next report is a keyframe.
    A REPORT carries no impact and no sources: a held copy has none.

        >>> held = Held(48)
        >>> payload = encode(REPORT, prec, [(KEY, rec, 0)], held=held)
        >>> held.get(rec.tid).pq == rec.pq
        True
    """

    def __init__(self, rows=48):
        self.rows = rows
        self.tids = array("I", bytes(4 * rows))
        self.used = bytearray(rows)
        self.data = bytearray(_HELD_SIZE * rows)
        self.n = 0
        self.evicted = 0

    def _row(self, tid):
        tids = self.tids
        used = self.used
        for i in range(self.rows):
            if used[i] and tids[i] == tid:
                return i
        return -1

    def __len__(self):
        return self.n

    def __contains__(self, tid):
        return self._row(tid) >= 0

    def __delitem__(self, tid):
        i = self._row(tid)
        if i < 0:
            raise KeyError(tid)
        self.used[i] = 0
        self.n -= 1

    def __setitem__(self, tid, r):
        i = self._row(tid)
        if i < 0:
            i = self._free()
            self.tids[i] = tid
            self.used[i] = 1
            self.n += 1
        struct.pack_into(_HELD, self.data, _HELD_SIZE * i, r.t_us, r.report_id, r.upd, r.flags, r.nations,
                         r.pq[0], r.pq[1], r.pq[2], r.vq[0], r.vq[1], r.vq[2], *(r.sig + r.cor))

    def _free(self):
        used = self.used
        old = -1
        for i in range(self.rows):
            if not used[i]:
                return i
            if old < 0 or struct.unpack_from("<Q", self.data, _HELD_SIZE * i)[0] < \
                    struct.unpack_from("<Q", self.data, _HELD_SIZE * old)[0]:
                old = i
        used[old] = 0
        self.n -= 1
        self.evicted += 1
        return old

    def get(self, tid, default=None):
        i = self._row(tid)
        if i < 0:
            return default
        v = struct.unpack_from(_HELD, self.data, _HELD_SIZE * i)
        r = Rec()
        r.tid = tid
        r.t_us = v[0]
        r.report_id = v[1]
        r.upd = v[2]
        r.flags = v[3]
        r.nations = v[4]
        r.pq = [v[5], v[6], v[7]]
        r.vq = [v[8], v[9], v[10]]
        r.sig = list(v[11:17])
        r.cor = list(v[17:32])
        return r

    def clear(self):
        for i in range(self.rows):
            self.used[i] = 0
        self.n = 0

    def keep(self, tids):
        """Forget the copy of every track not in ``tids``."""
        for i in range(self.rows):
            if self.used[i] and self.tids[i] not in tids:
                self.used[i] = 0
                self.n -= 1


STALE_US = 15000000   # Table: a held track not updated for this long (3 relay heartbeats) goes first
_ITEM = {"b": 1, "h": 2, "H": 2, "I": 4, "q": 8, "Q": 8}


def _zeros(code, n):
    # array(code) of n zeros from a zeroed buffer (a raw copy on MicroPython too)
    return array(code, bytes(n * _ITEM[code]))


class Table:
    """Held copies (5.6) of at most ``size`` tracks in preallocated rows, and ``batch``
    scratch rows one payload decodes into: a receiver that must not allocate per
    record (a board's PICTURE) decodes with ``Table.decode``; ``decode(payload,
    held_dict)`` runs the same decoder on rows sized to the batch.

        >>> t = Table(12, 8)                # a board's (boot.py): 12 tracks, 8-record batches
        >>> n = t.decode(payload)           # CodecError: nothing applied
        >>> for row in range(t.size, t.size + n):
        ...     t.w[3 * row], t.b[8 * row + 5], t.b[8 * row + 4]     # track id, status, rtype

    Columns of row r: ``q[6r:6r+6]`` position (3) and velocity (3) codes, ``qi[5r:5r+5]``
    impact east, north, semi-major, semi-minor, orientation codes; ``u[2r]`` time,
    ``u[2r+1]`` impact time; ``w[3r:3r+3]`` track id, report id, nations;
    ``b[8r:8r+8]`` upd, flags, sent, has impact, rtype, status, held, source count;
    ``sig[6r:]``, ``cor[15r:]``; scratch rows' sources are ``snode/srid[src0[r]:]``.
    Rows 0..size-1 are held (``index``: tid -> row). A batch of more than ``batch``
    records raises CodecError("no_space") and changes nothing.

    What a full table drops first: a track not held is kept (1) in a free row,
    (2) in place of the held track longest without an update if that is older than
    ``STALE_US`` against it, (3) in place of the held track with no predicted impact,
    else the latest predicted impact (among equals the least recently updated), only
    if the newcomer's impact is predicted sooner; otherwise it is not kept
    (``refused``) and the table stays as it is. ``wanted(row)``: would the track of a
    delta without base be kept (a receiver asks keyframes only for those).
    """

    def __init__(self, size=12, batch=8):
        self.index = {}
        self.refused = 0
        self.evicted = 0
        self.kind = 0
        self.prec = Precision()
        self.base_us = 0
        self._rd = _Reader(b"", 0)
        self._v = [0] * 32      # the record being decoded: state 0-5, sig 6-11, cor 12-26, impact 27-31
        self._alloc(size, batch)

    def _alloc(self, size, batch):
        n = size + batch
        self.size = size
        self.batch = batch
        self.q = _zeros("q", 6 * n)     # two arrays, not one of 11: smaller blocks for a fragmented heap
        self.qi = _zeros("q", 5 * n)
        self.u = _zeros("Q", 2 * n)
        self.w = _zeros("I", 3 * n)
        self.b = bytearray(8 * n)
        self.sig = _zeros("h", 6 * n)
        self.cor = _zeros("b", 15 * n)
        self.src0 = _zeros("H", n)
        self.snode = bytearray(MAX_SOURCES * batch)
        self.srid = _zeros("I", MAX_SOURCES * batch)

    def clear(self):
        """Forget every held copy."""
        self.index.clear()
        for r in range(self.size):
            self.b[8 * r + 6] = 0

    # ---- decoding ----

    def _room(self, count):
        if count > self.batch:
            raise CodecError("no_space", "batch of %d records, this table decodes %d" % (count, self.batch))

    def _held_row(self, tid):
        return self.index.get(tid, -1)

    def _parse(self, data):
        # One function (~220 lines), kept whole: the board's per-record decode loop (a MicroPython
        # hot loop, its state in locals rather than passed between helper calls per record).
        if len(data) < 2:
            raise CodecError("truncated")
        if data[0] != VERSION:
            raise CodecError("version", "codec version %d" % data[0])
        kind = data[1]
        if kind not in (REPORT, PICTURE):
            raise CodecError("malformed", "batch kind")
        pos_mm, p = _read_varint(data, 2)
        vel_mm, p = _read_varint(data, p)
        if not (1 <= pos_mm <= MAX_STEP and 1 <= vel_mm <= MAX_STEP):
            raise CodecError("malformed", "precision")
        prec = self.prec
        if prec.pos_mm != pos_mm or prec.vel_mmps != vel_mm:
            prec = Precision(pos_mm, vel_mm)
        base_us, p = _read_varint(data, p)
        prev_rid = 0
        if kind == REPORT:
            prev_rid, p = _read_varint(data, p)
            if prev_rid >= (1 << 32):
                raise CodecError("malformed", "report id")
        count, p = _read_varint(data, p)
        if count > MAX_RECORDS:
            raise CodecError("malformed", "record count")
        self._room(count)
        rd = self._rd
        rd.reset(data, p)
        q = self.q
        u = self.u
        w = self.w
        B = self.b
        SG = self.sig
        CR = self.cor
        V = self._v
        ps = prec.pos_mm
        vs = prec.vel_mmps
        prev_id = 0
        prev_t = base_us
        ns = 0
        for row in range(self.size, self.size + count):
            rtype = rd.bits(2)
            if rtype > DROP:
                raise CodecError("malformed", "record type 3")
            upd = rd.bits(4) if rtype != DROP else 0
            tid = prev_id + rd.se()
            if not (0 <= tid < (1 << 32)):
                raise CodecError("malformed", "track id")
            t = prev_t + rd.se()
            if not (0 <= t < (1 << 64)):
                raise CodecError("malformed", "time")
            prev_id = tid
            prev_t = t
            # the copy a record of tid applies to: the last OK record of tid in this batch
            # (none after its DROP), else the held copy
            h = -2
            j = row - 1
            while h == -2 and j >= self.size:
                if w[3 * j] == tid and B[8 * j + 5] in (OK, GONE):
                    h = j if B[8 * j + 5] == OK else -1
                j -= 1
            if h == -2:
                h = self._held_row(tid)
            for k in range(32):
                V[k] = 0
            rid = 0
            flags = 0
            nations = 0
            sent = 0
            hasimp = 0
            it = 0
            nsrc = 0
            self.src0[row] = ns
            status = GONE if rtype == DROP else OK
            if rtype != DROP:
                if kind == REPORT:
                    rid = prev_rid + rd.se()
                    if not (0 <= rid < (1 << 32)):
                        raise CodecError("malformed", "report id")
                    prev_rid = rid
                rd.group_into(V, 0, 3)
                rd.group_into(V, 3, 3)
                if rtype == KEY:
                    for k in range(6, 12):
                        V[k] = rd.bits(SIG_BITS) + SIG_MIN
                    for k in range(12, 27):
                        V[k] = rd.bits(COR_BITS) - COR_MAX
                    flags = rd.bits(8)
                    nations = _nations(rd)
                    sent = SEND_COV | SEND_META
                else:
                    base = -1
                    if h >= 0 and B[8 * h] == (upd - 1) % 16 and 0 <= t - u[2 * h] < MAX_DELTA_US:
                        base = h
                        for k in range(6 * h + 3, 6 * h + 6):
                            if not (abs(q[k]) * vs < MAX_VEL_MM):
                                base = -1   # ``delta_ok``: no delta can reach t
                    if h >= 0 and B[8 * h] == upd and u[2 * h] == t:
                        status = DUP
                    elif base < 0:
                        status = NO_BASE
                    b6 = 6 * base
                    if base >= 0:
                        # the integer prediction of 5.5 (``predict``) from the base row
                        dt = t - u[2 * base]
                        dtm = dt // 1000
                        for k in range(3):
                            V[k] += q[b6 + k] + rdiv(q[b6 + 3 + k] * vs * dt, ps * 1000000)
                            V[3 + k] += q[b6 + 3 + k]
                        V[2] -= rdiv(G_MM * dtm * dtm, 2000000 * ps)
                        V[5] -= rdiv(G_MM * dtm, 1000 * vs)
                    else:
                        for k in range(6):
                            V[k] = 0
                    if rd.bits(1):
                        sent |= SEND_COV
                        for k in range(6, 27):
                            V[k] = rd.se()
                        if base >= 0:
                            for k in range(6):
                                V[6 + k] += SG[6 * base + k]
                            for k in range(15):
                                V[12 + k] += CR[15 * base + k]
                        else:
                            for k in range(6, 27):
                                V[k] = 0
                    elif base >= 0:
                        for k in range(6):
                            V[6 + k] = SG[6 * base + k]
                        for k in range(15):
                            V[12 + k] = CR[15 * base + k]
                    if rd.bits(1):
                        sent |= SEND_META
                        flags = rd.bits(8)
                        nations = _nations(rd)
                    elif base >= 0:
                        flags = B[8 * base + 1]
                        nations = w[3 * base + 2]
                    if base >= 0 and B[8 * base + 3]:
                        hasimp = 1
                        it = u[2 * base + 1]
                        for k in range(5):
                            V[27 + k] = self.qi[5 * base + k]
                if kind == PICTURE:
                    if rd.bits(1):
                        nsrc = rd.ue() + 1
                        if nsrc > MAX_SOURCES:
                            raise CodecError("malformed", "more than 16 sources")
                        for _ in range(nsrc):
                            node = rd.bits(8)
                            j = ns - 1
                            while j >= 0 and self.snode[j] != node:
                                j -= 1
                            if j < 0:
                                r = rd.bits(32)
                            else:
                                r = self.srid[j] + rd.se()
                                if not (0 <= r < (1 << 32)):
                                    raise CodecError("malformed", "source report id")
                            self.snode[ns] = node
                            self.srid[ns] = r
                            ns += 1
                    if rd.bits(1):
                        sent |= SEND_IMPACT
                        rd.group_into(V, 27, 2)
                        dtm = rd.se()
                        V[29] = rd.ue()
                        V[30] = rd.ue()
                        V[31] = rd.bits(15)
                        if not (-_CODE_LIMIT < dtm < _CODE_LIMIT):
                            raise CodecError("malformed", "impact time")
                        it = t + 1000 * dtm
                        if V[31] >= ORIENT_CODES or not (0 <= it < (1 << 64)):
                            raise CodecError("malformed", "impact orientation or time")
                        for k in range(27, 31):
                            if not (-_CODE_LIMIT < V[k] < _CODE_LIMIT):
                                raise CodecError("malformed", "impact code out of range")
                        hasimp = 1
                if status == OK:
                    for k in range(6):
                        if not (-_CODE_LIMIT < V[k] < _CODE_LIMIT):
                            raise CodecError("malformed", "state code out of range")
                    for k in range(6, 12):
                        if not (SIG_MIN <= V[k] <= SIG_MIN + 255):
                            raise CodecError("malformed", "sigma code out of range")
                    for k in range(12, 27):
                        if not (-COR_MAX <= V[k] <= COR_MAX):
                            raise CodecError("malformed", "correlation code out of range")
                    if not (0 <= nations < (1 << 32)):
                        raise CodecError("malformed", "nations")
            # only checked codes reach the columns: nothing out of range is stored
            for k in range(6):
                q[6 * row + k] = V[k]
            for k in range(5):
                self.qi[5 * row + k] = V[27 + k]
            for k in range(6):
                SG[6 * row + k] = V[6 + k]
            for k in range(15):
                CR[15 * row + k] = V[12 + k]
            u[2 * row] = t
            u[2 * row + 1] = it
            w[3 * row] = tid
            w[3 * row + 1] = rid
            w[3 * row + 2] = nations
            r8 = 8 * row
            B[r8] = upd
            B[r8 + 1] = flags
            B[r8 + 2] = sent
            B[r8 + 3] = hasimp
            B[r8 + 4] = rtype
            B[r8 + 5] = status
            B[r8 + 7] = nsrc
        # padding: zero bits up to the byte boundary, then nothing
        if rd.bit & 7:
            if rd.bits(8 - (rd.bit & 7)):
                raise CodecError("malformed", "nonzero padding")
        if rd.bit != rd.end:
            raise CodecError("malformed", "trailing bytes")
        self.kind = kind
        self.prec = prec
        self.base_us = base_us
        return count

    def decode(self, payload):
        """Decode one batch into the scratch rows ``size .. size + n - 1`` and apply it to the
        held rows (the class docstring's policy); returns n. Raises CodecError ("truncated",
        "version", "malformed", "no_space"), leaving the held rows unchanged."""
        n = self._parse(payload)
        B = self.b
        for row in range(self.size, self.size + n):
            tid = self.w[3 * row]
            if B[8 * row + 5] == GONE:
                r = self.index.pop(tid, -1)
                if r >= 0:
                    B[8 * r + 6] = 0
                continue
            if B[8 * row + 5] != OK:
                continue
            r = self.index.get(tid, -1)
            if r < 0:
                r = self._victim(row)
                if r < 0:
                    self.refused += 1
                    continue
                if B[8 * r + 6]:
                    del self.index[self.w[3 * r]]
                    self.evicted += 1
                B[8 * r + 6] = 1
                self.index[tid] = r
            for k in range(5):
                self.qi[5 * r + k] = self.qi[5 * row + k]
            for k in range(6):
                self.q[6 * r + k] = self.q[6 * row + k]
                B[8 * r + k] = B[8 * row + k]
                self.sig[6 * r + k] = self.sig[6 * row + k]
            for k in range(15):
                self.cor[15 * r + k] = self.cor[15 * row + k]
            for k in range(3):
                self.w[3 * r + k] = self.w[3 * row + k]
            self.u[2 * r] = self.u[2 * row]
            self.u[2 * r + 1] = self.u[2 * row + 1]
        return n

    def _victim(self, row):
        # The held row the track of scratch row ``row`` would take (the class docstring's
        # policy), or -1: a free row; else the one ranked last (stale ones first, the
        # oldest of them; then no impact; then the latest impact; then the oldest update),
        # if it is stale or the newcomer's impact is predicted before its.
        B = self.b
        u = self.u
        t_new = u[2 * row]
        v = -1
        for r in range(self.size):
            if not B[8 * r + 6]:
                return r
            if v < 0:
                v = r
                continue
            sr = u[2 * r] + STALE_US < t_new
            sv = u[2 * v] + STALE_US < t_new
            if sr != sv:
                worse = sr
            elif sr or B[8 * r + 3] == B[8 * v + 3] and (not B[8 * r + 3] or u[2 * r + 1] == u[2 * v + 1]):
                worse = u[2 * r] < u[2 * v]
            elif B[8 * r + 3] != B[8 * v + 3]:
                worse = not B[8 * r + 3]
            else:
                worse = u[2 * r + 1] > u[2 * v + 1]
            if worse:
                v = r
        if v < 0:
            return -1
        if u[2 * v] + STALE_US < t_new:
            return v
        if B[8 * row + 3] and (not B[8 * v + 3] or u[2 * row + 1] < u[2 * v + 1]):
            return v
        return -1

    def wanted(self, row):
        """True if the track of scratch row ``row`` is held or would be kept."""
        return self.w[3 * row] in self.index or self._victim(row) >= 0


def decode(payload, held=None):
    """Decode one batch against ``held`` (dict tid -> Rec, updated in place;
    None = keyframes only, a delta gets NO_BASE). Each item's Rec is the
    receiver's resulting copy; ``rec.sources`` and ``rec.sent`` are what this
    record carried. Raises CodecError("truncated"|"version"|"malformed"),
    leaving ``held`` unchanged. It is ``Table``'s decoder (codec_host.py: that
    module's code stays off a board, which decodes with a ``Table``)."""
    from trilink_board.codec_host import decode_dict
    return decode_dict(payload, held)
