"""trilink nullmodem: pty pairs bridged like a serial cable at a real baud rate.

Each :class:`NullModem` is two pseudo-terminals, side ``a`` and side ``b``;
what a program writes to one side's tty comes out of the other side's tty no
earlier than an 8N1 UART would deliver it (10 bits per byte: 86.8 us at
115200 baud), bytes queueing behind each other as on a real wire, with
optional impairments (:mod:`trilink.impair`: bit errors, byte drop, latency,
unplug, and "vanish", in which the tty paths disappear as a USB adapter's do).
The emulator records when every frame's last bit crossed and when it was
handed to the receiving pty, on ``time.monotonic_ns()``::

    with NullModem(baud=115200, impair="ber=1e-4", a_link="/tmp/x/jp-board",
                   b_link="/tmp/x/jp-relay") as nm:
        board = serial.Serial(nm.a_path); relay = serial.Serial(nm.b_path)
        board.write(frame)
        ...
        nm.counters().ab.bits_flipped, nm.frames("ab")[-1].t_out_ns

From a shell (paths stay stable across vanish/return)::

    $ trilink nullmodem --baud 115200 --pairs jp,kr --impair ber=1e-4
"""
from __future__ import annotations

import argparse
import errno
import fcntl
import os
import re
import select
import signal
import sys
import tempfile
import termios
import threading
import time
from array import array
from collections import deque
from dataclasses import asdict, dataclass
from typing import Callable, Deque, Dict, List, Optional, Sequence, Tuple, Union

from trilink.impair import BitErrors, Impairment, parse as parse_impairment

__all__ = [
    "NullModem",
    "LinkCounters",
    "NullModemCounters",
    "FrameRecord",
    "ByteLog",
    "open_pairs",
    "set_raw",
    "BITS_PER_BYTE",
    "main",
]

BITS_PER_BYTE = 10  # 8N1: start bit, 8 data bits, stop bit
_READ_CHUNK = 256  # per wake: a long burst is taken in small bites so its first byte is not held up
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
class NullModemCounters:
    """A snapshot of both directions (``ab``: side a to side b) and the events."""

    ab: LinkCounters
    ba: LinkCounters
    unplug_events: int = 0
    vanish_events: int = 0

    def as_dict(self) -> Dict[str, object]:
        return asdict(self)


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


class NullModem:
    """A null-modem cable between two ptys, paced at ``baud`` with 8N1 timing.

    ``impair`` is a spec string or :class:`~trilink.impair.Impairment`
    (serial keys; each direction draws its own random stream).
    ``a_link``/``b_link``: stable symlink paths to the ptys (needed for a
    program to reopen "the same port" after a vanish).
    ``record_bytes``: keep a per-byte :class:`ByteLog` (16 bytes per byte).
    ``frame_log_max``: frames kept per direction (oldest forgotten first).
    ``tx_buffer``: bytes the emulator takes from a sender ahead of the wire
    (like a UART driver's buffer; beyond it the sender's write blocks).
    ``rx_buffer``: bytes held for a receiver whose pty is full before they
    are lost as overrun (a port nobody reads loses data, as a real one does).
    ``resolution_us``: the bridge wakes at most this often while bytes are in
    flight, so a byte reaches its receiver up to this much after its last
    bit crossed (plus the OS's scheduling delay), never before.

    >>> with NullModem(baud=1_000_000) as nm:
    ...     a = os.open(nm.a_path, os.O_RDWR | os.O_NOCTTY)
    ...     b = os.open(nm.b_path, os.O_RDWR | os.O_NOCTTY)
    ...     _ = os.write(a, b"\\x00hi\\x00")
    ...     nm.wait_idle(1.0)
    ...     os.read(b, 16)
    ...     os.close(a); os.close(b)
    True
    b'\\x00hi\\x00'
    """

    def __init__(
        self,
        baud: int = 115200,
        impair: "Union[str, Impairment, None]" = None,
        *,
        a_link: Optional[str] = None,
        b_link: Optional[str] = None,
        record_bytes: bool = False,
        frame_log_max: int = 100_000,
        tx_buffer: int = 4096,
        rx_buffer: int = 4096,
        resolution_us: float = 200.0,
        name: str = "nullmodem",
    ) -> None:
        if not isinstance(baud, int) or isinstance(baud, bool) or not 50 <= baud <= 100_000_000:
            raise ValueError(f"baud {baud!r} must be an integer in 50..100000000")
        if tx_buffer < 1 or rx_buffer < 1 or frame_log_max < 0:
            raise ValueError("tx_buffer and rx_buffer must be >= 1, frame_log_max >= 0")
        self.baud = baud
        self.impair = parse_impairment(impair).for_link("serial")
        self.name = name
        self.byte_ns = BITS_PER_BYTE * _NS / baud
        self._sides = {"a": _Side("a", a_link), "b": _Side("b", b_link)}
        a, b = self._sides["a"], self._sides["b"]
        self._dirs = {
            "ab": _Direction("ab", a, b, self.impair, self.byte_ns, record_bytes, frame_log_max, rx_buffer),
            "ba": _Direction("ba", b, a, self.impair, self.byte_ns, record_bytes, frame_log_max, rx_buffer),
        }
        self._tx_buffer = tx_buffer
        if not 0 <= resolution_us <= 10_000:
            raise ValueError(f"resolution_us {resolution_us!r} must be within 0..10000")
        self._resolution_ns = int(resolution_us * 1000)
        self._windows = self.impair.dead_windows()
        self._manual: List[Tuple[int, int, str]] = []  # (start_ns, end_ns, sides) from unplug()/vanish()
        self._manual_unplugs = 0
        self._manual_vanishes = 0
        self._lock = threading.Lock()
        self._stop = False
        self._thread: Optional[threading.Thread] = None
        self._wake_r, self._wake_w = -1, -1
        self.t0_ns = 0
        self.error: Optional[BaseException] = None

    # -- life cycle ---------------------------------------------------------

    def start(self) -> "NullModem":
        """Open both ptys and start bridging. Returns self."""
        if self._thread is not None:
            raise RuntimeError("NullModem already started")
        opened = []
        try:
            for side in self._sides.values():
                side.open()
                opened.append(side)
        except BaseException:
            for side in opened:
                side.close()
            raise
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self.t0_ns = time.monotonic_ns()
        self._thread = threading.Thread(target=self._run, name=f"{self.name}-bridge", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop bridging, close the ptys and remove the symlinks."""
        if self._thread is None:
            return
        self._stop = True
        self._wake()
        self._thread.join(5.0)
        self._thread = None
        for side in self._sides.values():
            side.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def __enter__(self) -> "NullModem":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- paths --------------------------------------------------------------

    @property
    def a_path(self) -> Optional[str]:
        """Side a's path to open: the symlink when given, else the pty (None while vanished)."""
        return self._sides["a"].path if (self._sides["a"].link or self._sides["a"].present) else None

    @property
    def b_path(self) -> Optional[str]:
        """Side b's path to open (see :attr:`a_path`)."""
        return self._sides["b"].path if (self._sides["b"].link or self._sides["b"].present) else None

    @property
    def a_pty(self) -> Optional[str]:
        """Side a's current pty device (``/dev/pts/N``), None while vanished."""
        return self._sides["a"].pty if self._sides["a"].present else None

    @property
    def b_pty(self) -> Optional[str]:
        """Side b's current pty device, None while vanished."""
        return self._sides["b"].pty if self._sides["b"].present else None

    def present(self, side: str) -> bool:
        """Whether side ``"a"`` or ``"b"`` exists now (False while vanished)."""
        return self._sides[side].present

    # -- control ------------------------------------------------------------

    def unplug(self, seconds: float) -> None:
        """Pull the cable now for ``seconds``: both ways, nothing crosses."""
        self._add_manual(seconds, "")

    def vanish(self, seconds: float, sides: str = "ab") -> None:
        """Unplug now for ``seconds`` and make the ptys of ``sides`` ("a",
        "b" or "ab") disappear; they return as new ptys behind the same
        symlinks."""
        if not sides or set(sides) - {"a", "b"}:
            raise ValueError(f"sides must be 'a', 'b' or 'ab', not {sides!r}")
        self._add_manual(seconds, sides)

    def _add_manual(self, seconds: float, sides: str) -> None:
        if not seconds > 0:
            raise ValueError(f"seconds must be > 0, not {seconds!r}")
        now = time.monotonic_ns()
        with self._lock:
            self._manual.append((now, now + int(seconds * _NS), sides))
            if sides:
                self._manual_vanishes += 1
            else:
                self._manual_unplugs += 1
        self._wake()

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except (BlockingIOError, OSError):
            pass

    # -- records ------------------------------------------------------------

    def counters(self) -> NullModemCounters:
        """A consistent snapshot of the counters of both directions."""
        with self._lock:
            t = (time.monotonic_ns() - self.t0_ns) / _NS if self.t0_ns else 0.0
            unplugs = self._manual_unplugs + (self.impair.unplug.started(t) if self.impair.unplug else 0)
            vanishes = self._manual_vanishes + (self.impair.vanish.started(t) if self.impair.vanish else 0)
            return NullModemCounters(self._dirs["ab"].snapshot(), self._dirs["ba"].snapshot(), unplugs, vanishes)

    def frames(self, direction: str) -> List[FrameRecord]:
        """Finished frames of ``"ab"`` or ``"ba"``, oldest first."""
        with self._lock:
            return list(self._dirs[direction].frames)

    def byte_log(self, direction: str) -> ByteLog:
        """Per-byte times of ``"ab"`` or ``"ba"`` (needs ``record_bytes=True``)."""
        d = self._dirs[direction]
        if d.log is None:
            raise RuntimeError("byte_log needs NullModem(record_bytes=True)")
        with self._lock:
            return ByteLog(array("q", d.log.wire_ns), array("q", d.log.out_ns))

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is in flight either way: every byte written to
        either pty so far has been handed to the other side's pty, or lost.
        True when idle, False on timeout (e.g. a receiver that never reads)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                busy = any(d.queue or d.out or _unread(d.src.master) for d in self._dirs.values())
            if not busy:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.002)

    # -- the bridge ---------------------------------------------------------

    def _dead(self, t_ns: int) -> bool:
        t = (t_ns - self.t0_ns) / _NS
        for w in self._windows:
            if w.active(t):
                return True
        for start, end, _sides in self._manual:
            if start <= t_ns < end:
                return True
        return False

    def _absent(self, side: str, now: int) -> bool:
        w = self.impair.vanish
        if w is not None and w.active((now - self.t0_ns) / _NS):
            return True
        return any(start <= now < end and side in sides for start, end, sides in self._manual)

    def _next_edge(self, now: int) -> Optional[int]:
        edges = []
        w = self.impair.vanish
        if w is not None:
            e = w.next_edge((now - self.t0_ns) / _NS)
            if e is not None:
                edges.append(self.t0_ns + int(e * _NS) + 1)
        for start, end, sides in self._manual:
            if sides:
                edges += [t for t in (start, end) if t > now]
        return min(edges) if edges else None

    def _update_presence(self, now: int) -> None:
        for name, side in self._sides.items():
            absent = self._absent(name, now)
            if absent and side.present:
                for d in self._dirs.values():
                    if d.dst is side:
                        d.discard_out()
                    if d.src is side:
                        d.sender_vanished()
                side.close()
            elif not absent and not side.present:
                side.open()

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # kept for the owner; the thread must not die silently
            self.error = exc
            raise

    def _loop(self) -> None:
        dirs = list(self._dirs.values())
        while not self._stop:
            with self._lock:
                now = time.monotonic_ns()
                vanishing = self.impair.vanish is not None or self._manual_vanishes > 0
                if vanishing:
                    self._update_presence(now)
                for d in dirs:
                    d.release(now, self._dead if (self._windows or self._manual) else None)
                rlist: List[int] = [self._wake_r]
                wlist: List[int] = []
                reader: Dict[int, _Direction] = {}
                deadline: Optional[float] = None
                for d in dirs:
                    if d.src.master is not None and len(d.queue) < self._tx_buffer:
                        rlist.append(d.src.master)
                        reader[d.src.master] = d
                    if d.out and d.dst.master is not None:
                        wlist.append(d.dst.master)
                    if d.queue:
                        # Wake no more often than the resolution: batches of
                        # bytes, never one early, at a fraction of the CPU.
                        due = max(d.queue[0][1], now + self._resolution_ns)
                        deadline = due if deadline is None else min(deadline, due)
                edge = self._next_edge(now) if vanishing else None
                if edge is not None:
                    deadline = edge if deadline is None else min(deadline, edge)
            timeout = 0.25 if deadline is None else min(0.25, max(0.0, (deadline - time.monotonic_ns()) / _NS))
            r, w, _ = select.select(rlist, wlist, [], timeout)
            if not r and not w:
                continue
            with self._lock:
                now = time.monotonic_ns()
                for fd in r:
                    if fd == self._wake_r:
                        try:
                            os.read(self._wake_r, 4096)
                        except BlockingIOError:
                            pass
                        continue
                    d = reader[fd]
                    if d.src.master != fd:
                        continue
                    try:
                        data = os.read(fd, min(_READ_CHUNK, self._tx_buffer - len(d.queue) + 1))
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:
                        continue  # EIO while a side is being replaced; nothing to take
                    if data:
                        d.take(data, now)
                for d in dirs:
                    if d.out and d.dst.master in w:
                        d.flush()


_PAIR_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def open_pairs(
    names: Sequence[str],
    directory: str,
    baud: int = 115200,
    impair: "Union[str, Impairment, None]" = None,
    **kwargs: object,
) -> Dict[str, NullModem]:
    """Start one :class:`NullModem` per name with stable links
    ``DIR/NAME-board`` (side a) and ``DIR/NAME-relay`` (side b). The i-th
    pair's impairment uses seed ``seed + i``, so pairs draw differently.

    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> pairs = open_pairs(["jp", "kr"], d)
    >>> sorted(os.path.basename(p.a_path) for p in pairs.values())
    ['jp-board', 'kr-board']
    >>> for p in pairs.values(): p.close()
    """
    imp = parse_impairment(impair).for_link("serial")
    for n in names:
        if not _PAIR_NAME.match(n):
            raise ValueError(f"pair name {n!r}: use letters, digits, '_', '-' or '.'")
    if len(set(names)) != len(names):
        raise ValueError("pair names must be unique")
    pairs: Dict[str, NullModem] = {}
    try:
        for i, n in enumerate(names):
            nm = NullModem(
                baud,
                imp.with_seed(imp.seed + i) if i else imp,
                a_link=os.path.join(directory, f"{n}-board"),
                b_link=os.path.join(directory, f"{n}-relay"),
                name=f"nullmodem-{n}",
                **kwargs,  # type: ignore[arg-type]
            )
            pairs[n] = nm.start()
    except BaseException:
        for nm in pairs.values():
            nm.close()
        raise
    return pairs


def _parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="trilink nullmodem",
        description="Emulate serial cables: pty pairs paced at a baud rate (8N1), with optional impairments.",
        epilog="Impairment keys: ber, drop, delay, unplug=D@S[/E], vanish=D@S[/E], seed "
        "(e.g. --impair ber=1e-4,unplug=1s@5s/10s). Runs until Ctrl-C.",
    )
    p.add_argument("--baud", type=int, default=115200, help="bits per second, 8N1 (default 115200)")
    p.add_argument("--pairs", default="jp,kr", help="comma-separated pair names (default jp,kr)")
    p.add_argument("--dir", help="directory for the NAME-board / NAME-relay links (default: a new temp dir)")
    p.add_argument("--impair", default="", help="impairment spec, see trilink.impair (default: none)")
    p.add_argument("--stats", type=float, default=0.0, metavar="SECONDS", help="print counters every SECONDS")
    return p.parse_args(list(argv))


def _print_counters(pairs: Dict[str, NullModem]) -> None:
    for n, nm in pairs.items():
        c = nm.counters()
        for label, lc in (("board>relay", c.ab), ("relay>board", c.ba)):
            print(
                f"{n} {label}: in {lc.bytes_in} out {lc.bytes_out} flipped_bits {lc.bits_flipped} "
                f"dropped {lc.bytes_dropped} lost {lc.bytes_lost} overrun {lc.bytes_overrun} "
                f"frames {lc.frames} damaged {lc.frames_damaged} late_max {lc.late_max_us:.0f}us",
                flush=True,
            )
        print(f"{n}: unplug_events {c.unplug_events} vanish_events {c.vanish_events}", flush=True)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    names = [n.strip() for n in args.pairs.split(",") if n.strip()]
    directory = args.dir or tempfile.mkdtemp(prefix="trilink-nm-")
    try:
        os.makedirs(directory, exist_ok=True)
        pairs = open_pairs(names, directory, args.baud, args.impair)
    except (ValueError, OSError) as exc:  # ImpairmentError is a ValueError
        print(f"trilink nullmodem: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    # Ctrl-C and SIGTERM stop it alike. SIGINT is set explicitly: a process
    # started in the background by a non-interactive shell inherits SIGINT
    # ignored, and Python then raises no KeyboardInterrupt for it.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        us = BITS_PER_BYTE * 1e6 / args.baud
        print(f"trilink nullmodem: {args.baud} baud 8N1 ({us:.1f} us/byte), impair {pairs[names[0]].impair}")
        for n, nm in pairs.items():
            print(f"{n}: board {nm.a_path} -> {nm.a_pty}  relay {nm.b_path} -> {nm.b_pty}")
        print("ready; Ctrl-C to stop", flush=True)
        while not stop.wait(args.stats if args.stats > 0 else 0.5):
            if args.stats > 0:
                _print_counters(pairs)
            for n, nm in pairs.items():
                if nm.error is not None:
                    print(f"trilink nullmodem: {n}: bridge failed: {nm.error!r}", file=sys.stderr)
                    return 1
    except KeyboardInterrupt:
        pass
    finally:
        _print_counters(pairs)
        for nm in pairs.values():
            nm.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
