# session.py: per-node sessions of the relay: auth, replay marks, epoch, heartbeat, time sync
"""The relay's side of PROTOCOL.md sections 2.2, 3.3 (cases 8-14) and 4.1-4.3.

One ``Sessions`` object holds the relay's C keyring (``binding.Keyring``,
every board's pair key), one ``Session`` per configured board node, and the
``RelayState`` persisted in a state file. It turns raw frames that a link
received into accepted ``binding.Frame`` objects (or counted rejections),
answers the control messages itself (HELLO, HEARTBEAT, TIME_SYNC_REQ) and
packs every frame the relay sends, at the moment it is written, with the
next sequence number and authentication counter.

    >>> from trilink_native import binding
    >>> s = Sessions(relay_node=0, nodes=[NodeInfo(1, "jp", 1, "jp")],
    ...              keys={1: b"TEST-ONLY-KEY-jp-0000000000000001"[:32]}, state_path=None)
    >>> raw = binding.pack_frame(b"TEST-ONLY-KEY-jp-0000000000000001"[:32], 1, 1, 0,
    ...                          binding.MSG_HEARTBEAT, 0, 1 << 28, bytes(20))
    >>> s.accept("jp", raw, relay_now_ns()) is None        # a replay until jp answers a challenge
    True
    >>> s.go_offline()                                      # as when reading a capture: no challenge
    >>> s.accept("jp", raw, relay_now_ns()).mtype == binding.MSG_HEARTBEAT
    True

Relay timebase: ``relay_now_us() == time.monotonic_ns() // 1000`` (µs of
the host's monotonic clock, which never steps). Every ``*_us`` the relay
writes with ``RELAY_TIME`` (TIME_SYNC_RESP t2/t3, WARNING impact_us,
PICTURE times) is on it, and links stamp received frames with
``time.monotonic_ns()``, the same clock.

Relay counter: ``epoch << 28 | index`` like a board's (section 2.2), one
counter for all the relay's keys (strictly increasing per key is what the
boards need). The epoch is read from the state file at start, incremented
and written back before the first frame is sent, so a restarted relay's
counters are above every counter it sent before.

Replay protection that survives any restart (PROTOCOL.md 2.2): nothing the
relay persists says which counters it accepted. At start every key's mark
is the top of the counter space (``UNVERIFIED``): every frame is a
``replay`` until the board has answered the relay's challenge (a HELLO
carrying a random ``nonce``) with its own HELLO carrying that nonce; that
answer, necessarily made after the challenge, becomes the key's mark.
Every frame made before it has a lower counter, so no capture from before
any restart (clean, ``kill -9``, power loss, a deleted state file) is
accepted. The state file keeps the relay's epoch and, per key, the highest
board epoch ever accepted (``seen``, written before a frame of a higher
epoch is accepted): a board whose answer comes from a lower epoch (it lost
its stored epoch) is told ``min_epoch`` (section 4.1) and taken only from
that epoch on. A relay that lost its state file starts at epoch 1 again,
below the mark a board keeps of its counter: the board answers the
challenge it refused with ``min_epoch`` above that mark, and the relay
moves its own epoch there (written first) before its next frame.
"""
from __future__ import annotations

import logging
import os
import secrets
import struct
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional, Tuple

from trilink_native import binding
from trilink_board import messages as _msgs
from trilink_edge.relay_state import (  # noqa: F401 - RelayState and StateFileError are imported from here too
    EPOCH_MAX, EPOCH_SHIFT, RelayState, StateFileError)

INDEX_MAX = (1 << EPOCH_SHIFT) - 1
HEARTBEAT_NS = 1_000_000_000       # PROTOCOL 4.2: every 1 s
LINK_DOWN_NS = 3_500_000_000       # PROTOCOL 4.2: down after 3.5 s without an accepted frame
REPLAY_HELLO_NS = 1_000_000_000    # PROTOCOL 2.2: at most one corrective HELLO per second
REPLAY_HELLO_AFTER = 3             # replays in a row (valid tag) before the corrective HELLO
CHALLENGE_NS = 5_000_000_000       # PROTOCOL 2.2: an answer counts within 5 s of its challenge
CHALLENGES_KEPT = 4                # outstanding challenges per node (the latest ones)
SAVE_BACKOFF_FIRST_NS = 100_000_000
SAVE_BACKOFF_MAX_NS = 10_000_000_000
UNVERIFIED = binding.MAX_COUNTER   # the mark of a key that has not answered a challenge yet
REPLAY_WINDOW = 64                 # PROTOCOL 3.2: counters a datagram link may reorder by
RELAY_NAME = "relay"

log = logging.getLogger("trilink_edge.session")

# Message types the session answers itself; everything else goes to the pipeline.
CONTROL_TYPES = (binding.MSG_HELLO, binding.MSG_HEARTBEAT, binding.MSG_TIME_SYNC_REQ)
# Types a board may send the relay (others are unknown_type at the relay).
UPLINK_TYPES = (binding.MSG_HELLO, binding.MSG_HEARTBEAT, binding.MSG_TIME_SYNC_REQ,
                binding.MSG_TRACK_REPORT, binding.MSG_KEYFRAME_REQ, binding.MSG_WARNING_ACK,
                binding.MSG_STATS, binding.MSG_DELIVERY)


def relay_now_ns() -> int:
    """The relay clock in ns (``time.monotonic_ns``)."""
    return time.monotonic_ns()


def relay_now_us() -> int:
    """The relay timebase in µs: ``time.monotonic_ns() // 1000``."""
    return time.monotonic_ns() // 1000


@dataclass(frozen=True)
class NodeInfo:
    """A configured board: node id, name, key id and the link it is on."""

    node: int
    name: str
    key_id: int
    link: str


# Rejection counters a session keeps (PROTOCOL 3.3 names). A node's entry
# counts only authenticated frames (a valid tag): a frame that fails
# wrong_link or auth_fail proves nothing about its claimed sender and is
# counted on the link it arrived on (``Sessions.link_errors``).
ERROR_COUNTERS = ("crc_error", "malformed", "oversize", "auth_fail", "replay", "wrong_link",
                  "unknown_type", "not_for_me", "unverified", "state_error")
LINK_ERRORS = ("crc_error", "malformed", "oversize", "auth_fail", "wrong_link")


@dataclass
class Session:
    """One board as the relay sees it: link state, counters, clocks, challenges."""

    info: NodeInfo
    up: bool = False
    last_rx_ns: int = 0
    last_hb_tx_ns: int = 0
    seq: int = 0
    tx_frames: int = 0
    rx_frames: int = 0
    rx_errors: int = 0
    board_epoch: int = -1          # from the board's HELLO (-1: none seen)
    verified: bool = False         # answered a challenge in this run (its mark is real)
    required_epoch: int = 0        # HELLO min_epoch: > 0 once the board proved itself behind
    challenges: Dict[int, int] = field(default_factory=dict)   # nonce -> relay_now_ns() sent
    last_challenge_ns: int = -REPLAY_HELLO_NS
    replay_streak: int = 0
    up_events: int = 0
    down_events: int = 0
    errors: Dict[str, int] = field(default_factory=lambda: {k: 0 for k in ERROR_COUNTERS})

    @property
    def node(self) -> int:
        return self.info.node


# An outgoing control message: (node, mtype, payload or payload builder, flags).
Payload = bytes
Builder = Callable[[], bytes]
Emit = Callable[[int, int, "bytes | Builder", int], None]


class Sessions:
    """Every board's session, the relay's keyring and its persisted state.

    ``emit(node, mtype, payload, flags)`` is called for each control frame
    the sessions want sent (HELLO, HEARTBEAT, TIME_SYNC_RESP); ``payload``
    may be a zero-argument callable evaluated when the frame is written
    (TIME_SYNC_RESP stamps t3 then). ``on_link(node, up)`` reports link-up
    and link-down transitions. ``offline=True`` (reading a capture, where
    no challenge can be answered) accepts each key's first valid frame.
    """

    def __init__(self, relay_node: int, nodes: Iterable[NodeInfo], keys: Dict[int, bytes],
                 state_path: Optional[str], emit: Optional[Emit] = None,
                 on_link: Optional[Callable[[int, bool], None]] = None,
                 heartbeat_ns: int = HEARTBEAT_NS, down_ns: int = LINK_DOWN_NS, offline: bool = False) -> None:
        self.relay_node = relay_node
        self.sessions: Dict[int, Session] = {}
        self.by_link: Dict[str, Tuple[int, ...]] = {}
        self.by_key: Dict[int, Session] = {}
        for info in nodes:
            if info.node in self.sessions:
                raise ValueError(f"node {info.node} configured twice")
            if info.key_id not in keys:
                raise ValueError(f"node {info.name}: no key {info.key_id} in the key file")
            self.sessions[info.node] = Session(info)
            self.by_link[info.link] = self.by_link.get(info.link, ()) + (info.node,)
        self.link_errors: Dict[str, Dict[str, int]] = {
            link: dict.fromkeys(LINK_ERRORS, 0) for link in self.by_link}
        self.keyring = binding.Keyring(relay_node, ())
        self._keys: Dict[int, binding.HmacKey] = {}
        self._key_bytes = dict(keys)
        self._windows: Dict[int, int] = {}
        self.offline = False
        for sess in self.sessions.values():
            kid = sess.info.key_id
            self.keyring.add(kid, sess.node, keys[kid])
            self._keys[kid] = binding.HmacKey(keys[kid])
            self.by_key[kid] = sess
            self.keyring.set_mark(kid, UNVERIFIED)
        if offline:
            self.go_offline()
        self.state_path = state_path
        if state_path is not None:
            if RelayState.clean_temps(state_path):
                log.info("state file %s: removed the temporary files of an interrupted save", state_path)
            if not os.path.exists(state_path):
                log.warning("state file %s: none yet (first start, or deleted): starting at relay epoch 1; "
                            "every board is taken only after it answers this relay's challenge", state_path)
        elif not offline:
            log.warning("no state file configured: relay epoch 1 at every start; every board is taken only "
                        "after it answers this relay's challenge")
        self.state = RelayState.load(state_path)
        self.seen: Dict[int, int] = dict(self.state.seen)
        self.emit: Emit = emit or (lambda *a: None)
        # The link's own rejections (crc_error, malformed, oversize: cases 1-7), set by the relay.
        self.transport_errors: Callable[[str], int] = lambda link: 0
        self.on_link = on_link or (lambda node, up: None)
        self.heartbeat_ns = heartbeat_ns
        self.down_ns = down_ns
        self._index = 0
        self._save_retry_ns = 0
        self._save_delay_ns = 0           # > 0 while state writes fail
        # A new epoch per start, persisted before the first frame goes out.
        self._new_epoch()
        self.frames_accepted = 0
        self.refused_authentic: Optional[int] = None   # node of the last frame refused with a valid tag
        # The keyring's check of a raw frame (cases 3-11), replaced by the
        # relay with its receive hot path (Pipeline.rx_verifier: the same
        # check, and a report's ingest in the same C call when ``ingest``:
        # nothing below can refuse the frame any more).
        self.verify: Callable[[bytes, Tuple[int, ...], bool, int], binding.Frame] = \
            lambda raw, link, ingest, t_ns: self.keyring.verify(raw, link=link)

    def set_window(self, node: int, window: int) -> None:
        """Replay window of ``node``'s key (PROTOCOL 3.2): the relay gives the
        boards of datagram links REPLAY_WINDOW, so that a frame reordered by
        less than that is accepted once (and a duplicate never)."""
        kid = self.sessions[node].info.key_id
        self._windows[kid] = window
        self.keyring.set_window(kid, window)

    def go_offline(self) -> None:
        """Take each key's first valid frame as its mark, as when reading a
        capture (``trilink replay``): no challenge can be answered there."""
        for sess in self.sessions.values():
            if not sess.verified:
                kid = sess.info.key_id
                self.keyring.remove(kid)          # forgets the UNVERIFIED mark
                self.keyring.add(kid, sess.node, self._key_bytes[kid])
                self.keyring.set_window(kid, self._windows.get(kid, 0))
                sess.verified = True
        self.offline = True

    # ---- counter and state ----

    def _new_epoch(self) -> None:
        if self.state.epoch >= EPOCH_MAX:
            raise RuntimeError("relay counter epochs exhausted (2^20): rekey the boards")
        self.state.epoch += 1
        self._index = 0
        self.save()

    @property
    def epoch(self) -> int:
        return self.state.epoch

    def next_counter(self) -> int:
        """The next authentication counter (epoch << 28 | index)."""
        if self._index > INDEX_MAX:
            self._new_epoch()
        c = (self.state.epoch << EPOCH_SHIFT) | self._index
        self._index += 1
        return c

    def save(self) -> None:
        """Persist the relay epoch and the epochs seen per key (atomic, durable); OSError if it cannot."""
        self.state.seen = dict(self.seen)
        self.state.save(self.state_path)

    def _see_epoch(self, kid: int, epoch: int, t_ns: int) -> bool:
        """Persist that key ``kid`` reached board epoch ``epoch`` before a frame
        of it is accepted. False (the frame must be dropped) when the state
        file cannot be written: logged once per outage, retried after a
        doubling backoff, never for a rejected frame."""
        if epoch <= self.seen.get(kid, -1):
            return True
        if self.state_path is None:
            self.seen[kid] = epoch
            return True
        if t_ns < self._save_retry_ns:
            return False
        old = self.seen.get(kid)
        self.seen[kid] = epoch
        if self._try_save(t_ns, "frames of a new board epoch are dropped (state_error) until it can"):
            return True
        if old is None:
            del self.seen[kid]
        else:
            self.seen[kid] = old
        return False

    def _try_save(self, t_ns: int, meanwhile: str) -> bool:
        """``save()``; on OSError False, logged once per outage (with what
        ``meanwhile`` happens) and not tried again before a doubling backoff."""
        try:
            self.save()
        except OSError as e:
            if not self._save_delay_ns:
                log.error("state file %s: cannot write (%s): %s", self.state_path, e.strerror or e, meanwhile)
            self._save_delay_ns = min(max(2 * self._save_delay_ns, SAVE_BACKOFF_FIRST_NS), SAVE_BACKOFF_MAX_NS)
            self._save_retry_ns = t_ns + self._save_delay_ns
            return False
        if self._save_delay_ns:
            log.info("state file %s: written again", self.state_path)
        self._save_delay_ns = 0
        return True

    def min_epoch(self, node: int) -> int:
        """HELLO ``min_epoch`` for ``node`` (PROTOCOL 2.2): 0, or, once the
        board answered a challenge from an epoch below what the relay must
        refuse, the epoch it has to move to."""
        return self.sessions[node].required_epoch

    # ---- packing ----

    def pack(self, node: int, mtype: int, payload: bytes, flags: int = 0) -> bytes:
        """The raw frame to ``node`` with its next seq and counter; call it
        just before the frame is written, so counters go out in order."""
        s = self.sessions[node]
        kid = s.info.key_id
        raw = binding.pack_frame(self._keys[kid], kid, self.relay_node, node, mtype, s.seq,
                                 self.next_counter(), payload, flags)
        s.seq = (s.seq + 1) & 0xFFFF
        s.tx_frames += 1
        return raw

    def hello_payload(self, node: int, nonce: int = 0) -> bytes:
        msg = {"role": 1, "proto": binding.WIRE_VERSION, "max_payload": binding.MAX_PAYLOAD,
               "epoch": self.state.epoch, "min_epoch": self.min_epoch(node), "name": RELAY_NAME}
        if nonce:
            msg["nonce"] = nonce
        return _msgs.encode(binding.MSG_HELLO, msg)

    def rx_errors(self, node: int) -> int:
        """HEARTBEAT ``rx_errors`` for ``node`` (PROTOCOL 4.2): the node's own
        rejections plus those of its link (cases 1-10 name no sender), not
        ``not_for_me``."""
        s = self.sessions[node]
        link = s.info.link
        le = self.link_errors.get(link, {})
        return s.rx_errors + le.get("auth_fail", 0) + le.get("wrong_link", 0) + self.transport_errors(link)

    def heartbeat_payload(self, node: int) -> bytes:
        s = self.sessions[node]
        return _msgs.encode(binding.MSG_HEARTBEAT, {
            "time_us": relay_now_us(), "tx_frames": s.tx_frames & 0xFFFFFFFF,
            "rx_frames": s.rx_frames & 0xFFFFFFFF, "rx_errors": self.rx_errors(node) & 0xFFFFFFFF})

    def _heartbeat_builder(self, node: int) -> Callable[[], bytes]:
        # The payload is built when the frame is written (time_us and counters are current then).
        return lambda: self.heartbeat_payload(node)

    def challenge(self, node: int, t_ns: int) -> int:
        """Send ``node`` a HELLO carrying a fresh random nonce (PROTOCOL 2.2);
        its answer (a HELLO with that nonce, within CHALLENGE_NS) is fresh
        evidence of the board's counter. Returns the nonce."""
        s = self.sessions[node]
        nonce = secrets.randbits(32) or 1
        s.challenges[nonce] = t_ns
        while len(s.challenges) > CHALLENGES_KEPT:
            del s.challenges[min(s.challenges, key=s.challenges.__getitem__)]
        s.last_challenge_ns = t_ns
        self.emit(node, binding.MSG_HELLO, self.hello_payload(node, nonce), 0)
        return nonce

    def start(self) -> None:
        """Send HELLO to every board (PROTOCOL 4.1: the relay at start): a
        challenge to each board not yet verified."""
        now = relay_now_ns()
        for node, s in self.sessions.items():
            if s.verified:
                self.emit(node, binding.MSG_HELLO, self.hello_payload(node), 0)
            else:
                self.challenge(node, now)

    # ---- receiving ----

    def _count(self, node: Optional[int], reason: str) -> None:
        s = self.sessions.get(node) if node is not None else None
        if s is not None:
            s.errors[reason] = s.errors.get(reason, 0) + 1
            if reason != "not_for_me":      # PROTOCOL 3.3: not an error
                s.rx_errors += 1

    def reject(self, link: str, reason: str) -> None:
        """Count a rejection that proves nothing about the sender (a damaged
        frame, a bad tag, a node not on the link) against the link it came in on."""
        c = self.link_errors.setdefault(link, dict.fromkeys(LINK_ERRORS, 0))
        c[reason] = c.get(reason, 0) + 1

    def accept(self, link: str, raw: bytes, t_ns: int) -> Optional[binding.Frame]:
        """Verify one raw frame received on ``link`` at ``t_ns`` (cases 3-14).
        Returns the frame when the pipeline should see it (TRACK_REPORT,
        KEYFRAME_REQ, WARNING_ACK, DELIVERY, STATS), answers control
        messages itself and returns them too; None when rejected (counted)."""
        self.refused_authentic = None
        sess = self.by_key.get(raw[5]) if len(raw) > 15 else None
        rollback = None
        if sess is not None and sess.verified and (int.from_bytes(raw[8:14], "little") >> EPOCH_SHIFT) > \
                self.seen.get(sess.info.key_id, -1):
            rollback = self.keyring.marks.get(sess.info.key_id)   # a new board epoch (rare): keep the mark
        try:
            f = self.verify(raw, self.by_link.get(link, ()), rollback is None, t_ns)
        except binding.WireError as e:
            if e.reason != "replay":      # unauthenticated: the sender is not known, the link is
                self.reject(link, e.reason)
                return None
            s = self.sessions[raw[2]]     # a valid tag: the key's own board sent it (some time)
            f = self._answer(s, raw, t_ns)
            if f is None:
                self.refused_authentic = s.node
                # Before its answer a board's frames are "unverified", not an attack on its mark.
                self._count(s.node, "replay" if s.verified else "unverified")
                self._on_replay(s, t_ns)
                return None
        else:
            s = self.sessions[f.src]
            if rollback is not None and not self._see_epoch(f.key_id, f.counter >> EPOCH_SHIFT, t_ns):
                self.keyring.set_mark(f.key_id, rollback)
                self._count(s.node, "state_error")
                return None
        s.replay_streak = 0
        if s.required_epoch and f.counter >> EPOCH_SHIFT >= s.required_epoch:
            s.required_epoch = 0
        if f.dst != self.relay_node and f.dst != binding.BROADCAST:
            self._count(f.src, "not_for_me")
            return None
        if f.mtype not in UPLINK_TYPES:
            self._count(f.src, "unknown_type")
            return None
        s.rx_frames += 1
        self.frames_accepted += 1
        s.last_rx_ns = t_ns
        if not s.up:
            s.up = True
            s.up_events += 1
            self.on_link(s.node, True)
        if f.mtype in CONTROL_TYPES:
            try:
                msg = _msgs.decode(f.mtype, f.payload)
            except ValueError:
                self._count(f.src, "malformed")
                return None
            self._control(s, f, msg, t_ns)
        return f

    def _answer(self, s: Session, raw: bytes, t_ns: int) -> Optional[binding.Frame]:
        """A frame the keyring refused as ``replay`` (its tag is valid) that
        answers one of our challenges: the board made it after the challenge
        went out. It becomes the key's mark (the frame is accepted), unless
        it shows the board's counter behind what the relay must refuse: then
        the board is told ``min_epoch`` and challenged again."""
        if raw[4] != binding.MSG_HELLO or not s.challenges:
            return None
        f = binding.parse_frame(raw)
        try:
            msg = _msgs.decode(binding.MSG_HELLO, bytes(f.payload))
        except ValueError:
            return None
        nonce = msg.get("nonce", 0)
        sent = s.challenges.get(nonce) if nonce else None
        if sent is None or not 0 <= t_ns - sent <= CHALLENGE_NS or f.dst != self.relay_node:
            return None
        del s.challenges[nonce]
        if s.verified and s.last_rx_ns >= sent:
            return None   # the board's later frames were accepted since: a reordered answer, not a lag
        kid, epoch = f.key_id, f.counter >> EPOCH_SHIFT
        floor = self.seen.get(kid, -1)
        if s.verified:
            floor = max(floor, self.keyring.marks[kid] >> EPOCH_SHIFT)
            behind = f.counter <= self.keyring.marks[kid]
        else:
            behind = epoch < floor
        if behind:
            s.required_epoch = floor + 1
            log.warning("node %s: counter epoch %d is behind (the relay refuses below epoch %d): "
                        "HELLO min_epoch %d", s.info.name, epoch, floor + 1, s.required_epoch)
            self.challenge(s.node, t_ns)
            return None
        if not self._see_epoch(kid, epoch, t_ns):
            self._count(s.node, "state_error")
            return None
        want = msg.get("min_epoch", 0)
        if want > self.state.epoch and not self._catch_up(s, want, t_ns):
            self._count(s.node, "state_error")
            return None
        self.keyring.set_mark(kid, f.counter)
        if not s.verified:
            log.info("node %s: answered the challenge (counter epoch %d): accepted from now on",
                     s.info.name, epoch)
        s.verified = True
        s.challenges.clear()
        return f

    def _catch_up(self, s: Session, want: int, t_ns: int) -> bool:
        """The board's fresh answer says it accepted relay counters up to epoch
        ``want - 1``: this relay lost its state file (PROTOCOL 2.2). Move the
        relay's counter epoch to ``want``, written before any frame of it goes
        out. False (the answer is dropped, the board challenged again) when
        the state file cannot be written or the epochs are exhausted."""
        if want > EPOCH_MAX:
            log.error("node %s: asks relay epoch %d, past the last (%d): rekey the boards",
                      s.info.name, want, EPOCH_MAX)
            return False
        if t_ns < self._save_retry_ns:
            return False
        old, old_index = self.state.epoch, self._index
        self.state.epoch, self._index = want, 0
        if not self._try_save(t_ns, f"the relay epoch stays {old} until it can (node {s.info.name} refuses it)"):
            self.state.epoch, self._index = old, old_index
            return False
        log.warning("node %s: has taken relay counters up to epoch %d (this relay's state was lost): "
                    "relay counter epoch %d -> %d", s.info.name, want - 1, old, want)
        return True

    def _on_replay(self, s: Session, t_ns: int) -> None:
        # An authentic frame the relay refused: a capture played back, a board
        # not yet verified, or one whose counter fell behind (reflashed). A
        # challenge (at most one a second) tells them apart: only a board can
        # answer it, and only its answer may move min_epoch.
        s.replay_streak += 1
        if (s.replay_streak >= (1 if not s.verified else REPLAY_HELLO_AFTER)
                and t_ns - s.last_challenge_ns >= REPLAY_HELLO_NS):
            self.challenge(s.node, t_ns)

    def _control(self, s: Session, f: binding.Frame, msg: dict, t_ns: int) -> None:
        if f.mtype == binding.MSG_HELLO:
            s.board_epoch = msg["epoch"]
            self.emit(s.node, binding.MSG_HELLO, self.hello_payload(s.node), 0)
        elif f.mtype == binding.MSG_TIME_SYNC_REQ:
            req_id, t1, t2 = msg["req_id"], msg["t1_us"], t_ns // 1000

            def resp() -> bytes:  # t3 is the relay clock when the frame is packed and written
                return _msgs.encode(binding.MSG_TIME_SYNC_RESP, {
                    "req_id": req_id, "t1_us": t1, "t2_us": t2, "t3_us": relay_now_us()})
            self.emit(s.node, binding.MSG_TIME_SYNC_RESP, resp, binding.FLAG_RELAY_TIME)
        # HEARTBEAT: being accepted is all it needs to do (link liveness).

    # ---- periodic ----

    def tick(self, now_ns: int) -> None:
        """Heartbeats due (every 1 s to every board) and link-down detection
        (3.5 s without an accepted frame)."""
        for s in self.sessions.values():
            if now_ns - s.last_hb_tx_ns >= self.heartbeat_ns:
                s.last_hb_tx_ns = now_ns
                self.emit(s.node, binding.MSG_HEARTBEAT, self._heartbeat_builder(s.node), 0)
            if s.up and now_ns - s.last_rx_ns > self.down_ns:
                s.up = False
                s.down_events += 1
                self.on_link(s.node, False)

    def counters(self) -> Dict[str, Dict[str, int]]:
        """Per node: rx/tx frames, errors by reason (authenticated frames only), link state."""
        out = {}
        for s in self.sessions.values():
            d = {"up": int(s.up), "rx_frames": s.rx_frames, "tx_frames": s.tx_frames,
                 "rx_errors": s.rx_errors, "up_events": s.up_events, "down_events": s.down_events,
                 "verified": int(s.verified), "min_epoch": s.required_epoch}
            d.update(s.errors)
            out[s.info.name] = d
        return out
