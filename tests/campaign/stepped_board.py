# stepped_board.py: the real board firmware (CPython) whose clock a signal steps, like an RTC jump
"""Runs ``boards/main.py`` unchanged, with one difference: SIGUSR1 steps the
board's clock (``BoardClock.local_of``) forward by ``TRILINK_STEP_S``
seconds (default 30) and SIGUSR2 steps it back by as much, at once, as a
board whose RTC was set or whose GPS time jumped would see it.

    python tests/campaign/stepped_board.py --nation jp --link ... ; kill -USR1 PID
"""
import os
import runpy
import signal
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
BOARDS = os.path.join(HERE, "..", "..", "boards")
sys.path.insert(0, BOARDS)

from trilink_board import clock  # noqa: E402

STEP_US = int(float(os.environ.get("TRILINK_STEP_S", "30")) * 1e6)
_step = [0]
_local_of = clock.BoardClock.local_of


def _stepped(self, mono):
    v = _local_of(self, mono) + _step[0]
    return v if v > 0 else 0


clock.BoardClock.local_of = _stepped
signal.signal(signal.SIGUSR1, lambda *_: _step.__setitem__(0, _step[0] + STEP_US))
signal.signal(signal.SIGUSR2, lambda *_: _step.__setitem__(0, _step[0] - STEP_US))
sys.argv = [os.path.join(BOARDS, "main.py")] + sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
