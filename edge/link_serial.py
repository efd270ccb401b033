# link_serial.py: the serial link (pyserial, the C deframer, reopen with backoff)
"""``SerialLink``: a UART, tty or pty (see ``trilink_edge.links`` for the
interface and the vanish/reopen behaviour)."""
from __future__ import annotations

import asyncio
import errno
import logging
import os
import time
from typing import Any, Dict, List, Optional

from trilink_edge.link_base import DEFAULT_BURST, Link, serial_wire_size
from trilink_native import binding

__all__ = ["SerialLink"]

log = logging.getLogger("trilink_edge.links")

_READ_SIZE = 4096
_BACKOFF_FIRST_S = 0.05
_BACKOFF_MAX_S = 1.0
# errno values that mean "the device is gone" rather than "try again".
_GONE = {errno.EIO, errno.ENXIO, errno.ENODEV, errno.EBADF, errno.ENOENT, errno.EPIPE}


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
