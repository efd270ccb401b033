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
"""
from __future__ import annotations

import json
import os
import struct
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional, Tuple

from trilink_native import binding
from trilink_board import messages as _msgs

EPOCH_SHIFT = 28
INDEX_MAX = (1 << EPOCH_SHIFT) - 1
EPOCH_MAX = (1 << 20) - 1
HEARTBEAT_NS = 1_000_000_000       # PROTOCOL 4.2: every 1 s
LINK_DOWN_NS = 3_500_000_000       # PROTOCOL 4.2: down after 3.5 s without an accepted frame
REPLAY_HELLO_NS = 1_000_000_000    # PROTOCOL 2.2: at most one corrective HELLO per second
REPLAY_HELLO_AFTER = 3             # replays in a row (valid tag) before the corrective HELLO
STATE_SAVE_NS = 10_000_000_000     # periodic state-file write
STATE_FORMAT = "trilink-relay-state/1"
RELAY_NAME = "relay"

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


class StateFileError(ValueError):
    """The state file exists but cannot be read (names the file and what is wrong)."""


@dataclass
class RelayState:
    """What the relay persists (PROTOCOL 2.2): its own counter epoch and the
    uplink high-water mark of every key. ``save`` is atomic (temp + rename).

        >>> st = RelayState(epoch=3, marks={1: 5 << 28})
        >>> RelayState.from_json(st.to_json()).marks
        {1: 1342177280}
    """

    epoch: int = 0
    marks: Dict[int, int] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"format": STATE_FORMAT, "epoch": self.epoch,
                           "marks": {str(k): v for k, v in sorted(self.marks.items())}})

    @classmethod
    def from_json(cls, text: str, where: str = "state") -> "RelayState":
        try:
            doc = json.loads(text)
        except ValueError as e:
            raise StateFileError(f"{where}: not JSON ({e})") from None
        if not isinstance(doc, dict) or doc.get("format") != STATE_FORMAT:
            raise StateFileError(f"{where}: format is not {STATE_FORMAT!r}")
        epoch = doc.get("epoch")
        marks = doc.get("marks")
        if not isinstance(epoch, int) or not 0 <= epoch <= EPOCH_MAX or not isinstance(marks, dict):
            raise StateFileError(f"{where}: epoch must be 0..{EPOCH_MAX} and marks an object")
        out = {}
        for k, v in marks.items():
            if not (k.isdigit() and 1 <= int(k) <= 255 and isinstance(v, int)
                    and 0 <= v <= binding.MAX_COUNTER):
                raise StateFileError(f"{where}: marks.{k}: key id 1..255 with a 48-bit counter")
            out[int(k)] = v
        return cls(epoch, out)

    @classmethod
    def load(cls, path: Optional[str]) -> "RelayState":
        """The state at ``path``; a fresh state when there is no file yet."""
        if path is None or not os.path.exists(path):
            return cls()
        with open(path) as fh:
            return cls.from_json(fh.read(), path)

    def save(self, path: Optional[str]) -> None:
        """Write atomically: a temporary file in the same directory, fsync, rename."""
        if path is None:
            return
        d = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(prefix=".relay-state-", dir=d)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(self.to_json())
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise


@dataclass(frozen=True)
class NodeInfo:
    """A configured board: node id, name, key id and the link it is on."""

    node: int
    name: str
    key_id: int
    link: str


# Rejection counters a session keeps (PROTOCOL 3.3 names).
ERROR_COUNTERS = ("crc_error", "malformed", "oversize", "auth_fail", "replay", "wrong_link",
                  "unknown_type", "not_for_me")


@dataclass
class Session:
    """One board as the relay sees it: link state, counters, clocks."""

    info: NodeInfo
    up: bool = False
    last_rx_ns: int = 0
    last_hb_tx_ns: int = 0
    seq: int = 0
    tx_frames: int = 0
    rx_frames: int = 0
    rx_errors: int = 0
    board_epoch: int = -1          # from the board's HELLO (-1: none seen)
    replay_streak: int = 0
    last_replay_hello_ns: int = -REPLAY_HELLO_NS
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
    and link-down transitions.
    """

    def __init__(self, relay_node: int, nodes: Iterable[NodeInfo], keys: Dict[int, bytes],
                 state_path: Optional[str], emit: Optional[Emit] = None,
                 on_link: Optional[Callable[[int, bool], None]] = None,
                 heartbeat_ns: int = HEARTBEAT_NS, down_ns: int = LINK_DOWN_NS,
                 save_every_ns: int = STATE_SAVE_NS) -> None:
        self.relay_node = relay_node
        self.sessions: Dict[int, Session] = {}
        self.by_link: Dict[str, Tuple[int, ...]] = {}
        for info in nodes:
            if info.node in self.sessions:
                raise ValueError(f"node {info.node} configured twice")
            if info.key_id not in keys:
                raise ValueError(f"node {info.name}: no key {info.key_id} in the key file")
            self.sessions[info.node] = Session(info)
            self.by_link[info.link] = self.by_link.get(info.link, ()) + (info.node,)
        self.keyring = binding.Keyring(relay_node, ())
        self._keys: Dict[int, binding.HmacKey] = {}
        for sess in self.sessions.values():
            kid = sess.info.key_id
            self.keyring.add(kid, sess.node, keys[kid])
            self._keys[kid] = binding.HmacKey(keys[kid])
        self.state_path = state_path
        self.state = RelayState.load(state_path)
        for kid, mark in self.state.marks.items():
            if kid in self._keys:
                self.keyring.set_mark(kid, mark)
        self.emit: Emit = emit or (lambda *a: None)
        self.on_link = on_link or (lambda node, up: None)
        self.heartbeat_ns = heartbeat_ns
        self.down_ns = down_ns
        self.save_every_ns = save_every_ns
        self._last_save_ns = 0
        self._index = 0
        # A new epoch per start, persisted before the first frame goes out.
        self._new_epoch()
        self.frames_accepted = 0

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
        """Persist the epoch and the current high-water marks (atomic)."""
        self.state.marks = dict(self.keyring.marks)
        self.state.save(self.state_path)
        self._last_save_ns = relay_now_ns()

    def min_epoch(self, node: int) -> int:
        """Lowest board epoch the relay accepts for ``node``: one above the
        epoch of its key's high-water mark (0 with no mark)."""
        kid = self.sessions[node].info.key_id
        mark = self.keyring.marks.get(kid)
        return 0 if mark is None else (mark >> EPOCH_SHIFT) + 1

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

    def hello_payload(self, node: int) -> bytes:
        return _msgs.encode(binding.MSG_HELLO, {
            "role": 1, "proto": binding.WIRE_VERSION, "max_payload": binding.MAX_PAYLOAD,
            "epoch": self.state.epoch, "min_epoch": self.min_epoch(node), "name": RELAY_NAME})

    def heartbeat_payload(self, node: int) -> bytes:
        s = self.sessions[node]
        return _msgs.encode(binding.MSG_HEARTBEAT, {
            "time_us": relay_now_us(), "tx_frames": s.tx_frames & 0xFFFFFFFF,
            "rx_frames": s.rx_frames & 0xFFFFFFFF, "rx_errors": s.rx_errors & 0xFFFFFFFF})

    def _heartbeat_builder(self, node: int) -> Callable[[], bytes]:
        # The payload is built when the frame is written (time_us and counters are current then).
        return lambda: self.heartbeat_payload(node)

    def start(self) -> None:
        """Send HELLO to every board (PROTOCOL 4.1: the relay at start)."""
        for node in self.sessions:
            self.emit(node, binding.MSG_HELLO, self.hello_payload(node), 0)

    # ---- receiving ----

    def _count(self, node: Optional[int], reason: str) -> None:
        s = self.sessions.get(node) if node is not None else None
        if s is not None:
            s.errors[reason] = s.errors.get(reason, 0) + 1
            s.rx_errors += 1

    def reject(self, link: str, reason: str) -> None:
        """Count a deframer rejection (cases 1-7) against the link's single
        node when there is one (the sender of a damaged frame is unknown)."""
        nodes = self.by_link.get(link, ())
        self._count(nodes[0] if len(nodes) == 1 else None, reason)

    def accept(self, link: str, raw: bytes, t_ns: int) -> Optional[binding.Frame]:
        """Verify one raw frame received on ``link`` at ``t_ns`` (cases 3-14).
        Returns the frame when the pipeline should see it (TRACK_REPORT,
        KEYFRAME_REQ, WARNING_ACK, DELIVERY, STATS), answers control
        messages itself and returns them too; None when rejected (counted)."""
        try:
            f = self.keyring.verify(raw, link=self.by_link.get(link, ()))
        except binding.WireError as e:
            src = raw[2] if len(raw) > 2 else None
            if src in self.sessions:
                self._count(src, e.reason)
            else:   # a node id nobody configured: count it where it arrived, never nowhere
                self.reject(link, e.reason)
            if e.reason == "replay" and src in self.sessions:
                self._on_replay(self.sessions[src], t_ns)
            return None
        s = self.sessions[f.src]
        s.replay_streak = 0
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

    def _on_replay(self, s: Session, t_ns: int) -> None:
        # Section 2.2: a board whose counters fell below our mark (reflashed)
        # is told min_epoch, at most once per second.
        s.replay_streak += 1
        if s.replay_streak >= REPLAY_HELLO_AFTER and t_ns - s.last_replay_hello_ns >= REPLAY_HELLO_NS:
            s.last_replay_hello_ns = t_ns
            self.emit(s.node, binding.MSG_HELLO, self.hello_payload(s.node), 0)

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

    def save_if_due(self, now_ns: int) -> None:
        """The periodic state-file write (every ``save_every_ns``); raises
        OSError when the file cannot be written (the relay's ticker guards it)."""
        if now_ns - self._last_save_ns >= self.save_every_ns:
            self._last_save_ns = now_ns     # a failing write is retried by the caller's backoff, not every tick
            self.save()

    def counters(self) -> Dict[str, Dict[str, int]]:
        """Per node: rx/tx frames, errors by reason, link state."""
        out = {}
        for s in self.sessions.values():
            d = {"up": int(s.up), "rx_frames": s.rx_frames, "tx_frames": s.tx_frames,
                 "rx_errors": s.rx_errors, "up_events": s.up_events, "down_events": s.down_events}
            d.update(s.errors)
            out[s.info.name] = d
        return out
