"""trilink bench: run relay and boards end to end and measure latency against the wire's floor.

    $ trilink bench                                   # default scenario, jp + kr, emulated serial 115200
    $ trilink bench --impair ber=1e-4 --json out.json --plot out.png
    $ trilink bench --link udp --runtime cpython --duration 10
    $ trilink bench --attach jp=/dev/ttyUSB0,kr=/dev/ttyUSB1     # real boards (docs/BENCH.md)

The relay (``trilink-edge``) and one board per nation run as processes over
emulated serial links (pty pairs paced at the baud rate) or UDP on
loopback; the bench reads the relay's capture afterwards and reports, per
path, the end-to-end latency (source measurement -> fused update decoded at
the destination, on the relay's timebase) split into uplink, relay and
downlink, beside the wire floor. Exit status: 0 = report printed (and
within --budget-ms), 3 = a path's p99 over --budget-ms, 1 = the run
failed, 2 = bad usage. docs/BENCH.md explains the report.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

DEFAULT_PLOT = "trilink-bench.png"
# The default scenario's IRBM burns out at t = 170 s: the window shows the relay
# judging it ballistic and predicting its impact (open Pacific: no warning).
DEFAULT_START_S = 170.0
DEFAULT_DURATION_S = 40.0
EXIT_BUDGET = 3
P50_RATIO_MAX = 1.5         # acceptance: p50 <= 1.5x floor, p99 <= 2.5x, relay share <= 10%
P99_RATIO_MAX = 2.5
RELAY_SHARE_MAX = 0.10
CAPPED_P99_RATIO_MAX = 2.0  # under a Pi-class CPU cap the p99 stays within 2x the floor


@dataclasses.dataclass
class BenchResult:
    """``report``: the JSON document; ``samples``: bench_latency.Sample list; ``rig``: the RigOutput
    (emulators with their own records, board summaries, capture path)."""

    report: Dict[str, Any]
    samples: List[Any]
    rig: Any
    capture: Any


def _pairs(text: str, what: str) -> Dict[str, str]:
    out = {}
    for item in text.split(","):
        k, sep, v = item.partition("=")
        if not sep or not k.strip() or not v.strip():
            raise argparse.ArgumentTypeError(f"{what}: {item!r} is not NATION=VALUE")
        out[k.strip()] = v.strip()
    return out


def _clocks(text: str) -> Dict[str, Tuple[float, float]]:
    out = {}
    for k, v in _pairs(text, "--clock").items():
        off, sep, drift = v.partition(":")
        try:
            out[k] = (float(off), float(drift) if sep else 0.0)
        except ValueError:
            raise argparse.ArgumentTypeError(f"--clock: {k}={v!r} is not OFFSET_S[:DRIFT_PPM]") from None
    return out


def _positive(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be above 0")
    return v


def _cpu_cap(text: str) -> Tuple[float, float]:
    from trilink.cpucap import CpuCap, CpuCapError
    try:
        pct, period = CpuCap.parse(text)
        CpuCap(pct, period)   # range checks
    except CpuCapError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return pct, period


def _parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="trilink bench", description=(__doc__ or "").split("\n\n")[0],
                                epilog="Reading the report: docs/BENCH.md.")
    p.add_argument("--scenario", default="default", help="boards/scenarios/NAME.json (default: default)")
    p.add_argument("--nations", default="jp,kr", help="boards to run, comma-separated (default: jp,kr)")
    p.add_argument("--link", choices=("serial", "udp"), default="serial", help="emulated serial (pty pairs) or UDP")
    p.add_argument("--baud", type=int, default=115200, help="serial baud rate, 8N1 (default 115200)")
    p.add_argument("--runtime", choices=("micropython", "cpython"),
                   help="board runtime (default: micropython when installed, else cpython)")
    p.add_argument("--impair", metavar="SPEC", help="impairments on every link, host/impair.py syntax, "
                   "e.g. ber=1e-4 (serial) or loss=5%%,reorder=1%% (udp)")
    p.add_argument("--start", type=float, default=DEFAULT_START_S, metavar="S",
                   help=f"scenario time the window starts at (default {DEFAULT_START_S:g})")
    p.add_argument("--duration", type=_positive, default=DEFAULT_DURATION_S, metavar="S",
                   help=f"window length in seconds, real time = scenario time (default {DEFAULT_DURATION_S:g})")
    p.add_argument("--lead", type=_positive, metavar="S", help="seconds from spawning the boards to the window's "
                   "start, for boot and time sync (default 4.5 with MicroPython, 3.5 with CPython)")
    p.add_argument("--window", metavar="full|MISSILE", help="replace --start/--duration by a whole flight "
                   "from the truth: 'full' = first launch - 5 s to the last missile's impact + 10 s; a launch's "
                   "name (e.g. KN-23) = that missile's launch - 5 s to its impact + 10 s (docs/SUITE.md)")
    p.add_argument("--clock", type=_clocks, default={}, metavar="NATION=OFFSET_S[:DRIFT_PPM],...",
                   help="override a board's simulated clock (time-sync tests)")
    p.add_argument("--seed", type=int, help="override the scenario's seed")
    p.add_argument("--json", metavar="FILE", help="write the report as JSON")
    p.add_argument("--plot", metavar="FILE.png", default=DEFAULT_PLOT, help="latency CDF per path with its floor, "
                   f"and a timeline (default: {DEFAULT_PLOT} in the current folder)")
    p.add_argument("--no-plot", dest="plot", action="store_const", const=None, help="write no plot")
    p.add_argument("--budget-ms", type=float, metavar="N", help=f"exit {EXIT_BUDGET} when any path's p99 exceeds N ms")
    p.add_argument("--attach", type=lambda s: _pairs(s, "--attach"), default={}, metavar="NATION=DEVICE,...",
                   help="relay on real boards' serial ports instead of spawning boards (docs/BENCH.md)")
    p.add_argument("--keys", metavar="FILE", help="use this key file (trilink keygen) instead of fresh keys: "
                   "needed with --attach, where the boards hold their keys")
    p.add_argument("--boards", metavar="DIR", help="the boards/ folder (default: found beside the package or ./boards)")
    p.add_argument("--keep", metavar="DIR", help="keep the run's files (config, keys, capture, board output) in DIR")
    p.add_argument("--relay-cpu", type=_cpu_cap, metavar="PCT[/PERIOD_MS]",
                   help="run the relay under a CPU cap of PCT%% of one core per period (default 100 ms), "
                        "a Raspberry Pi-class share, e.g. 25; needs a writable cgroup (root), docs/BENCH_RELAY.md")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    a = p.parse_args(list(argv))
    a.nation_list = [n.strip() for n in a.nations.split(",") if n.strip()]
    if len(a.nation_list) < 2 or len(set(a.nation_list)) != len(a.nation_list):
        p.error("--nations: give at least two distinct nations, e.g. jp,kr")
    if not 50 <= a.baud <= 10_000_000:
        p.error(f"--baud {a.baud}: must be within 50..10000000")
    if a.start < 0:
        p.error("--start must be >= 0")
    if a.attach and a.link != "serial":
        p.error("--attach uses serial ports: drop --link udp")
    if a.attach and not a.keys:
        p.error("--attach needs --keys FILE: the key file whose entries the boards hold")
    if a.impair:
        from trilink.impair import ImpairmentError, parse as parse_impairment
        try:
            parse_impairment(a.impair).for_link(a.link)
        except ImpairmentError as e:
            p.error(f"--impair: {e}")
    return a


def run_bench(args: argparse.Namespace, progress: Any = None) -> BenchResult:
    """Run the bench for parsed ``args`` (``_parse_args``) and analyse it; raises RigError on failure."""
    from trilink.bench_analysis import analyse
    from trilink.bench_rig import Rig, RigPlan
    if getattr(args, "window", None):
        args.start, args.duration = flight_window(args.scenario, args.window, args.boards)
        if progress:
            progress(f"bench: window {args.window}: t = {args.start:g} .. {args.start + args.duration:g} s "
                     f"({args.duration / 60:.1f} min of real time)")
    plan = RigPlan(nations=args.nation_list, scenario=args.scenario, link=args.link, baud=args.baud,
                   runtime=args.runtime, impair=args.impair, start_s=args.start, duration_s=args.duration,
                   clocks=args.clock, attach=args.attach, boards_dir=args.boards, seed=args.seed,
                   keep_dir=args.keep, lead_s=args.lead,
                   keys_file=args.keys, relay_cpu=args.relay_cpu)
    with Rig(plan) as rig:
        out = rig.run(progress=progress)
        report, samples, cap = analyse(out)
    report["verdict"] = verdict(report, args.budget_ms)
    return BenchResult(report, samples, out, cap)


WINDOW_BEFORE_S = 5.0      # a whole flight's window opens this long before the launch ...
WINDOW_AFTER_S = 10.0      # ... and closes this long after the impact


def flight_window(scenario: str, which: str, boards: Optional[str] = None) -> Tuple[float, float]:
    """(start_s, duration_s) of a whole flight of ``scenario`` (a name or a file) from its truth:
    ``which`` = ``full`` (every missile) or a launch's name. RigError on a bad scenario or name."""
    from trilink.bench_judge import flights
    from trilink.bench_rig import RigError, find_boards_dir, scenario_path
    from trilink_board import config
    path = scenario_path(find_boards_dir(boards), scenario)
    try:
        sc = config.load_scenario(str(path))
    except config.ConfigError as e:
        raise RigError(str(e)) from None
    fl = flights(sc)
    if which == "full":
        chosen = list(fl.values())
        if len(chosen) < len(sc["launches"]):
            down = ", ".join(sorted(fl)) or "none"
            raise RigError(f"--window full: a missile of {path.name} is not down within its duration_s "
                           f"{sc['duration_s']:g} (down: {down})")
    elif which in fl:
        chosen = [fl[which]]
    else:
        raise RigError(f"--window {which}: not 'full' nor a launch of {path.name} that comes down "
                       f"(launches: {', '.join(ln['name'] for ln in sc['launches'])})")
    start = max(0.0, min(f.t_launch for f in chosen) - WINDOW_BEFORE_S)
    end = min(float(sc["duration_s"]), max(f.t_impact for f in chosen) + WINDOW_AFTER_S)
    return round(start, 1), round(end - start, 1)


def verdict(report: Dict[str, Any], budget_ms: Optional[float]) -> Dict[str, Any]:
    """Checks of the acceptance criteria on this run, each with its numbers; ``pass`` is all of them."""
    checks = []
    serial = report.get("link") == "serial"
    for path, p in report["paths"].items():
        if not p["count"]:
            # a path whose source reported nothing (a scenario its radars do not see) is not judged
            quiet = p.get("source_records") == 0
            checks.append({"check": f"{path} delivered reports", "ok": quiet,
                           "value": "0 (its source sent no reports)" if quiet else 0})
            continue
        if serial:
            checks.append({"check": f"{path} p50 <= {P50_RATIO_MAX}x floor", "ok": p["p50_ratio"] <= P50_RATIO_MAX,
                           "value": p["p50_ratio"]})
            checks.append({"check": f"{path} p99 <= {P99_RATIO_MAX}x floor", "ok": p["p99_ratio"] <= P99_RATIO_MAX,
                           "value": p["p99_ratio"]})
        if budget_ms is not None:
            checks.append({"check": f"{path} p99 <= {budget_ms:g} ms", "ok": p["p99_ms"] <= budget_ms,
                           "value": p["p99_ms"], "budget": True})
    # a path may go unjudged when its source saw nothing, but a run must carry something
    carried = sum(p["count"] for p in report["paths"].values())
    checks.append({"check": "reports delivered on some path", "ok": carried > 0, "value": carried})
    share = report["relay_ms"].get("share_p50")
    if share is not None:
        checks.append({"check": f"relay share <= {RELAY_SHARE_MAX:.0%}", "ok": share <= RELAY_SHARE_MAX,
                       "value": share})
    capped = report.get("relay_cpu", {}).get("cap")
    if capped and serial:
        for path, p in report["paths"].items():
            if p["count"]:
                checks.append({"check": f"{path} p99 <= {CAPPED_P99_RATIO_MAX}x floor under the "
                                        f"{capped['percent']:g}% CPU cap", "ok": p["p99_ratio"] <= CAPPED_P99_RATIO_MAX,
                               "value": p["p99_ratio"]})
    crashed = [n for n, b in report["boards"].items() if b.get("returncode") not in (0, None)]
    checks.append({"check": "no process failed", "ok": not crashed and report["relay_returncode"] in (0, None),
                   "value": crashed})
    return {"pass": all(c["ok"] for c in checks), "budget_ok": all(c["ok"] for c in checks if c.get("budget")),
            "checks": checks}


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    from trilink.bench_rig import RigError
    from trilink import report as rep

    def progress(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr, flush=True)

    t0 = time.monotonic()
    try:
        res = run_bench(args, None if args.quiet else progress)
    except RigError as e:
        print(f"trilink bench: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("trilink bench: interrupted", file=sys.stderr)
        return 1
    res.report["run_s"] = round(time.monotonic() - t0, 1)
    res.report["command"] = "trilink bench" + ("" if not (argv or sys.argv[1:]) else
                                               " " + " ".join(list(argv if argv is not None else sys.argv[1:])))
    print(rep.format_report(res.report))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(res.report, fh, indent=1)
            fh.write("\n")
    if args.plot:
        try:
            rep.plot(res.report, res.samples, args.plot)
            print(f"plot: {os.path.abspath(args.plot)}")
        except ImportError:
            print("trilink bench: the plot needs matplotlib (pip install matplotlib); no plot written",
                  file=sys.stderr)
        except OSError as e:
            print(f"trilink bench: --plot {args.plot}: {e.strerror or e}; no plot written", file=sys.stderr)
    if not res.report["verdict"]["budget_ok"]:
        return EXIT_BUDGET
    return 0


if __name__ == "__main__":
    sys.exit(main())
