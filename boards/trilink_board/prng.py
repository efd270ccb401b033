# prng.py: a seeded random stream that is bit-identical on CPython and MicroPython
"""Seeded uniform and Gaussian numbers, identical on CPython and MicroPython.

MicroPython's ``random`` lacks ``gauss`` and its generator differs from
CPython's, so the simulation uses this one: xorshift32 (Marsaglia 2003) for
the integers and Box-Muller for the Gaussians. Every integer stays below
2**32, so both interpreters do exactly the same integer arithmetic.

    >>> r = Rng(42)
    >>> u = r.uniform()          # in (0, 1)
    >>> g = r.gauss(0.0, 10.0)   # mean 0, sigma 10
"""
import math

_M32 = 0xFFFFFFFF
_INV24 = 1.0 / 16777216.0


class Rng:
    """xorshift32 + Box-Muller. ``Rng(seed)``; seed 0 is mapped to a fixed non-zero state."""

    def __init__(self, seed):
        s = int(seed) & _M32
        # Scramble so that nearby seeds (1, 2, 3) do not give nearby streams.
        s = (s * 2654435761 + 0x9E3779B9) & _M32
        self._s = s or 0x6D2B79F5
        self._spare = 0.0
        self._has_spare = False
        for _ in range(8):
            self.next_u32()

    def next_u32(self):
        """The next 32-bit unsigned integer of the stream."""
        x = self._s
        x ^= (x << 13) & _M32
        x ^= x >> 17
        x ^= (x << 5) & _M32
        self._s = x
        return x

    def uniform(self):
        """A float in the open interval (0, 1) with 24 random bits."""
        return ((self.next_u32() >> 8) + 0.5) * _INV24

    def below(self, n):
        """An integer in [0, n) (n < 2**24)."""
        return int(self.uniform() * n)

    def gauss(self, mu, sigma):
        """A normal deviate with mean ``mu`` and standard deviation ``sigma``."""
        if self._has_spare:
            self._has_spare = False
            return mu + sigma * self._spare
        u1 = self.uniform()
        u2 = self.uniform()
        rad = math.sqrt(-2.0 * math.log(u1))
        ang = 6.283185307179586 * u2
        self._spare = rad * math.sin(ang)
        self._has_spare = True
        return mu + sigma * rad * math.cos(ang)
