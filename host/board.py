"""``trilink board NATION --link SPEC --keys FILE [options]``: a national sensor board under CPython.

Runs the same firmware as ``micropython boards/main.py`` (trilink_board.cmdline),
so a bench without MicroPython still has boards::

    $ trilink board jp --link tty:/dev/pts/5@115200 --keys keys.json --start 60 --speed 4
    $ trilink board kr --link udp:9102:127.0.0.1:9100 --keys keys.json --epoch 123456789

Options are the board's (``trilink board --help``); the nation may be given
first, as here, or with ``--nation``. SIGTERM ends the run like Ctrl-C: the
link is closed and the summary line printed.
"""
from __future__ import annotations

import signal
import sys
from typing import List, Optional, Sequence


def _parse_args(argv: Sequence[str]) -> List[str]:
    """The board argv for ``argv``: a leading nation becomes ``--nation NATION``."""
    args = list(argv)
    if args and not args[0].startswith("-"):
        args = ["--nation", args[0]] + args[1:]
    return args


def _sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Optional[Sequence[str]] = None) -> int:
    from trilink_board import cmdline

    args = _parse_args(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in args):
        print("usage: trilink board NATION --link SPEC --keys FILE [options]\n")
        print(cmdline.USAGE.split("\n", 1)[1])
        return 0
    previous = signal.signal(signal.SIGTERM, _sigterm)
    try:
        return int(cmdline.main(args))
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
