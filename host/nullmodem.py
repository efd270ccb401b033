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
import os
import re
import select
import sys
import tempfile
import time
from array import array
from dataclasses import asdict, dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

from trilink.emulator import Emulator, serve
from trilink.impair import Impairment, parse as parse_impairment
from trilink.nullmodem_wire import ByteLog, FrameRecord, LinkCounters, _Direction, _Side, _unread, set_raw

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


@dataclass
class NullModemCounters:
    """A snapshot of both directions (``ab``: side a to side b) and the events."""

    ab: LinkCounters
    ba: LinkCounters
    unplug_events: int = 0
    vanish_events: int = 0

    def as_dict(self) -> Dict[str, object]:
        return asdict(self)


class NullModem(Emulator):
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

    thread_role = "bridge"

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
        super().__init__(name)
        self.baud = baud
        self.impair = parse_impairment(impair).for_link("serial")
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

    # -- life cycle ---------------------------------------------------------

    def _open(self) -> None:
        # start(): open both ptys (then bridging starts); close() closes them
        # and removes the symlinks
        opened = []
        try:
            for side in self._sides.values():
                side.open()
                opened.append(side)
        except BaseException:
            for side in opened:
                side.close()
            raise

    def _release(self) -> None:
        for side in self._sides.values():
            side.close()

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

    def _busy(self) -> bool:
        # wait_idle: every byte written to either pty so far has been handed
        # to the other side's pty, or lost
        return any(d.queue or d.out or _unread(d.src.master) for d in self._dirs.values())

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
                        self._drain_wake()
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


def _print_counters(pairs: Mapping[str, NullModem]) -> None:
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

    def build() -> Dict[str, NullModem]:
        os.makedirs(directory, exist_ok=True)
        return open_pairs(names, directory, args.baud, args.impair)

    def banner(pairs: Mapping[str, NullModem]) -> None:
        us = BITS_PER_BYTE * 1e6 / args.baud
        print(f"trilink nullmodem: {args.baud} baud 8N1 ({us:.1f} us/byte), impair {pairs[names[0]].impair}")
        for n, nm in pairs.items():
            print(f"{n}: board {nm.a_path} -> {nm.a_pty}  relay {nm.b_path} -> {nm.b_pty}")

    return serve("nullmodem", build, banner, _print_counters, args.stats, "bridge")


if __name__ == "__main__":
    sys.exit(main())
