# main.py: board entry point: `micropython boards/main.py --nation jp --link tty:/dev/pts/5 --keys keys.json`
"""Runs the national sensor board firmware (trilink_board.firmware) from the
command line; ``--help`` lists the options (trilink_board/cmdline.py). On a
Pico, copied to the flash root, it runs at power-up with the arguments
listed in ``board.json`` (``{"argv": ["--nation", "jp", ...]}``, see
boards/README.md).
"""
import gc
import sys

try:
    _here = __file__[: __file__.rfind("/")] if "/" in __file__ else "."
    if _here not in sys.path:
        sys.path.append(_here)
except NameError:
    pass


def _argv():
    if len(sys.argv) > 1:
        return sys.argv[1:]
    # No command line (a microcontroller at power-up): read board.json.
    try:
        import json
        with open("board.json") as fh:
            return json.load(fh)["argv"]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def _drop(name):
    # Code used once is dead weight on a 192 KB heap: let the collector have it.
    import trilink_board
    sys.modules.pop("trilink_board." + name, None)
    if hasattr(trilink_board, name):
        delattr(trilink_board, name)


def _start():
    from trilink_board import cmdline
    plan = cmdline.prepare(_argv())
    _drop("cmdline")
    if isinstance(plan, int):
        return plan
    gc.collect()
    from trilink_board import boot
    node = boot.start(plan)
    _drop("boot")
    return node


_node = _start()
gc.collect()
if isinstance(_node, int):
    sys.exit(_node)
from trilink_board.firmware import run_node  # noqa: E402

sys.exit(run_node(_node))
