"""The one relay-config writer (edge/config_toml.py) and the one free-port helper (host/ports.py):
what the writer writes, the relay's own loader reads back as the same settings; strings that need
escaping survive; a value TOML cannot hold is refused by name; ports are distinct and bindable."""
import doctest
import os
import socket
import tomllib

import pytest

from trilink import ports
from trilink_edge import config, config_toml

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def test_examples_pass():
    for mod in (config_toml, ports):
        res = doctest.testmod(mod)
        assert res.attempted > 0 and res.failed == 0, mod.__name__


def test_the_relay_loads_what_the_writer_wrote(tmp_path):
    doc = {
        "relay": {"allow_test_keys": True, "key_file": tmp_path / "keys.json", "stats": "off", "stats_interval_s": 0.5},
        "nodes": {"jp": {"id": 1, "origin": {"lat": 35.0, "lon": 139.0, "alt_m": 10.0}},
                  "kr": {"id": 2, "origin": {"lat": 36.5, "lon": 127.8}}},
        "links": {"jp": {"kind": "serial", "device": "/dev/ttyUSB0", "baud": 115200, "boards": ["jp"]},
                  "kr": {"kind": "udp", "bind": "127.0.0.1:0", "peer": "127.0.0.1:9", "boards": ["kr"]}},
        "release": {"jp": ["kr"], "kr": []},
    }
    cfg = config.loads(config_toml.dumps(doc), base_dir=str(tmp_path))
    assert [(n.name, n.node, n.origin.lat) for n in cfg.nodes] == [("jp", 1, 35.0), ("kr", 2, 36.5)]
    assert cfg.links["jp"].baud == 115200 and cfg.links["kr"].kind == "udp"
    assert cfg.relay.stats_interval_s == 0.5 and cfg.relay.allow_test_keys is True
    assert cfg.release.may("jp", "kr") and not cfg.release.may("kr", "jp")


@pytest.mark.parametrize("text", ['say "hi"', "C:\\path\\to", "tab\there", "日本", "line\nbreak", ""])
def test_strings_round_trip(text):
    doc = {"s": {"v": text, "list": [text, 1, 2.5, False], "odd key": 1}}
    assert tomllib.loads(config_toml.dumps(doc)) == doc


def test_what_toml_cannot_hold_is_named():
    with pytest.raises(TypeError, match=r"relay\.node: cannot write a NoneType"):
        config_toml.dumps({"relay": {"node": None}})
    with pytest.raises(TypeError, match="sections"):
        config_toml.dumps({"node": 1})


@pytest.mark.parametrize("kind", [socket.SOCK_DGRAM, socket.SOCK_STREAM])
def test_free_ports_are_distinct_and_bindable(kind):
    got = ports.free_ports(8, kind)
    assert len(set(got)) == 8
    socks = [socket.socket(socket.AF_INET, kind) for _ in got]
    try:
        for s, p in zip(socks, got):
            s.bind(("127.0.0.1", p))
    finally:
        for s in socks:
            s.close()
