"""The heaviest shipped case, the debris scenario's fragment cloud (61 objects, 40 track slots
full), on the real MicroPython at -X heapsize=192K (the precompiled tree): the board survives
the breakup and reports its peak live heap, read as a number and held under a bound."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The target is 160 KB (boards/README.md); measured 163.6 KB here (boards/README.md): the bound is today's
# figure plus a little, so a regression fails while the target stays open.
BOUND = 168 * 1024


@pytest.mark.micropython
def test_debris_board_survives_the_breakup_at_192k(tmp_path: Path) -> None:
    mp = shutil.which("micropython")
    assert mp, "micropython not on PATH"
    sys.path.insert(0, str(ROOT / "tools"))
    import build_board_mpy
    flash = build_board_mpy.build(tmp_path / "flash")
    keys = tmp_path / "keys.json"
    subprocess.run([shutil.which("trilink", path=str(Path(sys.executable).parent)) or "trilink", "keygen", "--nodes", "jp:1,kr:2", "--out", str(keys)],
                   check=True, capture_output=True, timeout=60)
    # Breakup at t = 210 s: 20 scenario seconds of it at speed 2 (10 s), the link a UDP port nobody reads.
    r = subprocess.run([mp, "-X", "heapsize=192K", str(flash / "main.py"), "--nation", "jp",
                        "--link", "udp:0:127.0.0.1:9", "--keys", str(keys), "--state", str(tmp_path / "jp.state"),
                        "--scenario", "debris", "--start", "205", "--duration", "20", "--speed", "2", "--quiet"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-1500:] + r.stderr[-1500:]
    line = [ln for ln in r.stdout.splitlines() if ": summary " in ln][-1]
    s = json.loads(line.split(": summary ", 1)[1])
    assert s["counts"]["reports"] > 300          # the cloud was tracked and reported
    peak = int(s["peak_live_heap"])
    assert 100 * 1024 < peak <= BOUND, peak
    print("\n  debris jp at 192K: peak live heap %d bytes, peak allocated %d, %d reports"
          % (peak, s["peak_alloc_heap"], s["counts"]["reports"]))
