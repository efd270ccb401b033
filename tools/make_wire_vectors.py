#!/usr/bin/env python3
"""Write tests/vectors/wire_v1.json, the wire test vectors of docs/PROTOCOL.md §7.

Run from the repository root (no arguments needed; output is deterministic)::

    python3 tools/make_wire_vectors.py            # rewrites tests/vectors/wire_v1.json
    python3 tools/make_wire_vectors.py --check    # exit 1 if the committed file differs

Frames are built here from the spec alone (struct, hmac, hashlib, zlib and a
COBS encoder written from §3.1), not with any implementation under test, so
the C kernel and boards/trilink_board/wire.py are both checked against it.
Message payloads are packed field by field from §4 for the same reason.

Each frame entry: the header fields, ``payload`` (hex), ``key`` (hex, a
TEST-ONLY key), ``tag`` (hex), ``crc``, ``raw`` (the frame, hex), ``serial``
(COBS + 0x00, hex) and, for control messages, ``message`` (the fields of §4
that make the payload). ``invalid`` lists serial chunks a deframer must
reject, with the counter each one raises (§3.3 cases 1-7).

The keys spell TEST-ONLY and are marked ``"test_only": true``: no deployment
may use them.
"""
from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import random
import struct
import sys
import zlib
from pathlib import Path
from typing import Any, Dict, List, Optional

OUT = Path(__file__).resolve().parent.parent / "tests" / "vectors" / "wire_v1.json"

HELLO, HEARTBEAT, TIME_SYNC_REQ, TIME_SYNC_RESP = 0x01, 0x02, 0x03, 0x04
TRACK_REPORT, PICTURE, KEYFRAME_REQ = 0x10, 0x11, 0x12
WARNING, WARNING_ACK, STATS, DELIVERY = 0x20, 0x21, 0x30, 0x31
ACK_REQ, RETRANSMIT, URGENT, RELAY_TIME = 0x01, 0x02, 0x04, 0x08
RELAY, JP, KR, BROADCAST = 0, 1, 2, 0xFF


def testonly_key(name: str, key_id: int) -> bytes:
    head = "TEST-ONLY-KEY-%s-" % name
    return (head + "%0*d" % (32 - len(head), key_id)).encode()


KEYS = {1: (JP, "jp", testonly_key("jp", 1)), 2: (KR, "kr", testonly_key("kr", 2))}


def counter(epoch: int, index: int) -> int:
    return epoch << 28 | index  # §2.2


def cobs(raw: bytes) -> bytes:
    """COBS of §3.1: runs between zeros, blocks of at most 254, no trailing 0x01."""
    out = bytearray()
    runs = raw.split(b"\x00")
    for i, run in enumerate(runs):
        pos = 0
        while len(run) - pos >= 254:
            out += b"\xff" + run[pos:pos + 254]
            pos += 254
        if i < len(runs) - 1 or pos < len(run) or not run:
            out.append(len(run) - pos + 1)
            out += run[pos:]
    return bytes(out)


def frame(key: bytes, version: int, flags: int, src: int, dst: int, mtype: int, key_id: int,
          seq: int, ctr: int, payload: bytes, length: Optional[int] = None) -> bytes:
    n = len(payload) if length is None else length
    head = struct.pack("<BBBBBBH", version, flags, src, dst, mtype, key_id, seq)
    head += ctr.to_bytes(6, "little") + struct.pack("<H", n)
    tag = hmac.new(key, head + payload, hashlib.sha256).digest()[:8]
    body = head + payload + tag
    return body + struct.pack("<I", zlib.crc32(body))


# ---- message payloads, packed field by field from §4 ----

def hello(m: Dict[str, Any]) -> bytes:
    name = m["name"].encode("utf-8")
    return (bytes([m["role"], m["proto"]]) + m["max_payload"].to_bytes(2, "little")
            + m["epoch"].to_bytes(4, "little") + m["min_epoch"].to_bytes(4, "little")
            + bytes([len(name)]) + name)


def u(value: int, size: int, signed: bool = False) -> bytes:
    return value.to_bytes(size, "little", signed=signed)


PACKERS = {
    HELLO: hello,
    HEARTBEAT: lambda m: u(m["time_us"], 8) + u(m["tx_frames"], 4) + u(m["rx_frames"], 4) + u(m["rx_errors"], 4),
    TIME_SYNC_REQ: lambda m: u(m["req_id"], 2) + u(m["t1_us"], 8),
    TIME_SYNC_RESP: lambda m: u(m["req_id"], 2) + u(m["t1_us"], 8) + u(m["t2_us"], 8) + u(m["t3_us"], 8),
    KEYFRAME_REQ: lambda m: bytes([len(m["track_ids"])]) + b"".join(u(t, 4) for t in m["track_ids"]),
    WARNING: lambda m: (u(m["warning_id"], 4) + u(m["track_id"], 4) + bytes([m["status"], m["nation"]])
                        + u(m["impact_us"], 8) + u(m["lat_e7"], 4, True) + u(m["lon_e7"], 4, True)
                        + u(m["semi_major_m"], 4) + u(m["semi_minor_m"], 4) + u(m["orient_cdeg"], 2)
                        + bytes([m["kind"], m["class_guess"]]) + u(m["azimuth_cdeg"], 2) + u(m["sigma_t_ds"], 2)),
    WARNING_ACK: lambda m: u(m["warning_id"], 4),
    STATS: lambda m: bytes([len(m["counters"])]) + b"".join(bytes([c]) + u(v, 4) for c, v in m["counters"]),
    DELIVERY: lambda m: (u(m["rx_local_us"], 8) + u(m["rx_relay_us"], 8) + u(m["track_id"], 4)
                         + bytes([len(m["reports"])]) + b"".join(bytes([s]) + u(r, 4) for s, r in m["reports"])),
}

T0 = 1_700_000_000_000_000  # an arbitrary microsecond clock reading


def frames() -> List[Dict[str, Any]]:
    rng = random.Random(20240601)
    out: List[Dict[str, Any]] = []

    def add(name: str, mtype: int, src: int, dst: int, key_id: int, seq: int, ctr: int,
            payload: Optional[bytes] = None, flags: int = 0, message: Optional[Dict[str, Any]] = None) -> None:
        if payload is None:
            assert message is not None
            payload = PACKERS[mtype](message)
        key = KEYS[key_id][2]
        raw = frame(key, 1, flags, src, dst, mtype, key_id, seq, ctr, payload)
        entry: Dict[str, Any] = {
            "name": name, "version": 1, "flags": flags, "src": src, "dst": dst, "type": mtype,
            "key_id": key_id, "seq": seq, "counter": ctr, "length": len(payload),
            "payload": payload.hex(), "key": key.hex(), "tag": raw[16 + len(payload):24 + len(payload)].hex(),
            "crc": struct.unpack("<I", raw[-4:])[0], "raw": raw.hex(), "serial": (cobs(raw) + b"\x00").hex(),
        }
        if message is not None:
            entry["message"] = message
        out.append(entry)

    # One or more of every message type.
    add("hello board to relay", HELLO, JP, RELAY, 1, 0, counter(1, 0),
        message={"role": 0, "proto": 1, "max_payload": 1024, "epoch": 1, "min_epoch": 0, "name": "jp"})
    add("hello relay to board with min_epoch", HELLO, RELAY, KR, 2, 0, counter(7, 0),
        message={"role": 1, "proto": 1, "max_payload": 1024, "epoch": 7, "min_epoch": 3, "name": "relay-us"})
    add("hello with a 16-byte UTF-8 name", HELLO, KR, RELAY, 2, 1, counter(2, 5),
        message={"role": 0, "proto": 1, "max_payload": 512, "epoch": 2, "min_epoch": 0, "name": "\ud55c\uad6d-korea-123"})
    add("heartbeat", HEARTBEAT, JP, RELAY, 1, 1, counter(1, 1),
        message={"time_us": T0, "tx_frames": 41, "rx_frames": 40, "rx_errors": 2})
    add("time sync request", TIME_SYNC_REQ, KR, RELAY, 2, 2, counter(2, 6),
        message={"req_id": 513, "t1_us": 123456789})
    add("time sync response", TIME_SYNC_RESP, RELAY, KR, 2, 1, counter(7, 1), flags=RELAY_TIME,
        message={"req_id": 513, "t1_us": 123456789, "t2_us": T0 + 1500, "t3_us": T0 + 1620})
    add("track report, opaque 32-byte payload", TRACK_REPORT, JP, RELAY, 1, 2, counter(1, 2),
        payload=bytes(rng.randrange(256) for _ in range(32)))
    add("picture, opaque 200-byte payload", PICTURE, RELAY, JP, 1, 2, counter(7, 2), flags=RELAY_TIME,
        payload=bytes(rng.randrange(256) for _ in range(200)))
    add("keyframe request, every track", KEYFRAME_REQ, RELAY, JP, 1, 3, counter(7, 3),
        message={"track_ids": []})
    add("keyframe request, three tracks", KEYFRAME_REQ, JP, RELAY, 1, 3, counter(1, 3),
        message={"track_ids": [1, 70000, 0xFFFFFFFF]})
    add("warning, active", WARNING, RELAY, JP, 1, 4, counter(7, 4), flags=ACK_REQ | URGENT | RELAY_TIME,
        message={"warning_id": 1, "track_id": 17, "status": 0, "nation": JP, "impact_us": T0 + 600_000_000,
                 "lat_e7": 403500000, "lon_e7": 1418300000, "semi_major_m": 21000, "semi_minor_m": 6500,
                 "orient_cdeg": 11250, "kind": 0, "class_guess": 0, "azimuth_cdeg": 7720, "sigma_t_ds": 31})
    add("warning, retransmitted update to broadcast", WARNING, RELAY, BROADCAST, 2, 5, counter(7, 5),
        flags=ACK_REQ | URGENT | RETRANSMIT | RELAY_TIME,
        message={"warning_id": 2, "track_id": 18, "status": 1, "nation": 0xFF, "impact_us": T0 + 900_000_000,
                 "lat_e7": -335000000, "lon_e7": -1799999999, "semi_major_m": 4000, "semi_minor_m": 4000,
                 "orient_cdeg": 35999, "kind": 2, "class_guess": 0, "azimuth_cdeg": 35999, "sigma_t_ds": 0xFFFF})
    add("launch alert", WARNING, RELAY, KR, 2, 6, counter(7, 20), flags=ACK_REQ | URGENT | RELAY_TIME,
        message={"warning_id": 3, "track_id": 19, "status": 0, "nation": KR, "impact_us": T0 - 25_000_000,
                 "lat_e7": 391700000, "lon_e7": 1274800000, "semi_major_m": 9000, "semi_minor_m": 4500,
                 "orient_cdeg": 7800, "kind": 3, "class_guess": 1, "azimuth_cdeg": 7800, "sigma_t_ds": 25})
    add("warning acknowledgement", WARNING_ACK, KR, RELAY, 2, 3, counter(2, 7),
        message={"warning_id": 2})
    add("stats", STATS, JP, RELAY, 1, 4, counter(1, 4),
        message={"counters": [[1, 1000], [5, 3], [8, 0], [14, 0xFFFFFFFF], [200, 9]]})
    add("delivery", DELIVERY, KR, RELAY, 2, 4, counter(2, 8),
        message={"rx_local_us": 5_000_123, "rx_relay_us": T0 + 42, "track_id": 17,
                 "reports": [[JP, 77], [KR, 0xFFFFFFFF]]})
    add("delivery before time sync, no reports", DELIVERY, JP, RELAY, 1, 5, counter(1, 5),
        message={"rx_local_us": 1, "rx_relay_us": 0, "track_id": 0, "reports": []})

    # Sizes and contents that stress the framing.
    add("empty payload", TRACK_REPORT, JP, RELAY, 1, 6, counter(1, 6), payload=b"")
    add("maximum payload, random bytes", PICTURE, RELAY, KR, 2, 2, counter(7, 6),
        payload=bytes(rng.randrange(256) for _ in range(1024)))
    add("maximum payload, all 0x00", TRACK_REPORT, KR, RELAY, 2, 5, counter(2, 9), payload=bytes(1024))
    add("maximum payload, all 0xFF", PICTURE, RELAY, JP, 1, 5, counter(7, 7), payload=b"\xff" * 1024)
    add("32 bytes of 0x00", TRACK_REPORT, JP, RELAY, 1, 7, counter(1, 7), payload=bytes(32))
    add("200 bytes of 0xFF", TRACK_REPORT, KR, RELAY, 2, 6, counter(2, 10), payload=b"\xff" * 200)
    # 254 non-zero bytes end the frame exactly on a full COBS block (no trailing 0x01).
    # The header's last zero is its length high byte, so 242 payload bytes of
    # 0xFF plus a zero-free tag and CRC make a final run of exactly 254.
    seq = next(s for s in range(8, 1000)
               if 0 not in frame(KEYS[1][2], 1, 0, JP, RELAY, TRACK_REPORT, 1, s, counter(1, 8), b"\xff" * 242)[16:])
    add("frame ending on a full COBS block", TRACK_REPORT, JP, RELAY, 1, seq, counter(1, 8),
        payload=b"\xff" * 242)
    add("seq at 65535, counter at 2^48-1", HEARTBEAT, KR, RELAY, 2, 0xFFFF, (1 << 48) - 1,
        message={"time_us": 0, "tx_frames": 0, "rx_frames": 0, "rx_errors": 0})
    add("counter 0", HEARTBEAT, JP, RELAY, 1, 0, 0,
        message={"time_us": 0xFFFFFFFFFFFFFFFF, "tx_frames": 0xFFFFFFFF, "rx_frames": 0, "rx_errors": 0})

    # Every flag combination (reserved bits zero).
    for flags in range(16):
        add("flags 0x%02x" % flags, WARNING_ACK, JP, RELAY, 1, 100 + flags, counter(3, flags),
            flags=flags, message={"warning_id": 1000 + flags})
    return out


def invalid() -> List[Dict[str, Any]]:
    """Serial chunks a deframer must reject, one counter each (§3.3 cases 1-7)."""
    key = KEYS[1][2]
    good = frame(key, 1, 0, JP, RELAY, HEARTBEAT, 1, 9, counter(1, 9), bytes(20))
    bad_crc = good[:-1] + bytes([good[-1] ^ 0x01])

    def recrc(raw: bytes) -> bytes:
        return raw[:-4] + struct.pack("<I", zlib.crc32(raw[:-4]))

    cases = [
        ("oversize: 1058 non-zero bytes before the delimiter", b"\x07" * 1058, "oversize"),
        ("COBS code points past the chunk end", b"\x05\x01\x02", "malformed"),
        ("COBS decodes to 27 bytes (truncated)", cobs(good[:27]), "malformed"),
        ("serial chunk cut inside a COBS block", cobs(good)[:-5], "malformed"),
        ("frame missing its last 5 bytes (COBS intact)", cobs(good[:-5]), "crc_error"),
        ("CRC mismatch", cobs(bad_crc), "crc_error"),
        ("version 2", cobs(frame(key, 2, 0, JP, RELAY, HEARTBEAT, 1, 9, counter(1, 9), bytes(20))), "malformed"),
        ("reserved flag bit 0x10", cobs(frame(key, 1, 0x10, JP, RELAY, HEARTBEAT, 1, 9, counter(1, 9), bytes(20))),
         "malformed"),
        ("length field 21 in a 48-byte frame",
         cobs(frame(key, 1, 0, JP, RELAY, HEARTBEAT, 1, 9, counter(1, 9), bytes(20), length=21)), "malformed"),
        ("1025 zero payload bytes: a 1053-byte frame in a 1054-byte chunk, length over 1024",
         cobs(frame(key, 1, 0, JP, RELAY, TRACK_REPORT, 1, 9, counter(1, 9), bytes(1025))), "malformed"),
        ("1025 non-zero payload bytes: the COBS chunk is 1058 bytes",
         cobs(frame(key, 1, 0, JP, RELAY, TRACK_REPORT, 1, 9, counter(1, 9), b"\x01" * 1025)), "oversize"),
        ("exactly 1057 non-zero bytes: not oversize, COBS runs past the end",
         b"\xff" * 1057, "malformed"),
        ("tag altered, CRC fixed: passes the deframer, fails the tag",
         cobs(recrc(good[:16 + 20] + bytes(8) + good[-4:])), "frame"),
    ]
    return [{"name": n, "serial": (c + b"\x00").hex(), "reason": r} for n, c, r in cases]


def document() -> str:
    doc = {
        "format": "trilink-wire-vectors/1",
        "protocol": 1,
        "generated_by": "tools/make_wire_vectors.py",
        "warning": "TEST-ONLY keys: never use them outside tests",
        "keys": [{"key_id": kid, "node": node, "name": name, "key": key.hex(), "test_only": True}
                 for kid, (node, name, key) in sorted(KEYS.items())],
        "frames": frames(),
        "invalid": invalid(),
    }
    return json.dumps(doc, indent=1, ensure_ascii=True) + "\n"


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="compare with the committed file instead of writing")
    p.add_argument("--out", type=Path, default=OUT, help="output path (default %(default)s)")
    args = p.parse_args(argv)
    text = document()
    if args.check:
        same = args.out.exists() and args.out.read_text() == text
        print("%s is %s" % (args.out, "up to date" if same else "STALE: run tools/make_wire_vectors.py"))
        return 0 if same else 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print("wrote %s (%d frames)" % (args.out, len(json.loads(text)["frames"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
