# scheduler.py: per-link transmit scheduler: byte budget, priorities, bounded queues
"""Decides, per link, which frame goes out next and when, so that the bytes
written never exceed the link's budget and a backlog never turns into
minutes of delay.

Budget (a token bucket in bytes): the link may write at most ``budget``
bytes in ANY window of 1 s. The bucket holds at most ``burst`` bytes and
fills at ``budget - burst`` bytes/s, so over any window of length T the
bytes written are at most ``burst + (budget - burst) T``, which is
``budget`` for T = 1 s. A frame is written only when the bucket holds its
whole wire size (serial: ``links.serial_wire_size``, the COBS bound plus
the delimiter; UDP: the datagram). ``burst`` defaults to 600 bytes, room for
the largest PICTURE frame the pipeline makes for a serial link (512-byte
payload) and a warning; at 115200 baud (11,520 bytes/s) the sustained rate
is then 10,920 bytes/s, 95% of the line.

Priority, highest first:
  1. warnings (``WARNING``): FIFO, bounded (``max_warnings``); a warning
     acknowledged or superseded while queued is skipped, and a full queue
     makes room by deferring a retransmission (its owner, the warning
     desk, sends it again), never by losing a first transmission;
  2. control (HELLO, HEARTBEAT, TIME_SYNC_RESP, KEYFRAME_REQ), FIFO;
  3. track traffic, pulled from ``TrackSource`` objects (one per
     destination on the link): the source whose most urgent pending track
     has the soonest predicted impact goes first, then the one whose
     oldest pending update is oldest (staleness).
Track sources hold the latest update per track (newer replaces older), so
their queue is bounded by the number of tracks; they drop, and count as
``dropped_stale``, updates older than ``max_age_s``. The control queue is
bounded (``max_control``); when full its oldest entry is dropped and
counted as ``dropped_queue``.

    >>> s = LinkScheduler("jp", budget=1000, burst=200, wire_size=udp_size)
    >>> s.push(Item(WARNING, node=1, mtype=0x20, payload=bytes(36), flags=5))
    >>> it = s.pop(now_ns=0); s.charge(it, now_ns=0); (it.klass, s.tokens(0))
    64
    (0, 136.0)
"""
from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Callable, Deque, Dict, List, Optional, Protocol, Tuple, Union

from trilink_edge.links import DEFAULT_BURST, serial_wire_size
from trilink_native import binding

WARNING = 0
CONTROL = 1
TRACK = 2
DEFAULT_MAX_CONTROL = 64
DEFAULT_MAX_WARNINGS = 256
DEFAULT_MAX_AGE_S = 2.0


# Upper bound of a frame's bytes on a serial line: the serial link's own (one formula).
serial_size = serial_wire_size


def udp_size(frame_len: int) -> int:
    """A frame's bytes over UDP: the datagram (headers are not budgeted)."""
    return frame_len


@dataclass
class Item:
    """One frame to send: destination node, type, payload (bytes, or a
    callable evaluated when the frame is packed) and flags. ``size`` is
    the payload length (needed when ``payload`` is a callable)."""

    klass: int
    node: int
    mtype: int
    payload: Union[bytes, Callable[[], bytes]]
    flags: int = 0
    size: int = -1
    created_ns: int = 0
    tag: object = None          # e.g. the warning id, for the caller
    on_sent: Optional[Callable[["Item", int], None]] = None
    # Warnings: ``stale()`` True = no longer worth sending (acknowledged or
    # superseded while queued); ``on_dropped(item)`` is told when the
    # scheduler drops the item unsent (its owner sends it again later).
    stale: Optional[Callable[[], bool]] = None
    on_dropped: Optional[Callable[["Item"], None]] = None

    def __post_init__(self) -> None:
        if self.size < 0:
            if callable(self.payload):
                raise ValueError("a callable payload needs its size")
            self.size = len(self.payload)

    def build(self) -> bytes:
        p = self.payload() if callable(self.payload) else self.payload
        if len(p) != self.size:
            raise ValueError(f"payload of {len(p)} bytes, announced {self.size}")
        return p


class TrackSource(Protocol):
    """Track traffic for one destination (the pipeline's ``Destination``)."""

    def priority(self, now_ns: int) -> Optional[Tuple[float, int]]:
        """(soonest impact time in s or +inf, created_ns of the oldest pending
        update), or None when nothing is pending."""

    def take(self, max_payload: int, now_ns: int) -> Optional[Item]:
        """Encode the next frame (payload <= max_payload), or None."""


@dataclass
class SchedulerCounters:
    frames_out: int = 0
    bytes_out: int = 0
    dropped_stale: int = 0
    dropped_queue: int = 0
    warnings_out: int = 0
    warnings_skipped: int = 0   # stale warnings not sent (acknowledged or superseded while queued)
    warnings_deferred: int = 0  # retransmissions dropped by a full warning queue (sent again later)
    max_window_bytes: int = 0
    max_depth: int = 0          # most warning + control frames queued at once


class LinkScheduler:
    """The transmit scheduler of one link (see the module docstring)."""

    def __init__(self, name: str, budget: float, burst: int = DEFAULT_BURST,
                 wire_size: Callable[[int], int] = serial_size, max_control: int = DEFAULT_MAX_CONTROL,
                 max_payload: int = binding.MAX_PAYLOAD, max_warnings: int = DEFAULT_MAX_WARNINGS) -> None:
        if budget <= burst:
            raise ValueError(f"link {name}: budget {budget} bytes/s must exceed the burst {burst}")
        self.name = name
        self.budget = float(budget)
        self.burst = int(burst)
        self.rate = self.budget - self.burst
        self.wire_size = wire_size
        self.max_control = max_control
        self.max_warnings = max_warnings
        # The largest payload that fits the bucket at all.
        fit = max_payload
        while fit > 0 and wire_size(binding.OVERHEAD + fit) > self.burst:
            fit -= 1
        if fit <= 0:
            raise ValueError(f"link {name}: burst {burst} cannot hold a frame")
        self.max_payload = fit
        self._tokens = float(self.burst)
        self._t_ns: Optional[int] = None
        self.warnings: Deque[Item] = collections.deque()
        self.control: Deque[Item] = collections.deque()
        self.sources: List[TrackSource] = []
        self.counters = SchedulerCounters()

    # ---- bucket ----

    def _refill(self, now_ns: int) -> None:
        if self._t_ns is None:
            self._t_ns = now_ns
        elif now_ns > self._t_ns:
            self._tokens = min(float(self.burst), self._tokens + (now_ns - self._t_ns) * 1e-9 * self.rate)
            self._t_ns = now_ns

    def tokens(self, now_ns: int) -> float:
        self._refill(now_ns)
        return self._tokens

    def item_wire(self, item: Item) -> int:
        return self.wire_size(binding.OVERHEAD + item.size)

    def wait_ns(self, item: Item, now_ns: int) -> int:
        """How long until the bucket holds ``item`` (0 = now)."""
        need = self.item_wire(item) - self.tokens(now_ns)
        return 0 if need <= 0 else int(need / self.rate * 1e9) + 1

    def charge(self, item: Item, now_ns: int) -> int:
        """Take the item's wire bytes from the bucket (call when writing it)."""
        n = self.item_wire(item)
        self._refill(now_ns)
        if n > self._tokens + 1e-6:
            raise RuntimeError(f"link {self.name}: {n} bytes charged with {self._tokens:.0f} in the bucket")
        self._tokens -= n
        self.counters.frames_out += 1
        self.counters.bytes_out += n
        if item.klass == WARNING:
            self.counters.warnings_out += 1
        return n

    # ---- queues ----

    def push(self, item: Item) -> None:
        """Queue a warning or control frame (tracks come from sources)."""
        if item.klass == WARNING:
            if len(self.warnings) >= self.max_warnings:
                self._make_room()
            self.warnings.append(item)
        elif item.klass == CONTROL:
            if len(self.control) >= self.max_control:
                self.control.popleft()
                self.counters.dropped_queue += 1
            self.control.append(item)
        else:
            raise ValueError("track frames come from a TrackSource")
        d = len(self.warnings) + len(self.control)
        if d > self.counters.max_depth:
            self.counters.max_depth = d

    def _make_room(self) -> None:
        # A full warning queue first loses warnings that no longer matter
        # (acknowledged or superseded), then the oldest retransmission,
        # whose owner queues it again later (``on_dropped``); a first
        # transmission is never dropped, so no warning is lost.
        keep = [w for w in self.warnings if w.stale is None or not w.stale()]
        for w in self.warnings:
            if w.stale is not None and w.stale():
                self._drop_warning(w)
                self.counters.warnings_skipped += 1
        self.warnings = collections.deque(keep)
        if len(self.warnings) < self.max_warnings:
            return
        for w in self.warnings:
            if w.flags & binding.FLAG_RETRANSMIT:
                self.warnings.remove(w)
                self._drop_warning(w)
                self.counters.warnings_deferred += 1
                return

    @staticmethod
    def _drop_warning(w: Item) -> None:
        if w.on_dropped is not None:
            w.on_dropped(w)

    def add_source(self, src: TrackSource) -> None:
        self.sources.append(src)

    def depth(self) -> int:
        return len(self.warnings) + len(self.control)

    def pop(self, now_ns: int) -> Optional[Item]:
        """The highest-priority frame to send next, or None. Track frames are
        encoded here (the sender's dead-reckoning state commits to them), so
        call ``pop`` only when about to send, and send what it returns."""
        while self.warnings:
            w = self.warnings.popleft()
            if w.stale is not None and w.stale():
                self._drop_warning(w)
                self.counters.warnings_skipped += 1
                continue
            return w
        if self.control:
            return self.control.popleft()
        best = None
        best_key = None
        for src in self.sources:
            key = src.priority(now_ns)
            if key is not None and (best_key is None or key < best_key):
                best, best_key = src, key
        if best is None:
            return None
        return best.take(self.max_payload, now_ns)

    def pending(self, now_ns: int) -> bool:
        return bool(self.warnings or self.control or any(
            s.priority(now_ns) is not None for s in self.sources))


class WindowMeter:
    """The most bytes written in any window of ``window_ns`` (a check the
    relay keeps on itself; tests measure the capture independently)."""

    def __init__(self, window_ns: int = 1_000_000_000) -> None:
        self.window_ns = window_ns
        self._log: Deque[Tuple[int, int]] = collections.deque()
        self._sum = 0
        self.max = 0

    def add(self, t_ns: int, n: int) -> None:
        self._log.append((t_ns, n))
        self._sum += n
        while self._log and self._log[0][0] <= t_ns - self.window_ns:
            self._sum -= self._log.popleft()[1]
        self.max = max(self.max, self._sum)
