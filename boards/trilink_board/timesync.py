# timesync.py: NTP-style time sync client (PROTOCOL.md 4.3): offset and drift fitted over the low-delay samples of a window
"""Maps the board's clock onto the relay's from TIME_SYNC exchanges.

Each exchange gives t1 (board, request sent), t2 (relay, request received),
t3 (relay, response sent), t4 (board, response received):
``offset = ((t2 - t1) + (t3 - t4)) / 2``, ``delay = (t4 - t1) - (t3 - t2)``.
A sample that waited in a queue has a long delay and an offset skewed by up
to half of the wait, so of the last 16 samples only the lowest quarter by
delay is kept (always those within 300 us of the least delay, never one more
than 600 us above it), each weighted by 1 / (1 + excess delay / 300 us), and a
weighted least-squares line ``offset(t) = offset_us + drift (t - base_local)``
is fitted through them once they span 1 s
(offset and drift together: at 100 ppm an offset alone goes stale by 100 us
a second). On a serial link the request and the response take different
times on the wire (their lengths differ): ``add`` takes both serialisation
times and removes the asymmetry, so t1..t4 all stand for last-byte instants.
``interval_us()`` is the request schedule: a burst of 10 at 0.2 s, so the
fit spans 2 s soon after boot, then one a second.

Float-safe on a 32-bit-float board: the fit works on times in ms and
offsets in us relative to the newest kept sample (small numbers, centred
sums); absolute times stay integers.

    >>> ts = TimeSync()
    >>> ts.add(1000, 51000, 51100, 1300)             # relay is 49.9 ms ahead
    (49900, 200)
    >>> ts.to_relay(2000)
    51900
"""

_WINDOW = 16            # samples kept (16 s at the steady rate)
_KEEP_US = 300          # samples this close to the window's least delay are always kept; the weights' scale
_KEEP_MAX_US = 600      # a sample more than this above the least delay is a queued one: never kept
_KEEP_DIV = 4           # ... up to the delay a quarter of the way up the window's
_MIN_SPAN_US = 1000000  # fit drift only over kept samples at least 1 s apart
_MAX_DRIFT = 0.002      # |drift| beyond 2000 ppm is a fit gone wrong: keep the last one
_BURST_N = 10           # first samples taken _BURST_US apart, then one per _STEADY_US
_BURST_US = 200000
_STEADY_US = 1000000


class TimeSync:
    """``add(t1, t2, t3, t4, up_us=0, down_us=0)`` per response; then ``synced``,
    ``to_relay(local_us)``, ``to_local(relay_us)``, ``offset_us``, ``delay_us``, ``drift_ppm``,
    ``interval_us()`` (when to ask next)."""

    def __init__(self):
        self._lt = [0] * _WINDOW    # sample local time (t4)
        self._off = [0] * _WINDOW
        self._dly = [0] * _WINDOW
        self._srt = [0] * _WINDOW   # scratch: the window's delays sorted
        self.reset()

    def reset(self):
        """Forget every sample (the relay restarted)."""
        self._n = 0                 # samples taken since reset
        self.synced = False
        self.samples = 0
        self.base_local = 0         # the fit's reference: local time, offset there
        self.offset_us = 0
        self.delay_us = 0           # least delay in the window
        self.drift = 0.0            # relay-minus-board rate, fraction

    @property
    def drift_ppm(self):
        return self.drift * 1e6

    def interval_us(self):
        """Microseconds until the next TIME_SYNC_REQ: the boot burst, then the steady rate."""
        return _BURST_US if self.samples < _BURST_N else _STEADY_US

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
        self._fit()
        self.synced = True
        return off, dly

    def _fit(self):
        m = self._n if self._n < _WINDOW else _WINDOW
        # The window's delays in order (insertion sort into a scratch list: no allocation).
        srt = self._srt
        for k in range(m):
            v = self._dly[k]
            j = k
            while j > 0 and srt[j - 1] > v:
                srt[j] = srt[j - 1]
                j -= 1
            srt[j] = v
        lo = srt[0]
        # Keep the lowest quarter of the delays, at least those within _KEEP_US of the least and
        # at most those within _KEEP_MAX_US: with a busy link the kept samples still reach the
        # present, so the line is not extrapolated from a few old ones.
        wide = srt[(m - 1) // _KEEP_DIV] - lo
        if wide < _KEEP_US:
            wide = _KEEP_US
        elif wide > _KEEP_MAX_US:
            wide = _KEEP_MAX_US
        lim = lo + wide
        # Reference: the newest kept sample (its time and offset); sums are relative to it and
        # weighted by 1 / (1 + excess delay / _KEEP_US): a waited sample counts for less.
        r = -1
        for k in range(m):
            if self._dly[k] <= lim and (r < 0 or self._lt[k] > self._lt[r]):
                r = k
        t0 = self._lt[r]
        o0 = self._off[r]
        n = 0
        sw = sx = sy = 0.0
        first = 0
        for k in range(m):
            e = self._dly[k] - lo
            if e <= wide:
                x = self._lt[k] - t0            # <= 0
                if x < first:
                    first = x
                w = _KEEP_US / (_KEEP_US + e)
                n += 1
                sw += w
                sx += w * x * 0.001              # ms
                sy += w * (self._off[k] - o0)    # us
        self.delay_us = lo
        d = self.drift
        mx = sx / sw
        my = sy / sw
        # A slope is fitted once the kept samples span _MIN_SPAN_US, and not extrapolated
        # beyond twice their span (a short cluster of old ones, the link queued since).
        last = self._lt[(self._n - 1) % _WINDOW]
        if n >= 3 and -first >= _MIN_SPAN_US and -2 * first >= last - t0:
            sxx = sxy = 0.0
            for k in range(m):
                e = self._dly[k] - lo
                if e <= wide:
                    w = _KEEP_US / (_KEEP_US + e)
                    dx = (self._lt[k] - t0) * 0.001 - mx
                    dy = (self._off[k] - o0) - my
                    sxx += w * dx * dx
                    sxy += w * dx * dy
            if sxx > 0.0:
                f = sxy / sxx * 0.001            # us per ms -> fraction
                if -_MAX_DRIFT < f < _MAX_DRIFT:
                    d = f
        # The line through the weighted means with slope d: its value at the reference (with
        # too few or too close samples for a slope, the last drift, 0 at first).
        self.offset_us = o0 + int(my - d * 1000.0 * mx)
        self.drift = d
        self.base_local = t0

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
