#!/usr/bin/env python3
"""How the relay's flight-phase detector (edge/phase.py) does on the boards'
own tracks of every shipped scenario, judged against the truth's burnout:
per nation and track, when it was first seen, the burnout of the missile it
follows, when the detector first called it ballistic, the delay, and any
ballistic call under thrust. docs/FUSION.md records a run.

    python tools/phase_detection.py                 # every scenario, jp and kr
    python tools/phase_detection.py srbm_japan      # one scenario
    python tools/phase_detection.py --relay-only    # without the boards' boosting bits
"""
from __future__ import annotations

import argparse
import glob
import os
import statistics
import sys

from trilink.phase_check import BALLISTIC, timelines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenarios", nargs="*", help="scenario names (default: every shipped one)")
    ap.add_argument("--nations", default="jp,kr")
    ap.add_argument("--relay-only", action="store_true", help="ignore the boards' boosting bits")
    a = ap.parse_args(argv)
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "boards", "scenarios")
    names = a.scenarios or sorted(os.path.basename(f)[:-5] for f in glob.glob(os.path.join(here, "*.json")))
    print(f"{'scenario':16} {'nation':6} {'track':>5} {'seen s':>11} {'burnout':>7} {'ballistic':>9} "
          f"{'delay':>6} {'under thrust':>12}")
    delays, wrong = [], 0
    for sc in names:
        for nat in a.nations.split(","):
            for tid, (burnout, hist) in sorted(timelines(sc, nat, board_bits=not a.relay_only).items()):
                if len(hist) < 5:
                    continue
                first = next((t for t, p in hist if p == BALLISTIC), None)
                early = sum(1 for t, p in hist if p == BALLISTIC and t < burnout)
                wrong += early
                delay = None if first is None else first - max(burnout, hist[0][0])
                if delay is not None and hist[0][0] <= burnout + 5.0:
                    delays.append(delay)
                print(f"{sc:16} {nat:6} {tid:5} {hist[0][0]:5.0f}-{hist[-1][0]:<5.0f} {burnout:7.0f} "
                      f"{'-' if first is None else f'{first:9.0f}':>9} {'-' if delay is None else f'{delay:6.1f}':>6} "
                      f"{early:12}")
    if delays:
        print(f"\ntracks seen through burnout: {len(delays)}; delay burnout -> ballistic: median "
              f"{statistics.median(delays):.1f} s, max {max(delays):.1f} s; ballistic calls under thrust: {wrong}")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
