# cases.py: the reliability campaign's cases (noise, faults, load, adversary, fuzz), short or long
"""Each case builds a :class:`~campaign.rig.Rig` (real ``trilink-edge``, real
CPython board processes, real ptys or UDP), injects one kind of trouble,
and returns a :class:`CaseResult`: what was injected, what was observed,
and the acceptance checks that failed (``failures``; empty = passed).
``tests/campaign/test_campaign.py`` runs them short; ``tools/campaign.py
--long`` runs them long and writes docs/RELIABILITY.md.

    r = noise_serial(Path("/tmp/x"), ber=1e-4, seconds=20)
    assert not r.failures, r.failures

Acceptance (docs/RELIABILITY.md): zero crashes, zero forged, replayed or corrupted
frames accepted, zero warnings lost; recovery after an unplug <= 2 s and
after a relay restart <= 5 s; relay RSS growth under the 10x load <= 10 MB.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

from campaign.rig import NODE_IDS, REPO, Rig
# what every case shares, and the fault cases: in modules of their own, imported from here
from campaign.outcome import (  # noqa: F401
    DEBRIS_STRIKE, HERE, REJECT_KEYS, RELAY_RESTART_LIMIT_S, RSS_LIMIT_MB, STOP_LIMIT_S, STRIKE, STRIKE_START,
    UNPLUG_LIMIT_S, CaseResult, _finish_rig, totals)
from campaign.faults import (  # noqa: F401
    capture_disk_full, clock_step, kill_board, relay_kill_replay, relay_lost_state, relay_restart,
    shared_learned_link, state_unwritable, unplug)


# ----------------------------------------------------------------------------- noise

def noise_serial(tmp: Path, ber: float, seconds: float) -> CaseResult:
    """Bit errors at ``ber`` on both serial links, both directions. Exact: the
    relay accepts precisely the frames the emulator delivered intact."""
    r = CaseResult(f"noise serial BER {ber:g}", f"ber={ber:g} both links, both directions, 115200 baud")
    t0 = time.monotonic()
    with Rig(tmp, "serial", impair={n: f"ber={ber},seed={i + 11}" for i, n in enumerate(("jp", "kr"))},
             scenario=STRIKE, start=STRIKE_START) as rig:
        rig.start(seconds)
        out = _finish_rig(rig, r)
        st = out["stats"]
        flipped = damaged = intact_total = rejected = 0
        for n, nm in rig.modems.items():
            ab = nm.frames("ab")
            intact = sum(1 for f in ab if not f.damaged and f.t_out_ns is not None)
            dmg = sum(1 for f in ab if f.damaged)
            rx = st["nodes"][n]["rx_frames"]
            r.bad_accepted += max(0, rx - intact)
            # Intact frames a board sent before it answered the relay's challenge are refused
            # (unverified, PROTOCOL.md 2.2); every other intact frame is accepted.
            unv = st["nodes"][n]["unverified"]
            r.check(rx + unv == intact, f"{n}: relay accepted {rx} frames + {unv} unverified, the emulator "
                                        f"delivered {intact} intact")
            ba_intact = sum(1 for f in nm.frames("ba") if not f.damaged and f.t_out_ns is not None)
            brx = out["summaries"].get(n, {}).get("counts", {}).get("frames_in", 0)
            r.bad_accepted += max(0, brx - ba_intact)
            c = nm.counters()
            flipped += c.ab.bits_flipped + c.ba.bits_flipped
            damaged += dmg
            intact_total += intact
            rejected += sum(st["links"][n][k] for k in REJECT_KEYS)
        r.counts.update(damaged=damaged, rejected=rejected, flipped=flipped)
        r.counted = f"{damaged} damaged uplink frames: relay rejections {rejected}; {flipped} bits flipped"
        r.notes.append(f"relay accepted = intact uplink frames ({intact_total})")
    r.seconds = time.monotonic() - t0
    return r.finish()


def noise_udp(tmp: Path, impair: str, seconds: float) -> CaseResult:
    """UDP loss / duplication / reordering through UdpProxy on both links."""
    r = CaseResult(f"noise UDP {impair}", f"UdpProxy {impair} both links, both directions")
    t0 = time.monotonic()
    with Rig(tmp, "udp", impair={n: f"{impair},seed={i + 21}" for i, n in enumerate(("jp", "kr"))},
             scenario=STRIKE, start=STRIKE_START) as rig:
        rig.start(seconds)
        out = _finish_rig(rig, r)
        st = out["stats"]
        parts = []
        for n, px in rig.proxies.items():
            c = px.counters().ab
            sent = out["summaries"].get(n, {}).get("counts", {}).get("frames_out", 0)
            rx = st["nodes"][n]["rx_frames"]
            r.bad_accepted += max(0, rx - (sent - c.dropped))
            # Every datagram delivered is accepted, a replay (a duplicate: a datagram held back
            # by one is inside the relay's replay window, PROTOCOL.md 3.2) or refused before the
            # board answered the relay's challenge (unverified, 2.2).
            delivered = sent - c.dropped + c.duplicated
            replay = st["links"][n]["replay"]
            unv = st["nodes"][n]["unverified"]
            parts.append(f"{n}: sent {sent} dropped {c.dropped} dup {c.duplicated} reordered {c.reordered} "
                         f"-> accepted {rx} + replay {replay} + unverified {unv} (delivered {delivered})")
            r.check(rx + replay + unv == delivered, f"{n}: accepted + replay + unverified != delivered")
            r.check(replay <= c.duplicated, f"{n}: replay {replay} > duplicated {c.duplicated}")
        r.counted = "; ".join(parts)
    r.seconds = time.monotonic() - t0
    return r.finish()


# ----------------------------------------------------------------------------- load

LOAD_MIN_S = 45.0    # the relay judges a track ballistic (and warns) ~30 s after first seeing it (edge/phase.py)
LOAD_BUDGET = 1728   # B/s: a 19200-baud line at the relay's 0.9 serial budget factor


def load(tmp: Path, seconds: float, speed: float = 10.0, window_s: float = 110.0) -> CaseResult:
    """The debris scenario (61 objects; plus the strike's two SRBMs so that
    warnings are at stake) at ``speed`` x its rate over UDP, each link's
    budget that of a 19200-baud line: the relay must drop (stale) track
    updates, keep its memory and queues bounded and deliver every warning.
    (A 115200-baud budget no longer binds: the relay sends no impact for a
    fragment it has not yet judged ballistic, and the records are smaller.)
    The scenario's interesting part lasts ~110 s at 10x, so a longer run
    relaunches the boards on the same window, against the same relay."""
    r = CaseResult(f"load: debris x{speed:g}", f"debris+strike scenario at {speed:g}x real time for "
                   f"{max(seconds, LOAD_MIN_S):g} s, UDP, budget {LOAD_BUDGET} B/s per link (19200 baud)")
    t0 = time.monotonic()
    # At least LOAD_MIN_S of relay time: phases (and so warnings) are judged
    # on the relay's clock, whatever speed the scenario runs at.
    seconds = max(seconds, LOAD_MIN_S)
    with Rig(tmp, "udp", scenario=DEBRIS_STRIKE, start=205.0, speed=speed, budget=LOAD_BUDGET) as rig:
        first = min(seconds, window_s)
        rig.start(first * speed)
        start = rig.epoch_us / 1e6
        samples = []
        left = seconds - first
        while True:
            now = time.monotonic()
            if now >= rig.epoch_us / 1e6 + rig.duration / speed:
                if left <= 0:
                    break
                rig.wait_boards()
                nxt = min(left, window_s)
                left -= nxt
                rig.relaunch_boards(nxt * speed)
            try:
                st = rig.stats(1.0)
                q = max(d["queue_depth"] for d in st["links"].values())
                samples.append((time.monotonic() - start, rig.relay_rss_kb(), q,
                                sum(d["dropped_stale"] for d in st["links"].values())))
            except OSError:
                pass
            time.sleep(1.0)
        out = _finish_rig(rig, r)
        st = out["stats"]
        warm = [s for s in samples if s[0] >= min(10.0, seconds * 0.25)]
        base = warm[0][1] if warm else samples[0][1]
        peak = max(s[1] for s in warm or samples)
        r.rss_growth_mb = (peak - base) / 1024.0
        qmax = max(s[2] for s in samples)
        dropped = st["links"]["jp"]["dropped_stale"] + st["links"]["kr"]["dropped_stale"]
        sched = {k: v for k, v in st["links"]["jp"].items() if "drop" in k}
        r.counted = (f"RSS {base / 1024:.1f} MB after warm-up -> peak {peak / 1024:.1f} MB; max queue depth "
                     f"{qmax} (sampled 1/s); dropped_stale {dropped}; jp link drops {sched}; "
                     f"reports in {st['pipeline']['reports_in']}")
        r.check(r.rss_growth_mb <= RSS_LIMIT_MB, f"RSS grew {r.rss_growth_mb:.1f} MB")
        r.check(dropped > 0, "the budget never forced a drop: the load is not a load")
        r.check(r.warnings > 0, "no warning was at stake")
        limits = rig_limits(st)
        r.check(qmax <= limits, f"queue depth {qmax} above the configured bounds {limits}")
        step = max(1, len(samples) // 8)
        r.notes.append(f"RSS samples (s, kB): {[(round(s[0]), s[1]) for s in samples[::step]]}")
    r.seconds = time.monotonic() - t0
    return r.finish()


def rig_limits(stats: Dict[str, Any]) -> int:
    """The most items a link's scheduler may hold: control + warnings + the
    track sources' pending bound (edge/scheduler.py, edge/pipeline.py defaults)."""
    return 64 + 256 + 256 * 2


# ----------------------------------------------------------------------------- adversary

ROGUE_COUNTS = {"random": 300, "oversize": 50, "truncated": 150, "forged_key": 100, "forged_tag": 100,
                "claim_other": 100, "claim_unknown": 50, "replay": 150, "replay_cross": 50, "flood": 3000}


def _udp_drops(port: int) -> int:
    """Datagrams the kernel dropped for the socket bound to 127.0.0.1:port (/proc/net/udp)."""
    want = f"0100007F:{port:04X}"
    with open("/proc/net/udp") as fh:
        for line in fh.readlines()[1:]:
            f = line.split()
            if f[1] == want:
                return int(f[-1])
    return 0


def adversary(tmp: Path, seconds: float, scale: int = 1) -> CaseResult:
    """A rogue process on JP's UDP link (tests/campaign/rogue.py): junk,
    oversize and truncated frames, forgeries with KR's (stolen) key, frames
    claiming KR's and unknown ids, replays of JP's captured frames (also on
    KR's link) and a flood. Run beside an identical rig without the rogue:
    the pictures must agree, every injection must be counted."""
    counts = {k: v * scale for k, v in ROGUE_COUNTS.items()}
    r = CaseResult("adversary: rogue on a UDP link", ", ".join(f"{k} {v}" for k, v in counts.items()))
    t0 = time.monotonic()
    import threading
    base_out: Dict[str, Any] = {}
    base_r = CaseResult("baseline", "")

    def baseline() -> None:
        with Rig(tmp / "baseline", "udp", scenario=STRIKE, start=STRIKE_START) as b:
            b.start(seconds)
            base_out.update(_finish_rig(b, base_r))
            base_out["shown"] = {n: warned_tracks(bd) for n, bd in b.boards.items()}
    th = threading.Thread(target=baseline)
    th.start()
    with Rig(tmp / "attacked", "udp", scenario=STRIKE, start=STRIKE_START) as rig:
        rig.start(seconds)
        start = rig.epoch_us / 1e6
        time.sleep(max(0.0, start - time.monotonic() + seconds * 0.3))
        frames = [rec.data for rec in rig.capture_records() if rec.link == "jp" and rec.direction == "rx"
                  and len(rec.data) >= 28 and rec.data[2] == NODE_IDS["jp"]]
        plan = {"target": f"127.0.0.1:{rig.relay_ports['jp']}", "other": rig.relay_ports["kr"],
                "victim": NODE_IDS["jp"], "other_node": NODE_IDS["kr"], "stolen_key": rig.keys["kr"].hex(),
                "stolen_key_id": NODE_IDS["kr"], "replay": [f.hex() for f in frames[-100:]],
                "counts": counts, "flood_s": 2.0, "seed": 5}
        (rig.tmp / "rogue.json").write_text(json.dumps(plan))
        s0 = rig.stats()
        drops0 = _udp_drops(rig.relay_ports["jp"]) + _udp_drops(rig.relay_ports["kr"])
        res = subprocess.run([sys.executable, str(HERE / "rogue.py"), str(rig.tmp / "rogue.json")],
                             capture_output=True, text=True, timeout=120)
        r.check(res.returncode == 0, f"rogue failed: {res.stderr[-500:]}")
        time.sleep(0.5)
        s1 = rig.stats()
        kdrops = _udp_drops(rig.relay_ports["jp"]) + _udp_drops(rig.relay_ports["kr"]) - drops0
        inj = json.loads(res.stdout.strip().splitlines()[-1]) if res.returncode == 0 else {"expect": {}, "sent": {}}
        t0c, t1c = totals(s0), totals(s1)
        parts = []
        for k in REJECT_KEYS:
            got, want = t1c[k] - t0c[k], inj["expect"].get(k, 0)
            parts.append(f"{k} {got}/{want}")
            if k == "auth_fail":   # the flood: what the kernel dropped never reached the relay
                r.check(want - kdrops <= got <= want, f"auth_fail counted {got}, injected {want}, "
                                                      f"kernel drops {kdrops}")
            else:
                r.check(got == want, f"{k}: counted {got}, injected {want}")
        for n in rig.names:
            r.check(s1["nodes"][n]["deliveries"] > s0["nodes"][n]["deliveries"], f"{n}: traffic stopped")
        r.counted = "counted/injected: " + ", ".join(parts) + f"; kernel socket drops {kdrops}"
        out = _finish_rig(rig, r)
        shown = {n: warned_tracks(b) for n, b in rig.boards.items()}
        for n in rig.names:
            sent = out["summaries"].get(n, {}).get("counts", {}).get("frames_out", 0)
            rx = out["stats"]["nodes"][n]["rx_frames"]
            r.bad_accepted += max(0, rx - sent)
    th.join()
    r.crashes += base_r.crashes
    bs = base_out.get("stats", {})
    same_tracks = bs.get("picture", {}).get("tracks") == out["stats"]["picture"].get("tracks")
    pics = {n: (base_out["summaries"][n].get("picture_tracks"), out["summaries"][n].get("picture_tracks"))
            for n in rig.names}
    r.check(same_tracks, f"relay picture tracks {bs.get('picture', {}).get('tracks')} (baseline) vs "
                         f"{out['stats']['picture'].get('tracks')}")
    r.check(all(a == b for a, b in pics.values()), f"board picture tracks (baseline, attacked): {pics}")
    r.check(base_out["shown"] == shown, f"warned tracks differ: baseline {base_out['shown']} vs {shown}")
    r.notes.append(f"picture with/without the rogue: relay tracks {out['stats']['picture'].get('tracks')}, "
                   f"board tracks {pics}, warned tracks {shown}")
    r.seconds = time.monotonic() - t0
    return r.finish()


def warned_tracks(board: Any) -> List[int]:
    """Track ids the board printed a WARNING about."""
    pat = re.compile(r"^\w+: WARNING \d+ \w+ track (\d+)")
    return sorted({int(m.group(1)) for line in board.output().splitlines() if (m := pat.match(line))})


# ----------------------------------------------------------------------------- fuzz

def fuzz(tmp: Path, inputs: int) -> List[CaseResult]:
    """tests/fuzz/fuzz_wire.c and fuzz_codec.c under ASan + UBSan, ``inputs`` each."""
    c_dir = REPO / "native" / "c"
    builds = {
        "wire": (["crc32.c", "sha256.c", "cobs.c", "wire.c"], [], r"inputs (\d+) frames_delivered (\d+) accepted (\d+)"),
        "codec": (["codec.c", "deadreckon.c", "drmodel.c"], ["-lm"], r"inputs (\d+) decoded (\d+) records (\d+)"),
    }
    env = {"ASAN_OPTIONS": "abort_on_error=1:detect_leaks=1", "UBSAN_OPTIONS": "print_stacktrace=1",
           "PATH": "/usr/bin:/bin"}
    jobs = []
    out_early: List[CaseResult] = []
    for name, (srcs, libs, pat) in builds.items():
        r = CaseResult(f"fuzz: C {'deframer + verifier' if name == 'wire' else 'codec decoder'}",
                       f"{inputs:.0e} random and mutated inputs, ASan + UBSan (tests/fuzz/fuzz_{name}.c)")
        exe = tmp / f"fuzz_{name}"
        cmd = [shutil.which("gcc") or "gcc", "-std=c99", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
               "-fno-omit-frame-pointer", "-g", "-O1", f"-I{c_dir}", str(REPO / "tests" / "fuzz" / f"fuzz_{name}.c"),
               *(str(c_dir / s) for s in srcs), *libs, "-o", str(exe)]
        built = subprocess.run(cmd, capture_output=True, text=True)
        if built.returncode != 0:   # a failed case, not a lost campaign
            r.failures.append("the fuzz driver did not build: " + built.stderr.strip().splitlines()[-1][:200])
            out_early.append(r)
            continue
        # both drivers at once: one core each
        proc = subprocess.Popen([str(exe), str(inputs), "2024"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=env)
        jobs.append((r, proc, pat, time.monotonic()))
    out = list(out_early)
    for r, proc, pat, t0 in jobs:
        stdout, stderr = proc.communicate()
        m = re.search(pat, stdout)
        if proc.returncode != 0 or not m:
            r.crashes = 1
            r.notes.append(stderr[-300:])
        else:
            r.counted = stdout.strip().splitlines()[-1]
        r.seconds = time.monotonic() - t0
        out.append(r.finish())
    return out
