"""The UDP impairment proxy over real sockets on 127.0.0.1.

Senders pace themselves on the proxy's receive counter, so the kernel never
drops a datagram for want of buffer space under CPU load and the proxy's
counters can be compared exactly with what the receiver observes.
"""
from __future__ import annotations

import re
import socket
import struct
import threading
import time
from typing import Iterator, List, Tuple

import pytest

from trilink.impair import ImpairmentError
from trilink.udpproxy import UdpProxy, parse_addr
from emulator_cli import Cli, help_and_bad_impairment
from textmatch import has

HOST = "127.0.0.1"


def udp() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    s.bind((HOST, 0))
    return s


class Receiver(threading.Thread):
    def __init__(self, sock: socket.socket) -> None:
        super().__init__(daemon=True)
        self.sock = sock
        self.got: List[Tuple[int, bytes]] = []  # (monotonic_ns, payload)
        self._halt = threading.Event()
        sock.settimeout(0.02)

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                data = self.sock.recv(65535)
            except socket.timeout:
                continue
            self.got.append((time.monotonic_ns(), data))

    def wait_for(self, n: int, timeout: float) -> List[bytes]:
        end = time.monotonic() + timeout
        while len(self.got) < n and time.monotonic() < end:
            time.sleep(0.002)
        return [d for _, d in self.got]

    def stop(self) -> None:
        self._halt.set()
        self.join(2.0)


@pytest.fixture
def ends() -> Iterator[Tuple[socket.socket, socket.socket]]:
    a, b = udp(), udp()
    yield a, b
    a.close()
    b.close()


def send_paced(
    px: UdpProxy, sock: socket.socket, payloads: List[bytes], burst: int = 50, rx: "Receiver | None" = None
) -> None:
    """Send to the proxy's A port, waiting after each burst until the proxy
    took it (and the receiver ``rx`` got what the proxy sent)."""
    for i in range(0, len(payloads), burst):
        for p in payloads[i : i + burst]:
            sock.sendto(p, px.a_addr)
        want = min(i + burst, len(payloads))
        end = time.monotonic() + 10
        while px.counters().ab.rx < want or (rx is not None and len(rx.got) < px.counters().ab.tx):
            assert time.monotonic() < end, "proxy or receiver did not keep up"
            time.sleep(0.001)


def seqs(payloads: List[bytes]) -> List[int]:
    return [struct.unpack_from(">I", p)[0] for p in payloads]


def test_forwards_both_ways_unchanged_and_learns_the_sender(ends) -> None:  # type: ignore[no-untyped-def]
    a, b = ends
    sizes = [0, 1, 28, 100, 1052, 1500, 9000, 65507]
    with UdpProxy(b_peer=b.getsockname()) as px:
        rb = Receiver(b)
        rb.start()
        sent = [bytes((i + k) & 0xFF for k in range(n)) for i, n in enumerate(sizes)]
        send_paced(px, a, sent, burst=1)
        got = rb.wait_for(len(sent), 5)
        rb.stop()
        assert got == sent
        assert px.peer("a") == a.getsockname()
        b.sendto(b"\x00reply\x00", px.b_addr)
        a.settimeout(2)
        data, addr = a.recvfrom(100)
        assert data == b"\x00reply\x00" and addr == px.a_addr
        c = px.counters()
    assert (c.ab.rx, c.ab.tx, c.ba.rx, c.ba.tx) == (len(sent), len(sent), 1, 1)
    assert c.ab.rx_bytes == c.ab.tx_bytes == sum(sizes)


def test_loss_dup_reorder_rates_and_counters_match_the_receiver(ends) -> None:  # type: ignore[no-untyped-def]
    a, b = ends
    n, loss, dup, reorder = 3000, 0.10, 0.05, 0.05
    payloads = [struct.pack(">I", i) + b"x" * 24 for i in range(n)]
    with UdpProxy(b_peer=b.getsockname(), impair=f"loss={loss},dup={dup},reorder={reorder},seed=1") as px:
        rb = Receiver(b)
        rb.start()
        send_paced(px, a, payloads, rx=rb)
        assert px.wait_idle(5)
        c = px.counters().ab
        got = seqs(rb.wait_for(c.tx, 5))
        rb.stop()
        records = px.datagrams("ab")
    # What the receiver observes.
    seen, duplicates, reordered, top = set(), 0, 0, -1
    for s in got:
        if s in seen:
            duplicates += 1
            continue
        seen.add(s)
        if s < top:
            reordered += 1
        top = max(top, s)
    assert c.rx == n and c.tx == len(got)
    assert c.dropped == n - len(seen)
    assert c.duplicated == duplicates
    assert c.reordered == reordered
    assert c.lost == c.no_peer == c.send_errors == 0
    # The rates, against their binomial spread (6 standard deviations).
    def within(k: int, trials: int, p: float) -> bool:
        return abs(k - trials * p) < 6 * (trials * p * (1 - p)) ** 0.5

    assert within(c.dropped, n, loss), c.dropped
    assert within(c.duplicated, n - c.dropped, dup), c.duplicated
    # A datagram is held with probability p unless one is already held:
    # p / (1 + p) of the kept ones (~129 of ~2700). Holds that time out are
    # not reorderings, so allow a wider margin below.
    kept = n - c.dropped
    expected = kept * reorder / (1 + reorder)
    assert 0.5 * expected < c.reordered < expected + 6 * expected**0.5, c.reordered
    # Per-datagram records agree with the counters.
    assert len(records) == n
    assert sum(r.fate == "dropped" for r in records) == c.dropped
    assert sum(r.reordered for r in records) == c.reordered
    assert sum(len(r.t_out_ns) for r in records) == c.tx
    assert all(t >= r.t_in_ns for r in records for t in r.t_out_ns)


def test_reorder_always_swaps_neighbours_and_a_lone_hold_expires(ends) -> None:  # type: ignore[no-untyped-def]
    a, b = ends
    with UdpProxy(b_peer=b.getsockname(), impair="reorder=100%", reorder_hold_s=0.5) as px:
        rb = Receiver(b)
        rb.start()
        send_paced(px, a, [struct.pack(">I", i) for i in range(5)], burst=1)
        got = seqs(rb.wait_for(5, 3))
        rb.stop()
        c = px.counters().ab
    assert got == [1, 0, 3, 2, 4]
    assert c.reordered == 2  # the last one went alone after its hold: not reordered
    t_last_in = px.datagrams("ab")[4].t_in_ns
    assert rb.got[4][0] - t_last_in >= 500_000_000


def test_duplicate_always(ends) -> None:  # type: ignore[no-untyped-def]
    a, b = ends
    with UdpProxy(b_peer=b.getsockname(), impair="dup=1") as px:
        rb = Receiver(b)
        rb.start()
        send_paced(px, a, [struct.pack(">I", i) for i in range(10)], burst=10)
        got = seqs(rb.wait_for(20, 3))
        rb.stop()
        c = px.counters().ab
    assert got == [i for i in range(10) for _ in (0, 1)]
    assert c.duplicated == 10 and c.tx == 20


def test_delay(ends) -> None:  # type: ignore[no-untyped-def]
    a, b = ends
    with UdpProxy(b_peer=b.getsockname(), impair="delay=30ms") as px:
        rb = Receiver(b)
        rb.start()
        t0 = time.monotonic_ns()
        a.sendto(b"late", px.a_addr)
        rb.wait_for(1, 3)
        rb.stop()
        (rec,) = px.datagrams("ab")
    assert rb.got[0][1] == b"late"
    assert rec.t_out_ns[0] - rec.t_in_ns >= 30_000_000
    assert 30_000_000 <= rb.got[0][0] - t0 < 500_000_000


def test_unplug_window_loses_exactly_what_arrives_while_dead(ends) -> None:  # type: ignore[no-untyped-def]
    a, b = ends
    with UdpProxy(b_peer=b.getsockname(), impair="unplug=300ms@200ms") as px:
        rb = Receiver(b)
        rb.start()
        i = 0
        end = time.monotonic() + 0.8
        while time.monotonic() < end:
            a.sendto(struct.pack(">I", i), px.a_addr)
            i += 1
            time.sleep(0.005)
        assert _wait(lambda: px.counters().ab.rx == i)
        assert px.wait_idle(3)
        c = px.counters()
        got = seqs(rb.wait_for(c.ab.tx, 3))
        rb.stop()
        records = px.datagrams("ab")
        t0 = px.t0_ns
    assert c.unplug_events == 1 and c.ab.rx == i
    dead = [0.2 <= (r.t_in_ns - t0) / 1e9 < 0.5 for r in records]
    assert [r.fate == "lost" for r in records] == dead
    assert c.ab.lost == sum(dead) > 5
    assert got == [r.index for r in records if r.fate == "sent"]


def test_manual_unplug(ends) -> None:  # type: ignore[no-untyped-def]
    a, b = ends
    with UdpProxy(b_peer=b.getsockname()) as px:
        rb = Receiver(b)
        rb.start()
        send_paced(px, a, [b"1"], burst=1)
        px.unplug(0.2)
        send_paced(px, a, [b"2"], burst=1)
        time.sleep(0.25)
        a.sendto(b"3", px.a_addr)
        got = rb.wait_for(2, 3)
        rb.stop()
        c = px.counters()
    assert got == [b"1", b"3"] and c.ab.lost == 1 and c.unplug_events == 1


def test_unknown_peer_is_counted_then_learned(ends) -> None:  # type: ignore[no-untyped-def]
    a, b = ends
    a.settimeout(2)
    b.settimeout(2)
    with UdpProxy() as px:
        a.sendto(b"nobody yet", px.a_addr)  # B unknown: counted, and A is learned
        assert _wait(lambda: px.counters().ab.no_peer == 1)
        b.sendto(b"hello a", px.b_addr)
        assert a.recv(100) == b"hello a"
        a.sendto(b"hello b", px.a_addr)
        assert b.recv(100) == b"hello b"
        assert px.peer("a") == a.getsockname() and px.peer("b") == b.getsockname()


def _wait(cond, timeout: float = 3.0) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.005)
    return bool(cond())


def test_bad_arguments() -> None:
    with pytest.raises(ImpairmentError, match="'ber' does not apply to a udp link"):
        UdpProxy(impair="ber=1e-4")
    with pytest.raises(ImpairmentError, match="'jitter'"):
        UdpProxy(impair="jitter=1ms")
    with pytest.raises(ValueError, match="port"):
        parse_addr("127.0.0.1:http")
    with pytest.raises(ValueError, match="outside"):
        parse_addr("127.0.0.1:70000")
    assert parse_addr("9000") == ("127.0.0.1", 9000)


def test_cli_forwards_and_prints_counters(ends) -> None:  # type: ignore[no-untyped-def]
    a, b = ends
    b.settimeout(5)
    with Cli("trilink.udpproxy", "--b-peer", "%s:%d" % b.getsockname(), "--impair", "seed=3") as cli:
        m = re.search(r"a: send to 127\.0\.0\.1:(\d+)", cli.ready())
        assert m
        a.sendto(b"via cli", (HOST, int(m.group(1))))
        assert b.recv(100) == b"via cli"
        rc, out, err = cli.interrupt()
    assert rc == 0, err
    assert has(out, "a>b: rx 1 tx 1 dropped 0")


def test_cli_help_and_bad_impairment() -> None:
    help_and_bad_impairment("trilink.udpproxy", "trilink udpproxy", "vanish=1s@1s", "vanish")
