# rogue.py: a hostile process on a relay's UDP link: junk, forgeries, replays, wrong ids, a flood
"""Sends hostile datagrams to a relay's UDP link ports and prints, as one
JSON line, how many of each kind it sent and which relay counter each must
land in (PROTOCOL.md section 3.3), so a test can compare exactly.

    python tests/campaign/rogue.py PLAN.json      # prints {"sent": {...}, "expect": {...}}

PLAN (JSON): ``target`` ("host:port" of the victim link), ``other`` (another
link's port, for cross-link replays), ``victim`` (node id expected on the
target link), ``other_node`` (the node on the other link), ``stolen_key``
(hex: the other node's pair key, as if that board were compromised),
``stolen_key_id``, ``replay`` (hex raw frames the victim sent earlier,
already accepted by the relay), ``counts`` (kind -> number), ``flood_s``
(seconds the flood lasts), ``seed``.

Kinds: ``random`` (1-200 random bytes), ``oversize`` (1100-1600 bytes),
``truncated`` (a well-formed frame cut short), ``forged_key`` (src = victim,
signed with the stolen key under its own key id: auth_fail), ``forged_tag``
(src = victim under the victim's key id, tag made with the stolen key:
auth_fail), ``claim_other`` (a valid frame of the other node, sent on the
victim's link: wrong_link), ``claim_unknown`` (src = an unconfigured node:
wrong_link), ``replay`` (earlier frames of the victim: replay),
``replay_cross`` (the same, on the other link: wrong_link), ``flood``
(forged_tag frames as fast as the loop goes for ``flood_s``).
The kinds whose fate depends on the content (random, oversize, truncated)
are classified with the board's reference parser (``trilink_board.wire``).
"""
from __future__ import annotations

import json
import os
import random
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "boards"))
from trilink_board import wire  # noqa: E402

HEARTBEAT = struct.pack("<QIII", 0, 0, 0, 0)


def classify(raw: bytes, victim: int) -> str:
    """The counter a relay's UDP link + verifier puts ``raw`` in (no key checks: junk never has a valid tag)."""
    try:
        f = wire.parse(raw)
    except wire.WireError as e:
        return "crc_error" if e.reason == "crc_error" else "malformed"
    return "auth_fail" if f.src == victim else "wrong_link"


def main(argv: list) -> int:
    plan = json.loads(open(argv[0]).read())
    rng = random.Random(plan.get("seed", 1))
    host, port = plan["target"].rsplit(":", 1)
    target = (host, int(port))
    other = (host, int(plan["other"]))
    victim, other_node = plan["victim"], plan["other_node"]
    key = bytes.fromhex(plan["stolen_key"])
    kid = plan["stolen_key_id"]
    replays = [bytes.fromhex(h) for h in plan.get("replay", [])]
    counts = plan["counts"]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sent = {}
    expect = {}

    def send(kind: str, raw: bytes, reason: str, to=target) -> None:
        s.sendto(raw, to)
        sent[kind] = sent.get(kind, 0) + 1
        expect[reason] = expect.get(reason, 0) + 1

    # Counters far above anything a board uses: a forgery must fail on its tag, not on its counter.
    ctr = [(1 << 47) + rng.randrange(1 << 20)]

    def frame(src: int, key_id: int, k: bytes) -> bytes:
        ctr[0] += 1
        return wire.pack(k, key_id, src, 0, wire.HEARTBEAT, rng.randrange(65536), ctr[0], HEARTBEAT)

    for kind in ("random", "oversize", "truncated", "forged_key", "forged_tag", "claim_other",
                 "claim_unknown", "replay", "replay_cross"):
        for i in range(counts.get(kind, 0)):
            if kind == "random":
                raw = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
                send(kind, raw, classify(raw, victim))
            elif kind == "oversize":
                raw = bytes(rng.randrange(256) for _ in range(rng.randrange(1100, 1600)))
                send(kind, raw, classify(raw, victim))
            elif kind == "truncated":
                full = frame(victim, kid, key)
                raw = full[:rng.randrange(1, len(full))]
                send(kind, raw, classify(raw, victim))
            elif kind == "forged_key":
                send(kind, frame(victim, kid, key), "auth_fail")
            elif kind == "forged_tag":
                send(kind, frame(victim, victim, key), "auth_fail")
            elif kind == "claim_other":
                send(kind, frame(other_node, kid, key), "wrong_link")
            elif kind == "claim_unknown":
                send(kind, frame(77 + i % 100, 77 + i % 100, key), "wrong_link")
            elif kind == "replay" and replays:
                send(kind, replays[i % len(replays)], "replay")
            elif kind == "replay_cross" and replays:
                send(kind, replays[i % len(replays)], "wrong_link", other)
            time.sleep(0.001)   # a steady trickle: these must be counted exactly, not lost in a socket buffer
    n = counts.get("flood", 0)
    if n:
        t_end = time.monotonic() + plan.get("flood_s", 2.0)
        gap = plan.get("flood_s", 2.0) / n
        for i in range(n):
            send("flood", frame(victim, victim, key), "auth_fail")
            wait = t_end - (n - i - 1) * gap - time.monotonic()
            if wait > 0:
                time.sleep(wait)
    print(json.dumps({"sent": sent, "expect": expect}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
