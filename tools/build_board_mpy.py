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
import sys
from pathlib import Path

from trilink.bench_rig import build_flash_tree

BOARDS = Path(__file__).resolve().parent.parent / "boards"


def build(out: Path) -> Path:
    """Compile boards/ into ``out`` (replaced); returns ``out``. The same
    precompiled tree the bench runs (``trilink.bench_rig.build_flash_tree``),
    plus the nation and scenario files a board reads from its flash."""
    if out.exists():
        shutil.rmtree(out)
    build_flash_tree(BOARDS, out)
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
