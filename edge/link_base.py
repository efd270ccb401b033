# link_base.py: the Link base class every transport derives from, its records and counters
"""``Link`` (the one interface the relay uses; the transports are in
``link_serial`` and ``link_udp``, the registry in ``trilink_edge.links``,
which is the module to import), ``Received``, ``LinkStats``, ``LinkClosed``
and ``serial_wire_size``.
"""
from __future__ import annotations

import asyncio
import collections
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, ClassVar, Deque, Dict, Optional

from trilink_native import binding

__all__ = ["Received", "LinkStats", "Link", "LinkClosed", "Tap", "serial_wire_size", "DEFAULT_BURST"]


# Tap: (link name, direction "rx" | "tx", raw frame, t_ns). The recorder is one.
Tap = Callable[[str, str, bytes, int], None]

# The smallest token bucket depth a link gets by default (bytes): the largest
# PICTURE frame a serial link gets plus a warning (the scheduler's default too).
DEFAULT_BURST = 600


def serial_wire_size(n: int) -> int:
    """Most bytes a frame of ``n`` bytes takes on a serial line: COBS (one
    code byte per 254 started, plus one) and the 0x00 delimiter; the one
    formula (the scheduler's ``serial_size`` is this function). The exact
    count depends on where the frame's zero bytes are; ``bytes_out`` counts
    what was written.

        >>> serial_wire_size(254), serial_wire_size(binding.MAX_FRAME) == binding.MAX_SERIAL
        (257, True)
    """
    return n + (n // 254) + 1 + 1


class LinkClosed(Exception):
    """``recv()`` on a link that was closed (by ``close()``)."""


@dataclass(frozen=True)
class Received:
    """One raw frame as a link received it."""

    data: bytes
    t_ns: int            # time.monotonic_ns() once the frame was fully received
    peer: Any            # serial: the device path; UDP: (host, port) it came from
    link: str = ""       # the link's name


@dataclass
class LinkStats:
    """Counters of one link (transport level; the sessions count the rest)."""

    frames_in: int = 0
    frames_out: int = 0
    bytes_in: int = 0        # bytes read from the transport (serial: COBS and delimiters too)
    bytes_out: int = 0       # bytes written to the transport
    crc_error: int = 0
    malformed: int = 0
    oversize: int = 0
    reopen: int = 0          # times the device came back and was reopened
    down_events: int = 0     # times the device vanished
    tx_dropped: int = 0      # frames not sent: link down or no UDP peer yet
    tx_errors: int = 0       # send-side OS errors (e.g. ICMP port unreachable on UDP)
    rx_dropped: int = 0      # frames dropped because nobody drained recv() (queue full)

    def as_dict(self) -> Dict[str, int]:
        return asdict(self)


class Link:
    """Base of every link, and all the relay knows of one: ``open``/``close``,
    ``handler`` and ``tap``, ``send_nowait`` and ``writable``, ``learn_peer``,
    ``stats``, ``wire_size``, ``default_burst`` and ``reorders``. Subclasses
    set ``kind`` and implement ``_open``, ``_close`` and ``_write_wire``
    (``_send_wire`` too when a send may wait); they call
    ``_deliver(frame, t_ns, peer)``.

    ``handler``: when set, each received frame is passed to
    ``handler(Received)`` at once, from the event loop's reader callback,
    instead of being queued for ``recv()`` (lowest latency; the pipeline may
    use either). ``tap`` sees every frame in and out (the recorder).
    """

    kind: ClassVar[str] = ""
    # True when frames may arrive out of order (datagrams): the sessions then
    # keep a replay window instead of a strictly rising counter (PROTOCOL 3.2).
    reorders: ClassVar[bool] = False

    def __init__(self, name: str, rx_queue: int = 4096) -> None:
        self.name = name
        self.stats = LinkStats()
        self.tap: Optional[Tap] = None
        self.handler: Optional[Callable[[Received], None]] = None
        self._rxq: Deque[Received] = collections.deque()
        self._rx_max = rx_queue
        self._rx_wake: Optional[asyncio.Event] = None
        self._closed = True
        self._loop: Optional[asyncio.AbstractEventLoop] = None

    # -- the interface -------------------------------------------------------
    @property
    def up(self) -> bool:
        """True while the transport is open and usable."""
        raise NotImplementedError

    @property
    def queue_depth(self) -> int:
        """Received frames waiting for ``recv()``."""
        return len(self._rxq)

    async def open(self) -> None:
        """Open the transport. An absent serial device is not an error: the
        link retries in the background and ``up`` turns True when it opens."""
        self._loop = asyncio.get_running_loop()
        self._rx_wake = asyncio.Event()
        self._closed = False
        await self._open()

    async def close(self) -> None:
        """Close the transport; pending and later ``recv()`` raise LinkClosed."""
        if self._closed:
            return
        self._closed = True
        await self._close()
        if self._rx_wake is not None:
            self._rx_wake.set()

    async def recv(self, timeout: Optional[float] = None) -> Received:
        """The next received frame; ``asyncio.TimeoutError`` after ``timeout``
        seconds, ``LinkClosed`` once the link is closed and drained."""
        while not self._rxq:
            if self._closed or self._rx_wake is None:
                raise LinkClosed(self.name)
            self._rx_wake.clear()
            if timeout is None:
                await self._rx_wake.wait()
            else:
                await asyncio.wait_for(self._rx_wake.wait(), timeout)
        return self._rxq.popleft()

    async def send(self, frame: bytes) -> bool:
        """Send one raw frame with the transport's framing. Returns False (and
        counts ``tx_dropped``) when the link cannot send now; never raises for
        a transport failure."""
        t_ns = time.monotonic_ns()
        if not self._may_send():
            return False
        return self._sent(frame, await self._send_wire(frame), t_ns)

    def send_nowait(self, frame: bytes) -> bool:
        """``send`` without awaiting: the frame is written now (or buffered
        by the link and written when the OS takes it), from the caller's
        loop turn. The relay's scheduler uses it, and checks ``writable``
        first so that its buffer stays bounded."""
        t_ns = time.monotonic_ns()
        if not self._may_send():
            return False
        return self._sent(frame, self._write_wire(frame), t_ns)

    def _may_send(self) -> bool:
        if self._closed or not self.up:
            self.stats.tx_dropped += 1
            return False
        return True

    def _sent(self, frame: bytes, n: Optional[int], t_ns: int) -> bool:
        """Count a frame the transport took (``n`` bytes; None: dropped) and show it to the tap."""
        if n is None:
            return False
        self.stats.frames_out += 1
        self.stats.bytes_out += n
        if self.tap is not None:
            self.tap(self.name, "tx", frame, t_ns)
        return True

    @property
    def writable(self) -> bool:
        """False while the link's own transmit buffer is full (back-pressure)."""
        return True

    def wire_size(self, frame_len: int) -> int:
        """Most bytes a frame of ``frame_len`` bytes costs on this link (for budgets)."""
        return frame_len

    def default_burst(self, budget: int) -> int:
        """The token bucket depth when the config sets none: a tenth of the
        budget (bytes/s), at least ``DEFAULT_BURST``. A network path absorbs
        bursts; a small bucket would only pace the frames of one round
        behind each other. A serial line cannot absorb more than
        ``DEFAULT_BURST`` (``SerialLink``).

            >>> Link("au").default_burst(125000)
            12500
        """
        return max(DEFAULT_BURST, budget // 10)

    def learn_peer(self, peer: Any, node: Optional[int] = None, accepted: bool = True) -> None:
        """Tell the link that a frame of board ``node`` came from ``peer``
        (``accepted``: the relay took it; else it was authentic but refused).
        A UDP link without a configured peer sends each board's frames to
        that board's latest accepted address; other links ignore it."""

    def counters(self) -> Dict[str, Any]:
        """``stats`` as a dict plus ``rx_queue_depth`` (received frames not yet
        taken by ``recv``), ``up`` (0/1) and ``kind``."""
        d: Dict[str, Any] = self.stats.as_dict()
        d["rx_queue_depth"] = self.queue_depth
        d["up"] = int(self.up)
        d["kind"] = self.kind
        return d

    async def __aenter__(self) -> "Link":
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- for subclasses -------------------------------------------------------
    async def _open(self) -> None:
        raise NotImplementedError

    async def _close(self) -> None:
        raise NotImplementedError

    async def _send_wire(self, frame: bytes) -> Optional[int]:
        """Write one frame; return the bytes written, or None if dropped."""
        return self._write_wire(frame)

    def _write_wire(self, frame: bytes) -> Optional[int]:
        """Write (or buffer) one frame now; the bytes, or None if dropped."""
        raise NotImplementedError

    def _deliver(self, frame: bytes, t_ns: int, peer: Any) -> None:
        self.stats.frames_in += 1
        rx = Received(frame, t_ns, peer, self.name)
        if self.tap is not None:
            self.tap(self.name, "rx", frame, t_ns)
        if self.handler is not None:
            self.handler(rx)
            return
        if len(self._rxq) >= self._rx_max:
            self._rxq.popleft()   # keep the newest: an old frame is the least useful
            self.stats.rx_dropped += 1
        self._rxq.append(rx)
        if self._rx_wake is not None:
            self._rx_wake.set()
