"""The same scenario and seed give the same plot/track stream on CPython and the real MicroPython."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from board_sim_helpers import BOARDS


def stream(cmd: list[str], *args: str) -> list[dict]:
    env = {"MICROPYPATH": str(BOARDS), "PATH": "/usr/bin:/bin"}
    r = subprocess.run(cmd + [str(BOARDS / "sim_stream.py"), *args], capture_output=True, text=True,
                       env=env, timeout=120)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return [json.loads(line) for line in r.stdout.splitlines()]


@pytest.mark.micropython
@pytest.mark.parametrize("nation, seconds, seed", [("kr", "90", "7"), ("jp", "60", "")])
def test_cpython_and_micropython_streams_match(nation: str, seconds: str, seed: str) -> None:
    mp = shutil.which("micropython")
    assert mp, "micropython not on PATH"
    args = ["default", nation, seconds] + ([seed] if seed else [])
    a = stream([sys.executable], *args)
    b = stream([mp, "-X", "heapsize=192K"], *args)
    assert len(a) == len(b) and len(a) > 20
    kinds = {next(iter(x)) for x in a}
    if nation == "kr":
        assert "k" in kinds                  # tracks, not just plots
    for x, y in zip(a[:-1], b[:-1]):
        assert x.keys() == y.keys()
        k = next(iter(x))
        # Same integers; floats equal to the printed precision (the two printf's may round a
        # last digit differently when a float32 value falls on a half).
        for u, v in zip(x[k], y[k]):
            assert u == pytest.approx(v, rel=1e-9, abs=2e-3)
    ea, eb = a[-1]["end"], b[-1]["end"]
    assert (ea["plots"], ea["reports"]) == (eb["plots"], eb["reports"])
    assert eb["live_heap"] > 0
    print(f"MicroPython live heap after {seconds} s of {nation}: {eb['live_heap']} bytes")
