"""Sessions: verification, the challenge that makes every restart safe
against replays (PROTOCOL 2.2), the relay epoch and the epochs seen
persisted, min_epoch moved only by a board's fresh answer, heartbeats,
link down after 3.5 s, time sync."""
import json
import logging
import os
import shutil

import pytest

from edge_boards import JP_ORIGIN, TEST_KEYS, BoardStandIn
from trilink_board import messages, wire
from trilink_edge.session import NodeInfo, RelayState, Sessions, StateFileError, relay_now_ns
from trilink_native import binding


def make(tmp_path, emit=None, state="st.json", **kw):
    return Sessions(0, [NodeInfo(1, "jp", 1, "jp")], {1: TEST_KEYS[1]}, str(tmp_path / state),
                    emit=emit, **kw)


def deliver(s, b, sent, t=None):
    """Write what the sessions emitted for b.node to the board stand-in, and
    give the relay the board's answers (to challenges); returns how many."""
    n = 0
    while sent:
        node, mtype, payload, flags = sent.pop(0)
        if node != b.node:
            continue
        f = b.receive(s.pack(node, mtype, payload() if callable(payload) else payload, flags))
        ans = b.answer(f)
        if ans is not None:
            n += 1
            assert s.accept("jp", ans, relay_now_ns() if t is None else t) is not None
    return n


def verified(tmp_path, b, **kw):
    sent = []
    s = make(tmp_path, emit=lambda *a: sent.append(a), **kw)
    s.start()
    assert deliver(s, b, sent) == 1
    return s, sent


def test_accept_and_reject_reasons(tmp_path):
    b = BoardStandIn(1, "jp", 1, TEST_KEYS[1], JP_ORIGIN)
    s, _ = verified(tmp_path, b)
    raw = b.heartbeat()
    t = relay_now_ns()
    assert s.accept("jp", raw, t).mtype == wire.HEARTBEAT
    assert s.accept("jp", raw, t + 1) is None                  # same counter again
    assert s.counters()["jp"]["replay"] == 1
    bad = bytearray(b.heartbeat()); bad[20] ^= 1; bad[-4:] = binding.crc32(bytes(bad[:-4])).to_bytes(4, "little")
    assert s.accept("jp", bytes(bad), t + 2) is None
    assert s.accept("kr", b.heartbeat(), t + 3) is None        # jp's frame on another link
    # Unauthenticated rejections are the link's, never the node's the frame claims.
    assert s.link_errors["jp"]["auth_fail"] == 1 and s.link_errors["kr"]["wrong_link"] == 1
    assert s.counters()["jp"]["auth_fail"] == 0 and s.counters()["jp"]["wrong_link"] == 0


def test_fresh_relay_takes_a_board_only_after_its_answer(tmp_path, caplog):
    sent = []
    b = BoardStandIn(1, "jp", 1, TEST_KEYS[1], JP_ORIGIN, epoch=4)
    old = [b.heartbeat() for _ in range(3)]                    # captured before the relay started
    with caplog.at_level(logging.WARNING, logger="trilink_edge.session"):
        s = make(tmp_path, emit=lambda *a: sent.append(a))
    assert [r for r in caplog.records if "none yet" in r.getMessage()]   # one line: no state file
    t = relay_now_ns()
    for i, raw in enumerate(old):
        assert s.accept("jp", raw, t + i) is None              # no answer yet: nothing is taken
    assert s.counters()["jp"]["unverified"] == 3 and s.counters()["jp"]["replay"] == 0
    challenges = [a for a in sent if a[1] == wire.HELLO and "nonce" in messages.decode(wire.HELLO, a[2])]
    assert len(challenges) == 1                                # one a second, however many frames
    assert deliver(s, b, sent) == 1                            # the board answers; that is the mark
    for raw in old:
        assert s.accept("jp", raw, relay_now_ns()) is None     # the captures stay refused
    assert s.accept("jp", b.heartbeat(), relay_now_ns()) is not None
    assert json.loads((tmp_path / "st.json").read_text())["seen"] == {"1": 4}


@pytest.mark.parametrize("how", ["clean", "kill", "deleted"])
def test_no_capture_is_accepted_after_any_restart(tmp_path, how):
    b = BoardStandIn(1, "jp", 1, TEST_KEYS[1], JP_ORIGIN, epoch=5)
    s, _ = verified(tmp_path, b)
    capture = [b.heartbeat() for _ in range(40)]
    for raw in capture:
        assert s.accept("jp", raw, relay_now_ns()) is not None
    e1, c1 = s.epoch, s.next_counter()
    # Nothing is written at a stop: a clean stop and kill -9 leave the same file.
    if how == "deleted":
        os.unlink(tmp_path / "st.json")
        # Its epoch lost, the relay counts from epoch 1 again (a board that kept its mark of the
        # relay's counter makes it move on: the test below); this one rebooted.
        b = BoardStandIn(1, "jp", 1, TEST_KEYS[1], JP_ORIGIN, epoch=6)
    sent = []
    s2 = make(tmp_path, emit=lambda *a: sent.append(a))
    if how != "deleted":
        assert s2.epoch == e1 + 1 and s2.next_counter() > c1   # the relay's counters keep rising
    s2.start()
    for raw in capture:
        assert s2.accept("jp", raw, relay_now_ns()) is None    # before the answer
    assert deliver(s2, b, sent) == 1
    for raw in capture:
        assert s2.accept("jp", raw, relay_now_ns()) is None    # and after it
    assert s2.counters()["jp"]["unverified"] == 40 and s2.counters()["jp"]["replay"] == 40
    assert b.epoch == (6 if how == "deleted" else 5)         # the board never had to move


def test_relay_that_lost_its_state_moves_past_the_boards_mark(tmp_path, caplog):
    # A board that kept its mark of the relay's counter refuses a relay that lost its
    # state file (epoch 1 again); it answers the refused challenge with min_epoch above
    # that mark (PROTOCOL 2.2), and the relay moves its epoch there, written first.
    b = BoardStandIn(1, "jp", 1, TEST_KEYS[1], JP_ORIGIN, epoch=5)
    s, sent = verified(tmp_path, b)
    for _ in range(3):                                     # the board takes relay epoch 1 frames
        b.receive(s.pack(1, wire.HEARTBEAT, bytes(20)))
    capture = [b.heartbeat() for _ in range(10)]
    for raw in capture:
        s.accept("jp", raw, relay_now_ns())
    os.unlink(tmp_path / "st.json")
    sent = []
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="trilink_edge.session"):
        s2 = make(tmp_path, emit=lambda *a: sent.append(a))
        assert s2.epoch == 1
        s2.start()
        node, mtype, payload, flags = sent.pop(0)
        challenge = s2.pack(node, mtype, payload, flags)
        with pytest.raises(wire.WireError, match="replay"):
            b.receive(challenge)                           # below the board's mark
        nonce = messages.decode(wire.HELLO, payload)["nonce"]
        want = (b.ring.marks[1] >> 28) + 1
        answer = b._pack(wire.HELLO, messages.encode(wire.HELLO, {
            "role": 0, "proto": 1, "max_payload": 1024, "epoch": b.epoch, "min_epoch": want, "name": "jp",
            "nonce": nonce}))
        assert s2.accept("jp", answer, relay_now_ns()) is not None
    assert want == 2 and s2.epoch == 2
    assert json.loads((tmp_path / "st.json").read_text())["epoch"] == 2   # written before its frames
    node, mtype, payload, flags = sent.pop(0)
    assert b.receive(s2.pack(node, mtype, payload, flags)).mtype == wire.HELLO   # taken again
    assert len([r for r in caplog.records if "none yet" in r.getMessage()]) == 1
    assert len([r for r in caplog.records if "relay counter epoch 1 -> 2" in r.getMessage()]) == 1
    for raw in capture:
        assert s2.accept("jp", raw, relay_now_ns()) is None   # old captures stay refused
    # The answer replayed to a later relay moves nothing: its nonce is not asked there.
    sent = []
    s3 = make(tmp_path, emit=lambda *a: sent.append(a))
    s3.start()
    assert s3.epoch == 3 and s3.accept("jp", answer, relay_now_ns()) is None and s3.epoch == 3


def test_state_file_errors_name_the_file(tmp_path):
    p = tmp_path / "st.json"
    p.write_text("{not json")
    with pytest.raises(StateFileError, match="st.json"):
        make(tmp_path)
    p.write_text(json.dumps({"format": "trilink-relay-state/2", "epoch": 1, "seen": {"300": 1}}))
    with pytest.raises(StateFileError, match="seen.300"):
        make(tmp_path)
    p.write_text(json.dumps({"format": "trilink-relay-state/1", "epoch": 3, "marks": {"1": 7 << 28}}))
    assert RelayState.load(str(p)).seen == {1: 7}              # the old format: its marks' epochs were seen


def test_temp_files_of_a_killed_save_are_removed_and_state_is_0600(tmp_path):
    (tmp_path / ".relay-state-abc123").write_text("half")
    make(tmp_path)
    assert not (tmp_path / ".relay-state-abc123").exists()
    assert os.stat(tmp_path / "st.json").st_mode & 0o777 == 0o600


def test_state_save_fsyncs_the_file_then_the_folder_after_the_rename(tmp_path, monkeypatch):
    import stat
    calls = []
    real = os.fsync

    def watch(fd):   # the real fsync, noting what it was given and whether the rename happened
        calls.append((stat.S_ISDIR(os.fstat(fd).st_mode), (tmp_path / "st.json").exists()))
        return real(fd)
    monkeypatch.setattr(os, "fsync", watch)
    make(tmp_path)                                   # a start writes the new relay epoch
    assert calls == [(False, False), (True, True)]   # the temp file, then the folder holding the rename


def test_reflashed_board_is_told_min_epoch_after_its_answer(tmp_path):
    b9 = BoardStandIn(1, "jp", 1, TEST_KEYS[1], JP_ORIGIN, epoch=9)
    s, sent = verified(tmp_path, b9)
    b = BoardStandIn(1, "jp", 1, TEST_KEYS[1], JP_ORIGIN, epoch=2)   # lost its stored epoch
    t = relay_now_ns() + 2_000_000_000
    for i in range(10):
        assert s.accept("jp", b.heartbeat(), t + i * 10_000_000) is None   # 10 refused in 0.1 s
    hellos = [messages.decode(wire.HELLO, a[2]) for a in sent if a[1] == wire.HELLO]
    assert len(hellos) == 1 and hellos[0]["nonce"] and hellos[0]["min_epoch"] == 0   # a question, not an order
    f = b.receive(s.pack(1, wire.HELLO, sent.pop()[2]))
    assert s.accept("jp", b.answer(f), t + 200_000_000) is None     # the answer: epoch 2, behind 9
    order = messages.decode(wire.HELLO, sent[-1][2])
    assert order["min_epoch"] == 10 and order["nonce"]
    assert deliver(s, b, sent, t + 300_000_000) == 1               # the board moves to 10 and answers
    assert b.epoch == 10
    assert s.accept("jp", b.heartbeat(), t + 400_000_000) is not None
    assert s.min_epoch(1) == 0


def test_replays_never_move_min_epoch_nor_write_state(tmp_path):
    b = BoardStandIn(1, "jp", 1, TEST_KEYS[1], JP_ORIGIN, epoch=3)
    s, sent = verified(tmp_path, b)
    captured = [b.heartbeat() for _ in range(5)]
    for raw in captured:
        s.accept("jp", raw, relay_now_ns())
    before = (tmp_path / "st.json").read_bytes(), os.stat(tmp_path / "st.json").st_mtime_ns
    t = relay_now_ns() + 2_000_000_000
    for i in range(60):                                            # 60 replays in 3 s
        assert s.accept("jp", captured[i % 5], t + i * 50_000_000) is None
    hellos = [messages.decode(wire.HELLO, a[2]) for a in sent if a[1] == wire.HELLO]
    assert 1 <= len(hellos) <= 4 and all(h["min_epoch"] == 0 for h in hellos)
    deliver(s, b, sent)                                            # the board answers: it is not behind
    assert b.epoch == 3 and s.min_epoch(1) == 0
    assert ((tmp_path / "st.json").read_bytes(), os.stat(tmp_path / "st.json").st_mtime_ns) == before


def test_board_reboot_is_taken_at_once_without_a_second_epoch(tmp_path):
    b = BoardStandIn(1, "jp", 1, TEST_KEYS[1], JP_ORIGIN, epoch=3)
    s, sent = verified(tmp_path, b)
    b2 = BoardStandIn(1, "jp", 1, TEST_KEYS[1], JP_ORIGIN, epoch=4)  # rebooted: epoch 3 + 1
    assert s.accept("jp", b2.hello(), relay_now_ns()) is not None
    assert json.loads((tmp_path / "st.json").read_text())["seen"] == {"1": 4}   # written before it was taken
    deliver(s, b2, sent)
    assert b2.epoch == 4                                           # the relay's answer asks for nothing


def test_new_epoch_dropped_while_state_cannot_be_written(tmp_path):
    (tmp_path / "d").mkdir()
    b = BoardStandIn(1, "jp", 1, TEST_KEYS[1], JP_ORIGIN, epoch=3)
    s, sent = verified(tmp_path, b, state="d/st.json")
    shutil.rmtree(tmp_path / "d")
    b2 = BoardStandIn(1, "jp", 1, TEST_KEYS[1], JP_ORIGIN, epoch=4)
    t = relay_now_ns()
    assert s.accept("jp", b2.hello(), t) is None
    assert s.counters()["jp"]["state_error"] == 1
    assert s.accept("jp", b.heartbeat(), t + 1) is not None         # the mark did not move
    (tmp_path / "d").mkdir()
    assert s.accept("jp", b2.heartbeat(), t + 2) is None            # within the backoff: not tried again
    assert s.accept("jp", b2.heartbeat(), t + 11_000_000_000) is not None


def test_heartbeat_and_link_down(tmp_path):
    links = []
    b = BoardStandIn(1, "jp", 1, TEST_KEYS[1], JP_ORIGIN)
    s, sent = verified(tmp_path, b, on_link=lambda n, up: links.append((n, up)))
    sent.clear()
    t = relay_now_ns() + 10_000_000_000
    s.accept("jp", b.heartbeat(), t)
    s.tick(t + 1_000_000_000)
    s.tick(t + 1_500_000_000)
    assert sum(1 for a in sent if a[1] == wire.HEARTBEAT) == 1
    s.tick(t + 3_400_000_000)
    assert links == [(1, True)]
    s.tick(t + 3_600_000_000)
    assert links == [(1, True), (1, False)]


def test_time_sync_response_stamps_t3_when_packed(tmp_path):
    b = BoardStandIn(1, "jp", 1, TEST_KEYS[1], JP_ORIGIN)
    s, sent = verified(tmp_path, b)
    t2 = relay_now_ns()
    s.accept("jp", b._pack(wire.TIME_SYNC_REQ, messages.encode(wire.TIME_SYNC_REQ, {"req_id": 4, "t1_us": 77})), t2)
    (node, mtype, build, flags), = [a for a in sent if a[1] == wire.TIME_SYNC_RESP]
    assert flags & wire.RELAY_TIME
    resp = messages.decode(wire.TIME_SYNC_RESP, build())
    assert resp["req_id"] == 4 and resp["t1_us"] == 77 and resp["t2_us"] == t2 // 1000
    assert resp["t3_us"] >= resp["t2_us"]
    raw = s.pack(1, mtype, build(), flags)
    assert b.receive(raw).mtype == wire.TIME_SYNC_RESP         # the board accepts the relay's frame


def test_datagram_window_takes_a_reordered_frame_once_and_no_duplicate(tmp_path):
    b = BoardStandIn(1, "jp", 1, TEST_KEYS[1], JP_ORIGIN)
    before = b.heartbeat()                    # made before the board answered the challenge
    s, _ = verified(tmp_path, b)
    s.set_window(1, 64)
    t = relay_now_ns()
    assert s.accept("jp", before, t) is None  # below the answer's mark: refused, window or not
    f = [b.heartbeat() for _ in range(70)]
    assert s.accept("jp", f[69], t) is not None
    assert s.accept("jp", f[68], t) is not None          # late by 1: taken once
    assert s.accept("jp", f[68], t) is None              # a duplicate: never twice
    assert s.accept("jp", f[6], t) is not None           # 63 behind the mark: within the window
    assert s.accept("jp", f[5], t) is None               # 64 behind: outside it
    assert s.counters()["jp"]["replay"] == 3


def test_heartbeat_rx_errors_holds_the_links_rejections_but_not_not_for_me(tmp_path):
    b = BoardStandIn(1, "jp", 1, TEST_KEYS[1], JP_ORIGIN)
    s, sent = verified(tmp_path, b)
    t = relay_now_ns()
    s.accept("jp", binding.pack_frame(bytes(32), 1, 1, 0, wire.HEARTBEAT, 0, 1 << 40, bytes(20)), t)  # bad tag
    s.accept("jp", wire.pack(TEST_KEYS[1], 1, 1, 9, wire.HEARTBEAT, 0, (1 << 28) + 500,
                             messages.encode(wire.HEARTBEAT, {"time_us": 0, "tx_frames": 0, "rx_frames": 0,
                                                              "rx_errors": 0})), t)               # for node 9
    s.transport_errors = lambda link: 3                                                            # e.g. CRC errors
    assert s.counters()["jp"]["not_for_me"] == 1
    assert messages.decode(wire.HEARTBEAT, s.heartbeat_payload(1))["rx_errors"] == 1 + 3


def test_hot_verifier_refuses_and_counts_as_the_keyring_and_ingests_only_what_is_accepted(tmp_path):
    # The relay's receive hot path (Pipeline.rx_verifier: verify and ingest a
    # TRACK_REPORT in one C call) against the keyring's own check, on the
    # same frames: a report, its replay, a forged tag, a damaged CRC, the
    # report on another board's link, one not addressed to the relay, a
    # reordered one within the datagram window, a new board epoch whose state
    # cannot be written (refused after its tag passed: state_error). Same
    # frames accepted, same counters and marks; the picture holds exactly the
    # records of the accepted reports, each once.
    from edge_boards import Missile
    from trilink_edge.destination import NodeGeo
    from trilink_edge.pipeline import Pipeline
    runs = {}
    for hot in (False, True):
        (tmp_path / str(hot)).mkdir()
        (tmp_path / str(hot) / "d").mkdir()
        sent = []
        s = Sessions(0, [NodeInfo(1, "jp", 1, "jp"), NodeInfo(2, "kr", 2, "kr")], {1: TEST_KEYS[1], 2: TEST_KEYS[2]},
                     str(tmp_path / str(hot) / "d" / "st.json"), emit=lambda *a: sent.append(a))
        p = Pipeline({1: NodeGeo(1, "jp", JP_ORIGIN), 2: NodeGeo(2, "kr", JP_ORIGIN)}, {1: {2}, 2: {1}})
        if hot:
            s.verify = p.rx_verifier(s.keyring, 0)
        s.set_window(1, 8)
        s.start()
        b = BoardStandIn(1, "jp", 1, TEST_KEYS[1], JP_ORIGIN, epoch=3)
        assert deliver(s, b, sent) == 1
        m = Missile()
        t = relay_now_ns()
        r = [b.report(m, 300.0 + k, relay_us=t // 1000 - 1000 + k) for k in range(5)]
        forged = bytearray(r[4])
        forged[20] ^= 1
        forged[-4:] = binding.crc32(bytes(forged[:-4])).to_bytes(4, "little")
        damaged = bytearray(r[4])
        damaged[20] ^= 1
        newer = binding.parse_frame(b.report(m, 320.0, relay_us=t // 1000 - 500)).payload
        other = binding.pack_frame(TEST_KEYS[1], 1, 1, 5, binding.MSG_TRACK_REPORT, 9,
                                   binding.parse_frame(r[4]).counter + 1, newer, binding.FLAG_RELAY_TIME)
        b4 = BoardStandIn(1, "jp", 1, TEST_KEYS[1], JP_ORIGIN, epoch=4)
        b4.report_id = 9000
        shutil.rmtree(tmp_path / str(hot) / "d")           # the new epoch cannot be persisted
        frames = [("jp", r[1]), ("jp", r[1]), ("jp", bytes(forged)), ("jp", bytes(damaged)), ("kr", r[2]),
                  ("jp", other), ("jp", r[3]), ("jp", r[2]), ("jp", r[2]), ("jp", b4.report(m, 310.0, t // 1000))]
        accepted = []
        for link, raw in frames:
            f = s.accept(link, raw, t)
            accepted.append(f is not None)
            if f is not None and f.mtype == binding.MSG_TRACK_REPORT:
                p.ingest(f.src, f, t)
        assert not (p.rx_frames is not None and p.rx_frames.take(f) is not None)   # nothing left over
        p.picture.associate(t / 1e9)
        fused = p.picture.fuse(t / 1e9)
        runs[hot] = (accepted, s.counters(), s.link_errors, s.keyring.counts, s.keyring.marks,
                     p.stats.reports_in, p.stats.records_in, fused["report"].tolist(), fused["fused_id"].tolist())
    assert runs[True] == runs[False]
    accepted, counters = runs[True][0], runs[True][1]
    assert accepted == [True, False, False, False, False, False, True, True, False, False]
    assert counters["jp"]["replay"] == 2 and counters["jp"]["not_for_me"] == 1 and counters["jp"]["state_error"] == 1
    assert runs[True][6] == 3 and runs[True][7][0][0] == b.sent_reports[3]   # 3 reports stored, r[3] the newest
