"""trilink suite: run the scenario suite, whole flights, and print one truth-judged table.

    $ trilink suite                                  # every standard scenario, one at a time
    $ trilink suite --jobs 3 --out suite-out         # three benches at once (noisier latency)
    $ trilink suite --only srbm_sea,srbm_korea       # some of them (names or scenario files)
    $ trilink suite --resume                         # skip scenarios whose JSON is already in --out
    $ trilink suite --long                           # add the IRBM's 22 min, the lofted ICBM's 53 min, debris
    $ trilink suite --table-only --out suite-out     # the table from the JSON already there

Each scenario runs as its own ``trilink bench --window ...`` process (a whole
flight from the truth: first launch - 5 s to the last impact + 10 s; the
default scenario's KN-23 alone in the standard set) with ``--json`` and
``--plot`` into ``--out``; the table reads those JSON files. Its columns are
the bench targets, each pass/fail with the figures behind it
(docs/SUITE.md explains every column). Exit status: 0 = every run made its
report (targets may fail: that is what the table is for), 1 = a run failed
to report, 2 = bad usage (an unknown or invalid scenario is refused before
anything runs).
"""
from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

# (scenario, window): the standard suite; each a whole flight (bench --window)
STANDARD: List[Tuple[str, str]] = [
    ("default", "KN-23"),               # the default scenario's SRBM, launch to impact, ~4 min (the IRBM flies on)
    ("salvo", "full"),
    ("salvo_sinpo", "full"),
    ("srbm_korea_only", "full"),
    ("srbm_sea", "full"),
    ("srbm_japan", "full"),
    ("srbm_korea", "full"),
    ("srbm_overflight_korea", "full"),
    ("srbm_lofted", "full"),
]
LONG: List[Tuple[str, str]] = [
    ("default", "full"),                # the IRBM over Japan into the Pacific: 22 min
    ("lofted", "full"),                 # the Hwasong-15-like lofted ICBM: 53 min
    ("debris", "full"),                 # the IRBM breaking up into 60 fragments: 22 min
]

# the bench targets
LAUNCH_ALERT_S = 5.0        # launch alert within 5 s of the first confirmed radar track
VALID_WARNING_S = 20.0      # a valid impact warning within 20 s of burnout
IMPACT_T60_KM = 1.0         # impact error <= 1 km at T-60 s
COVERAGE = (0.90, 0.99)     # 95% ellipses cover the truth at 90-99% of checkpoints
HEAP_KB = 160.0             # peak live heap per board
P50_X, P99_X = 1.2, 1.6     # latency vs the wire floor


def _parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="trilink suite", description=(__doc__ or "").split("\n\n")[0],
                                epilog="The table's columns: docs/SUITE.md.")
    p.add_argument("--only", metavar="NAME,...", help="run these scenarios only: names of the suite, other "
                   "shipped names or scenario files (FILE.json, window full; NAME@WINDOW to choose the window)")
    p.add_argument("--long", action="store_true", help="add the long runs: the default IRBM (22 min), the "
                   "lofted ICBM (53 min) and debris (22 min), whole flights")
    p.add_argument("--jobs", "-j", type=int, default=1, metavar="N", help="benches at once (default 1; each is "
                   "a relay and two boards: latency figures get noisier with more)")
    p.add_argument("--out", default="suite-out", metavar="DIR", help="per-scenario JSON, PNG and log "
                   "(default ./suite-out)")
    p.add_argument("--resume", action="store_true", help="skip a scenario whose JSON is already in --out")
    p.add_argument("--table-only", action="store_true", help="run nothing: the table from --out's JSON")
    p.add_argument("--table", metavar="FILE.md", help="also write the table (markdown) to FILE.md")
    p.add_argument("--runtime", choices=("micropython", "cpython"), help="board runtime (bench's default)")
    p.add_argument("--bench-arg", action="append", default=[], metavar="ARG",
                   help="pass ARG on to every trilink bench (repeatable), e.g. --bench-arg=--link=udp")
    a = p.parse_args(list(argv))
    if a.jobs < 1:
        p.error("--jobs must be at least 1")
    a.runs = _runs(a)
    if not a.runs:
        p.error("no scenario to run")
    if not a.table_only:
        from trilink.bench import flight_window
        from trilink.bench_rig import RigError
        for name, window in a.runs:
            try:
                flight_window(name, window)
            except RigError as e:
                p.error(f"scenario {name}: {e}")
    return a


def _runs(a: argparse.Namespace) -> List[Tuple[str, str]]:
    base = STANDARD + (LONG if a.long else [])
    if not a.only:
        return base
    out = []
    for item in (s.strip() for s in a.only.split(",")):
        if not item:
            continue
        name, _, window = item.partition("@")
        known = [w for n, w in base if n == name]
        out.append((name, window or (known[0] if known else "full")))
    return out


def run_key(name: str, window: str) -> str:
    """The file stem of a run in --out: ``srbm_sea``, ``default@KN-23``, ``x`` for ``dir/x.json``."""
    stem = Path(name).stem if name.endswith(".json") else name
    return stem if window == "full" else f"{stem}@{window}"


def _bench_argv(a: argparse.Namespace, name: str, window: str, out: Path) -> List[str]:
    key = run_key(name, window)
    argv = [sys.executable, "-c", "import sys; from trilink.cli import main; sys.exit(main())", "bench",
            "--scenario", name, "--window", window, "--json", str(out / f"{key}.json"),
            "--plot", str(out / f"{key}.png"), "--quiet"]
    if a.runtime:
        argv += ["--runtime", a.runtime]
    return argv + list(a.bench_arg)


def run_all(a: argparse.Namespace, say: Any = print) -> int:
    """Run the suite's benches (``--jobs`` at a time), each's report to --out; 1 if any failed to report."""
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    todo = []
    for name, window in a.runs:
        key = run_key(name, window)
        if a.resume and (out / f"{key}.json").is_file():
            say(f"suite: {key}: skipped (--resume: {out / (key + '.json')} exists)")
            continue
        todo.append((name, window))
    lock = threading.Lock()
    failed: List[str] = []
    t0 = time.monotonic()

    def one(i: int, name: str, window: str) -> None:
        from trilink.bench import flight_window
        key = run_key(name, window)
        start, dur = flight_window(name, window)
        with lock:
            say(f"suite: [{i}/{len(todo)}] {key}: started, t = {start:g}..{start + dur:g} s "
                f"({dur / 60:.1f} min), {time.monotonic() - t0:.0f} s into the suite")
        t1 = time.monotonic()
        with open(out / f"{key}.log", "wb") as log:
            rc = subprocess.run(_bench_argv(a, name, window, out), stdout=log, stderr=subprocess.STDOUT).returncode
        ok = (out / f"{key}.json").is_file() and rc in (0, 3)
        with lock:
            if not ok:
                failed.append(key)
            say(f"suite: [{i}/{len(todo)}] {key}: " + (f"done in {time.monotonic() - t1:.0f} s" if ok else
                f"FAILED (exit {rc}; {out / (key + '.log')})"))

    with concurrent.futures.ThreadPoolExecutor(max_workers=a.jobs) as ex:
        futs = [ex.submit(one, i + 1, n, w) for i, (n, w) in enumerate(todo)]
        for f in futs:
            f.result()
    return 1 if failed else 0


# ---- the table -----------------------------------------------------------------

def _cell(ok: Optional[bool], text: str) -> str:
    return text if ok is None else ("ok " if ok else "FAIL ") + text


def judge_row(r: Dict[str, Any]) -> Dict[str, Any]:
    """One scenario's report -> {column: (ok or None for n/a, text)} and the coverage counts."""
    j = r.get("judge") or {}
    ms = j.get("missiles") or {}
    row: Dict[str, Tuple[Optional[bool], str]] = {}
    # 0 false / 0 missed territorial and EEZ warnings per nation (early cancels count as missed)
    bad = []
    for n, kinds in (j.get("warning_counts") or {}).items():
        for k in ("territory", "eez"):
            c = kinds.get(k) or {}
            if k == "eez" and not (j.get("eez_judged") or {}).get(n):
                continue
            for what in ("false", "missed", "early_cancel"):
                if c.get(what):
                    bad.append(f"{n} {c[what]} {what.replace('_', ' ')} {k}")
    judged_eez = [n for n, v in (j.get("eez_judged") or {}).items() if v]
    row["warnings"] = (not bad, ", ".join(bad) or "0/0" + ("" if judged_eez else " (no EEZ)"))
    # launch alert within 5 s of the first confirmed track, every nation, every missile seen
    la = [(m, n, v.get("launch_alert_from_track_s")) for m, e in ms.items() if e.get("first_track_s") is not None
          for n, v in (e.get("nations") or {}).items()]
    if not la:
        row["launch_alert"] = (None, "n/a")
    else:
        worst = [x for x in la if x[2] is None or x[2] > LAUNCH_ALERT_S]
        vals = [x[2] for x in la if x[2] is not None]
        row["launch_alert"] = (not worst, (f"max {max(vals):.1f} s" if vals else "none")
                               + (f", {len([x for x in worst if x[2] is None])} missing" if worst and vals else ""))
    # valid impact warning within 20 s of burnout, to each threatened nation
    vw = [(m, n, v.get("first_valid_warning_after_burnout_s")) for m, e in ms.items()
          for n, v in (e.get("nations") or {}).items() if v.get("truth") and "not judged" not in str(v.get("outcome"))
          and e["t_impact_s"] <= r["window_s"][1]]
    if not vw:
        row["valid_warning"] = (None, "n/a (no nation threatened)")
    else:
        vals = [x[2] for x in vw if x[2] is not None]
        miss = [f"{n}" for m, n, x in vw if x is None]
        row["valid_warning"] = (not miss and all(x <= VALID_WARNING_S for x in vals),
                                (f"max {max(vals):+.0f} s" if vals else "none")
                                + (f", none to {','.join(sorted(set(miss)))}" if miss and vals else ""))
    # impact error at T-60 <= 1 km (every destination that holds the missile), an estimate needed
    t60 = []
    missing60 = []
    cov = [0, 0]
    for m, e in ms.items():
        if e["t_impact_s"] > r["window_s"][1]:
            continue
        cps = e.get("impact_checkpoints") or []
        c60 = [c for c in cps if c["t_to_go_s"] == 60.0]
        if not c60:
            missing60.append(m)
        t60 += [c["error_km"] for c in c60]
        cov[0] += sum(1 for c in cps if c["ellipse_holds_truth"])
        cov[1] += len(cps)
    row["impact_t60"] = (not missing60 and all(x <= IMPACT_T60_KM for x in t60),
                         (f"max {max(t60):.2f} km" if t60 else "no estimate")
                         + (f", none for {','.join(missing60)}" if missing60 and t60 else ""))
    row["coverage"] = (None, f"{cov[0]}/{cov[1]}")
    # fused RMSE <= best single nation, per phase where two see it
    fb = [x for e in ms.values() for x in e.get("fused_vs_best") or []]
    if not fb:
        row["fused_vs_best"] = (None, "n/a (one nation at a time)")
    else:
        bad_fb = [f"{x['missile']} {x['phase']} {x['fused_m']:.0f}>{x['best']} {x['best_m']:.0f}"
                  for x in fb if not x["ok"]]
        row["fused_vs_best"] = (not bad_fb, "; ".join(bad_fb) or f"{len(fb)} phases")
    # identity switches and ghosts
    ids = j.get("identity") or {}
    sw = sum(sum(v["switches"].values()) for v in ids.values())
    gh = sum(len(v["ghosts"]) + len(v["duplicates"]) for v in ids.values())
    row["identity"] = (sw == 0 and gh == 0, f"{sw} sw / {gh} ghosts")
    # no flapping, warnings up until impact
    fl = sum(v.get("flaps", 0) for e in ms.values() for v in (e.get("nations") or {}).values())
    early = [f"{n} T-{v['cancelled_s_before_impact']:.0f}" for e in ms.values()
             for n, v in (e.get("nations") or {}).items() if v.get("early_cancel")]
    row["flapping"] = (fl == 0 and not early, f"{fl} flaps" + (", cancelled early " + ", ".join(early) if early
                                                               else ""))
    # board heap, boards alive
    heaps = {n: b.get("peak_live_heap") for n, b in (r.get("boards") or {}).items()}
    died = [f"{n}: {b.get('error') or 'exit ' + str(b.get('returncode'))}" for n, b in (r.get("boards") or {}).items()
            if b.get("returncode") not in (0, None) or b.get("error")]
    hk = [v / 1024 for v in heaps.values() if v]
    row["heap"] = (bool(hk) and max(hk) <= HEAP_KB and not died,
                   (f"max {max(hk):.0f} KB" if hk else "-") + (f"; {'; '.join(died)}" if died else ""))
    # latency vs floor
    lat = [(p["p50_ratio"], p["p99_ratio"]) for p in (r.get("paths") or {}).values()
           if p.get("count") and p.get("p50_ratio") is not None]
    if not lat:
        row["latency"] = (None, "n/a")
    else:
        p50, p99 = max(x[0] for x in lat), max(x[1] for x in lat)
        row["latency"] = (p50 <= P50_X and p99 <= P99_X, f"{p50:.2f}x / {p99:.2f}x")
    return {"row": row, "coverage": cov}


COLUMNS = [("warnings", "0 false/missed terr+EEZ"), ("launch_alert", "launch alert <=5 s of track"),
           ("valid_warning", "valid warning <=20 s of burnout"), ("impact_t60", "impact err T-60 <=1 km"),
           ("coverage", "95% ellipse holds truth"), ("fused_vs_best", "fused <= best nation per phase"),
           ("identity", "ID switches / ghosts"), ("flapping", "no flap, up to impact"),
           ("heap", "board heap <=160 KB"), ("latency", "p50/p99 vs floor <=1.2x/1.6x")]


def table(reports: Dict[str, Dict[str, Any]]) -> str:
    """The markdown table of every report (key -> bench JSON) with a last row for the suite."""
    head = "| scenario | window | " + " | ".join(t for _, t in COLUMNS) + " |"
    lines = [head, "|" + "---|" * (len(COLUMNS) + 2)]
    tot_cov = [0, 0]
    fails = {c: 0 for c, _ in COLUMNS}
    for key, r in reports.items():
        j = judge_row(r)
        tot_cov[0] += j["coverage"][0]
        tot_cov[1] += j["coverage"][1]
        cells = []
        for c, _ in COLUMNS:
            ok, text = j["row"][c]
            if ok is False:
                fails[c] += 1
            cells.append(_cell(ok, text))
        w = r.get("window_s") or [0, 0]
        lines.append(f"| {key} | {w[0]:g}-{w[1]:g} s | " + " | ".join(cells) + " |")
    frac = tot_cov[0] / tot_cov[1] if tot_cov[1] else None
    cov_ok = frac is not None and COVERAGE[0] <= frac <= COVERAGE[1]
    summary = []
    for c, _ in COLUMNS:
        if c == "coverage":
            summary.append(_cell(cov_ok if frac is not None else None,
                                 f"{tot_cov[0]}/{tot_cov[1]} = {frac:.0%}" if frac is not None else "none"))
        else:
            summary.append("ok" if not fails[c] else f"FAIL in {fails[c]}")
    lines.append(f"| **suite** | {len(reports)} runs | " + " | ".join(summary) + " |")
    return "\n".join(lines)


def load_reports(a: argparse.Namespace) -> Dict[str, Dict[str, Any]]:
    out: Dict[str, Dict[str, Any]] = {}
    for name, window in a.runs:
        key = run_key(name, window)
        f = Path(a.out) / f"{key}.json"
        if f.is_file():
            with open(f, encoding="utf-8") as fh:
                out[key] = json.load(fh)
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    a = _parse_args(sys.argv[1:] if argv is None else argv)
    rc = 0
    if not a.table_only:
        try:
            rc = run_all(a, lambda s: print(s, file=sys.stderr, flush=True))
        except KeyboardInterrupt:
            print("trilink suite: interrupted", file=sys.stderr)
            return 1
    reports = load_reports(a)
    if not reports:
        print(f"trilink suite: no report in {a.out}", file=sys.stderr)
        return 1
    text = table(reports)
    print(text)
    if a.table:
        with open(a.table, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
    return rc


if __name__ == "__main__":
    sys.exit(main())
