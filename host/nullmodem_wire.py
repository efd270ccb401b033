"""The cable model of :mod:`trilink.nullmodem`: one end of the cable (a pty
pair, ``_Side``), one direction of it (``_Direction``: the 8N1 transmit
clock, the bytes in flight, the impairment draws, counters and logs) and
the records they keep (``LinkCounters``, ``FrameRecord``, ``ByteLog``).
``NullModem`` runs two directions between two sides in its thread; the
public names are imported from :mod:`trilink.nullmodem`.
"""
from __future__ import annotations

import errno
import fcntl
import os
import termios
import time
from array import array
from collections import deque
from dataclasses import asdict, dataclass
from typing import Callable, Deque, Optional, Tuple

from trilink.impair import BitErrors, Impairment

__all__ = ["set_raw", "LinkCounters", "FrameRecord", "ByteLog"]

_NS = 1_000_000_000


def set_raw(fd: int) -> None:
    """Put a tty in raw mode, as cfmakeraw(3) does: no echo, no line editing,
    no CR/LF translation, no signals on 0x03, no XON/XOFF, 8 data bits, so
    every byte value passes unchanged."""
    attrs = termios.tcgetattr(fd)
    iflag, oflag, cflag, lflag = attrs[0], attrs[1], attrs[2], attrs[3]
    iflag &= ~(
        termios.IGNBRK | termios.BRKINT | termios.PARMRK | termios.ISTRIP
        | termios.INLCR | termios.IGNCR | termios.ICRNL | termios.IXON | termios.IXOFF
    )
    oflag &= ~termios.OPOST
    lflag &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG | termios.IEXTEN)
    cflag &= ~(termios.CSIZE | termios.PARENB)
    cflag |= termios.CS8
    cc = list(attrs[6])
    cc[termios.VMIN] = 1
    cc[termios.VTIME] = 0
    termios.tcsetattr(fd, termios.TCSANOW, [iflag, oflag, cflag, lflag, attrs[4], attrs[5], cc])


@dataclass
class LinkCounters:
    """Counters of one direction. ``bytes_in`` = what the sender wrote and the
    wire carried; of those, each ends as exactly one of ``bytes_out``,
    ``bytes_dropped``, ``bytes_lost``, ``bytes_overrun`` or still in flight."""

    bytes_in: int = 0  # taken from the sender's pty
    bytes_out: int = 0  # handed to the receiver's pty
    bits_flipped: int = 0  # in bytes handed over (what the receiver can see)
    bytes_dropped: int = 0  # the ``drop`` impairment
    bytes_lost: int = 0  # crossed the wire while unplugged or vanished
    bytes_overrun: int = 0  # receiver's pty full (nobody reading): lost as on a real UART
    frames: int = 0  # 0x00-terminated non-empty chunks the sender completed
    frames_damaged: int = 0  # of the finished ones: a flipped, dropped or lost byte, or merged
    late_max_us: float = 0.0  # worst release after the byte's due time (scheduling slack)
    late_mean_us: float = 0.0


@dataclass
class FrameRecord:
    """One 0x00-delimited chunk as the sender wrote it, and when it crossed.

    Times are ``time.monotonic_ns()``. ``t_wire_end_ns`` is when the last bit
    of the delimiter crossed the wire (the model); ``t_out_ns`` when the
    emulator handed the delimiter to the receiving pty (never before
    ``t_wire_end_ns`` + delay), None when the delimiter never arrived.
    ``damaged`` means the receiver cannot get this frame intact: a byte of it
    was flipped, dropped or lost, or the delimiter before it was (merging).
    """

    index: int
    data: bytes  # the chunk as sent, without its delimiter
    t_first_in_ns: int  # first byte taken from the sender
    t_wire_start_ns: int  # first bit of the first byte on the wire
    t_last_in_ns: int = 0  # delimiter taken from the sender
    t_wire_end_ns: int = 0
    t_out_ns: Optional[int] = None
    damaged: bool = False

    @property
    def wire_bytes(self) -> int:
        """Bytes this frame occupied on the wire, delimiter included."""
        return len(self.data) + 1


@dataclass
class ByteLog:
    """Per sent byte of one direction (``record_bytes=True``): ``wire_ns[i]``
    when its last bit crossed, ``out_ns[i]`` when it reached the receiving pty
    (-1: dropped, lost or overrun)."""

    wire_ns: "array[int]"
    out_ns: "array[int]"


def _unread(fd: Optional[int]) -> int:
    """Bytes a sender wrote that the emulator has not taken yet (FIONREAD on the master)."""
    if fd is None:
        return 0
    buf = array("i", [0])
    try:
        fcntl.ioctl(fd, termios.FIONREAD, buf, True)
    except OSError:
        return 0
    return buf[0]


class _Side:
    """One end of the cable: a pty pair, the master kept here, the slave's
    path (and an optional stable symlink to it) given to the user."""

    def __init__(self, name: str, link: Optional[str]) -> None:
        self.name = name
        self.link = os.path.abspath(link) if link else None
        self.master: Optional[int] = None
        self.slave: Optional[int] = None
        self.pty: Optional[str] = None

    @property
    def present(self) -> bool:
        return self.master is not None

    @property
    def path(self) -> Optional[str]:
        return self.link or self.pty

    def open(self) -> None:
        master, slave = os.openpty()
        try:
            set_raw(slave)
            os.set_blocking(master, False)
            pty = os.ttyname(slave)
            if self.link:
                if os.path.lexists(self.link) and not os.path.islink(self.link):
                    raise FileExistsError(errno.EEXIST, "not a symlink; refusing to replace it", self.link)
                tmp = f"{self.link}.tmp{os.getpid()}"
                if os.path.lexists(tmp):
                    os.unlink(tmp)
                os.symlink(pty, tmp)
                os.replace(tmp, self.link)  # atomic: a reader never sees a half-made link
        except BaseException:
            os.close(master)
            os.close(slave)
            raise
        # We keep the slave open too: then reading the master never fails with
        # EIO while the user's program has the port closed.
        self.master, self.slave, self.pty = master, slave, pty

    def close(self) -> None:
        if self.link and os.path.islink(self.link) and os.readlink(self.link) == self.pty:
            os.unlink(self.link)
        for fd in (self.master, self.slave):
            if fd is not None:
                os.close(fd)
        self.master = self.slave = None


# queue entry: (t_wire_ns, t_due_ns, value, flip_mask, dropped, frame, is_delim, index)
_Entry = Tuple[int, int, int, int, bool, Optional[FrameRecord], bool, int]


class _Direction:
    """One direction of the cable: the transmit-complete clock, the bytes in
    flight, the impairment draws, counters and logs."""

    def __init__(
        self,
        name: str,
        src: _Side,
        dst: _Side,
        imp: Impairment,
        byte_ns: float,
        record_bytes: bool,
        frame_log_max: int,
        rx_buffer: int,
    ) -> None:
        self.name, self.src, self.dst = name, src, dst
        self.byte_ns = byte_ns
        self.delay_ns = int(round(imp.delay_s * _NS))
        self.ber = BitErrors(imp.ber, imp.rng(name + ":ber")) if imp.ber else None
        self.drop = BitErrors(imp.drop, imp.rng(name + ":drop")) if imp.drop else None
        self.queue: Deque[_Entry] = deque()
        # Transmit-complete clock as a float of ns: 10/baud is not a whole
        # number of ns and must not accumulate rounding over a long burst.
        self.t_done = 0.0
        self.n_sent = 0
        self.frame: Optional[FrameRecord] = None  # being written by the sender
        self.frame_data = bytearray()
        self.n_frames = 0
        self.carry_damage = False  # a delimiter was damaged: the next frame merges
        self.carry_from: Optional[FrameRecord] = None
        self.out = bytearray()  # released, not yet accepted by the receiver's pty
        self.out_meta: Deque[Tuple[int, int, Optional[FrameRecord]]] = deque()  # (index, due, delimiter's frame)
        self.rx_buffer = rx_buffer
        self.c = LinkCounters()
        self._late_sum = 0
        self._late_n = 0
        self._late_max = 0
        self.frames: Deque[FrameRecord] = deque(maxlen=frame_log_max)
        self.log: Optional[ByteLog] = ByteLog(array("q"), array("q")) if record_bytes else None

    def take(self, data: bytes, now: int) -> None:
        """Schedule bytes the sender wrote, read from its pty at ``now``."""
        bt = self.byte_ns
        t = float(now) if now > self.t_done else self.t_done
        ber, drop, q, log = self.ber, self.drop, self.queue, self.log
        for b in data:
            t += bt
            t_wire = int(t)
            mask = ber.flip_mask() if ber else 0
            dropped = drop.hit() if drop else False
            rec: Optional[FrameRecord] = None
            if b:
                if self.frame is None:
                    self.frame = FrameRecord(self.n_frames, b"", now, int(t - bt))
                    self.n_frames += 1
                self.frame_data.append(b)
                rec = self.frame
            elif self.frame is not None:
                rec = self.frame
                rec.data = bytes(self.frame_data)
                rec.t_last_in_ns = now
                rec.t_wire_end_ns = t_wire
                self.frame = None
                self.frame_data.clear()
            q.append((t_wire, t_wire + self.delay_ns, b ^ mask, mask, dropped, rec, b == 0, self.n_sent))
            if log is not None:
                log.wire_ns.append(t_wire)
                log.out_ns.append(-1)
            self.n_sent += 1
        self.t_done = t
        self.c.bytes_in += len(data)

    def _finish(self, rec: FrameRecord, t_out: Optional[int]) -> None:
        rec.t_out_ns = t_out
        self.c.frames += 1
        if rec.damaged:
            self.c.frames_damaged += 1
        self.frames.append(rec)

    def _lose(self, rec: Optional[FrameRecord], is_delim: bool) -> None:
        if rec is not None:
            rec.damaged = True
        if is_delim:
            self.carry_damage, self.carry_from = True, rec
            if rec is not None:
                self._finish(rec, None)

    def release(self, now: int, dead: Optional[Callable[[int], bool]]) -> None:
        """Hand every byte whose time has come to the receiving pty.
        ``dead`` is None when no unplug window exists (the common case: no
        call per byte)."""
        q, out, meta = self.queue, self.out, self.out_meta
        present = self.dst.present
        while q and q[0][1] <= now:
            t_wire, t_due, val, mask, dropped, rec, is_delim, idx = q.popleft()
            if rec is not None and self.carry_damage and rec is not self.carry_from:
                rec.damaged = True
                self.carry_damage = False
            if not present or (dead is not None and dead(t_wire)):
                self.c.bytes_lost += 1
                self._lose(rec, is_delim)
            elif dropped:
                self.c.bytes_dropped += 1
                self._lose(rec, is_delim)
            elif len(out) >= self.rx_buffer:
                self.c.bytes_overrun += 1
                self._lose(rec, is_delim)
            else:
                if mask:
                    self.c.bits_flipped += bin(mask).count("1")
                    if rec is not None:
                        rec.damaged = True
                    if is_delim:
                        self.carry_damage, self.carry_from = True, rec
                out.append(val)
                meta.append((idx, t_due, rec if is_delim else None))
        self.flush()

    def flush(self) -> None:
        """Write what the receiving pty accepts; the rest waits (POLLOUT)."""
        if not self.out or self.dst.master is None:
            return
        try:
            n = os.write(self.dst.master, self.out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            n = 0
        if n <= 0:
            return
        t = time.monotonic_ns()
        del self.out[:n]
        meta, log = self.out_meta, self.log
        for _ in range(n):
            idx, t_due, rec = meta.popleft()
            late = t - t_due
            self._late_sum += late
            if late > self._late_max:
                self._late_max = late
            if log is not None:
                log.out_ns[idx] = t
            if rec is not None:
                self._finish(rec, t)
        self._late_n += n
        self.c.bytes_out += n

    def discard_out(self) -> None:
        """The receiver vanished: what it had not yet accepted is lost."""
        for _idx, _due, rec in self.out_meta:
            self.c.bytes_lost += 1
            if rec is not None:
                rec.damaged = True
                self._finish(rec, None)
        self.out.clear()
        self.out_meta.clear()

    def sender_vanished(self) -> None:
        # A frame cut off mid-way merges with whatever the sender writes after
        # it returns: the receiver cannot get it intact.
        if self.frame is not None:
            self.frame.damaged = True

    def snapshot(self) -> LinkCounters:
        c = LinkCounters(**asdict(self.c))
        c.late_max_us = self._late_max / 1e3
        c.late_mean_us = (self._late_sum / self._late_n / 1e3) if self._late_n else 0.0
        return c
