# report.py: the bench report as a terminal table and as PNG plots (latency CDF per path with its floor; timeline)
"""Presentation of a ``trilink bench`` report document (bench.py makes it;
its JSON form is the document itself, ``json.dump(report)``).

    >>> print(format_report(report))           # the table the bench prints
    >>> plot(report, samples, "bench.png")      # needs matplotlib (pip install '.[plot]')
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence


def _f(v: Optional[float], fmt: str = "{:.1f}") -> str:
    return "-" if v is None else fmt.format(v)


def _table(head: Sequence[str], rows: List[Sequence[str]]) -> List[str]:
    w = [max(len(str(r[i])) for r in [head] + rows) for i in range(len(head))]
    line = lambda r: "  ".join(str(c).rjust(w[i]) if i else str(c).ljust(w[i]) for i, c in enumerate(r))  # noqa: E731
    return [line(head), "  ".join("-" * x for x in w)] + [line(r) for r in rows]


def format_report(r: Dict[str, Any]) -> str:
    """The readable report: paths, relay, warnings, accuracy, counters, verdict."""
    link = f"serial {r['baud']} baud 8N1" if r["link"] == "serial" else "UDP loopback"
    out = [f"trilink bench: scenario '{r['scenario']}' window t={r['window_s'][0]:g}..{r['window_s'][1]:g} s, "
           f"{' + '.join(r['nations'])} over {link}" + (f", impaired {r['impair']}" if r.get("impair") else ""),
           f"boards: {r['runtime_version']}   run {_f(r.get('run_s'))} s", "",
           "end-to-end latency per path (ms): measurement at the source -> fused update received at the destination"]
    rows = []
    for path, p in r["paths"].items():
        rows.append([path, str(p["count"]), _f(p["p50_ms"]), _f(p["p90_ms"]), _f(p["p99_ms"]), _f(p["max_ms"]),
                     _f(p["floor_p50_ms"]), _f(p["p50_ratio"], "{:.2f}x"), _f(p["p99_ratio"], "{:.2f}x"),
                     f"{_f(p['uplink_p50_ms'])}/{_f(p['relay_p50_ms'])}/{_f(p['downlink_p50_ms'])}",
                     str(p["lost"])])
    out += _table(["path", "n", "p50", "p90", "p99", "max", "floor", "p50/fl", "p99/fl", "up/relay/down p50",
                   "lost"], rows)
    rm = r["relay_ms"]
    out += ["", f"relay (report received -> picture written): p50 {_f(rm['p50'], '{:.2f}')} ms, "
                f"p99 {_f(rm['p99'], '{:.2f}')} ms, share of e2e p50 {_f(rm['share_p50'], '{:.1%}' if rm['share_p50'] is not None else '{}')}"]
    rc = r.get("relay_cpu") or {}
    if rc.get("cpu_s") is not None:
        line = (f"relay CPU: {rc['cpu_s']:.2f} s from start-up done to stop"
                + (f" ({rc['per_frame_ms']:.2f} ms per frame received)" if rc.get("per_frame_ms") is not None else ""))
        cap = rc.get("cap")
        if cap:
            line += (f"; capped at {cap['percent']:g}% of a core per {cap['period_ms']:g} ms: throttled in "
                     f"{int(cap.get('throttled_periods', 0))} of {int(cap.get('periods', 0))} periods "
                     f"({cap.get('throttled_s', 0.0):.2f} s)")
        out.append(line)
    ug = r.get("update_gaps") or {}

    def gaps(g: Dict[str, Any]) -> str:
        return (f"{g['tracks_within_1s']} of {g['tracks']} within 1 s (worst {g['longest_gap_s']:.2f} s)"
                if g["tracks"] else "none")
    if ug:
        out.append("tracks updated at >= 1 Hz (longest gap between two records of a track): " + "; ".join(
            f"to {n} {gaps(g['down'])}, from {n} {gaps(g['up'])}" for n, g in ug.items()))
    tw = r["time_to_first_warning_s"]
    fw = r.get("first_warnings") or {}
    ws = r.get("warnings", {})

    def first(n: str, v: Optional[float]) -> str:
        d = fw.get(n) or {}
        if v is None:
            return f"{n} - (none named it)"
        bound = ", bounded by the window's start" if d.get("at_window_start") else ""
        return f"{n} {v:.1f} s ({d.get('missile') or '?'}{bound})"
    out.append("time to first warning naming the nation, from launch: " + ", ".join(first(n, v) for n, v in tw.items()))
    out.append("warnings per destination: " + ", ".join(
        f"{n} {w.get('warnings', 0)} ({w.get('acked', 0)} acked)" for n, w in ws.items()))
    for w in r.get("warning_records") or []:
        steps = " -> ".join(f"{e['status']} {e['t_sent_s']:.1f}" for e in w["timeline"])
        p = w["predicted"]
        truth = (f"; truth {w['missile']} error {w['error_km']:.1f} km, ellipse "
                 f"{'holds' if w['ellipse_holds_truth'] else 'misses'} it" if "error_km" in w else "")
        out.append(f"  warning {w['warning_id']} to {w['destination']}: {w['kind']} {w['nation']}, "
                   f"{p['lat']:.2f} {p['lon']:.2f} at t={p['t_impact_s']:.0f} s; {steps}{truth}")
    acc = r["accuracy"]
    imp = ", ".join(f"{m} {v['error_km']:.1f} km at T-{v['t_before_impact_s']:.0f} s"
                    for m, v in (acc.get("impact_error_km") or {}).items()) or "-"

    def per(d: Optional[Dict[str, float]]) -> str:
        return ", ".join(f"{k} {v:.0f} m" for k, v in (d or {}).items()) or "-"
    out.append(f"accuracy: fused position RMSE {_f(acc.get('rmse_m'), '{:.0f} m')} (as received by "
               f"{per(acc.get('rmse_m_by_destination'))}); each nation's own reports: "
               f"{per(acc.get('rmse_m_by_sensor'))}; impact point error {imp}")
    if r.get("judge"):
        out += format_judge(r["judge"])
    heap = ", ".join(f"{n} {b['peak_live_heap'] / 1024:.0f} KB" + (f" ({b['error']})" if b.get("error") else "")
                     for n, b in (r.get("boards") or {}).items() if b.get("peak_live_heap"))
    if heap:
        out.append(f"board peak live heap: {heap}")
    bpu = r["bytes_per_update"]
    util = ", ".join(f"{k} up {v.get('up', 0):.1%} down {v.get('down', 0):.1%}" if "up" in v
                     else f"{k} up {v['up_bytes']} B down {v['down_bytes']} B"
                     for k, v in r["link_utilisation"].items())
    out.append(f"bytes per update: uplink {_f(bpu['uplink'])}, downlink {_f(bpu['downlink'])}; link use: {util}")
    ts = r.get("time_sync") or {}
    if ts:
        out.append("time sync (estimate - truth): " + ", ".join(
            f"{n} {_f(v.get('error_us'), '{:+.0f} us')} (drift {_f(v.get('drift_ppm'), '{:+.1f}')} ppm, "
            f"true {_f(v.get('true_drift_ppm'), '{:+.1f}')})" for n, v in ts.items()))
    c = r["counters"]
    lines = []
    for n, lk in c["relay"]["links"].items():
        em = (c.get("emulator", {}).get(n) or {}).get("match")
        extra = ""
        if em:
            extra = (f"; emulator: {em['uplink_damaged_frames']} up / {em['downlink_damaged_frames']} down frames "
                     f"damaged, {em['bits_flipped']['up']}+{em['bits_flipped']['down']} bits flipped, intact up "
                     f"{em['uplink_intact_frames']} = relay in {em['relay_frames_in']}: "
                     f"{'ok' if em['uplink_ok'] else 'MISMATCH'}; board rx errors {em['board_rx_errors']}")
        lines.append(f"  {n}: in {lk.get('frames_in')} out {lk.get('frames_out')} crc {lk.get('crc_error')} "
                     f"malformed {lk.get('malformed')} stale {lk.get('dropped_stale')}{extra}")
    out += ["counters (relay links):"] + lines
    loss = r.get("loss", {}).get("uplink_records") or {}
    if loss:
        out.append("uplink records sent/received: " + ", ".join(
            f"{n} {v['sent']}/{v['received']}" for n, v in loss.items() if v))
    ec = r.get("emulator_check")
    if ec:
        a, b = ec["relay_rx_minus_emulator"], ec["delivered_minus_emulator"]
        out.append(f"check against the emulator's record: relay rx - wire {_f(a['median_ms'], '{:.3f}')} ms median "
                   f"(max {_f(a['max_abs_ms'], '{:.3f}')}); delivered - wire {_f(b['median_ms'], '{:.3f}')} ms "
                   f"median (max {_f(b['max_abs_ms'], '{:.3f}')})")
    v = r.get("verdict")
    if v:
        out.append("")
        for ch in v["checks"]:
            out.append(f"  [{'ok' if ch['ok'] else 'FAIL'}] {ch['check']}: {ch['value']}")
        out.append("verdict: " + ("PASS" if v["pass"] else "FAIL"))
    return "\n".join(out)


def _s(v: Any, fmt: str = "{:+.1f} s") -> str:
    return "-" if v is None else v if isinstance(v, str) else fmt.format(v)


def format_judge(j: Dict[str, Any]) -> List[str]:
    """The truth-judged lines (bench_truth.TruthCheck.judge): per missile and nation, identity, GOSPA,
    warning counts."""
    out = ["judged against the truth (times from launch; docs/BENCH.md):"]
    for m, e in (j.get("missiles") or {}).items():
        imp = e["impact"]
        by = ", ".join(f"{n} {_s(v, '+{:.0f}')}" for n, v in e["first_track_by_nation_s"].items())
        out.append(f"  {m}: launch t={e['t_launch_s']:g} s, burnout +{e['t_burnout_s'] - e['t_launch_s']:.0f} s, "
                   f"impact +{e['t_impact_s'] - e['t_launch_s']:.0f} s at {imp['lat']:.2f} {imp['lon']:.2f}; "
                   f"first radar track {_s(e['first_track_s'], '+{:.0f} s')} ({by})"
                   + (f"; launch point error {e['launch_point_error_km']:.1f} km" if "launch_point_error_km" in e
                      else "")
                   + (f", launch time error {e['launch_time_error_s']:+.1f} s" if "launch_time_error_s" in e
                      else ""))
        for n, v in (e.get("nations") or {}).items():
            oc = ", ".join(f"{k} {o}" for k, o in v["outcome"].items()) or (
                "not judged (the impact is after the run)" if v["truth"] else "nothing owed, nothing sent")
            out.append(f"    {n}: truth {v['truth'] or 'no threat'}; {oc}; launch alert {_s(v['launch_alert_s'])} "
                       f"({_s(v['launch_alert_from_track_s'])} after the first track); first valid warning "
                       f"{_s(v['first_valid_warning_s'])} ({_s(v['first_valid_warning_after_burnout_s'])} after "
                       f"burnout); issued {v['issued']}, flaps {v['flaps']}"
                       + (f", cancelled {v['cancelled_s_before_impact']:.0f} s before impact (early)"
                          if v.get("early_cancel") else ""))
        cps = [c for c in e.get("impact_checkpoints") or []]
        if cps:
            out.append("    impact error at T-: " + ", ".join(
                f"{c['destination']} T-{c['t_to_go_s']:.0f} {c['error_km']:.2f} km "
                f"({'held' if c['ellipse_holds_truth'] else 'outside'})" for c in cps))
        ph = e.get("rmse_m_by_phase") or {}
        rows = []
        for phase in ("boost", "midcourse", "terminal"):
            vals = [f"{src} {d[phase]['rmse_m']:.0f}" for src, d in ph.items() if phase in d]
            if vals:
                rows.append(f"{phase} " + "/".join(vals))
        if rows:
            out.append("    RMSE by phase (m, fused/each nation's own): " + "; ".join(rows))
        g = e.get("sharing_gain") or {}
        if g:
            out.append("    sharing gain: " + "; ".join(
                f"{n} launch {_s(v['launch_s'])}, threat >= {_s(v['threat_at_least_s'])}"
                + "".join(f", {ph} x{x['ratio']:.2f}" for ph, x in v["error_by_phase"].items()
                          if x.get("ratio") is not None) for n, v in g.items()))
    ids = j.get("identity") or {}
    if ids:
        out.append("  identity: " + "; ".join(
            f"{n} {sum(v['switches'].values())} switches, {len(v['ghosts'])} ghosts, {len(v['duplicates'])} "
            f"duplicates" for n, v in ids.items()))
    gp = j.get("gospa") or {}
    pr = j.get("params") or {}
    if gp:
        out.append(f"  GOSPA (c {pr.get('gospa_c_m', 0) / 1000:g} km, p {pr.get('gospa_p')}, alpha "
                   f"{pr.get('gospa_alpha')}): " + "; ".join(
                       f"{n} mean {v['mean_m']:.0f} m (localisation {v['mean_localisation_m']:.0f} m, missed "
                       f"{v['mean_missed']:.2f}, false {v['mean_false']:.2f})" for n, v in gp.items()))
    wc = j.get("warning_counts") or {}
    eez = j.get("eez_judged") or {}
    if wc:
        out.append("  warnings correct/false/missed: " + "; ".join(
            f"{n} " + ", ".join(f"{k} " + ("n/a" if k == "eez" and not eez.get(n) else
                                          f"{c['correct']}/{c['false']}/{c['missed']}")
                                for k, c in kinds.items()) for n, kinds in wc.items()))
    return out


def plot(report: Dict[str, Any], samples: List[Any], path: str) -> None:
    """Two panels: the latency CDF of each path with its floor's CDF dashed, and a timeline
    of the run (each delivered report's latency against time, split by path). ImportError
    without matplotlib."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    judged = bool((report.get("judge") or {}).get("missiles"))
    if judged:
        fig, (a, b, m) = plt.subplots(1, 3, figsize=(18, 5.5), gridspec_kw={"width_ratios": [1, 1, 1.2]})
        plot_map(m, report["judge"])
    else:
        fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    t0 = min((s.t_meas_us for s in samples), default=0)
    for i, p in enumerate(report["paths"]):
        s = [x for x in samples if x.path == p]
        if not s:
            continue
        col = f"C{i}"
        e = sorted(x.e2e_us / 1000 for x in s)
        f = sorted(x.floor_us / 1000 for x in s)
        ys = [(k + 1) / len(e) for k in range(len(e))]
        a.step(e, ys, where="post", color=col, label=f"{p} end to end")
        if any(f):
            a.step(f, ys, where="post", color=col, linestyle="--", label=f"{p} wire floor")
        b.plot([(x.t_meas_us - t0) / 1e6 for x in s], [x.e2e_us / 1000 for x in s], ".", color=col, ms=3,
               label=f"{p} end to end")
        b.plot([(x.t_meas_us - t0) / 1e6 for x in s], [x.relay_us / 1000 for x in s], "x", color=col, ms=3,
               alpha=0.5, label=f"{p} relay part")
    a.set_xlabel("latency (ms)")
    a.set_ylabel("fraction of reports")
    a.set_title("latency CDF per path, wire floor dashed")
    a.grid(alpha=0.3)
    a.legend(fontsize=8)
    b.set_xlabel("time since first delivered report (s)")
    b.set_ylabel("latency (ms)")
    b.set_title("timeline of the run")
    b.grid(alpha=0.3)
    b.legend(fontsize=8)
    fig.suptitle(f"trilink bench: {report['scenario']}, {report['link']}"
                 + (f" {report['baud']} baud" if report.get("baud") else "") + f", boards on {report['runtime']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_map(ax: Any, j: Dict[str, Any]) -> None:
    """The judged flights on a lat/lon map: territories (filled) and EEZs (dashed) of each nation, the
    truth's ground tracks with launch and impact, and the predicted impact ellipses (95%) as sent to
    each destination over time, light to dark."""
    import math
    geo_ = j.get("geometry") or {}
    for i, (n, g) in enumerate(geo_.items()):
        col = f"C{i + 4}"
        for k, poly in enumerate(g.get("territory") or []):
            ys, xs = zip(*(list(poly) + [poly[0]]))
            ax.fill(xs, ys, color=col, alpha=0.25, label=f"{n} territory" if k == 0 else None)
        for k, poly in enumerate(g.get("eez") or []):
            ys, xs = zip(*(list(poly) + [poly[0]]))
            ax.plot(xs, ys, "--", color=col, lw=0.8, label=f"{n} EEZ" if k == 0 else None)
    for i, (m, e) in enumerate(j["missiles"].items()):
        col = f"C{i}"
        gt = e.get("ground_track") or []
        if gt:
            ax.plot([p[1] for p in gt], [p[0] for p in gt], "-", color=col, lw=1.2, label=f"{m} truth")
        ax.plot(e["launch_site"]["lon"], e["launch_site"]["lat"], "^", color=col, ms=6)
        ax.plot(e["impact"]["lon"], e["impact"]["lat"], "x", color=col, ms=9, mew=2)
        for dst, ps in (e.get("predictions") or {}).items():
            for k, (t, lat, lon, a, b, o) in enumerate(ps):
                alpha = 0.15 + 0.7 * (k + 1) / len(ps)
                th = [2 * math.pi * s / 48 for s in range(49)]
                oo = math.radians(o)
                xs, ys = [], []
                for tt in th:
                    u, v = a * math.cos(tt), b * math.sin(tt)
                    east = u * math.sin(oo) + v * math.cos(oo)
                    north = u * math.cos(oo) - v * math.sin(oo)
                    ys.append(lat + north / 111195.0)
                    xs.append(lon + east / (111195.0 * max(0.1, math.cos(math.radians(lat)))))
                ax.plot(xs, ys, "-", color=col, lw=0.6, alpha=alpha)
    ax.set_xlabel("longitude (deg E)")
    ax.set_ylabel("latitude (deg N)")
    ax.set_title("truth ground tracks (x impact), predicted 95% impact ellipses over time")
    ax.set_aspect(1.25)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
