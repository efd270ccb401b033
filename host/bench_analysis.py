# bench_analysis.py: turn a bench run (bench_rig.RigOutput) into the report document
"""``analyse(out) -> (report, samples, capture)``: decodes the relay's
capture (bench_capture.py), computes latency per path (bench_latency.py),
accuracy and warnings against truth (bench_truth.py), and gathers the
counters of every part: the relay's /stats, the emulators' own counters and
the boards' summaries, with the checks that tie them together (a frame the
emulator delivered intact is a frame the relay received; the rest are its
crc/malformed counts).

    >>> report, samples, cap = analyse(rig_output)
    >>> report["paths"]["jp->kr"]["p50_ms"], report["verdict"]   # verdict is added by bench.py
"""
from __future__ import annotations

import re
import statistics
from typing import Any, Dict, List, Optional, Tuple

from trilink.bench_capture import Capture, read_capture
from trilink.bench_latency import latency_samples, lost_by_path, percentile, relay_summary, summarise
from trilink_board import wire

_BOOT = re.compile(r"^(\w+): boot node \d+ epoch \d+ mono_us (-?\d+) offset_us (-?\d+) drift_ppb (-?\d+)")
_RX_ERRORS = ("crc_error", "malformed", "oversize")


def _relay_cpu(out: Any, cap: Any) -> Dict[str, Any]:
    """The relay's CPU from start-up done to stop and per frame received, and what its CPU cap did."""
    frames = sum(lk.get("frames_in", 0) for lk in ((out.stats or {}).get("links") or {}).values())
    cpu = out.relay_cpu_s
    return {"cpu_s": None if cpu is None else round(cpu, 3), "frames_in": frames,
            "per_frame_ms": round(cpu * 1e3 / frames, 3) if cpu is not None and frames else None,
            "cap": out.cpu_cap}


def _gaps(times: Dict[Tuple[int, int], List[int]], node: int) -> Dict[str, Any]:
    gaps = []
    for (n, _), ts in times.items():
        if n == node and len(ts) >= 2:
            ts.sort()
            gaps.append(max(b - a for a, b in zip(ts, ts[1:])) / 1e9)
    return {"tracks": len(gaps), "tracks_within_1s": sum(1 for g in gaps if g <= 1.0),
            "longest_gap_s": round(max(gaps), 3) if gaps else None,
            "median_longest_gap_s": round(statistics.median(gaps), 3) if gaps else None}


def _update_gaps(cap: Capture, nodes: Dict[str, int]) -> Dict[str, Any]:
    """How often each track was updated, per nation: ``down`` over the PICTURE records sent to it
    (per fused track), ``up`` over the TRACK_REPORT records it sent (per board track), so that a
    slow picture can be told from a slow source. A track's longest gap is the longest time between
    two of its records (tracks seen at least twice); ``tracks_within_1s`` counts those at most 1 s."""
    down: Dict[Tuple[int, int], List[int]] = {}
    for f in cap.fused:
        down.setdefault((f.dst, f.tid), []).append(f.tx_ns)
    up: Dict[Tuple[int, int], List[int]] = {}
    for r in cap.reports.values():
        up.setdefault((r.src, r.tid), []).append(r.rx_ns)
    return {name: {"down": _gaps(down, node), "up": _gaps(up, node)} for name, node in nodes.items()}


def analyse(out: Any) -> Tuple[Dict[str, Any], List[Any], Capture]:
    """The report document (without ``verdict``), the latency samples and the decoded capture."""
    from trilink_edge.recorder import capture_files
    plan = out.plan
    serial = plan.link == "serial" or bool(plan.attach)
    baud = plan.baud if serial else None
    cap = read_capture(list(capture_files(out.capture)), out.keys, serial)
    nodes: Dict[str, int] = out.nodes
    names = {v: k for k, v in nodes.items()}
    paths = [f"{a}->{b}" for a in nodes for b in nodes if a != b]
    samples, skipped = latency_samples(cap, nodes, baud)
    lost = lost_by_path(cap, nodes, out.t_end_ns)
    report: Dict[str, Any] = {
        "schema": "trilink-bench/1",
        "scenario": plan.scenario, "nations": list(nodes), "link": "serial" if serial else "udp",
        "baud": baud, "impair": plan.impair, "attach": dict(plan.attach) or None,
        "window_s": [plan.start_s, plan.start_s + plan.duration_s],
        "runtime": out.runtime, "runtime_version": out.runtime_version,
        "paths": summarise(samples, paths, lost, skipped),
        "relay_ms": relay_summary(samples),
    }
    report["bytes_per_update"] = _bytes_per_update(cap, nodes)
    report["link_utilisation"] = _utilisation(cap, plan, baud)
    for p in paths:
        # a path whose source sent nothing (its radars never saw a missile) has nothing to carry
        report["paths"][p]["source_records"] = cap.report_records.get(nodes[p.split("->")[0]], 0)
    truth = _truth(out, cap, nodes, baud) if not plan.attach else None
    first = truth["first"] if truth else {}
    report["time_to_first_warning_s"] = {n: (first.get(n) or {}).get("s") for n in nodes}
    report["first_warnings"] = first or None
    report["warnings"] = _warnings(cap, nodes)
    report["warning_records"] = truth["warnings"] if truth else None
    report["judge"] = truth["judge"] if truth else None
    report["accuracy"] = truth["accuracy"] if truth else {"rmse_m": None, "impact_error_km": {},
                                                          "note": "attached boards: truth not aligned"}
    report["time_sync"] = _time_sync(out, cap, nodes)
    report["counters"] = _counters(out, cap, nodes)
    report["emulator_check"] = emulator_check(samples, out.emulators, names) if serial and out.emulators else None
    report["boards"] = {n: {"returncode": b.returncode, "counts": (b.summary or {}).get("counts"),
                            "peak_live_heap": (b.summary or {}).get("peak_live_heap"),
                            "peak_alloc_heap": (b.summary or {}).get("peak_alloc_heap"),
                            "picture_tracks": (b.summary or {}).get("picture_tracks"),
                            "max_lag_us": (b.summary or {}).get("max_lag_us"),
                            "error": _board_error(b.lines)} for n, b in out.boards.items()}
    report["relay_returncode"] = out.relay_returncode
    report["relay_cpu"] = _relay_cpu(out, cap)
    report["update_gaps"] = _update_gaps(cap, nodes)
    report["loss"] = {"paths": {p: report["paths"][p]["lost"] for p in paths},
                      "uplink_records": {n: _uplink_loss(out, cap, n, node) for n, node in nodes.items()}}
    report["rig_s"] = round(out.wall_s, 1)
    return report, samples, cap


def _bytes_per_update(cap: Capture, nodes: Dict[str, int]) -> Dict[str, Optional[float]]:
    up = sum(v for (link, d, t), v in cap.bytes.items() if d == "rx" and t == wire.TRACK_REPORT)
    down = sum(v for (link, d, t), v in cap.bytes.items() if d == "tx" and t == wire.PICTURE)
    nu = sum(cap.report_records.values())
    nd = sum(cap.picture_records.values())
    return {"uplink": round(up / nu, 1) if nu else None, "downlink": round(down / nd, 1) if nd else None,
            "uplink_records": nu, "downlink_records": nd}


def _utilisation(cap: Capture, plan: Any, baud: Optional[int]) -> Dict[str, Dict[str, Any]]:
    """Per link: bytes each way over the window and, on serial, the share of the line's capacity."""
    span = max(1e-9, (cap.last_ns - cap.first_ns) / 1e9) if cap.first_ns is not None and cap.last_ns else 1.0
    out: Dict[str, Dict[str, Any]] = {}
    for (link, d, _t), v in cap.bytes.items():
        e = out.setdefault(link, {"up_bytes": 0, "down_bytes": 0})
        e["up_bytes" if d == "rx" else "down_bytes"] += v
    for e in out.values():
        e["seconds"] = round(span, 2)
        if baud:
            cap_bps = baud / 10.0
            e["up"] = round(e["up_bytes"] / span / cap_bps, 4)
            e["down"] = round(e["down_bytes"] / span / cap_bps, 4)
    return out


def _truth(out: Any, cap: Capture, nodes: Dict[str, int], baud: Optional[int]) -> Dict[str, Any]:
    from trilink.bench_truth import TruthCheck
    from trilink_board import config
    scenario = config.load_scenario(out.scenario_file)
    if out.plan.seed is not None:
        scenario["seed"] = out.plan.seed
    origins = {}
    for name, node in nodes.items():
        o = config.load_nation(out.nation_files[name])["origin"]
        origins[node] = (o["lat"], o["lon"], o["alt_m"])
    tc = TruthCheck(scenario, out.plan.start_s, out.epoch_us)
    names = {v: k for k, v in nodes.items()}
    acc = tc.accuracy(cap.fused, origins, names, list(cap.reports.values()))
    votes: Dict[Tuple[int, int], Dict[str, int]] = {}
    for rec, missile, _ in tc.follow(cap.fused, origins):
        if missile is not None:
            v = votes.setdefault((rec.dst, rec.tid), {})
            v[missile] = v.get(missile, 0) + 1
    by_tid = {k: max(v, key=lambda m: v[m]) for k, v in votes.items()}
    warnings = tc.warning_records(cap, nodes, by_tid, baud)
    judged = tc.judge(cap, nodes, origins, out.nation_files, warnings, out.plan.start_s + out.plan.duration_s)
    return {"accuracy": acc, "first": tc.first_warnings(cap, nodes, by_tid, baud), "warnings": warnings,
            "judge": judged}


def _board_error(lines: List[str]) -> Optional[str]:
    """The last line of a board's traceback (e.g. ``MemoryError: ...``), or None."""
    for line in reversed(lines or []):
        if re.match(r"^\w*(Error|Exception)\b", line):
            return line.strip()
    return None


def _warnings(cap: Capture, nodes: Dict[str, int]) -> Dict[str, Dict[str, int]]:
    out = {}
    for name, node in nodes.items():
        ws = [w for w in cap.warnings if w.dst == node]
        ids = {w.warning_id for w in ws}
        acked = {wid for n, _t, wid, _s in cap.acks if n == node}
        out[name] = {"sent": len(ws), "warnings": len(ids), "acked": len(ids & acked),
                     "retransmissions": len(ws) - len(ids)}
    return out


def _time_sync(out: Any, cap: Capture, nodes: Dict[str, int]) -> Dict[str, Any]:
    """Per board: the time sync's estimate of (relay - board) at its last anchor, and the error of
    every DELIVERY's ``rx_relay_us`` (the latency error the sync causes), against the truth that
    the board's boot line gives (its clock = the host's monotonic clock bent by offset and drift)."""
    res: Dict[str, Any] = {}
    for name, b in out.boards.items():
        s = (b.summary or {}).get("sync") or {}
        boot = boot_line(b.lines, name)
        e: Dict[str, Any] = {"synced": s.get("synced"), "offset_us": s.get("offset_us"),
                             "delay_us": s.get("delay_us"), "drift_ppm": _r(s.get("drift_ppm"), 2)}
        if boot and s.get("synced") and s.get("base_local_us"):
            boot_us, off_us, drift_ppb = boot
            local = s["base_local_us"]
            # local = boot + (mono - boot)(1 + d) + off  =>  mono = boot + (local - off - boot)/(1 + d)
            mono = boot_us + (local - off_us - boot_us) / (1 + drift_ppb * 1e-9)
            true_off = mono - local
            e["true_offset_us"] = round(true_off)
            e["error_us"] = round(s["offset_us"] - true_off)
            e["true_drift_ppm"] = round(-drift_ppb / 1000 / (1 + drift_ppb * 1e-9), 2)
        if boot:
            errs = sorted(abs(sync_error_us(d.rx_local_us, d.rx_relay_us, boot))
                          for d in cap.deliveries.values() if d.dst == nodes.get(name) and d.rx_relay_us)
            if errs:
                e["delivery_error_us"] = {"n": len(errs), "p50": round(errs[len(errs) // 2]),
                                          "max": round(errs[-1])}
        res[name] = e
    return res


def sync_error_us(rx_local_us: int, rx_relay_us: int, boot: Tuple[int, int, int]) -> float:
    """The board's relay-time of its local ``rx_local_us`` minus the truth, for a board whose boot
    line gave (mono_us at boot, offset_us, drift_ppb): its clock is
    ``local = boot + (mono - boot) (1 + drift) + offset`` on the relay host's monotonic clock."""
    boot_us, off_us, drift_ppb = boot
    mono = boot_us + (rx_local_us - off_us - boot_us) / (1 + drift_ppb * 1e-9)
    return rx_relay_us - mono


def boot_line(lines: List[str], name: str) -> Optional[Tuple[int, int, int]]:
    """(mono_us, offset_us, drift_ppb) from a board's boot line, or None."""
    for line in lines:
        m = _BOOT.match(line)
        if m and m.group(1) == name:
            return int(m.group(2)), int(m.group(3)), int(m.group(4))
    return None


def _uplink_loss(out: Any, cap: Capture, name: str, node: int) -> Optional[Dict[str, int]]:
    b = out.boards.get(name)
    if b is None or not b.summary:
        return None
    sent = int(b.summary["counts"].get("reports", 0))
    got = cap.report_records.get(node, 0)
    return {"sent": sent, "received": got, "lost": max(0, sent - got)}


def _counters(out: Any, cap: Capture, nodes: Dict[str, int]) -> Dict[str, Any]:
    st = out.stats or {}
    relay_links = {}
    for name, lk in (st.get("links") or {}).items():
        relay_links[name] = {k: lk.get(k) for k in ("frames_in", "frames_out", "bytes_in", "bytes_out", "crc_error",
                                                     "malformed", "oversize", "auth_fail", "replay", "dropped_stale",
                                                     "tx_dropped", "reopen", "max_window_bytes", "budget")
                             if k in lk}
    res: Dict[str, Any] = {"relay": {"links": relay_links, "pipeline": st.get("pipeline"),
                                     "capture_rejected": cap.rejected, "capture_undecodable": cap.undecodable}}
    boards = {}
    for name, b in out.boards.items():
        c = dict((b.summary or {}).get("counts") or {})
        for k, v in ((b.summary or {}).get("deframer") or {}).items():
            if k in _RX_ERRORS:
                c[k] = int(c.get(k) or 0) + int(v)
        boards[name] = {k: c.get(k) for k in ("frames_in", "frames_out", "crc_error", "malformed", "oversize",
                                              "auth_fail", "replay", "reports", "pictures", "fused_updates",
                                              "deliveries", "warnings", "warning_copies", "no_base",
                                              "keyframe_reqs_sent") if k in c}
    res["boards"] = boards
    emu: Dict[str, Any] = {}
    for name, em in out.emulators.items():
        c = em.counters().as_dict()
        entry: Dict[str, Any] = {"counters": c}
        lk = relay_links.get(name)
        if hasattr(em, "frames") and lk is not None and "ab" in c:
            ab = c["ab"]
            intact = ab["frames"] - ab["frames_damaged"]
            rx_err = sum(int(lk.get(k) or 0) for k in _RX_ERRORS)
            bc = boards.get(name) or {}
            entry["match"] = {
                # every frame the emulator carried intact reached the relay's deframer, no more, no fewer
                "uplink_intact_frames": intact, "relay_frames_in": lk.get("frames_in"),
                "uplink_ok": intact == lk.get("frames_in"),
                "uplink_damaged_frames": ab["frames_damaged"], "relay_rx_errors": rx_err,
                "downlink_damaged_frames": c["ba"]["frames_damaged"],
                # the board stops reading at the end of its window; the relay sends on until stopped
                "downlink_damaged_in_window": sum(1 for f in em.frames("ba")
                                                  if f.damaged and f.t_wire_end_ns < out.t_end_ns - 50_000_000),
                "board_rx_errors": sum(int(bc.get(k) or 0) for k in _RX_ERRORS),
                "bits_flipped": {"up": ab["bits_flipped"], "down": c["ba"]["bits_flipped"]},
            }
        emu[name] = entry
    res["emulator"] = emu
    return res


def emulator_check(samples: List[Any], emulators: Dict[str, Any], names: Dict[int, str]) -> Optional[Dict[str, Any]]:
    """The bench's uplink and delivery instants against the null-modem's own record of when
    each frame's last bit crossed the wire (``t_wire_end_ns``, the model instant; ``t_out_ns``,
    the hand-over stamp, can trail it by a thread switch in this process): differences in ms."""
    index: Dict[Tuple[str, str], Dict[bytes, Any]] = {}
    for name, em in emulators.items():
        if not hasattr(em, "frames"):
            return None
        for d in ("ab", "ba"):
            m = {}
            for fr in em.frames(d):
                try:
                    m.setdefault(bytes(wire.cobs_decode(fr.data)), fr)
                except (wire.WireError, ValueError):
                    continue
            index[(name, d)] = m
    up, down = [], []
    for s in samples:
        a = index.get((names[s.src], "ab"), {}).get(s.report_raw)
        b = index.get((names[s.dst], "ba"), {}).get(s.picture_raw)
        if a is not None and a.t_wire_end_ns:
            up.append(s.rx_us - a.t_wire_end_ns / 1000.0)
        if b is not None and b.t_wire_end_ns:
            down.append(s.delivered_us - b.t_wire_end_ns / 1000.0)
    if not up and not down:
        return None

    def st(v: List[float]) -> Dict[str, Any]:
        a = [abs(x) for x in v]
        return {"n": len(v), "median_ms": _r(statistics.median(v) / 1000 if v else None, 3),
                "p99_abs_ms": _r((percentile(a, 99) or 0) / 1000, 3), "max_abs_ms": _r(max(a) / 1000 if a else None, 3)}
    return {"relay_rx_minus_emulator": st(up), "delivered_minus_emulator": st(down)}


def _r(v: Optional[float], nd: int) -> Optional[float]:
    return None if v is None else round(v, nd)
