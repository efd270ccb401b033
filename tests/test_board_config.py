"""Scenario and nation config: shipped files validate; every error is one line naming file and field."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from board_sim_helpers import BOARDS
from trilink_board import config


def test_shipped_nations_validate() -> None:
    nodes = set()
    for name in ("jp", "kr", "au"):
        n = config.load_nation(name)
        nodes.add(n["node"])
        assert n["name"] == name and n["radars"] and n["territory"]
    assert nodes == {1, 2, 3}


def test_unknown_nation_is_a_clear_error() -> None:
    with pytest.raises(config.ConfigError) as e:
        config.load_nation("xx")
    msg = str(e.value)
    assert "\n" not in msg and "nations/xx.json" in msg and "unknown nation 'xx'" in msg and "jp" in msg


def test_unknown_scenario_is_a_clear_error() -> None:
    with pytest.raises(config.ConfigError, match=r"scenarios/nope\.json: unknown scenario 'nope'"):
        config.load_scenario("nope")


def write_nation(tmp: Path, mutate) -> str:  # type: ignore[no-untyped-def]
    doc = json.loads((BOARDS / "nations" / "jp.json").read_text())
    mutate(doc)
    p = tmp / "nations" / "zz.json"
    p.parent.mkdir(exist_ok=True)
    p.write_text(json.dumps(doc))
    return str(p)


@pytest.mark.parametrize("mutate, field, why", [
    (lambda d: d["radars"][0].__setitem__("lat", "north"), "radars[0].lat", "expected a number"),
    (lambda d: d["radars"][1].__setitem__("sigma_az_deg", -1), "radars[1].sigma_az_deg", "out of range"),
    (lambda d: d["radars"][0].pop("update_hz"), "radars[0].update_hz", "missing"),
    (lambda d: d.__setitem__("node", 300), "node", "out of range"),
    (lambda d: d.__setitem__("node", True), "node", "expected an integer"),
    (lambda d: d.__setitem__("radars", []), "radars", "at least 1"),
    (lambda d: d["origin"].__setitem__("lon", 999), "origin.lon", "out of range"),
    (lambda d: d.__setitem__("radarz", []), "radarz", "unknown field"),
    (lambda d: d["territory"][0]["polygon"].__setitem__(1, [1]), "territory[0].polygon[1]", "expected [lat, lon]"),
    (lambda d: d.__setitem__("tracker", {"confirm_m": 6, "confirm_n": 5}), "tracker.confirm_m", "greater"),
])
def test_malformed_nation_names_file_and_field(tmp_path: Path, mutate, field: str, why: str) -> None:  # type: ignore[no-untyped-def]
    path = write_nation(tmp_path, mutate)
    with pytest.raises(config.ConfigError) as e:
        config.load_nation(path)
    msg = str(e.value)
    assert msg.startswith(path + ": " + field + ": ") and why in msg and "\n" not in msg


@pytest.mark.parametrize("text, field", [
    ('{"name": "x", "duration_s": 10, "launches": [{"site": "Nowhere", "t_s": 0, "azimuth_deg": 1, "class": "irbm"}]}',
     "launches[0].site"),
    ('{"name": "x", "duration_s": 10, "launches": [{"site": "Sunan", "t_s": 0, "azimuth_deg": 1, "class": "zzz"}]}',
     "launches[0].class"),
    ('{"name": "x", "duration_s": 10, "launches": [{"site": "Sunan", "t_s": 0, "azimuth_deg": 1}]}', "launches[0]"),
    ('{"name": "x", "duration_s": "long", "launches": []}', "duration_s"),
    ('{"name": "x", "duration_s": 10, "launches": [{"site": "Sunan", "t_s": 0, "azimuth_deg": 1, "class": "irbm"}],'
     ' "breakups": [{"launch": "m9", "t_s": 1, "count": 5, "dv_sigma_mps": 1}]}', "breakups[0].launch"),
    ('{"name": "x", "duration_s": 10, "launches": [{"site": {"lat": 1}, "t_s": 0, "azimuth_deg": 1, "class": "irbm"}]}',
     "launches[0].site.lon"),
])
def test_malformed_scenario_names_file_and_field(tmp_path: Path, text: str, field: str) -> None:
    p = tmp_path / "s.json"
    p.write_text(text)
    with pytest.raises(config.ConfigError) as e:
        config.load_scenario(str(p))
    assert str(e.value).startswith(str(p) + ": " + field + ": ") and "\n" not in str(e.value)


def test_invalid_json_names_the_file(tmp_path: Path) -> None:
    p = tmp_path / "bad.json"
    p.write_text('{"name": ')
    with pytest.raises(config.ConfigError, match="bad.json: invalid JSON"):
        config.load_scenario(str(p))


@pytest.mark.parametrize("interp", ["cpython", "micropython"])
def test_sim_stream_exits_non_zero_with_one_line(interp: str, tmp_path: Path) -> None:
    p = tmp_path / "bad.json"
    p.write_text('{"name": "x", "duration_s": 10, "launches": [{"site": "Sunan", "t_s": "soon", '
                 '"azimuth_deg": 1, "class": "irbm"}]}')
    cmd = ([sys.executable] if interp == "cpython" else ["micropython", "-X", "heapsize=192K"])
    out = subprocess.run(cmd + [str(BOARDS / "sim_stream.py"), str(p), "jp", "10"], capture_output=True,
                         text=True, env={"MICROPYPATH": str(BOARDS), "PATH": "/usr/bin:/bin:" + _mp_dir()},
                         timeout=60)
    assert out.returncode != 0
    lines = (out.stdout + out.stderr).strip().splitlines()
    assert lines == ["error: " + str(p) + ": launches[0].t_s: expected a number"]


def _mp_dir() -> str:
    import shutil
    mp = shutil.which("micropython")
    assert mp, "micropython not on PATH"
    return str(Path(mp).parent)
