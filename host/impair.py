"""Link impairments: one spec shared by the null-modem emulator and the UDP proxy.

A spec is a comma-separated ``key=value`` string, parsed into a frozen
:class:`Impairment`; a bad key or value raises :class:`ImpairmentError` naming
it::

    >>> imp = Impairment.parse("ber=1e-4,drop=1e-3,delay=5ms,unplug=3s@10s")
    >>> imp.ber, imp.delay_s, imp.unplug.duration_s, imp.unplug.start_s
    (0.0001, 0.005, 3.0, 10.0)
    >>> str(Impairment.parse("loss=10%,seed=7"))
    'drop=0.1,seed=7'

Keys (probabilities take a plain number in [0, 1] or a percentage ``10%``;
times need a unit: ``us``, ``ms``, ``s`` or ``min``):

===========  ============  ====================================================
key          link          meaning
===========  ============  ====================================================
ber          serial        each data bit flips with this probability
drop, loss   serial, udp   each byte (serial) or datagram (udp) is lost
dup          udp           each datagram is sent twice
reorder      udp           a datagram is held and sent after the next one
delay        serial, udp   added one-way latency
unplug       serial, udp   ``D@S[/E]``: link dead for D from S after start,
                           repeating every E
vanish       serial        like unplug, and the pty paths disappear for D
seed         serial, udp   seed of the random draws (default 0: reproducible)
===========  ============  ====================================================

Randomness comes from :meth:`Impairment.rng`, a ``random.Random`` seeded from
``seed`` and a stream name, so a run is reproducible and the two directions of
a link draw independently.
"""
from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field, replace
from typing import Dict, Optional, Tuple

__all__ = ["Impairment", "ImpairmentError", "Window", "BitErrors", "parse"]


class ImpairmentError(ValueError):
    """A spec string or value that cannot be used; the message names the key."""


_TIME_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "min": 60.0}
_TIME_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(us|ms|s|min)\s*$")

# key -> the links it makes sense on; the consumer checks with for_link().
_LINKS: Dict[str, Tuple[str, ...]] = {
    "ber": ("serial",),
    "drop": ("serial", "udp"),
    "dup": ("udp",),
    "reorder": ("udp",),
    "delay": ("serial", "udp"),
    "unplug": ("serial", "udp"),
    "vanish": ("serial",),
    "seed": ("serial", "udp"),
}
_ALIASES = {"loss": "drop"}


def _parse_time(key: str, text: str) -> float:
    m = _TIME_RE.match(text)
    if not m:
        raise ImpairmentError(f"impairment {key}={text!r}: not a time; write e.g. 5ms, 3s, 250us, 1min")
    return float(m.group(1)) * _TIME_UNITS[m.group(2)]


def _parse_prob(key: str, text: str) -> float:
    t = text.strip()
    scale = 1.0
    if t.endswith("%"):
        t, scale = t[:-1], 0.01
    try:
        p = float(t) * scale
    except ValueError:
        raise ImpairmentError(f"impairment {key}={text!r}: not a probability; write e.g. 1e-4 or 10%") from None
    if not 0.0 <= p <= 1.0 or math.isnan(p):
        raise ImpairmentError(f"impairment {key}={text!r}: probability must be within [0, 1]")
    return p


def _fmt_time(seconds: float) -> str:
    # Shortest exact-enough unit, so str(parse(s)) reads like what a user types.
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        v = seconds / scale
        if v >= 1.0 or unit == "us":
            return f"{v:.12g}{unit}"
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Window:
    """A dead interval: ``duration_s`` long, from ``start_s`` after the link
    starts, repeating every ``every_s`` when given.

    >>> w = Window.parse("unplug", "1s@2s/5s")
    >>> w.active(2.5), w.active(3.5), w.active(7.2), w.started(7.2)
    (True, False, True, 2)
    """

    duration_s: float
    start_s: float = 0.0
    every_s: Optional[float] = None

    def __post_init__(self) -> None:
        if not (self.duration_s > 0 and math.isfinite(self.duration_s)):
            raise ImpairmentError(f"window duration {self.duration_s!r} must be a positive time")
        if not (self.start_s >= 0 and math.isfinite(self.start_s)):
            raise ImpairmentError(f"window start {self.start_s!r} must be a time >= 0")
        if self.every_s is not None and not (self.every_s > self.duration_s and math.isfinite(self.every_s)):
            raise ImpairmentError(
                f"window period {self.every_s!r}s must be longer than its duration {self.duration_s!r}s"
            )

    @classmethod
    def parse(cls, key: str, text: str) -> "Window":
        dur, at, rest = text.partition("@")
        if not at:
            raise ImpairmentError(f"impairment {key}={text!r}: write DURATION@START[/EVERY], e.g. 3s@10s or 1s@2s/5s")
        start, slash, every = rest.partition("/")
        try:
            return cls(
                _parse_time(key, dur), _parse_time(key, start), _parse_time(key, every) if slash else None
            )
        except ImpairmentError as exc:
            if str(exc).startswith("impairment"):
                raise
            raise ImpairmentError(f"impairment {key}={text!r}: {exc}") from None

    def __str__(self) -> str:
        s = f"{_fmt_time(self.duration_s)}@{_fmt_time(self.start_s)}"
        return s + (f"/{_fmt_time(self.every_s)}" if self.every_s is not None else "")

    def active(self, t_s: float) -> bool:
        """Whether the link is dead ``t_s`` seconds after it started."""
        if t_s < self.start_s:
            return False
        if self.every_s is None:
            return t_s < self.start_s + self.duration_s
        return (t_s - self.start_s) % self.every_s < self.duration_s

    def started(self, t_s: float) -> int:
        """How many dead intervals have begun by ``t_s``."""
        if t_s < self.start_s:
            return 0
        if self.every_s is None:
            return 1
        return int((t_s - self.start_s) // self.every_s) + 1

    def next_edge(self, t_s: float) -> Optional[float]:
        """The first start or end of a dead interval strictly after ``t_s``, or None."""
        if t_s < self.start_s:
            return self.start_s
        if self.every_s is None:
            end = self.start_s + self.duration_s
            return end if t_s < end else None
        k = (t_s - self.start_s) // self.every_s
        base = self.start_s + k * self.every_s
        end = base + self.duration_s
        return end if t_s < end else base + self.every_s


@dataclass(frozen=True)
class Impairment:
    """What a link does to its traffic. All zero (the default) is a clean link.

    Build it from a spec with :meth:`parse` or directly::

        Impairment(ber=1e-4, delay_s=0.005, seed=3)
    """

    ber: float = 0.0
    drop: float = 0.0
    dup: float = 0.0
    reorder: float = 0.0
    delay_s: float = 0.0
    unplug: Optional[Window] = None
    vanish: Optional[Window] = None
    seed: int = 0
    # keys that were set explicitly, for for_link() and str(); not compared
    _given: Tuple[str, ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        for name in ("ber", "drop", "dup", "reorder"):
            p = getattr(self, name)
            if not (isinstance(p, (int, float)) and 0.0 <= p <= 1.0):
                raise ImpairmentError(f"impairment {name}={p!r}: probability must be within [0, 1]")
        if not (self.delay_s >= 0 and math.isfinite(self.delay_s)):
            raise ImpairmentError(f"impairment delay={self.delay_s!r}: must be a time >= 0")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise ImpairmentError(f"impairment seed={self.seed!r}: must be an integer")

    @classmethod
    def parse(cls, spec: Optional[str]) -> "Impairment":
        """Parse ``"ber=1e-4,drop=1e-3,delay=5ms,unplug=3s@10s"``; ``""`` or
        ``"none"`` is a clean link. Raises :class:`ImpairmentError`."""
        if spec is None or spec.strip().lower() in ("", "none"):
            return cls()
        values: Dict[str, object] = {}
        for item in spec.split(","):
            item = item.strip()
            if not item:
                continue
            raw_key, eq, text = item.partition("=")
            raw_key = raw_key.strip().lower()
            key = _ALIASES.get(raw_key, raw_key)
            if key not in _LINKS:
                known = ", ".join(sorted(list(_LINKS) + list(_ALIASES)))
                raise ImpairmentError(f"impairment {item!r}: unknown key {raw_key!r} (known: {known})")
            if not eq or not text.strip():
                raise ImpairmentError(f"impairment {item!r}: key {raw_key!r} needs a value ({raw_key}=...)")
            if key in values:
                raise ImpairmentError(f"impairment {item!r}: key {key!r} given twice")
            text = text.strip()
            if key in ("ber", "drop", "dup", "reorder"):
                values[key] = _parse_prob(raw_key, text)
            elif key == "delay":
                values["delay_s"] = _parse_time(raw_key, text)
            elif key in ("unplug", "vanish"):
                values[key] = Window.parse(raw_key, text)
            else:  # seed
                try:
                    values["seed"] = int(text, 0)
                except ValueError:
                    raise ImpairmentError(f"impairment {item!r}: seed must be an integer") from None
        given = tuple(k for k in _LINKS if k in values or (k == "delay" and "delay_s" in values))
        return cls(_given=given, **values)  # type: ignore[arg-type]

    def _set_keys(self) -> Tuple[str, ...]:
        # Keys whose value differs from a clean link (seed counts when given).
        out = []
        for key in _LINKS:
            if key == "seed":
                if self.seed != 0 or "seed" in self._given:
                    out.append(key)
            elif key == "delay":
                if self.delay_s:
                    out.append(key)
            elif getattr(self, key):
                out.append(key)
        return tuple(out)

    def for_link(self, link: str) -> "Impairment":
        """Return self after checking every set key applies to ``link``
        (``"serial"`` or ``"udp"``); raises :class:`ImpairmentError` naming
        the first that does not."""
        if link not in ("serial", "udp"):
            raise ValueError(f"link must be 'serial' or 'udp', not {link!r}")
        for key in self._set_keys():
            if link not in _LINKS[key]:
                raise ImpairmentError(
                    f"impairment {key!r} does not apply to a {link} link (only to: {', '.join(_LINKS[key])})"
                )
        return self

    @property
    def clean(self) -> bool:
        """True when nothing is impaired (the seed alone does not count)."""
        return not [k for k in self._set_keys() if k != "seed"]

    def with_seed(self, seed: int) -> "Impairment":
        """The same impairment with another seed (e.g. one per link)."""
        return replace(self, seed=seed, _given=tuple(sorted(set(self._given) | {"seed"})))

    def rng(self, stream: str) -> random.Random:
        """A generator for one stream of draws (e.g. ``"ab"``), reproducible
        from ``seed`` and independent of the other streams."""
        return random.Random(f"trilink-impair:{self.seed}:{stream}")

    def dead_windows(self) -> Tuple[Window, ...]:
        """Every interval in which the link carries nothing (unplug and vanish)."""
        return tuple(w for w in (self.unplug, self.vanish) if w is not None)

    def __str__(self) -> str:
        parts = []
        for key in self._set_keys():
            if key == "delay":
                parts.append(f"delay={_fmt_time(self.delay_s)}")
            elif key == "seed":
                parts.append(f"seed={self.seed}")
            else:
                parts.append(f"{key}={getattr(self, key)!s}")
        return ",".join(parts) if parts else "none"


def parse(spec: "Optional[str | Impairment]") -> Impairment:
    """Accept a spec string, an :class:`Impairment` or None (clean link)."""
    if isinstance(spec, Impairment):
        return spec
    return Impairment.parse(spec)


class BitErrors:
    """Independent events at probability ``p`` per trial, drawn by geometric
    skips (one random draw per event, not per trial), so a BER of 1e-5 costs
    almost nothing per byte.

    >>> b = BitErrors(0.5, random.Random(1))
    >>> 0 <= b.flip_mask() <= 255
    True
    """

    __slots__ = ("_p", "_rng", "_log1m", "_gap")

    def __init__(self, p: float, rng: random.Random) -> None:
        self._p = p
        self._rng = rng
        self._log1m = math.log1p(-p) if 0.0 < p < 1.0 else 0.0
        self._gap = self._draw()

    def _draw(self) -> int:
        # Number of clean trials before the next event.
        if self._p <= 0.0:
            return 1 << 62
        if self._p >= 1.0:
            return 0
        u = 1.0 - self._rng.random()  # (0, 1]
        return int(math.log(u) / self._log1m)

    def hit(self) -> bool:
        """One trial: True when the event happens (byte or datagram lost)."""
        if self._gap > 0:
            self._gap -= 1
            return False
        self._gap = self._draw()
        return True

    def flip_mask(self, bits: int = 8) -> int:
        """``bits`` trials at once: the mask of the bits that flip."""
        pos = self._gap
        if pos >= bits:
            self._gap = pos - bits
            return 0
        mask = 0
        while pos < bits:
            mask |= 1 << pos
            pos += 1 + self._draw()
        self._gap = pos - bits
        return mask
