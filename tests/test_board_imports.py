"""Board code imports nothing MicroPython lacks: a scan of every import against the
modules the MicroPython ports have, and the real MicroPython importing every module."""
from __future__ import annotations

import ast
from pathlib import Path
from typing import List, Tuple

import pytest

BOARDS = Path(__file__).resolve().parents[1] / "boards"
FILES = [BOARDS / "main.py"] + sorted((BOARDS / "trilink_board").glob("*.py"))
# Built into the unix port and the RP2040/ESP32 ports (``help("modules")``), plus
# machine (hardware ports only: imported inside try/except) and CPython-only
# fallbacks that are likewise guarded (tty, io, os.open paths).
MICROPYTHON = {"array", "binascii", "gc", "hashlib", "json", "machine", "math", "micropython", "os",
               "select", "socket", "struct", "sys", "termios", "time", "errno", "io", "tty"}
GUARDED_ONLY = {"machine", "tty", "io"}   # must sit inside a try block or a function CPython alone reaches


def imports(path: Path) -> List[Tuple[str, bool]]:
    """(top-level module, inside a try block or a function) for every import in ``path``."""
    tree = ast.parse(path.read_text())
    out: List[Tuple[str, bool]] = []

    def walk(node: ast.AST, guarded: bool) -> None:
        for child in ast.iter_child_nodes(node):
            g = guarded or isinstance(child, (ast.Try, ast.FunctionDef))
            if isinstance(child, ast.Import):
                out.extend((a.name.split(".")[0], guarded) for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                out.append((child.module.split(".")[0], guarded))
            walk(child, g)

    walk(tree, False)
    return out


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_imports_only_what_micropython_has(path: Path) -> None:
    for mod, guarded in imports(path):
        if mod == "trilink_board":
            continue
        assert mod in MICROPYTHON, "%s imports %s, which MicroPython lacks" % (path.name, mod)
        if mod in GUARDED_ONLY:
            assert guarded, "%s imports %s unguarded" % (path.name, mod)


@pytest.mark.micropython
def test_micropython_imports_every_board_module(micropython) -> None:
    # machine.UART does not exist on the unix port: uart_link must still import.
    mods = sorted(p.stem for p in (BOARDS / "trilink_board").glob("*.py") if p.stem != "__init__")
    script = "import gc\n" + "".join(
        "import trilink_board.%s\ngc.collect()\n" % m for m in mods) + "print('ok', %d)\n" % len(mods)
    out = micropython.run(script, heapsize="1M")
    assert out.split() == ["ok", str(len(mods))]
