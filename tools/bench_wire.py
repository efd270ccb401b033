#!/usr/bin/env python3
"""Benchmark the receive path: C deframe+verify against the pure-Python board
implementation, for 32-byte and 200-byte payloads, side by side in one run.

    python tools/bench_wire.py                  # default: 20,000 frames per case, best of 5
    python tools/bench_wire.py --frames 50000 --repeat 7 --chunk 4096

Both sides take the same serial stream (COBS frames ended by 0x00, two
uplink boards, valid tags, increasing counters) in chunks of ``--chunk``
bytes, as a serial port read would deliver it, and return the accepted
frames with their header fields: C through ``binding.Deframer.receive``
(one C call per chunk: COBS, CRC, checks, HMAC-SHA256 tag, replay mark;
"C" returns Frame objects like the board code, "C raw" the accepted frames
as bytes), Python through ``trilink_board.wire.Deframer.feed`` + ``Keyring.verify``.
MB/s counts serial bytes (what a link carries). The overhead table gives the
bytes each frame adds to its payload. Results go in docs/BENCH_WIRE.md.
"""
from __future__ import annotations

import argparse
import platform
import time
from typing import Callable, List, Optional, Sequence

from trilink_board import wire
from trilink_native import binding as b

KEYS = {1: b"TEST-ONLY-KEY-jp-000000000000001", 2: b"TEST-ONLY-KEY-kr-000000000000002"}
RELAY = 0


def make_stream(n: int, payload_size: int) -> bytes:
    """n valid serial frames from boards 1 and 2, payloads of random-looking bytes with zeros."""
    out = []
    for i in range(n):
        src = 1 + (i & 1)
        payload = bytes(((i * 131 + j * 29) & 0xFF) for j in range(payload_size))
        raw = b.pack_frame(KEYS[src], src, src, RELAY, b.MSG_TRACK_REPORT, i & 0xFFFF, (1 << 28) + i, payload)
        out.append(b.serial_encode(raw))
    return b"".join(out)


def chunks(data: bytes, size: int) -> List[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


def c_receiver(raw: bool = False) -> Callable[[Sequence[bytes]], int]:
    def run(pieces: Sequence[bytes]) -> int:
        ring = b.Keyring(RELAY, link=(1, 2))
        for kid, key in KEYS.items():
            ring.add(kid, kid, key)
        d = b.Deframer()
        recv = d.receive_raw if raw else d.receive
        got = 0
        for piece in pieces:
            got += len(recv(piece, ring))
        return got
    return run


def py_receiver() -> Callable[[Sequence[bytes]], int]:
    def run(pieces: Sequence[bytes]) -> int:
        ring = wire.Keyring(RELAY, link=(1, 2))
        for kid, key in KEYS.items():
            ring.add(kid, kid, key)
        d = wire.Deframer()
        got = 0
        for piece in pieces:
            for f in d.feed(piece):
                ring.verify(f)
                got += 1
        return got
    return run


def best_time(fn: Callable[[Sequence[bytes]], int], pieces: Sequence[bytes], expect: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        got = fn(pieces)
        dt = time.perf_counter() - t0
        if got != expect:
            raise SystemExit(f"receiver accepted {got} of {expect} frames")
        best = min(best, dt)
    return best


def overhead(payload_size: int) -> dict:
    frame = b.OVERHEAD + payload_size
    cobs = len(b.cobs_encode(bytes([0x11]) * frame)) - frame  # 1 per 254 started, any content
    return {"header": b.HEADER_SIZE, "tag": b.TAG_SIZE, "crc": b.CRC_SIZE, "cobs": cobs, "delimiter": 1,
            "total": b.OVERHEAD + cobs + 1, "serial": frame + cobs + 1}


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=20_000, help="frames per case")
    ap.add_argument("--repeat", type=int, default=5, help="runs per case; the best is reported")
    ap.add_argument("--chunk", type=int, default=4096, help="bytes per read")
    ap.add_argument("--sizes", type=int, nargs="+", default=[32, 200], help="payload sizes")
    args = ap.parse_args(argv)

    print(f"# trilink wire receive benchmark: {args.frames} frames per case, chunks of {args.chunk} B, "
          f"best of {args.repeat}")
    print(f"# {platform.python_implementation()} {platform.python_version()} on {platform.machine()}, "
          f"{platform.processor() or platform.platform()}")
    hdr = f"{'payload':>7} | {'impl':<6} | {'frames/s':>11} | {'MB/s':>7} | {'us/frame':>8} | {'C/Python':>8}"
    print(hdr)
    print("-" * len(hdr))
    for size in args.sizes:
        stream = make_stream(args.frames, size)
        pieces = chunks(stream, args.chunk)
        t_c = best_time(c_receiver(), pieces, args.frames, args.repeat)
        t_raw = best_time(c_receiver(raw=True), pieces, args.frames, args.repeat)
        t_py = best_time(py_receiver(), pieces, args.frames, max(1, args.repeat // 2))
        for name, t in (("C", t_c), ("C raw", t_raw), ("Python", t_py)):
            ratio = f"{t_py / t:7.1f}x"
            print(f"{size:>7} | {name:<6} | {args.frames / t:>11,.0f} | {len(stream) / t / 1e6:>7.2f} | "
                  f"{t / args.frames * 1e6:>8.2f} | {ratio}")
    print()
    print("# bytes per frame on a serial link (payload excluded)")
    print(f"{'payload':>7} | header | tag | crc | cobs | delimiter | overhead | serial frame")
    for size in args.sizes:
        o = overhead(size)
        print(f"{size:>7} | {o['header']:>6} | {o['tag']:>3} | {o['crc']:>3} | {o['cobs']:>4} | "
              f"{o['delimiter']:>9} | {o['total']:>8} | {o['serial']:>12}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
