"""The protocol's tables have one owner each, and every copy a reader or a tool needs is checked
against it:

* message type names: wire.h's TL_MSG_* (``binding.MSG_NAMES``) = PROTOCOL.md section 4's table =
  the board's wire constants = the Wireshark dissector's ``types`` table (tools/trilink.lua);
* STATS counter ids: the board's ``wire.STATS_COUNTERS`` = PROTOCOL.md 4.7; the relay sends every
  one, a board all but the relay's queue counters;
* the serial wire size: one function, an upper bound of every frame's real serial form.
"""
import os
import random
import re

from trilink_board import firmware, wire as board_wire
from trilink_edge import links, relay, scheduler
from trilink_native import binding

ROOT = os.path.join(os.path.dirname(__file__), "..")


def _read(*path: str) -> str:
    with open(os.path.join(ROOT, *path), encoding="utf-8") as fh:
        return fh.read()


def _protocol_section(title: str) -> str:
    text = _read("docs", "PROTOCOL.md")
    start = text.index(title)
    return text[start:text.index("\n#", start + len(title))]


def test_type_names_come_from_wire_h_and_every_copy_agrees():
    names = binding.MSG_NAMES
    assert tuple(names) == binding.MSG_TYPES and names[binding.MSG_STATS] == "STATS"
    doc = dict((int(code, 16), name) for code, name in re.findall(r"^\| (0x[0-9a-f]{2}) \| `(\w+)` \|",
                                                                 _read("docs", "PROTOCOL.md"), re.M))
    assert doc == names
    assert {getattr(board_wire, n): n for n in names.values()} == names and board_wire.TYPES == tuple(names)
    lua = _read("tools", "trilink.lua")
    table = lua[lua.index("local types = {"):lua.index("}", lua.index("local types = {"))]
    assert dict((int(c, 16), n) for c, n in re.findall(r'\[(0x[0-9a-fA-F]+)\] = "(\w+)"', table)) == names


def test_stats_counter_ids_one_table():
    doc = re.findall(r"(\d+) `(\w+)`", _protocol_section("### 4.7 STATS"))
    assert [(int(i), n) for i, n in doc] == [(i + 1, n) for i, n in enumerate(board_wire.STATS_COUNTERS)]
    assert relay.STATS_IDS == tuple((n, i + 1) for i, n in enumerate(board_wire.STATS_COUNTERS))
    # a board has no queues: it counts everything else, under the same ids
    assert [n for _i, n in firmware._STATS_IDS] == [n for n in board_wire.STATS_COUNTERS
                                                   if n not in ("dropped_stale", "queue_depth")]
    assert all(board_wire.STATS_COUNTERS[i - 1] == n for i, n in firmware._STATS_IDS)


def test_one_serial_size_bounds_every_frame():
    assert scheduler.serial_size is links.serial_wire_size
    rng = random.Random(15)
    ring = binding.Keyring(0)
    ring.add(1, 1, bytes(binding.KEY_SIZE))
    for n in [0, 1, 225, 226, 253, 254, 255, 507, 508, binding.MAX_PAYLOAD] + [rng.randrange(1025) for _ in range(200)]:
        zeros = rng.random() < 0.5
        payload = bytes(0 if zeros and rng.random() < 0.1 else rng.randrange(1, 256) for _ in range(n))
        raw = ring.pack(1, 1, 0, binding.MSG_STATS, 0, n + 1, payload)
        assert len(binding.serial_encode(raw)) <= links.serial_wire_size(len(raw))
    assert links.serial_wire_size(binding.MAX_FRAME) == binding.MAX_SERIAL

