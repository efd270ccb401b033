"""trilink keygen writes private, well-formed, unique keys and refuses to clobber."""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from trilink import keygen


def test_writes_mode_0600_with_one_key_per_node(tmp_path: Path) -> None:
    out = tmp_path / "keys.json"
    assert keygen.main(["--nodes", "jp:1,kr:2,au:3", "--out", str(out)]) == 0
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    doc = json.loads(out.read_text())
    assert doc["format"] == "trilink-keys/1" and doc["relay"] == 0
    assert [(k["name"], k["node"], k["key_id"]) for k in doc["keys"]] == [("jp", 1, 1), ("kr", 2, 2), ("au", 3, 3)]
    keys = [bytes.fromhex(k["key"]) for k in doc["keys"]]
    assert all(len(k) == 32 for k in keys) and len(set(keys)) == 3


def test_refuses_to_overwrite_without_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "keys.json"
    out.write_text("precious")
    assert keygen.main(["--nodes", "jp:1", "--out", str(out)]) == 1
    assert "exists" in capsys.readouterr().err and out.read_text() == "precious"
    os.chmod(out, 0o644)
    assert keygen.main(["--nodes", "jp:1", "--out", str(out), "--force"]) == 0
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600


def test_split_writes_one_private_file_per_board(tmp_path: Path) -> None:
    out, split = tmp_path / "keys.json", tmp_path / "boards"
    assert keygen.main(["--nodes", "jp:1,kr:2", "--out", str(out), "--split", str(split)]) == 0
    full = {k["name"]: k for k in json.loads(out.read_text())["keys"]}
    for name in ("jp", "kr"):
        one = json.loads((split / f"{name}.json").read_text())
        assert one["keys"] == [full[name]]
        assert stat.S_IMODE(os.stat(split / f"{name}.json").st_mode) == 0o600


@pytest.mark.parametrize(
    "nodes, message",
    [("jp", "not NAME:ID"), ("jp:x", "not an integer"), ("jp:300", "outside"), ("jp:1,kr:1", "unique"), ("jp:0", "relay")],
)
def test_bad_nodes_name_the_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str], nodes: str, message: str) -> None:
    assert keygen.main(["--nodes", nodes, "--out", str(tmp_path / "k.json")]) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "k.json").exists()
