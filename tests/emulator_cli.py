# emulator_cli.py: the emulators' command lines (python -m trilink.nullmodem / trilink.udpproxy) run for real, for their tests
"""``Cli`` starts ``python -m MODULE ARGS``, reads its banner up to the
``ready`` line and stops it with Ctrl-C (SIGINT) as a user would; the
process is killed if a test fails before that. ``help_and_bad_impairment``
checks ``--help`` and that a bad impairment key exits 2 naming the key."""
from __future__ import annotations

import signal
import subprocess
import sys
from typing import Tuple


class Cli:
    def __init__(self, module: str, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", module, *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def __enter__(self) -> "Cli":
        return self

    def ready(self) -> str:
        """The banner, up to and with the ``ready`` line."""
        assert self.proc.stdout is not None
        lines = []
        while not lines or not lines[-1].startswith("ready"):
            line = self.proc.stdout.readline()
            assert line, self.proc.stderr.read() if self.proc.stderr else ""
            lines.append(line)
        return "".join(lines)

    def interrupt(self) -> Tuple[int, str, str]:
        """Ctrl-C; (exit status, the rest of stdout, stderr)."""
        self.proc.send_signal(signal.SIGINT)
        out, err = self.proc.communicate(timeout=10)
        return self.proc.returncode, out, err

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def help_and_bad_impairment(module: str, prog: str, bad_impair: str, bad_key: str) -> None:
    out = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and prog in out.stdout
    bad = subprocess.run([sys.executable, "-m", module, "--impair", bad_impair],
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and f"'{bad_key}'" in bad.stderr, bad.stderr
