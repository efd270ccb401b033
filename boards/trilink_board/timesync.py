# timesync.py: NTP-style time sync client (PROTOCOL.md 4.3): best of the last 8 samples, fitted drift
"""Maps the board's clock onto the relay's from TIME_SYNC exchanges.

Each exchange gives t1 (board, request sent), t2 (relay, request received),
t3 (relay, response sent), t4 (board, response received):
``offset = ((t2 - t1) + (t3 - t4)) / 2``, ``delay = (t4 - t1) - (t3 - t2)``.
A sample that waited in a queue has a long delay and a skewed offset, so
the estimate is the offset of the smallest-delay sample of the last 8;
those best samples (anchors) over a longer window give a least-squares
drift, which carries the offset forward between anchors. On a serial link
the request and the response take different times on the wire (their
lengths differ): ``add`` takes both serialisation times and removes the
asymmetry, so t1..t4 all stand for last-byte instants.

    >>> ts = TimeSync()
    >>> ts.add(1000, 51000, 51100, 1300)             # relay is 49.9 ms ahead
    (49900, 200)
    >>> ts.to_relay(2000)
    51900
"""

_WINDOW = 8      # best of the last 8 samples (PROTOCOL.md 4.3)
_ANCHORS = 16    # best samples kept for the drift fit
_MIN_SPAN_US = 4000000   # fit drift only over anchors at least 4 s apart
_MAX_DRIFT = 0.002       # |drift| beyond 2000 ppm is a fit gone wrong: ignore it


class TimeSync:
    """``add(t1, t2, t3, t4, up_us=0, down_us=0)`` per response; then ``synced``,
    ``to_relay(local_us)``, ``to_local(relay_us)``, ``offset_us``, ``delay_us``, ``drift_ppm``."""

    def __init__(self):
        self.reset()

    def reset(self):
        """Forget every sample (the relay restarted)."""
        self._lt = [0] * _WINDOW    # sample local time (t4)
        self._off = [0] * _WINDOW
        self._dly = [0] * _WINDOW
        self._n = 0                 # samples taken since reset
        self._at = [0] * _ANCHORS   # anchors: local time, offset
        self._ao = [0] * _ANCHORS
        self._na = 0
        self.synced = False
        self.samples = 0
        self.base_local = 0         # the best sample's local time and offset
        self.offset_us = 0
        self.delay_us = 0
        self.drift = 0.0            # relay-minus-board rate, fraction

    @property
    def drift_ppm(self):
        return self.drift * 1e6

    def add(self, t1, t2, t3, t4, up_us=0, down_us=0):
        """Take one exchange (integers, us). ``up_us``/``down_us``: wire time of the
        request/response on a serial link. Returns (offset, delay) of this sample."""
        t1 += up_us                 # request's last byte left the board
        t3 += down_us               # response's last byte left the relay
        off = ((t2 - t1) + (t3 - t4)) // 2
        dly = (t4 - t1) - (t3 - t2)
        if dly < 0:
            dly = 0
        i = self._n % _WINDOW
        self._lt[i] = t4
        self._off[i] = off
        self._dly[i] = dly
        self._n += 1
        self.samples += 1
        m = min(self._n, _WINDOW)
        b = 0
        for k in range(1, m):
            if self._dly[k] < self._dly[b]:
                b = k
        bt = self._lt[b]
        if not self._na or self._at[(self._na - 1) % _ANCHORS] != bt:
            j = self._na % _ANCHORS
            self._at[j] = bt
            self._ao[j] = self._off[b]
            self._na += 1
        self.base_local = bt
        self.offset_us = self._off[b]
        self.delay_us = self._dly[b]
        self._fit()
        self.synced = True
        return off, dly

    def _fit(self):
        n = min(self._na, _ANCHORS)
        if n < 2:
            return
        t0 = self.base_local
        o0 = self.offset_us
        lo = hi = self._at[0] - t0
        sx = sy = 0.0
        for k in range(n):
            x = self._at[k] - t0
            sx += x
            sy += self._ao[k] - o0
            if x < lo:
                lo = x
            if x > hi:
                hi = x
        if hi - lo < _MIN_SPAN_US:
            return
        mx = sx / n
        my = sy / n
        sxx = sxy = 0.0
        for k in range(n):
            dx = (self._at[k] - t0) - mx
            sxx += dx * dx
            sxy += dx * ((self._ao[k] - o0) - my)
        if sxx > 0.0:
            d = sxy / sxx
            if -_MAX_DRIFT < d < _MAX_DRIFT:
                self.drift = d

    def offset_at(self, local_us):
        """relay - board at board time ``local_us`` (us)."""
        return self.offset_us + int(self.drift * (local_us - self.base_local))

    def to_relay(self, local_us):
        """The relay time of board time ``local_us``."""
        return local_us + self.offset_at(local_us)

    def to_local(self, relay_us):
        """The board time of relay time ``relay_us`` (inverse of ``to_relay``)."""
        guess = relay_us - self.offset_at(relay_us - self.offset_us)
        return relay_us - self.offset_at(guess)
