"""The `trilink` command: every subcommand answers --help, unknown ones fail."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from trilink import cli


@pytest.mark.parametrize("command", sorted(cli.COMMANDS))
def test_each_command_has_help(command: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "trilink.cli", command, "--help"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert f"trilink {command}" in out.stdout


def test_top_level_help_lists_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    text = capsys.readouterr().out
    for command in cli.COMMANDS:
        assert command in text


def test_unknown_command_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err


def test_console_script_installed() -> None:
    # The script sits beside the interpreter of this environment, on PATH or not.
    script = os.path.join(os.path.dirname(sys.executable), "trilink")
    out = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "keygen" in out.stdout
