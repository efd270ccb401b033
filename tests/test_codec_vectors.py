"""Track codec vectors (tests/vectors/codec_v2.json): the C kernel, the board
codec under CPython and the board codec under the real MicroPython unix port
all reproduce every payload byte, and decode every payload to the same
values. The helpers here turn a vector batch into a TrackBatch or into
board-codec items; other codec tests import them."""
from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
VECTORS = REPO / "tests" / "vectors" / "codec_v2.json"
sys.path.insert(0, str(REPO / "boards"))
from trilink_board import codec  # noqa: E402
from trilink_native import binding as B  # noqa: E402


def load_vectors() -> list:
    with open(VECTORS) as fh:
        return json.load(fh)["vectors"]


def f64(h: str) -> float:
    return struct.unpack("<d", bytes.fromhex(h))[0]


def to_update(r: dict) -> codec.Update:
    imp = r["impact"]
    if imp is not None:
        imp = (f64(imp[0]), f64(imp[1]), imp[2], f64(imp[3]), f64(imp[4]), f64(imp[5]))
    return codec.Update(r["tid"], r["t_us"], [f64(h) for h in r["x"]], [f64(h) for h in r["P"]],
                        r["flags"], r["nations"], r["report_id"], [tuple(s) for s in r["sources"]], imp)


def py_items(b: dict) -> list:
    prec = codec.Precision(b["pos_mm"], b["vel_mm"])
    items = []
    for r in b["records"]:
        if r["rtype"] == codec.DROP:
            q = codec.Rec()
            q.tid, q.t_us, q.report_id = r["tid"], r["t_us"], r["report_id"]
        else:
            q = codec.quantise(to_update(r), prec)
        items.append((r["rtype"], q, r["send"]))
    return items


def track_batch(b: dict) -> B.TrackBatch:
    n = len(b["records"])
    tb = B.TrackBatch.empty(n)
    for i, r in enumerate(b["records"]):
        tb.rtype[i], tb.send[i], tb.tid[i], tb.t_us[i] = r["rtype"], r["send"], r["tid"], r["t_us"]
        tb.x[i] = [f64(h) for h in r["x"]]
        tb.P[i] = np.array([f64(h) for h in r["P"]]).reshape(6, 6)
        tb.flags[i], tb.nations[i], tb.report_id[i] = r["flags"], r["nations"], r["report_id"]
        tb.n_src[i] = len(r["sources"])
        for k, (node, rid) in enumerate(r["sources"]):
            tb.src_node[i, k], tb.src_rid[i, k] = node, rid
        if r["impact"] is not None:
            imp = r["impact"]
            tb.has_impact[i] = 1
            tb.impact[i] = [f64(imp[0]), f64(imp[1]), f64(imp[3]), f64(imp[4]), f64(imp[5])]
            tb.impact_t_us[i] = imp[2]
    return tb


VECS = load_vectors()


def test_vectors_cover_the_format():
    kinds = {(b["kind"], r["rtype"], r["send"]) for v in VECS for b in v["batches"] for r in b["records"]}
    for rt in (codec.KEY, codec.DELTA, codec.DROP):
        assert any(k[1] == rt for k in kinds)
    assert {k[2] for k in kinds if k[1] == codec.DELTA} >= set(range(8))
    assert sum(len(b["records"]) for v in VECS for b in v["batches"]) >= 140


def test_vector_file_is_what_the_generator_makes():
    out = subprocess.run([sys.executable, str(REPO / "tools" / "make_codec_vectors.py"), "--check"])
    assert out.returncode == 0, "tests/vectors/codec_v2.json is stale: run tools/make_codec_vectors.py"


@pytest.mark.parametrize("vec", VECS, ids=[v["name"] for v in VECS])
def test_board_codec_cpython_reproduces(vec):
    held: dict = {}
    for b in vec["batches"]:
        p = codec.encode(b["kind"], codec.Precision(b["pos_mm"], b["vel_mm"]), py_items(b),
                         base_us=b["base_us"], held=held)
        assert p.hex() == b["payload"]


@pytest.mark.parametrize("vec", VECS, ids=[v["name"] for v in VECS])
def test_c_reproduces_and_decodes_like_python(vec):
    held = B.CodecTable(64)
    rx_c = B.CodecTable(64)
    rx_py: dict = {}
    for b in vec["batches"]:
        p = B.codec_encode(b["kind"], track_batch(b), b["pos_mm"], b["vel_mm"], b["base_us"], held)
        assert p.hex() == b["payload"]
        hdr, got = B.codec_decode(p, rx_c)
        ref = codec.decode(p, rx_py)
        assert hdr["count"] == len(ref.items) == got.n
        for i, (rtype, status, r) in enumerate(ref.items):
            assert (got.rtype[i], got.status[i], got.tid[i], got.t_us[i]) == (rtype, status, r.tid, r.t_us)
            if rtype == codec.DROP:
                continue
            # bit-identical dequantisation and covariance reconstruction
            assert got.x[i].tolist() == r.state(ref.prec)
            assert got.P[i].reshape(36).tolist() == r.cov()
            assert (got.flags[i], got.nations[i], got.send[i]) == (r.flags, r.nations, r.sent)
            if ref.kind == codec.REPORT:
                assert got.report_id[i] == r.report_id
            else:
                n = got.n_src[i]
                assert list(zip(got.src_node[i, :n].tolist(), got.src_rid[i, :n].tolist())) == r.sources
                imp = r.impact(ref.prec)
                assert bool(got.has_impact[i]) == (imp is not None)
                if imp is not None:
                    assert got.impact[i].tolist() == [imp[0], imp[1], imp[3], imp[4], imp[5]]
                    assert got.impact_t_us[i] == imp[2]
    assert len(rx_c) == len(rx_py)


MPY_SCRIPT = r"""
import sys, json, struct
from trilink_board import codec

def f64(h):
    return struct.unpack("<d", bytes.fromhex(h))[0]

def upd(r):
    imp = r["impact"]
    if imp is not None:
        imp = (f64(imp[0]), f64(imp[1]), imp[2], f64(imp[3]), f64(imp[4]), f64(imp[5]))
    return codec.Update(r["tid"], r["t_us"], [f64(h) for h in r["x"]], [f64(h) for h in r["P"]],
                        r["flags"], r["nations"], r["report_id"], [tuple(s) for s in r["sources"]], imp)

held = {}
rx = {}
while True:
    line = sys.stdin.readline()
    if not line:
        break
    b = json.loads(line)
    line = None
    if b["first"]:
        held = {}
        rx = {}
    if True:
        prec = codec.Precision(b["pos_mm"], b["vel_mm"])
        items = []
        for r in b["records"]:
            if r["rtype"] == codec.DROP:
                q = codec.Rec()
                q.tid = r["tid"]
                q.t_us = r["t_us"]
                q.report_id = r["report_id"]
            else:
                q = codec.quantise(upd(r), prec)
            items.append((r["rtype"], q, r["send"]))
        p = codec.encode(b["kind"], prec, items, b["base_us"], held)
        d = codec.decode(bytes.fromhex(b["payload"]), rx)
        out = []
        for rtype, status, r in d.items:
            out.append([rtype, status, r.tid, r.t_us, r.pq, r.vq, r.sig, r.cor, r.flags, r.nations,
                        r.report_id, r.sources, r.imp, [struct.pack("<d", c).hex() for c in r.cov()]])
        b["records"] = None
        print(b["name"], "ok" if p.hex() == b["payload"] else "BAD", repr(out).replace("(", "[").replace(")", "]"))
"""


def _py_summary(vec) -> list:
    lines = []
    held: dict = {}
    rx: dict = {}
    for b in vec["batches"]:
        p = codec.encode(b["kind"], codec.Precision(b["pos_mm"], b["vel_mm"]), py_items(b), b["base_us"], held)
        d = codec.decode(bytes.fromhex(b["payload"]), rx)
        out = [[rtype, status, r.tid, r.t_us, r.pq, r.vq, r.sig, r.cor, r.flags, r.nations, r.report_id,
                [list(s) for s in r.sources], r.imp, [struct.pack("<d", c).hex() for c in r.cov()]]
               for rtype, status, r in d.items]
        lines.append("%s %s %s" % (vec["name"], "ok" if p.hex() == b["payload"] else "BAD", repr(out)))
    return lines


def test_board_codec_micropython_reproduces(micropython):
    # one batch per line: a RP2040-sized heap never holds the whole file
    text = "".join(json.dumps(dict(b, name=v["name"], first=i == 0)) + "\n"
                   for v in VECS for i, b in enumerate(v["batches"]))
    # 1M heap: the hex-float JSON of a 17-record batch is the test's, not the
    # board's, load (test_codec_dr.py runs the board codec in 192K)
    got = micropython.run(MPY_SCRIPT, input=text.encode(), heapsize="1M").splitlines()
    want = [line for v in VECS for line in _py_summary(v)]
    assert len(got) == len(want) == sum(len(v["batches"]) for v in VECS)
    for g, w in zip(got, want):
        assert g.split()[1] == "ok", g[:80]
        assert g == w   # decoded codes and all 36 covariance entries equal to the last bit
