"""The relay's TOML config: the example loads, defaults are as documented,
and every error names the file and the key."""
from __future__ import annotations

import os
from typing import Any

import pytest

from trilink_edge import config as c

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLE = os.path.join(HERE, "..", "edge", "relay.example.toml")

BASE = """
[nodes.jp]
id = 1
origin = { lat = 38.0, lon = 138.0 }
[nodes.kr]
id = 2
origin = { lat = 36.5, lon = 127.8 }
[links.jp]
kind = "serial"
device = "/dev/ttyUSB0"
boards = ["jp"]
[links.kr]
kind = "udp"
bind = "0.0.0.0:9100"
boards = ["kr"]
"""


def test_example_loads_with_nation_files() -> None:
    cfg = c.load(EXAMPLE)
    assert cfg.source == "relay.example.toml"
    assert cfg.links["jp"].budget == c.serial_budget(115200) == 10368
    assert cfg.links["au"].kind == "udp" and cfg.links["au"].peer == ("192.0.2.10", 9101)
    jp = cfg.node("jp")
    assert (jp.node, jp.key_id, jp.link, jp.nation) == (1, 1, "jp", "jp")
    assert jp.origin.lat == 38.0 and len(jp.territory) == 4            # from boards/nations/jp.json
    assert cfg.node("au").origin.lat == -25.0                           # inline
    assert cfg.release.may("jp", "kr") and not cfg.release.may("jp", "au") and cfg.release.may("au", "au")
    assert cfg.release.sources_for("au", ["jp", "kr", "au"]) == ("kr", "au")
    assert cfg.relay.key_file.endswith(os.path.join("edge", "keys.json"))   # relative to the file
    assert cfg.recorder.max_files == 10 and cfg.deadreckoning.position_m == 0.0


def test_defaults() -> None:
    cfg = c.loads(BASE)
    assert cfg.relay.node == 0 and cfg.relay.stats_addr == ("127.0.0.1", 8765)
    assert cfg.links["jp"].baud == 115200 and cfg.links["jp"].budget == 10368
    assert cfg.links["kr"].budget == c.UDP_DEFAULT_BUDGET and cfg.links["kr"].peer is None
    assert cfg.deadreckoning == c.DeadReckoningConfig(0.0, 5.0)
    assert cfg.fusion.gate == 22.46 and cfg.fusion.ci_mode == "trace"
    assert cfg.scheduler.max_age_s == 2.0 and cfg.recorder.path is None
    assert cfg.release.may("jp", "jp") and not cfg.release.may("jp", "kr")   # nothing released by default
    assert c.loads(BASE.replace('boards = ["jp"]', 'baud = 9600\nboards = ["jp"]')).links["jp"].budget == 864


def test_nodes_as_array_of_tables() -> None:
    text = BASE.replace("[nodes.jp]\n", '[[nodes]]\nname = "jp"\n').replace("[nodes.kr]\n", '[[nodes]]\nname = "kr"\n')
    cfg = c.loads(text)
    assert [n.name for n in cfg.nodes] == ["jp", "kr"] and cfg.node("kr").link == "kr"


@pytest.mark.parametrize("edit, message", [
    (('boards = ["jp"]', 'baud = "fast"\nboards = ["jp"]'), "relay.toml: links.jp.baud: expected an integer"),
    (('kind = "udp"', 'kind = "can"'), "relay.toml: links.kr.kind: 'can' is not one of serial, udp"),
    (('bind = "0.0.0.0:9100"', 'bind = "nowhere"'), "relay.toml: links.kr.bind: 'nowhere': expected"),
    (('bind = "0.0.0.0:9100"\n', ''), "relay.toml: links.kr.bind: missing"),
    (('device = "/dev/ttyUSB0"', 'device = "/dev/ttyUSB0"\npeer = "1.2.3.4:5"'), "links.jp.peer: only for kind"),
    (('id = 2', 'id = 1'), "relay.toml: nodes.kr.id: 1 is already used by jp"),
    (('id = 2', 'id = 0'), "relay.toml: nodes.kr.id: 0 out of range"),
    (('lat = 36.5', 'lat = 136.5'), "relay.toml: nodes.kr.origin.lat: 136.5 out of range"),
    (('boards = ["kr"]', 'boards = ["jp"]'), "links.kr.boards: 'jp' is already on link 'jp'"),
    (('boards = ["kr"]', 'boards = ["kr", "cn"]'), "links.kr.boards: 'cn' is not a configured node"),
    (('[links.jp]', 'colour = "red"\n[links.jp]'), "nodes.kr.colour: unknown key"),
    (('[nodes.jp]', '[relay]\nnode = -1\n[nodes.jp]'), "relay.toml: relay.node: -1 out of range"),
    (('[nodes.jp]', '[fusion]\nci_mode = "best"\n[nodes.jp]'), "relay.toml: fusion.ci_mode: 'best' is not one of"),
    (('[nodes.jp]', '[release]\njp = ["xx"]\n[nodes.jp]'), "relay.toml: release.jp: unknown nation 'xx'"),
    (('[nodes.jp]', '[release]\njp = "kr"\n[nodes.jp]'), "relay.toml: release.jp: expected a list of names"),
    (('[nodes.jp]', '[deadreckoning]\nvelocity_mps = 2.0\n[nodes.jp]'), "deadreckoning.velocity_mps: unknown key"),
    (('[nodes.jp]', '[recorder]\nmax_files = 0\n[nodes.jp]'), "relay.toml: recorder.max_files: 0 out of range"),
    (('[nodes.jp]', '[bogus]\n[nodes.jp]'), "relay.toml: bogus: unknown section"),
    (('origin = { lat = 38.0, lon = 138.0 }', 'nation_file = "/nonexistent/jp.json"'), "relay.toml: nodes.jp.nation_file:"),
    (('[links.kr]', '[links.kr]\nbudget = 1.5'), "relay.toml: links.kr.budget: expected an integer"),
    (('id = 1', 'id = 1\norigin = 3'), "not valid TOML"),
])
def test_errors_name_the_file_and_the_key(edit: Any, message: str) -> None:
    old, new = edit
    assert old in BASE
    with pytest.raises(c.ConfigError) as e:
        c.loads(BASE.replace(old, new, 1))
    assert message in str(e.value) and "\n" not in str(e.value)


def test_load_names_the_path(tmp_path: Any) -> None:
    p = tmp_path / "site.toml"
    p.write_text(BASE.replace('boards = ["jp"]', 'baud = true\nboards = ["jp"]'))
    with pytest.raises(c.ConfigError, match=r"^site\.toml: links\.jp\.baud: expected an integer$"):
        c.load(str(p))
    with pytest.raises(c.ConfigError, match="cannot read"):
        c.load(str(tmp_path / "missing.toml"))
