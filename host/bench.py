"""trilink bench: the main job, end-to-end latency against the wire floor.

Not built yet: it arrives with its own issue ("trilink bench", issue 7),
after the boards and the relay. Until then this command says so and exits 1.
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence


def _parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="trilink bench", description=__doc__.split("\n\n")[0])
    return p.parse_args(list(argv))


def main(argv: Optional[Sequence[str]] = None) -> int:
    _parse_args(sys.argv[1:] if argv is None else argv)
    print(
        "trilink bench: not built yet. The wire, codec and fusion kernel come first;\n"
        "the boards, the relay and the bench follow (see README, 'Status').",
        file=sys.stderr,
    )
    return 1
