"""Board code type-checks against the MicroPython stubs (micropython-rp2-stubs and
micropython-stdlib-stubs, part of the test extra: no network at test time).

The installed stub files are copied into a temporary folder laid out as mypy
wants: ``custom_typeshed_dir`` (its ``stdlib/`` is MicroPython's reduced
standard library) and ``mypy_path`` (machine, micropython, rp2, ...). Errors
inside the stubs are silenced (``ignore_errors`` for every module), errors in
board code are not (``[mypy-trilink_board.*]`` and main.py turn it back on):
every board module type-checks, none is silenced. Board code needs no
``typing`` at run time: where inference needs help it has type comments
(``x = []  # type: list``) or a narrowing ``is not None``.
"""
from __future__ import annotations

import importlib.metadata as metadata
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest

BOARDS = Path(__file__).resolve().parents[1] / "boards"
STUBS = ("micropython-rp2-stubs", "micropython-stdlib-stubs")


def stub_tree(dest: Path) -> Path:
    """Copy the installed stub distributions' files under ``dest``; fails when they are missing."""
    for name in STUBS:
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            pytest.fail("%s is not installed: pip install -e \".[test]\"" % name)
        for f in dist.files or ():
            parts = Path(str(f)).parts
            if not str(f).endswith((".pyi", "VERSIONS", "py.typed")) or parts[0].endswith(".dist-info"):
                continue
            src = Path(str(dist.locate_file(f)))
            out = dest.joinpath(*parts)
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, out)
    assert (dest / "stdlib" / "VERSIONS").exists() and (dest / "machine.pyi").exists()
    return dest


def run_mypy(tmp_path: Path) -> Dict[str, List[str]]:
    stubs = stub_tree(tmp_path / "stubs")
    ini = tmp_path / "mypy.ini"
    lines = ["[mypy]", "custom_typeshed_dir = %s" % stubs, "mypy_path = %s:%s" % (stubs, BOARDS),
             "ignore_errors = True", "check_untyped_defs = True", "no_incremental = True",
             "cache_dir = %s" % (tmp_path / "cache"), "",
             "[mypy-trilink_board.*]", "ignore_errors = False", "",
             "[mypy-main]", "ignore_errors = False", ""]
    ini.write_text("\n".join(lines))
    files = [str(BOARDS / "main.py")] + sorted(str(p) for p in (BOARDS / "trilink_board").glob("*.py"))
    proc = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(ini)] + files,
                          capture_output=True, text=True, timeout=600, cwd=str(BOARDS))
    errors: Dict[str, List[str]] = {}
    for ln in proc.stdout.splitlines():
        if ": error:" in ln:
            errors.setdefault(Path(ln.split(":", 1)[0]).stem, []).append(ln)
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    return errors


def test_board_code_typechecks_against_micropython_stubs(tmp_path: Path) -> None:
    errors = run_mypy(tmp_path)
    assert not errors, "\n".join(ln for lns in errors.values() for ln in lns)
