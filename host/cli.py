"""trilink: the host tool. ``trilink <command> [options]``.

Each command lives in its own module with ``main(argv)`` and a testable
``_parse_args(argv)``; this module only dispatches::

    $ trilink keygen --nodes jp:1,kr:2 --out keys.json
    $ trilink bench --help
"""
from __future__ import annotations

import importlib
import sys
from typing import Callable, Dict, List, Optional, Sequence

# command name -> (module, one-line summary); modules are imported on use so
# that `trilink keygen` does not pay for numpy or the C kernel.
COMMANDS: Dict[str, "tuple[str, str]"] = {
    "bench": ("trilink.bench", "run the whole chain and measure end-to-end latency (the main job)"),
    "board": ("trilink.board", "run a national sensor board's firmware under CPython on a link"),
    "keygen": ("trilink.keygen", "write a key file for the relay and the boards (mode 0600)"),
    "replay": ("trilink.replay", "read a relay capture (pcapng) and feed its received frames through the pipeline"),
    "nullmodem": ("trilink.nullmodem", "emulate serial links: pty pairs paced at a baud rate, with impairments"),
    "suite": ("trilink.suite", "run the scenario suite (whole flights) and print one truth-judged table"),
    "udpproxy": ("trilink.udpproxy", "forward UDP between two endpoints with loss, duplication, reordering, delay"),
    "watch": ("trilink.watch", "subscribe to a relay's picture on Eclipse Zenoh and print it live"),
    "zenohbench": ("trilink.zenohbench", "the bench with Zenoh publishing off and on, with N subscribers"),
}


def _usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = ["usage: trilink <command> [options]", "", "commands:"]
    for name, (_, summary) in sorted(COMMANDS.items()):
        lines.append(f"  {name.ljust(width)}  {summary}")
    lines += ["", "`trilink <command> --help` describes each command."]
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args: List[str] = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(_usage())
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"trilink: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    entry: Callable[[List[str]], int] = getattr(module, "main")
    return entry(rest)


if __name__ == "__main__":
    sys.exit(main())
