"""Sessions: verification, replay marks and the relay epoch persisted across
restarts, corrective HELLO, heartbeats, link down after 3.5 s, time sync."""
import json

import pytest

from edge_boards import JP_ORIGIN, TEST_KEYS, BoardStandIn
from trilink_board import messages, wire
from trilink_edge.session import NodeInfo, RelayState, Sessions, StateFileError, relay_now_ns
from trilink_native import binding


def make(tmp_path, emit=None, **kw):
    return Sessions(0, [NodeInfo(1, "jp", 1, "jp")], {1: TEST_KEYS[1]}, str(tmp_path / "st.json"),
                    emit=emit, **kw)


def test_accept_and_reject_reasons(tmp_path):
    s = make(tmp_path)
    b = BoardStandIn(1, "jp", 1, TEST_KEYS[1], JP_ORIGIN)
    raw = b.heartbeat()
    assert s.accept("jp", raw, 1).mtype == wire.HEARTBEAT
    assert s.accept("jp", raw, 2) is None                      # same counter again
    assert s.counters()["jp"]["replay"] == 1
    bad = bytearray(b.heartbeat()); bad[20] ^= 1; bad[-4:] = binding.crc32(bytes(bad[:-4])).to_bytes(4, "little")
    assert s.accept("jp", bytes(bad), 3) is None
    assert s.counters()["jp"]["auth_fail"] == 1
    assert s.accept("kr", b.heartbeat(), 4) is None            # jp's frame on another link
    assert s.counters()["jp"]["wrong_link"] == 1


def test_marks_and_epoch_survive_restart(tmp_path):
    s = make(tmp_path)
    b = BoardStandIn(1, "jp", 1, TEST_KEYS[1], JP_ORIGIN, epoch=5)
    old = b.heartbeat()
    assert s.accept("jp", old, 1) is not None
    e1 = s.epoch
    c1 = s.next_counter()
    s.save()
    s2 = make(tmp_path)
    assert s2.epoch == e1 + 1 and s2.next_counter() > c1      # the relay's counters keep rising
    assert s2.accept("jp", old, 2) is None                      # an old capture is refused after restart
    assert s2.min_epoch(1) == 6
    doc = json.loads((tmp_path / "st.json").read_text())
    assert doc["marks"]["1"] == 5 << 28


def test_state_file_errors_name_the_file(tmp_path):
    p = tmp_path / "st.json"
    p.write_text("{not json")
    with pytest.raises(StateFileError, match="st.json"):
        make(tmp_path)
    p.write_text(json.dumps({"format": "trilink-relay-state/1", "epoch": 1, "marks": {"300": 1}}))
    with pytest.raises(StateFileError, match="marks.300"):
        make(tmp_path)


def test_reflashed_board_gets_min_epoch_hello_at_most_once_a_second(tmp_path):
    sent = []
    s = make(tmp_path, emit=lambda *a: sent.append(a))
    assert s.accept("jp", BoardStandIn(1, "jp", 1, TEST_KEYS[1], JP_ORIGIN, epoch=9).heartbeat(), 0)
    b = BoardStandIn(1, "jp", 1, TEST_KEYS[1], JP_ORIGIN, epoch=2)   # lost its stored epoch
    for i in range(10):
        assert s.accept("jp", b.heartbeat(), i * 10_000_000) is None   # 10 replays in 0.1 s
    hellos = [a for a in sent if a[1] == wire.HELLO]
    assert len(hellos) == 1
    assert messages.decode(wire.HELLO, hellos[0][2])["min_epoch"] == 10


def test_heartbeat_and_link_down(tmp_path):
    sent, links = [], []
    s = make(tmp_path, emit=lambda *a: sent.append(a), on_link=lambda n, up: links.append((n, up)))
    b = BoardStandIn(1, "jp", 1, TEST_KEYS[1], JP_ORIGIN)
    t = 10_000_000_000
    s.accept("jp", b.heartbeat(), t)
    s.tick(t + 1_000_000_000)
    s.tick(t + 1_500_000_000)
    assert sum(1 for a in sent if a[1] == wire.HEARTBEAT) == 1
    s.tick(t + 3_400_000_000)
    assert links == [(1, True)]
    s.tick(t + 3_600_000_000)
    assert links == [(1, True), (1, False)]


def test_time_sync_response_stamps_t3_when_packed(tmp_path):
    sent = []
    s = make(tmp_path, emit=lambda *a: sent.append(a))
    b = BoardStandIn(1, "jp", 1, TEST_KEYS[1], JP_ORIGIN)
    t2 = relay_now_ns()
    s.accept("jp", b._pack(wire.TIME_SYNC_REQ, messages.encode(wire.TIME_SYNC_REQ, {"req_id": 4, "t1_us": 77})), t2)
    (node, mtype, build, flags), = [a for a in sent if a[1] == wire.TIME_SYNC_RESP]
    assert flags & wire.RELAY_TIME
    resp = messages.decode(wire.TIME_SYNC_RESP, build())
    assert resp["req_id"] == 4 and resp["t1_us"] == 77 and resp["t2_us"] == t2 // 1000
    assert resp["t3_us"] >= resp["t2_us"]
    raw = s.pack(1, mtype, build(), flags)
    assert b.receive(raw).mtype == wire.TIME_SYNC_RESP         # the board accepts the relay's frame
