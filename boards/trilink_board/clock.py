# clock.py: the board's own clock: a monotonic microsecond count with a simulated offset and drift
"""A board has no clock worth trusting: this one is the host's (or the
chip's) monotonic microsecond counter, bent by the nation's simulated
``clock.offset_s`` and ``clock.drift_ppm`` (boards/NATIONS.md) so that the
time sync has something to find:

    local_us = boot_us + (mono_us - boot_us) * (1 + drift_ppm 1e-6) + offset_us

``mono_us`` is ``time.monotonic_ns() // 1000`` on CPython and
``time.ticks_us()`` on MicroPython, which on the unix port is the same
CLOCK_MONOTONIC the relay uses (edge/session.py), so a bench can check a
board's time sync against the truth printed at boot. On a microcontroller
``ticks_us`` wraps (2^30 us on the RP2040): the count is accumulated with
``ticks_diff``, which needs a call at least every 17 minutes. All integer
arithmetic: RP2040 floats are 32-bit.

    >>> c = BoardClock(0.35, 12.0)
    >>> c.local_us() > 0
    True
"""
import time

_ticks_us = getattr(time, "ticks_us", None)


def _monotonic_us():
    # CPython (time.monotonic_ns); MicroPython takes the ticks_us path instead.
    return time.monotonic_ns() // 1000  # type: ignore[attr-defined]  # CPython's time


class BoardClock:
    """``BoardClock(offset_s, drift_ppm)``: ``local_us()`` and ``mono_us()``, integer microseconds."""

    def __init__(self, offset_s=0.0, drift_ppm=0.0):
        self._acc = 0
        self._last = _ticks_us() if _ticks_us is not None else 0
        if _ticks_us is not None:
            self._acc = self._last
        self.offset_us = int(offset_s * 1000000.0)
        self.drift_ppb = int(drift_ppm * 1000.0)
        self.boot_us = self.mono_us()

    def mono_us(self):
        """The undisturbed monotonic clock, microseconds."""
        if _ticks_us is None:
            return _monotonic_us()
        now = _ticks_us()
        self._acc += time.ticks_diff(now, self._last)
        self._last = now
        return self._acc

    def local_of(self, mono):
        """The board clock at monotonic time ``mono`` (us)."""
        el = mono - self.boot_us
        v = self.boot_us + el + el * self.drift_ppb // 1000000000 + self.offset_us
        return v if v > 0 else 0

    def local_us(self):
        """The board's (simulated) clock now, microseconds."""
        return self.local_of(self.mono_us())
