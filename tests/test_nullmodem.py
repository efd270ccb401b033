"""The null-modem emulator over real ptys, read and written through pyserial.

Timing checks use the emulator's own record and the reader's receive times
with causal bounds (nothing arrives before the wire could deliver it) and
generous upper bounds, so that a loaded CI machine does not fail them.
"""
from __future__ import annotations

import os
import select
import threading
import time
from contextlib import contextmanager
from typing import Iterator, List, Tuple

import pytest
import serial

from trilink.impair import ImpairmentError
from trilink.nullmodem import BITS_PER_BYTE, NullModem
from emulator_cli import Cli, help_and_bad_impairment
from textmatch import has

NS = 1_000_000_000


class Collector(threading.Thread):
    """Reads a port as fast as bytes come, stamping each chunk on arrival."""

    def __init__(self, port: serial.Serial) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.data = bytearray()
        self.times: List[int] = []  # one per byte
        self.error: BaseException | None = None
        self._halt = threading.Event()

    def run(self) -> None:
        fd = self.port.fileno()
        try:
            while not self._halt.is_set():
                r, _, _ = select.select([fd], [], [], 0.02)
                if not r:
                    continue
                chunk = self.port.read(self.port.in_waiting or 1)
                t = time.monotonic_ns()
                self.data += chunk
                self.times += [t] * len(chunk)
        except BaseException as exc:  # surfaced by the test
            self.error = exc

    def wait_for(self, n: int, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        while len(self.data) < n and time.monotonic() < deadline and self.error is None:
            time.sleep(0.005)
        return bytes(self.data)

    def stop(self) -> None:
        self._halt.set()
        self.join(2.0)


@contextmanager
def ports(nm: NullModem) -> Iterator[Tuple[serial.Serial, serial.Serial]]:
    a = serial.Serial(nm.a_path, nm.baud, timeout=1.0, write_timeout=10.0)
    b = serial.Serial(nm.b_path, nm.baud, timeout=1.0, write_timeout=10.0)
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def collect(port: serial.Serial) -> Collector:
    c = Collector(port)
    c.start()
    return c


def test_all_256_byte_values_cross_unchanged_both_ways() -> None:
    ab = bytes(range(256)) * 8
    ba = bytes(reversed(range(256))) * 8
    with NullModem(baud=1_000_000) as nm, ports(nm) as (a, b):
        ca, cb = collect(a), collect(b)
        a.write(ab)
        b.write(ba)
        got_b, got_a = cb.wait_for(len(ab), 10), ca.wait_for(len(ba), 10)
        ca.stop(), cb.stop()
        c = nm.counters()
    assert got_b == ab and got_a == ba
    assert (c.ab.bytes_in, c.ab.bytes_out, c.ba.bytes_in, c.ba.bytes_out) == (len(ab),) * 2 + (len(ba),) * 2
    assert c.ab.bits_flipped == c.ab.bytes_dropped == c.ab.bytes_lost == 0


def test_emulator_sets_raw_mode_itself() -> None:
    # Opened without pyserial (which would set raw mode on its own): NUL, CR,
    # LF, ^C, XON/XOFF, DEL and 0xFF must pass untranslated and unechoed.
    special = b"\x03\r\n\x00\x11\x13\x7f\xff\x1a\x04"
    with NullModem(baud=1_000_000) as nm:
        fa = os.open(nm.a_path, os.O_RDWR | os.O_NOCTTY)
        fb = os.open(nm.b_path, os.O_RDWR | os.O_NOCTTY)
        try:
            os.write(fa, special)
            assert nm.wait_idle(5.0)
            got = b""
            while len(got) < len(special) and select.select([fb], [], [], 2.0)[0]:
                got += os.read(fb, 64)
            assert got == special
            assert not select.select([fa], [], [], 0.05)[0], "the sender must not see an echo"
        finally:
            os.close(fa)
            os.close(fb)


def test_burst_is_paced_at_8n1_and_never_early() -> None:
    n, baud = 10_000, 115200
    bt = BITS_PER_BYTE * NS / baud  # 86805.6 ns
    data = bytes((i * 7) & 0xFF for i in range(n))
    with NullModem(baud=baud, record_bytes=True) as nm, ports(nm) as (a, b):
        cb = collect(b)
        t_write = time.monotonic_ns()
        a.write(data)
        got = cb.wait_for(n, 15)
        cb.stop()
        log = nm.byte_log("ab")
        frames = nm.frames("ab")
    assert got == data
    wire, out, arr = list(log.wire_ns), list(log.out_ns), cb.times
    assert len(wire) == len(out) == len(arr) == n
    # The model: bytes queue behind each other, one byte time apart, exactly.
    diffs = [wire[i + 1] - wire[i] for i in range(n - 1)]
    assert min(diffs) >= int(bt) and max(diffs) <= int(bt) + 1
    assert wire[0] >= t_write + int(bt)
    # Causality: handed over, and received, no earlier than the last bit crossed.
    assert all(o >= w for o, w in zip(out, wire))
    assert all(r >= w for r, w in zip(arr, wire))
    # The receiver's view of the burst spans the wire time, within a few %.
    expected = n * bt
    span = arr[-1] - t_write
    assert expected <= span <= 1.08 * expected, (span / 1e6, expected / 1e6)
    late = sorted(r - w for r, w in zip(arr, wire))
    assert late[n // 2] < 10_000_000, f"median arrival {late[n // 2] / 1e6:.2f} ms after the wire"
    # frames: data has zeros, every chunk is logged with its wire span
    for f in frames:
        assert f.t_wire_end_ns - f.t_wire_start_ns == pytest.approx(f.wire_bytes * bt, abs=2)
        assert f.t_out_ns is not None and f.t_out_ns >= f.t_wire_end_ns and not f.damaged


def test_bit_errors_match_rate_and_counters_match_what_the_reader_sees() -> None:
    n, ber = 40_000, 1e-3
    data = bytes((i * 31 + 5) & 0xFF for i in range(n))
    with NullModem(baud=2_000_000, impair=f"ber={ber},seed=11") as nm, ports(nm) as (a, b):
        cb = collect(b)
        a.write(data)
        got = cb.wait_for(n, 15)
        cb.stop()
        c = nm.counters().ab
    assert len(got) == n  # flips only: nothing added or removed
    observed = sum(bin(x ^ y).count("1") for x, y in zip(data, got))
    assert c.bits_flipped == observed
    bits = 8 * n
    sd = (bits * ber * (1 - ber)) ** 0.5  # Binomial: mean 320, sd 17.9
    assert abs(observed - bits * ber) < 6 * sd, observed
    assert c.bytes_in == c.bytes_out == n


def test_same_seed_same_damage() -> None:
    data = bytes(range(256)) * 40

    def run(seed: int) -> bytes:
        with NullModem(baud=4_000_000, impair=f"ber=3e-3,drop=1e-3,seed={seed}") as nm, ports(nm) as (a, b):
            cb = collect(b)
            a.write(data)
            assert nm.wait_idle(10)
            c = nm.counters().ab
            assert c.bytes_in == len(data)
            cb.wait_for(len(data) - c.bytes_dropped, 10)
            cb.stop()
            assert len(cb.data) == len(data) - c.bytes_dropped
            return bytes(cb.data)

    first = run(5)
    assert run(5) == first
    assert run(6) != first and first != data


def test_byte_drop_rate_and_count() -> None:
    n, p = 30_000, 5e-3
    data = bytes(i % 251 + 1 for i in range(n))  # no zeros: the order is checkable
    with NullModem(baud=2_000_000, impair=f"drop={p},seed=3") as nm, ports(nm) as (a, b):
        cb = collect(b)
        a.write(data)
        assert nm.wait_idle(15)
        got = cb.wait_for(n - nm.counters().ab.bytes_dropped, 5)
        cb.stop()
        c = nm.counters().ab
    assert len(got) == n - c.bytes_dropped
    it = iter(data)
    assert all(x in it for x in got), "what arrives is what was sent, in order, minus drops"
    sd = (n * p * (1 - p)) ** 0.5  # mean 150, sd 12.2
    assert abs(c.bytes_dropped - n * p) < 6 * sd


def test_frame_log_marks_exactly_the_frames_the_receiver_cannot_get_intact() -> None:
    import hashlib

    sent = []
    for i in range(3000):
        body = b"F%05d" % i + hashlib.sha256(b"%d" % i).digest()[:20]
        sent.append(body.replace(b"\x00", b"\x01"))
    stream = b"".join(f + b"\x00" for f in sent)
    with NullModem(baud=2_000_000, impair="ber=2e-4,seed=9") as nm, ports(nm) as (a, b):
        cb = collect(b)
        a.write(stream)
        got = cb.wait_for(len(stream), 15)
        cb.stop()
        frames = nm.frames("ab")
        c = nm.counters().ab
    assert [f.data for f in frames] == sent
    intact_rx = set(got.split(b"\x00")) & set(sent)
    clean = {f.data for f in frames if not f.damaged}
    assert clean == intact_rx
    damaged = sum(f.damaged for f in frames)
    assert damaged == c.frames_damaged and c.frames == len(sent)
    # P(frame hit) = 1-(1-2e-4)^(8*27) ~ 4.2%: ~127 of 3000 (sd ~11)
    assert 60 < damaged < 200


def test_added_delay() -> None:
    with NullModem(baud=1_000_000, impair="delay=40ms") as nm, ports(nm) as (a, b):
        cb = collect(b)
        t0 = time.monotonic_ns()
        a.write(b"\x00hello\x00")
        got = cb.wait_for(7, 5)
        cb.stop()
        (f,) = nm.frames("ab")
    assert got == b"\x00hello\x00"
    assert f.t_out_ns is not None and f.t_out_ns - f.t_wire_end_ns >= 40_000_000
    assert 40_000_000 <= cb.times[-1] - t0 < 400_000_000


def _stream_both_ways(nm: NullModem, a: serial.Serial, b: serial.Serial, seconds: float) -> Tuple[bytes, bytes]:
    """Write a counter pattern both ways every 5 ms for ``seconds``; return what was sent."""
    sent_ab, sent_ba = bytearray(), bytearray()
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        msg = bytes(((i * 4 + k) % 255) + 1 for k in range(4))
        a.write(msg)
        b.write(msg[::-1])
        sent_ab += msg
        sent_ba += msg[::-1]
        i += 1
        time.sleep(0.005)
    return bytes(sent_ab), bytes(sent_ba)


def test_unplug_periodic_loses_exactly_the_bytes_on_the_wire_while_dead() -> None:
    spec = "unplug=250ms@300ms/700ms"  # dead 0.30-0.55 s and 1.00-1.25 s
    with NullModem(baud=115200, impair=spec, record_bytes=True) as nm, ports(nm) as (a, b):
        ca, cb = collect(a), collect(b)
        sent_ab, sent_ba = _stream_both_ways(nm, a, b, 1.5)
        assert nm.wait_idle(5)
        c = nm.counters()
        ca.wait_for(c.ba.bytes_out, 5), cb.wait_for(c.ab.bytes_out, 5)
        ca.stop(), cb.stop()
        t0 = nm.t0_ns
        logs = {"ab": nm.byte_log("ab"), "ba": nm.byte_log("ba")}
    windows = [(0.30, 0.55), (1.00, 1.25)]
    assert c.unplug_events == 2
    for name, sent, col, lc in (("ab", sent_ab, cb, c.ab), ("ba", sent_ba, ca, c.ba)):
        log = logs[name]
        dead = [any(s <= (w - t0) / NS < e for s, e in windows) for w in log.wire_ns]
        lost = [o == -1 for o in log.out_ns]
        assert dead == lost, name
        assert lc.bytes_lost == sum(lost) > 100
        delivered = bytes(x for x, gone in zip(sent, lost) if not gone)
        assert bytes(col.data) == delivered
        # the reader saw silence for (nearly) the whole window, then traffic again
        gaps = [(t2 - t1) / NS for t1, t2 in zip(col.times, col.times[1:])]
        assert sum(g > 0.2 for g in gaps) >= 2, sorted(gaps)[-3:]  # more only if the reader stalled
        assert max(col.times) - t0 > 1.25 * NS


def test_manual_unplug_counts_and_resumes() -> None:
    with NullModem(baud=1_000_000) as nm, ports(nm) as (a, b):
        cb = collect(b)
        a.write(b"before")
        cb.wait_for(6, 5)
        nm.unplug(0.3)
        a.write(b"during")
        time.sleep(0.4)
        a.write(b"after")
        got = cb.wait_for(11, 5)
        cb.stop()
        c = nm.counters()
    assert got == b"beforeafter"
    assert c.unplug_events == 1 and c.ab.bytes_lost == 6


def _wait(cond, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return bool(cond())


def test_vanish_removes_the_paths_and_pyserial_can_reopen(tmp_path) -> None:  # type: ignore[no-untyped-def]
    link_a, link_b = str(tmp_path / "jp-board"), str(tmp_path / "jp-relay")
    with NullModem(baud=1_000_000, impair="vanish=600ms@300ms", a_link=link_a, b_link=link_b) as nm:
        assert nm.a_path == link_a and os.path.realpath(link_a).startswith("/dev/pts/")
        a = serial.Serial(link_a, timeout=1.0)
        b = serial.Serial(link_b, timeout=1.0)
        a.write(b"ping")
        assert b.read(4) == b"ping"
        assert _wait(lambda: not os.path.lexists(link_a) and not os.path.lexists(link_b), 2.0)
        assert nm.a_pty is None and not nm.present("a")
        # The old handle fails as a vanished USB adapter's does.
        with pytest.raises(serial.SerialException):
            b.read(1)
        a.close()
        b.close()
        with pytest.raises(serial.SerialException):
            serial.Serial(link_a)
        assert _wait(lambda: os.path.lexists(link_a) and os.path.lexists(link_b), 3.0)
        a = serial.Serial(link_a, timeout=1.0)
        b = serial.Serial(link_b, timeout=1.0)
        a.write(b"\x00back\x00")
        b.write(b"ack\x03")
        assert b.read(6) == b"\x00back\x00" and a.read(4) == b"ack\x03"
        a.close()
        b.close()
        assert nm.counters().vanish_events == 1
    assert not os.path.lexists(link_a) and not os.path.lexists(link_b)


def test_vanish_one_side_keeps_the_other_open(tmp_path) -> None:  # type: ignore[no-untyped-def]
    link_a, link_b = str(tmp_path / "kr-board"), str(tmp_path / "kr-relay")
    with NullModem(baud=1_000_000, a_link=link_a, b_link=link_b) as nm:
        a = serial.Serial(link_a, timeout=1.0)
        nm.vanish(0.4, sides="b")
        assert _wait(lambda: not os.path.lexists(link_b), 1.0)
        assert os.path.lexists(link_a)
        a.write(b"into the void")  # lost: the relay's adapter is gone
        assert _wait(lambda: os.path.lexists(link_b), 2.0)
        b = serial.Serial(link_b, timeout=1.0)
        time.sleep(0.05)
        a.write(b"hello")  # the board's port never closed
        assert b.read(5) == b"hello"
        b.write(b"hi")
        assert a.read(2) == b"hi"
        a.close()
        b.close()
        c = nm.counters()
    assert c.vanish_events == 1 and c.ab.bytes_lost == len(b"into the void")


def test_receiver_not_reading_overruns_and_every_byte_is_accounted() -> None:
    n = 40_000
    with NullModem(baud=10_000_000) as nm:
        fa = os.open(nm.a_path, os.O_RDWR | os.O_NOCTTY)
        try:
            view = memoryview(bytes(range(1, 256)) * (n // 255 + 1))[:n]
            while view:
                view = view[os.write(fa, view):]
            # Nobody reads side b: its pty fills, the rest overruns.
            assert _wait(lambda: nm.counters().ab.bytes_overrun > 0 and not nm.frames("ab"), 10)
            assert _wait(lambda: nm.counters().ab.bytes_in == n, 10)
            time.sleep(0.05)
            fb = os.open(nm.b_path, os.O_RDWR | os.O_NOCTTY)
            try:
                got = b""
                while not nm.wait_idle(0.01) or select.select([fb], [], [], 0.2)[0]:
                    if select.select([fb], [], [], 0.05)[0]:
                        got += os.read(fb, 65536)
            finally:
                os.close(fb)
        finally:
            os.close(fa)
        c = nm.counters().ab
    assert c.bytes_overrun > 0
    assert c.bytes_in == n == c.bytes_out + c.bytes_overrun
    assert len(got) == c.bytes_out


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="baud"):
        NullModem(baud=0)
    with pytest.raises(ImpairmentError, match="'reorder' does not apply to a serial link"):
        NullModem(impair="reorder=1%")
    with pytest.raises(ImpairmentError, match="'brr'"):
        NullModem(impair="brr=1")
    with pytest.raises(ValueError, match="sides"):
        NullModem().vanish(1.0, sides="c")


def test_link_over_a_regular_file_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    victim = tmp_path / "precious"
    victim.write_text("keep me")
    with pytest.raises(FileExistsError):
        NullModem(a_link=str(victim)).start()
    assert victim.read_text() == "keep me"


def test_cli_prints_paths_bridges_and_stops_on_ctrl_c(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with Cli("trilink.nullmodem", "--baud", "1000000", "--pairs", "jp,kr", "--dir", str(tmp_path)) as cli:
        text = cli.ready()
        for name in ("jp-board", "jp-relay", "kr-board", "kr-relay"):
            assert str(tmp_path / name) in text and os.path.islink(tmp_path / name)
        a = serial.Serial(str(tmp_path / "kr-board"), timeout=2)
        b = serial.Serial(str(tmp_path / "kr-relay"), timeout=2)
        a.write(b"\x00\x0d\x0a\x03")
        assert b.read(4) == b"\x00\x0d\x0a\x03"
        a.close()
        b.close()
        rc, out, err = cli.interrupt()
    assert rc == 0, err
    assert has(out, "kr board>relay: in 4 out 4")
    assert not os.path.lexists(tmp_path / "jp-board")


def test_cli_help_and_bad_impairment() -> None:
    help_and_bad_impairment("trilink.nullmodem", "trilink nullmodem", "ber=1e-4,jitter=1ms", "jitter")
