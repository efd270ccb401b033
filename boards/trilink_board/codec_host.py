# codec_host.py: the codec's receiving side that a board never runs: decoding into a dict of Recs, covariances from codes
"""What codec.py leaves out so that a board (192 KB) does not load it: the
dict-of-``Rec`` face of ``codec.Table``'s decoder (``codec.decode(payload,
held)`` calls ``decode_dict``) and the covariance reconstruction
(``codec.cov_from_codes``, ``cor_value``, ``sig_var``; docs/PROTOCOL.md 5.4).
A board holds its picture in a ``Table`` and never rebuilds a covariance.

    >>> b = decode_dict(payload, held)        # codec.decode(payload, held) is this
    >>> rtype, status, rec = b.items[0]
"""
import math
from array import array

from trilink_board.codec import _SIG_Q, DROP, GONE, OK, SIG_MIN, Batch, Rec, Table

# tanh(c / 16), c = 0..63: the value a correlation code stands for
_COR_V = array("d", (
    b"\x00\x00\x00\x00\x00\x00\x00\x00\xd0\x30\xe0\x97\x59\xf5\xaf\x3f\x30\xb8\xc4\x2b\x99\xd5\xbf\x3f\x74\xf7\x3b\x90\xff\xb8\xc7\x3f"
    b"\x88\x1c\x9a\xa6\x7e\x59\xcf\x3f\x0e\x65\xea\xa0\x98\x5f\xd3\x3f\xb0\x8f\x8c\xde\x53\xef\xd6\x3f\x36\x80\x48\xee\x29\x57\xda\x3f"
    b"\xf4\x8a\x56\xd7\x53\x93\xdd\x3f\xb7\xd4\xf6\xf2\x86\x50\xe0\x3f\x95\x8f\xbb\xea\x47\xbf\xe1\x3f\x5b\x71\x9f\xfe\x7d\x15\xe3\x3f"
    b"\x28\xf2\x52\xe5\x23\x53\xe4\x3f\x99\x29\x0d\xf1\x8f\x78\xe5\x3f\x16\x20\x8c\x0b\x65\x86\xe6\x3f\x7d\x05\x34\x8e\x83\x7d\xe7\x3f"
    b"\x94\xf3\x14\xb5\xfa\x5e\xe8\x3f\x72\x9b\x0d\x37\xfb\x2b\xe9\x3f\x69\x4d\xa4\x5b\xcb\xe5\xe9\x3f\x7a\x89\x31\xbc\xbc\x8d\xea\x3f"
    b"\xee\x2d\x6b\xbb\x23\x25\xeb\x3f\xc2\x8b\xa6\xa4\x50\xad\xeb\x3f\x78\xe4\xa4\x52\x8a\x27\xec\x3f\xc0\xc8\x40\x33\x0a\x95\xec\x3f"
    b"\x77\xf5\x6d\x78\xf9\xf6\xec\x3f\xb1\x86\x42\x46\x6f\x4e\xed\x3f\x78\x1c\xe6\xaf\x6f\x9c\xed\x3f\x8f\x51\x37\x59\xeb\xe1\xed\x3f"
    b"\x27\x35\xe3\x97\xbf\x1f\xee\x3f\xfd\xab\xef\xf3\xb6\x56\xee\x3f\xda\x0d\xec\xec\x89\x87\xee\x3f\x93\xec\xd5\xed\xdf\xb2\xee\x3f"
    b"\xd4\xc3\x1b\x5e\x50\xd9\xee\x3f\x98\x39\xf3\xc1\x63\xfb\xee\x3f\xc8\x4f\x72\xdf\x94\x19\xef\x3f\x21\x9e\x89\xe0\x51\x34\xef\x3f"
    b"\x1e\xfd\x2d\x6c\xfd\x4b\xef\x3f\x49\x28\xc1\xb2\xef\x60\xef\x3f\xdb\xa2\x2a\x6b\x77\x73\xef\x3f\x77\xe1\x23\xbf\xda\x83\xef\x3f"
    b"\xc2\x71\x0a\x26\x58\x92\xef\x3f\x6c\xfe\x24\x2e\x27\x9f\xef\x3f\xbd\x5e\xb7\x34\x79\xaa\xef\x3f\x24\x6d\x8f\x0d\x7a\xb4\xef\x3f"
    b"\x3e\xae\xe7\x9a\x50\xbd\xef\x3f\xdb\x07\x9c\x56\x1f\xc5\xef\x3f\x4c\xdc\xbc\xcd\x04\xcc\xef\x3f\x58\xc6\x91\x0f\x1c\xd2\xef\x3f"
    b"\x00\x0b\x1a\x11\x7d\xd7\xef\x3f\x20\x0d\x10\x06\x3d\xdc\xef\x3f\x12\x82\x68\xb0\x6e\xe0\xef\x3f\x7e\x40\x37\xa7\x22\xe4\xef\x3f"
    b"\xa0\x53\xd3\x95\x67\xe7\xef\x3f\x75\x4d\x03\x74\x4a\xea\xef\x3f\x28\x31\xea\xb7\xd6\xec\xef\x3f\x5b\x22\x5d\x82\x16\xef\xef\x3f"
    b"\x77\x90\x3a\xc6\x12\xf1\xef\x3f\xd9\x02\x4d\x6b\xd3\xf2\xef\x3f\x3b\x13\x36\x6d\x5f\xf4\xef\x3f\x44\x92\xd1\xf6\xbc\xf5\xef\x3f"
    b"\x72\x47\x75\x7a\xf1\xf6\xef\x3f\xaf\x33\x67\xc7\x01\xf8\xef\x3f\x63\xaa\xda\x1c\xf2\xf8\xef\x3f\xf4\xe9\xbb\x3a\xc6\xf9\xef\x3f"))


def sig_var(k):
    """Variance 2^(k/4) of code k (exact: table times a power of two)."""
    u = k - SIG_MIN
    return math.ldexp(_SIG_Q[u % 4], u // 4 + SIG_MIN // 4)


def cor_value(c):
    """The partial correlation tanh(c / 16) that code c stands for."""
    return -_COR_V[-c] if c < 0 else _COR_V[c]


def cov_from_codes(sig, cor):
    """6x6 row-major covariance D L L^T D: L from the partial correlations
    (unit rows, positive diagonal), D from the variances; PD by construction."""
    L = [0.0] * 36
    n = 0
    for i in range(6):
        rem = 1.0
        for j in range(i):
            ph = cor_value(cor[n])
            n += 1
            L[6 * i + j] = ph * math.sqrt(rem)
            rem = rem * (1.0 - ph * ph)
        L[7 * i] = math.sqrt(rem)
    s = [math.sqrt(sig_var(k)) for k in sig]
    P = [0.0] * 36
    for i in range(6):
        for j in range(i + 1):
            acc = 0.0
            for k in range(j + 1):
                acc += L[6 * i + k] * L[6 * j + k]
            v = acc * s[i] * s[j]
            P[6 * i + j] = v
            P[6 * j + i] = v
    for i in range(6):
        P[7 * i] = sig_var(sig[i])
    return P



def rec(t, row):
    """The ``Rec`` of row ``row`` of ``codec.Table`` t (a scratch row with its sources)."""
    r = Rec()
    r.tid = t.w[3 * row]
    r.t_us = t.u[2 * row]
    if row >= t.size and t.b[8 * row + 4] == DROP:
        return r
    q = list(t.q[6 * row:6 * row + 6]) + list(t.qi[5 * row:5 * row + 5])
    r.upd, r.flags, r.sent = t.b[8 * row], t.b[8 * row + 1], t.b[8 * row + 2]
    r.report_id, r.nations = t.w[3 * row + 1], t.w[3 * row + 2]
    r.pq, r.vq = list(q[0:3]), list(q[3:6])
    r.sig = list(t.sig[6 * row:6 * row + 6])
    r.cor = list(t.cor[15 * row:15 * row + 15])
    if t.b[8 * row + 3]:
        r.imp = [q[6], q[7], t.u[2 * row + 1], q[8], q[9], q[10]]
    if row >= t.size:
        s, n = t.src0[row], t.b[8 * row + 7]
        r.sources = [(t.snode[k], t.srid[k]) for k in range(s, s + n)]
    return r


def load(t, row, r):
    """Put ``Rec`` r (codes in range) into row ``row`` of table t."""
    imp = r.imp or (0, 0, 0, 0, 0, 0)
    vals = list(r.pq) + list(r.vq) + [imp[0], imp[1], imp[3], imp[4], imp[5]]
    for k in range(6):
        t.q[6 * row + k] = vals[k]
    for k in range(5):
        t.qi[5 * row + k] = vals[6 + k]
    t.u[2 * row], t.u[2 * row + 1] = r.t_us, imp[2]
    t.w[3 * row], t.w[3 * row + 1], t.w[3 * row + 2] = r.tid, r.report_id, r.nations
    t.b[8 * row:8 * row + 4] = bytes((r.upd, r.flags, r.sent, 0 if r.imp is None else 1))
    for k in range(6):
        t.sig[6 * row + k] = r.sig[k]
    for k in range(15):
        t.cor[15 * row + k] = r.cor[k]


class _DictTable(Table):
    # Table's decoder over a dict tid -> Rec: rows sized to the batch, held copies
    # loaded from the dict as records refer to them.

    def __init__(self, held):
        self.src = held
        self.loaded = {}
        Table.__init__(self, 0, 0)

    def _room(self, count):
        self._alloc(count, count)

    def _held_row(self, tid):
        r = self.loaded.get(tid)
        if r is None:
            rec = None if self.src is None else self.src.get(tid)
            if rec is None:
                return -1
            r = self.loaded[tid] = len(self.loaded)
            load(self, r, rec)
        return r


def decode_dict(payload, held=None):
    """``codec.decode``: decode one batch against ``held`` (dict tid -> Rec, updated in
    place only when the whole payload decodes); a ``codec.Batch`` of (rtype, status, Rec)."""
    t = _DictTable(held)
    n = t._parse(payload)
    items = [(t.b[8 * row + 4], t.b[8 * row + 5], rec(t, row)) for row in range(t.size, t.size + n)]
    if held is not None:
        for _, status, r in items:
            if status == GONE:
                held.pop(r.tid, None)
            elif status == OK:
                keep = r.copy()
                keep.sources = []
                held[r.tid] = keep
    return Batch(t.kind, t.prec, t.base_us, items)
