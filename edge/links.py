# links.py: the relay's links (serial via pyserial, UDP), one interface, a registry by kind
"""One link interface for every transport, in the manner of python-can's
``BusABC``: a transport implements ``_open``/``_close``/``_send_wire`` and
calls ``_deliver`` for each raw frame; the base class does the receive queue,
the tap (recorder), the counters and ``recv``/``send`` once.

Every link carries raw FRAMES (PROTOCOL.md section 1): ``recv()`` returns a
frame that passed the transport checks (cases 1-7 of section 3.3: COBS,
length, CRC, version, flags), ``send(frame)`` takes a raw frame and adds the
transport's framing (serial: COBS + ``0x00``; UDP: one datagram).
Authentication is the session's job, not the link's.

    >>> link = make_link(cfg.links["jp"])          # SerialLink or UdpLink by kind
    >>> await link.open()                          # never raises for an absent device
    >>> rx = await link.recv()                     # Received(data, t_ns, peer, link)
    >>> await link.send(frame)
    >>> link.stats.as_dict()["crc_error"], link.up

Timestamps: ``Received.t_ns`` is ``time.monotonic_ns()`` taken right after
the read that completed the frame (its last byte was in the OS buffer), the
relay's timebase (``session.relay_now_ns``).

A serial device that vanishes (USB adapter pulled, pty closed: a read that
reports readiness but returns no data, EIO, ENXIO, ENODEV) is closed and
reopened with backoff (50 ms doubling to 1 s, so within about 1 s of the
device's return) without any exception reaching the caller; ``up`` is False
meanwhile and frames sent are dropped and counted (``tx_dropped``).
"""
from __future__ import annotations

import asyncio
import collections
import errno
import logging
import os
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, ClassVar, Deque, Dict, List, Optional, Tuple, Type

from trilink_native import binding

__all__ = [
    "Received", "LinkStats", "Link", "SerialLink", "UdpLink", "LinkClosed", "Tap",
    "BACKENDS", "register", "make_link", "serial_wire_size", "DEFAULT_BURST",
]

log = logging.getLogger("trilink_edge.links")

# Tap: (link name, direction "rx" | "tx", raw frame, t_ns). The recorder is one.
Tap = Callable[[str, str, bytes, int], None]

# The smallest token bucket depth a link gets by default (bytes): the largest
# PICTURE frame a serial link gets plus a warning (the scheduler's default too).
DEFAULT_BURST = 600
_READ_SIZE = 4096
_BACKOFF_FIRST_S = 0.05
_BACKOFF_MAX_S = 1.0
# errno values that mean "the device is gone" rather than "try again".
_GONE = {errno.EIO, errno.ENXIO, errno.ENODEV, errno.EBADF, errno.ENOENT, errno.EPIPE}


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
        if self._closed or not self.up:
            self.stats.tx_dropped += 1
            return False
        n = await self._send_wire(frame)
        if n is None:
            return False
        self.stats.frames_out += 1
        self.stats.bytes_out += n
        if self.tap is not None:
            self.tap(self.name, "tx", frame, t_ns)
        return True

    def send_nowait(self, frame: bytes) -> bool:
        """``send`` without awaiting: the frame is written now (or buffered
        by the link and written when the OS takes it), from the caller's
        loop turn. The relay's scheduler uses it, and checks ``writable``
        first so that its buffer stays bounded."""
        t_ns = time.monotonic_ns()
        if self._closed or not self.up:
            self.stats.tx_dropped += 1
            return False
        n = self._write_wire(frame)
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

            >>> UdpLink("au", ("127.0.0.1", 0)).default_burst(125000)
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


# ---------------------------------------------------------------- serial ----

class _Deframer:
    """Adaptor over the deframer in use: ``feed(bytes) -> [raw frames]`` and
    ``counts`` (frames, oversize, malformed, crc_error). The C deframer
    (``binding.Deframer``) is used; the board reference
    ``trilink_board.wire.Deframer`` has the same counters (its ``feed``
    returns Frame objects, whose ``.raw`` is the frame)."""

    def __init__(self) -> None:
        self._d = binding.Deframer()

    def feed(self, data: bytes) -> List[bytes]:
        return self._d.feed_raw(data)

    def reset(self) -> None:
        self._d.reset()

    @property
    def counts(self) -> Dict[str, int]:
        return self._d.counts


class SerialLink(Link):
    """A UART (or tty, or pty) through pyserial: raw 8N1, non-blocking,
    exclusive, low-latency mode attempted; read with ``loop.add_reader``.

        >>> link = SerialLink("jp", "/dev/serial0", 115200)
    """

    kind = "serial"

    def __init__(self, name: str, device: str, baud: int = 115200, low_latency: bool = True,
                 rx_queue: int = 4096, tx_buffer: int = 65536) -> None:
        super().__init__(name, rx_queue)
        self.device = device
        self.baud = baud
        self.low_latency = low_latency
        self._ser: Any = None
        self._fd: Optional[int] = None
        self._deframer = _Deframer()
        self._dcounts = dict(self._deframer.counts)
        self._wbuf = bytearray()
        self._wmax = tx_buffer
        self._drained: Optional[asyncio.Event] = None
        self._reopen_task: Optional["asyncio.Task[None]"] = None
        self._warned_low_latency = False
        self._ever_opened = False

    @classmethod
    def from_config(cls, cfg: Any) -> "SerialLink":
        return cls(cfg.name, cfg.device, cfg.baud, cfg.low_latency)

    @property
    def up(self) -> bool:
        return self._fd is not None

    def wire_size(self, frame_len: int) -> int:
        return serial_wire_size(frame_len)

    def default_burst(self, budget: int) -> int:
        """``DEFAULT_BURST``: the line itself cannot absorb more.

            >>> SerialLink("jp", "/dev/null").default_burst(10368)
            600
        """
        return DEFAULT_BURST

    async def _open(self) -> None:
        self._drained = asyncio.Event()
        self._drained.set()
        if not self._try_open():
            self._start_reopen()

    def _try_open(self) -> bool:
        import serial  # pyserial; imported here so `trilink-edge --help` stays light
        ser = serial.Serial()
        ser.port = self.device
        ser.baudrate = self.baud
        ser.bytesize, ser.parity, ser.stopbits = serial.EIGHTBITS, serial.PARITY_NONE, serial.STOPBITS_ONE
        ser.xonxoff = ser.rtscts = ser.dsrdtr = False
        ser.timeout = 0
        ser.write_timeout = 0
        ser.exclusive = True     # flock: a second relay (or a stray minicom) cannot share the port
        try:
            ser.open()           # O_RDWR | O_NOCTTY | O_NONBLOCK, raw mode (pyserial)
        except (serial.SerialException, OSError, ValueError) as e:
            log.debug("link %s: cannot open %s: %s", self.name, self.device, e)
            return False
        if self.low_latency:
            try:
                ser.set_low_latency_mode(True)   # ASYNC_LOW_LATENCY via TIOCSSERIAL
            except (OSError, ValueError, AttributeError, NotImplementedError) as e:
                # ptys and many adapters lack it: warn once, as mavlink-router does.
                if not self._warned_low_latency:
                    log.warning("link %s: low-latency mode not available on %s (%s); continuing",
                                self.name, self.device, e)
                    self._warned_low_latency = True
        try:
            ser.reset_input_buffer()   # bytes from before we opened belong to nobody
        except (serial.SerialException, OSError):
            pass
        self._ser = ser
        self._fd = ser.fileno()
        self._deframer.reset()
        self._wbuf.clear()
        assert self._loop is not None
        self._loop.add_reader(self._fd, self._on_readable)
        if self._ever_opened:
            self.stats.reopen += 1
            log.info("link %s: %s reopened", self.name, self.device)
        else:
            log.info("link %s: %s open at %d baud", self.name, self.device, self.baud)
        self._ever_opened = True
        return True

    def _shutdown_fd(self) -> None:
        if self._fd is not None and self._loop is not None:
            self._loop.remove_reader(self._fd)
            self._loop.remove_writer(self._fd)
        self._fd = None
        if self._ser is not None:
            try:
                self._ser.close()
            except Exception:  # noqa: BLE001 - the device is gone; nothing to report
                pass
        self._ser = None
        self._wbuf.clear()
        if self._drained is not None:
            self._drained.set()

    def _vanished(self, why: str) -> None:
        """The device went away: close it and reopen in the background."""
        if self._fd is None:
            return
        log.warning("link %s: %s vanished (%s); reopening", self.name, self.device, why)
        self.stats.down_events += 1
        self._shutdown_fd()
        self._start_reopen()

    def _start_reopen(self) -> None:
        if self._closed or (self._reopen_task is not None and not self._reopen_task.done()):
            return
        assert self._loop is not None
        self._reopen_task = self._loop.create_task(self._reopen())

    async def _reopen(self) -> None:
        delay = _BACKOFF_FIRST_S
        while not self._closed and self._fd is None:
            await asyncio.sleep(delay)
            if self._closed or self._try_open():
                return
            delay = min(delay * 2, _BACKOFF_MAX_S)

    async def _close(self) -> None:
        if self._reopen_task is not None:
            self._reopen_task.cancel()
            try:
                await self._reopen_task
            except asyncio.CancelledError:
                pass
            self._reopen_task = None
        self._flush_blocking(0.2)
        self._shutdown_fd()

    def _flush_blocking(self, timeout: float) -> None:
        # On close, give pending bytes a short chance to leave (a final
        # frame should not be lost just because the driver buffer was full).
        end = time.monotonic() + timeout
        while self._wbuf and self._fd is not None and time.monotonic() < end:
            try:
                n = os.write(self._fd, self._wbuf)
                del self._wbuf[:n]
            except BlockingIOError:
                time.sleep(0.002)
            except OSError:
                return

    def _on_readable(self) -> None:
        fd = self._fd
        if fd is None:
            return
        try:
            data = os.read(fd, _READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            if e.errno in _GONE:
                self._vanished(os.strerror(e.errno or 0))
            else:  # pragma: no cover - unexpected, but a relay must not die of it
                log.error("link %s: read error %s", self.name, e)
                self._vanished(str(e))
            return
        t_ns = time.monotonic_ns()
        if not data:
            # pyserial: "device reports readiness to read but returned no data"
            self._vanished("readiness to read but no data")
            return
        self.stats.bytes_in += len(data)
        frames = self._deframer.feed(data)
        c = self._deframer.counts
        for k in ("crc_error", "malformed", "oversize"):
            if c[k] != self._dcounts[k]:
                setattr(self.stats, k, getattr(self.stats, k) + c[k] - self._dcounts[k])
                self._dcounts[k] = c[k]
        for f in frames:
            self._deliver(f, t_ns, self.device)

    @property
    def writable(self) -> bool:
        return len(self._wbuf) <= self._wmax

    async def _send_wire(self, frame: bytes) -> Optional[int]:
        n = self._write_wire(frame)
        # Back-pressure: the scheduler keeps within the budget, so this only
        # waits when the OS buffer and ours are both full (line slower than budget).
        if n is not None and len(self._wbuf) > self._wmax and self._drained is not None:
            self._drained.clear()
            await self._drained.wait()
        return n

    def _write_wire(self, frame: bytes) -> Optional[int]:
        wire = binding.serial_encode(frame)
        fd = self._fd
        if fd is None:
            self.stats.tx_dropped += 1
            return None
        if not self._wbuf:
            try:
                n = os.write(fd, wire)
            except BlockingIOError:
                n = 0
            except OSError as e:
                self.stats.tx_errors += 1
                self._vanished(f"write: {os.strerror(e.errno or 0)}")
                return None
            if n < len(wire):
                self._wbuf += wire[n:]
                assert self._loop is not None
                self._loop.add_writer(fd, self._on_writable)
        else:
            self._wbuf += wire
        return len(wire)

    def _on_writable(self) -> None:
        fd = self._fd
        if fd is None:
            return
        try:
            n = os.write(fd, self._wbuf)
        except BlockingIOError:
            return
        except OSError as e:
            self.stats.tx_errors += 1
            self._vanished(f"write: {os.strerror(e.errno or 0)}")
            return
        del self._wbuf[:n]
        if not self._wbuf:
            assert self._loop is not None
            self._loop.remove_writer(fd)
        if len(self._wbuf) <= self._wmax // 2 and self._drained is not None:
            self._drained.set()

    @property
    def tx_pending(self) -> int:
        """Bytes accepted by ``send`` but not yet handed to the OS."""
        return len(self._wbuf)


# ------------------------------------------------------------------- udp ----

class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, link: "UdpLink") -> None:
        self.link = link
        self.closed = asyncio.Event()

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self.closed.set()

    def datagram_received(self, data: bytes, addr: Tuple[str, int]) -> None:
        self.link._on_datagram(data, addr, time.monotonic_ns())

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from a peer that is not listening yet: count, go on.
        self.link.stats.tx_errors += 1


class UdpLink(Link):
    """One UDP socket: bound to ``bind``, sending to ``peer``. One frame per
    datagram (PROTOCOL 3.2); a datagram that is not exactly one well-formed
    frame is counted (``malformed`` / ``crc_error``) and dropped.

    With ``peer=None`` the link sends each frame to the address of the
    latest frame its destination board sent that the relay accepted, which
    the relay reports through ``learn_peer(addr, node)`` (never an address
    a rejected frame came from): boards behind one link each keep their
    own address. Until a board's address is known, frames for it are
    dropped and counted (``tx_dropped``), never sent to another board.

        >>> link = UdpLink("au", ("0.0.0.0", 9100), ("192.0.2.10", 9101))
    """

    kind = "udp"
    reorders = True

    def __init__(self, name: str, bind: Tuple[str, int], peer: Optional[Tuple[str, int]] = None,
                 rx_queue: int = 4096) -> None:
        super().__init__(name, rx_queue)
        self.bind = bind
        self.configured_peer = peer
        self.peer = peer                      # link-wide: configured, or learned without a node
        self.peers: Dict[int, Tuple[str, int]] = {}   # learned per board node (accepted frames)
        self.hello_peers: Dict[int, Tuple[str, int]] = {}   # ... from authentic refused frames: HELLO only
        self._transport: Optional[asyncio.DatagramTransport] = None
        self._protocol: Optional[_UdpProtocol] = None

    @classmethod
    def from_config(cls, cfg: Any) -> "UdpLink":
        return cls(cfg.name, cfg.bind, cfg.peer)

    @property
    def up(self) -> bool:
        return self._transport is not None

    @property
    def local_addr(self) -> Optional[Tuple[str, int]]:
        """The bound (host, port), useful after binding port 0."""
        if self._transport is None:
            return None
        return self._transport.get_extra_info("sockname")[:2]

    def set_peer(self, peer: Optional[Tuple[str, int]]) -> None:
        """Set (or clear) the address frames are sent to."""
        self.configured_peer = peer
        self.peer = peer

    def learn_peer(self, peer: Any, node: Optional[int] = None, accepted: bool = True) -> None:
        """``accepted=False``: ``peer`` sent an authentic frame of ``node``
        that was refused (a board not yet verified, or a replay): only the
        relay's HELLO (its challenge) may go there, and only while no
        accepted frame has given that board's address."""
        if self.configured_peer is not None or peer is None:
            return
        addr = (peer[0], peer[1])
        if not accepted:
            if node is not None:
                self.hello_peers[node] = addr
            return
        if node is None:
            if addr != self.peer:
                log.info("link %s: peer is now %s:%d", self.name, addr[0], addr[1])
                self.peer = addr
        elif self.peers.get(node) != addr:
            log.info("link %s: node %d is at %s:%d", self.name, node, addr[0], addr[1])
            self.peers[node] = addr

    def _peer_for(self, frame: bytes) -> Optional[Tuple[str, int]]:
        if self.configured_peer is not None:
            return self.configured_peer
        if len(frame) > 4:
            dst = frame[3]
            if dst in self.peers:
                return self.peers[dst]
            if frame[4] == binding.MSG_HELLO and dst in self.hello_peers:
                return self.hello_peers[dst]    # the challenge that lets the board be accepted
        if self.peers:     # per board: a frame for a board not heard from yet goes nowhere
            return None
        return self.peer

    async def _open(self) -> None:
        assert self._loop is not None
        transport, protocol = await self._loop.create_datagram_endpoint(
            lambda: _UdpProtocol(self), local_addr=self.bind)
        self._transport = transport  # type: ignore[assignment]
        self._protocol = protocol
        # Bound to port 0: keep the port the OS chose, so a reopen (close,
        # open) comes back on the address the peer already sends to.
        if self.bind[1] == 0:
            self.bind = (self.bind[0], self.local_addr[1])  # type: ignore[index]
        log.info("link %s: udp bound to %s:%d", self.name, *self.local_addr)  # type: ignore[misc]

    async def _close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            # The socket is released on a later loop turn: wait, so that an
            # open() right after close() can bind the same port again.
            if self._protocol is not None:
                await self._protocol.closed.wait()
        self._transport = None
        self._protocol = None

    def _on_datagram(self, data: bytes, addr: Tuple[str, int], t_ns: int) -> None:
        self.stats.bytes_in += len(data)
        try:
            binding.parse_frame(data)
        except binding.WireError as e:
            if e.reason == "crc_error":
                self.stats.crc_error += 1
            else:
                self.stats.malformed += 1
            return
        self._deliver(bytes(data), t_ns, addr)

    def _write_wire(self, frame: bytes) -> Optional[int]:
        peer = self._peer_for(frame)
        if self._transport is None or peer is None:
            self.stats.tx_dropped += 1
            return None
        try:
            self._transport.sendto(frame, peer)
        except OSError:
            self.stats.tx_errors += 1
            return None
        return len(frame)


# -------------------------------------------------------------- registry ----

BACKENDS: Dict[str, Type[Link]] = {"serial": SerialLink, "udp": UdpLink}


def register(kind: str, cls: Type[Link]) -> None:
    """Add a link kind (``cls.from_config(LinkConfig)`` builds one)."""
    BACKENDS[kind] = cls


def make_link(cfg: Any) -> Link:
    """Build the link a ``config.LinkConfig`` describes (not yet open)."""
    try:
        cls = BACKENDS[cfg.kind]
    except KeyError:
        raise ValueError(f"link {cfg.name}: unknown kind {cfg.kind!r} (known: {', '.join(sorted(BACKENDS))})") from None
    return cls.from_config(cfg)  # type: ignore[attr-defined]
