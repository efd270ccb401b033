"""trilink udpproxy: a UDP middlebox on loopback with loss, duplication,
reordering, delay and unplug (:mod:`trilink.impair`), counting each.

Endpoint A sends to the proxy's ``a_port`` and the proxy forwards from its
``b_port`` to B's address; B's replies to ``b_port`` go back to A from
``a_port``. A peer address left out is learned from the first datagram that
peer sends (as a NAT would)::

    with UdpProxy(b_peer=("127.0.0.1", relay_port), impair="loss=10%,dup=1%,reorder=1%") as px:
        board_sock.sendto(frame, ("127.0.0.1", px.a_port))
        ...
        px.counters().ab.dropped, px.datagrams("ab")[0].t_out_ns

From a shell::

    $ trilink udpproxy --a-port 9001 --b-peer 127.0.0.1:9100 --impair loss=10%
"""
from __future__ import annotations

import argparse
import select
import socket
import sys
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Deque, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from trilink.emulator import Emulator, serve
from trilink.impair import BitErrors, Impairment, parse as parse_impairment

__all__ = ["UdpProxy", "UdpCounters", "UdpProxyCounters", "DatagramRecord", "parse_addr", "main"]

Addr = Tuple[str, int]
_NS = 1_000_000_000
_MAX_DATAGRAM = 65535
_SOCK_BUF = 1 << 20  # ask for 1 MiB; the kernel caps it at net.core.rmem_max


@dataclass
class UdpCounters:
    """One direction. Every received datagram is exactly one of: sent
    (``tx`` counts its copies), ``dropped``, ``lost`` (unplugged),
    ``no_peer`` (destination not yet known) or still in flight."""

    rx: int = 0
    rx_bytes: int = 0
    tx: int = 0  # datagrams sent, duplicates included
    tx_bytes: int = 0
    dropped: int = 0  # the drop/loss impairment
    duplicated: int = 0  # extra copies sent
    reordered: int = 0  # held datagrams sent after a later one
    lost: int = 0  # arrived while unplugged
    no_peer: int = 0  # nowhere to send yet (peer address not learned)
    send_errors: int = 0  # sendto failed (e.g. ECONNREFUSED from a closed port)


@dataclass
class UdpProxyCounters:
    """A snapshot of both directions (``ab``: from A to B) and the unplug events."""

    ab: UdpCounters
    ba: UdpCounters
    unplug_events: int = 0

    def as_dict(self) -> Dict[str, object]:
        return asdict(self)


@dataclass
class DatagramRecord:
    """One received datagram: when it came in, what happened, when each copy
    left (``time.monotonic_ns()``)."""

    index: int
    t_in_ns: int
    size: int
    fate: str = "pending"  # "sent", "dropped", "lost", "no_peer"
    copies: int = 1
    reordered: bool = False
    t_out_ns: List[int] = field(default_factory=list)


def parse_addr(text: str) -> Addr:
    """``"127.0.0.1:9000"`` -> ``("127.0.0.1", 9000)``; a bare port means 127.0.0.1.

    >>> parse_addr("9000"), parse_addr("localhost:7")
    (('127.0.0.1', 9000), ('localhost', 7))
    """
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "127.0.0.1", text
    try:
        p = int(port)
    except ValueError:
        raise ValueError(f"address {text!r}: port {port!r} is not a number (write HOST:PORT)") from None
    if not 0 < p < 65536:
        raise ValueError(f"address {text!r}: port {p} is outside 1..65535")
    return (host or "127.0.0.1", p)


class _Direction:
    def __init__(self, name: str, imp: Impairment, log_max: int) -> None:
        self.name = name
        self.delay_ns = int(round(imp.delay_s * _NS))
        self.drop = BitErrors(imp.drop, imp.rng(name + ":drop")) if imp.drop else None
        self.dup = BitErrors(imp.dup, imp.rng(name + ":dup")) if imp.dup else None
        self.reorder = BitErrors(imp.reorder, imp.rng(name + ":reorder")) if imp.reorder else None
        self.queue: Deque[Tuple[int, DatagramRecord, bytes]] = deque()
        self.held: Optional[Tuple[DatagramRecord, bytes, int]] = None  # (record, data, held since)
        self.n = 0
        self.c = UdpCounters()
        self.log: Deque[DatagramRecord] = deque(maxlen=log_max)

    def _enqueue(self, rec: DatagramRecord, data: bytes, t_due: int) -> None:
        for _ in range(rec.copies):
            self.queue.append((t_due, rec, data))

    def take(self, data: bytes, now: int, dead: bool) -> None:
        rec = DatagramRecord(self.n, now, len(data))
        self.n += 1
        self.c.rx += 1
        self.c.rx_bytes += len(data)
        self.log.append(rec)
        if dead:
            rec.fate = "lost"
            self.c.lost += 1
            return
        if self.drop is not None and self.drop.hit():
            rec.fate = "dropped"
            self.c.dropped += 1
            return
        if self.dup is not None and self.dup.hit():
            rec.copies = 2
            self.c.duplicated += 1
        hold = self.reorder is not None and self.reorder.hit()
        due = now + self.delay_ns
        if self.held is not None:
            # This datagram overtakes the held one: that is the reordering.
            held_rec, held_data, _ = self.held
            self.held = None
            self._enqueue(rec, data, due)
            held_rec.reordered = True
            self.c.reordered += 1
            self._enqueue(held_rec, held_data, due)
        elif hold:
            self.held = (rec, data, now)
        else:
            self._enqueue(rec, data, due)

    def expire_held(self, now: int, hold_ns: int) -> None:
        # Nothing came to overtake it: send it late, not reordered.
        if self.held is not None and now >= self.held[2] + hold_ns:
            rec, data, _ = self.held
            self.held = None
            self._enqueue(rec, data, max(now, rec.t_in_ns + self.delay_ns))

    def next_due(self, hold_ns: int) -> Optional[int]:
        times = []
        if self.queue:
            times.append(self.queue[0][0])
        if self.held is not None:
            times.append(self.held[2] + hold_ns)
        return min(times) if times else None


class UdpProxy(Emulator):
    """Forward datagrams between A and B through two loopback ports, impaired.

    ``a_peer``/``b_peer``: the endpoints' addresses (learned from their first
    datagram when None). ``a_port``/``b_port``: ports to bind (0 = any free
    port; read them back from the attributes). ``impair``: spec string or
    :class:`~trilink.impair.Impairment` (udp keys). ``reorder_hold_s``: how
    long a held datagram waits for one to overtake it before going alone.

    >>> with UdpProxy() as px:
    ...     a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); a.bind(("127.0.0.1", 0))
    ...     b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); b.bind(("127.0.0.1", 0))
    ...     px.set_peer("b", b.getsockname())
    ...     _ = a.sendto(b"hi", ("127.0.0.1", px.a_port))
    ...     b.recvfrom(100)[0]
    ...     a.close(); b.close()
    b'hi'
    """

    thread_role = "fwd"

    def __init__(
        self,
        a_peer: Optional[Addr] = None,
        b_peer: Optional[Addr] = None,
        impair: "Union[str, Impairment, None]" = None,
        *,
        host: str = "127.0.0.1",
        a_port: int = 0,
        b_port: int = 0,
        reorder_hold_s: float = 0.2,
        log_max: int = 100_000,
        name: str = "udpproxy",
    ) -> None:
        if not reorder_hold_s > 0:
            raise ValueError(f"reorder_hold_s must be > 0, not {reorder_hold_s!r}")
        super().__init__(name)
        self.impair = parse_impairment(impair).for_link("udp")
        self.host = host
        self._want_ports = (a_port, b_port)
        self._peers: Dict[str, Optional[Addr]] = {"a": a_peer, "b": b_peer}
        self._hold_ns = int(reorder_hold_s * _NS)
        self._dirs = {"ab": _Direction("ab", self.impair, log_max), "ba": _Direction("ba", self.impair, log_max)}
        self._manual: List[Tuple[int, int]] = []
        self._socks: Dict[str, socket.socket] = {}
        self.a_port = 0
        self.b_port = 0

    def _open(self) -> None:
        # start(): bind both ports (then forwarding starts); close() closes them
        try:
            for side, port in zip("ab", self._want_ports):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                self._socks[side] = s
                for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                    try:
                        s.setsockopt(socket.SOL_SOCKET, opt, _SOCK_BUF)
                    except OSError:
                        pass  # a smaller buffer still works; only bursts suffer
                s.bind((self.host, port))
                s.setblocking(False)
        except BaseException:
            for s in self._socks.values():
                s.close()
            self._socks.clear()
            raise
        self.a_port = self._socks["a"].getsockname()[1]
        self.b_port = self._socks["b"].getsockname()[1]

    def _release(self) -> None:
        for s in self._socks.values():
            s.close()
        self._socks.clear()

    @property
    def a_addr(self) -> Addr:
        """Where endpoint A sends (the proxy's A-facing socket)."""
        return (self.host, self.a_port)

    @property
    def b_addr(self) -> Addr:
        """Where endpoint B sends (the proxy's B-facing socket)."""
        return (self.host, self.b_port)

    def peer(self, side: str) -> Optional[Addr]:
        """The address of endpoint ``"a"`` or ``"b"`` (configured or learned)."""
        with self._lock:
            return self._peers[side]

    def set_peer(self, side: str, addr: Addr) -> None:
        """Set (or change) the address of endpoint ``"a"`` or ``"b"``."""
        if side not in ("a", "b"):
            raise ValueError(f"side must be 'a' or 'b', not {side!r}")
        with self._lock:
            self._peers[side] = (addr[0], int(addr[1]))

    def unplug(self, seconds: float) -> None:
        """Drop everything, both ways, for ``seconds`` from now."""
        if not seconds > 0:
            raise ValueError(f"seconds must be > 0, not {seconds!r}")
        now = time.monotonic_ns()
        with self._lock:
            self._manual.append((now, now + int(seconds * _NS)))
        self._wake()

    def counters(self) -> UdpProxyCounters:
        """A consistent snapshot of both directions' counters."""
        with self._lock:
            t = (time.monotonic_ns() - self.t0_ns) / _NS if self.t0_ns else 0.0
            events = len(self._manual) + (self.impair.unplug.started(t) if self.impair.unplug else 0)
            return UdpProxyCounters(
                UdpCounters(**asdict(self._dirs["ab"].c)), UdpCounters(**asdict(self._dirs["ba"].c)), events
            )

    def datagrams(self, direction: str) -> List[DatagramRecord]:
        """Records of ``"ab"`` or ``"ba"``, oldest first (copies; safe to keep)."""
        with self._lock:
            return [
                DatagramRecord(r.index, r.t_in_ns, r.size, r.fate, r.copies, r.reordered, list(r.t_out_ns))
                for r in self._dirs[direction].log
            ]

    def _busy(self) -> bool:
        # wait_idle: nothing queued or held either way
        return any(d.queue or d.held for d in self._dirs.values())

    def _dead(self, now: int) -> bool:
        if self.impair.unplug is not None and self.impair.unplug.active((now - self.t0_ns) / _NS):
            return True
        return any(s <= now < e for s, e in self._manual)

    def _send(self, d: _Direction, out_side: str, now: int) -> None:
        # The B-facing socket sends to B: the side a datagram leaves by is its destination.
        sock = self._socks[out_side]
        while d.queue and d.queue[0][0] <= now:
            _, rec, data = d.queue.popleft()
            peer = self._peers[out_side]
            if peer is None:
                d.c.no_peer += 1
                rec.fate = "no_peer"
                continue
            try:
                sock.sendto(data, peer)
            except OSError:
                d.c.send_errors += 1
                continue
            rec.fate = "sent"
            rec.t_out_ns.append(time.monotonic_ns())
            d.c.tx += 1
            d.c.tx_bytes += len(data)

    def _loop(self) -> None:
        direction_of = {"a": "ab", "b": "ba"}  # arrived on side a: travels a to b
        fds = {self._socks[s].fileno(): s for s in "ab"}
        while not self._stop:
            with self._lock:
                now = time.monotonic_ns()
                for d, out_side in ((self._dirs["ab"], "b"), (self._dirs["ba"], "a")):
                    d.expire_held(now, self._hold_ns)
                    self._send(d, out_side, now)
                dues = [t for t in (d.next_due(self._hold_ns) for d in self._dirs.values()) if t is not None]
            timeout = 0.25 if not dues else min(0.25, max(0.0, (min(dues) - time.monotonic_ns()) / _NS))
            r, _, _ = select.select(list(fds) + [self._wake_r], [], [], timeout)
            for fd in r:
                if fd == self._wake_r:
                    self._drain_wake()
                    continue
                side = fds[fd]
                direction = direction_of[side]
                sock = self._socks[side]
                for _ in range(256):  # drain, but let the other socket have its turn
                    try:
                        data, addr = sock.recvfrom(_MAX_DATAGRAM)
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError:
                        break  # e.g. ECONNREFUSED reported for an earlier send
                    with self._lock:
                        now = time.monotonic_ns()
                        if self._peers[side] is None:
                            self._peers[side] = (addr[0], addr[1])
                        d = self._dirs[direction]
                        d.take(data, now, self._dead(now))


def _parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="trilink udpproxy",
        description="Forward UDP between two endpoints on loopback with loss, duplication, reordering and delay.",
        epilog="A sends to --a-port, B to --b-port. Impairment keys: drop (alias loss), dup, reorder, delay, "
        "unplug=D@S[/E], seed (e.g. --impair loss=10%%,dup=1%%,reorder=1%%,delay=5ms). Runs until Ctrl-C.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--a-port", type=int, default=0, help="port endpoint A sends to (default: any free)")
    p.add_argument("--b-port", type=int, default=0, help="port endpoint B sends to (default: any free)")
    p.add_argument("--a-peer", help="endpoint A's HOST:PORT (default: learned from its first datagram)")
    p.add_argument("--b-peer", help="endpoint B's HOST:PORT (default: learned from its first datagram)")
    p.add_argument("--impair", default="", help="impairment spec, see trilink.impair (default: none)")
    p.add_argument("--stats", type=float, default=0.0, metavar="SECONDS", help="print counters every SECONDS")
    return p.parse_args(list(argv))


def _print_counters(proxies: Mapping[str, UdpProxy]) -> None:
    for px in proxies.values():
        c = px.counters()
        for label, d in (("a>b", c.ab), ("b>a", c.ba)):
            print(
                f"{label}: rx {d.rx} tx {d.tx} dropped {d.dropped} duplicated {d.duplicated} "
                f"reordered {d.reordered} lost {d.lost} no_peer {d.no_peer} send_errors {d.send_errors}",
                flush=True,
            )
        print(f"unplug_events {c.unplug_events}", flush=True)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    peers: List[Optional[Addr]] = [None, None]

    def build() -> Dict[str, UdpProxy]:
        peers[:] = [parse_addr(p) if p else None for p in (args.a_peer, args.b_peer)]
        px = UdpProxy(peers[0], peers[1], args.impair, host=args.host, a_port=args.a_port, b_port=args.b_port)
        return {"": px.start()}

    def banner(proxies: Mapping[str, UdpProxy]) -> None:
        px = proxies[""]
        print(f"trilink udpproxy: impair {px.impair}")
        print(f"a: send to {px.host}:{px.a_port} (peer {peers[0] or 'learned'})")
        print(f"b: send to {px.host}:{px.b_port} (peer {peers[1] or 'learned'})")

    return serve("udpproxy", build, banner, _print_counters, args.stats, "forwarding")


if __name__ == "__main__":
    sys.exit(main())
