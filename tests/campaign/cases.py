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
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from campaign.rig import NODE_IDS, REPO, Rig

HERE = Path(__file__).resolve().parent
STRIKE = str(HERE / "scenarios" / "strike.json")
DEBRIS_STRIKE = str(HERE / "scenarios" / "debris_strike.json")
STRIKE_START = 75.0          # scenario time: both nations track, warnings to Japan follow within seconds
UNPLUG_LIMIT_S = 2.0
RELAY_RESTART_LIMIT_S = 5.0
RSS_LIMIT_MB = 10.0
STOP_LIMIT_S = 1.0           # SIGTERM to exit, whatever the case did to the relay
REJECT_KEYS = ("crc_error", "malformed", "oversize", "auth_fail", "replay", "wrong_link")


@dataclass
class CaseResult:
    """One case's record: the row of docs/RELIABILITY.md and the test's verdict."""

    name: str
    injected: str
    seconds: float = 0.0
    crashes: int = 0
    bad_accepted: int = 0
    warnings_lost: int = 0
    warnings: int = 0
    rss_growth_mb: Optional[float] = None
    recovery_s: Optional[float] = None
    counted: str = ""
    # the numbers behind ``counted``, by name, for tests to assert on
    counts: Dict[str, int] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)
    failures: List[str] = field(default_factory=list)

    def check(self, ok: bool, what: str) -> None:
        if not ok:
            self.failures.append(what)

    def finish(self) -> "CaseResult":
        self.check(self.crashes == 0, f"{self.crashes} crash(es)")
        self.check(self.bad_accepted == 0, f"{self.bad_accepted} bad frame(s) accepted")
        self.check(self.warnings_lost == 0, f"{self.warnings_lost} warning(s) lost")
        return self


def totals(stats: Dict[str, Any]) -> Dict[str, int]:
    """Rejection counters summed over the relay's links (PROTOCOL.md 3.3 names)."""
    return {k: sum(int(d.get(k, 0)) for d in stats["links"].values()) for k in REJECT_KEYS}


def _finish_rig(rig: Rig, r: CaseResult) -> Dict[str, Any]:
    """Wait for the boards, read the relay's final stats, stop it (flushing the
    capture), and fill crashes and warnings. Returns {"summaries": ..., "stats": ...}."""
    try:
        sums = rig.wait_boards()
    except Exception as e:   # a board crashed or hung: the case records it
        r.crashes += 1
        r.notes.append(str(e).splitlines()[0])
        sums = {n: (b.summaries() or [{}])[-1] for n, b in rig.boards.items()}
    for nm in rig.modems.values():
        nm.wait_idle(3.0)
    time.sleep(0.3)
    stats = rig.stats()
    t_stop = time.monotonic()
    rc = rig.stop_relay()
    stop_s = time.monotonic() - t_stop
    r.check(stop_s < STOP_LIMIT_S, f"SIGTERM took {stop_s:.2f} s to stop the relay")
    r.notes.append(f"SIGTERM stopped the relay in {stop_s:.2f} s.")
    if rc != 0:
        r.crashes += 1
        r.notes.append(f"trilink-edge exited {rc}")
    r.crashes += rig.crashes() - (1 if rc != 0 else 0)
    r.warnings_lost, r.warnings = rig.warnings_lost()
    return {"summaries": sums, "stats": stats}


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


# ----------------------------------------------------------------------------- faults

def unplug(tmp: Path, seconds: float, every: float = 4.0, down: float = 1.0) -> CaseResult:
    """The relay's serial device for JP vanishes for ``down`` s every ``every`` s
    (a USB adapter pulled and plugged back). Recovery per replug: until the
    relay writes on the new port and accepts a frame from the board again."""
    r = CaseResult("fault: serial unplug/replug", f"jp's relay-side pty vanishes {down:g} s every {every:g} s")
    t0 = time.monotonic()
    with Rig(tmp, "serial", scenario=STRIKE, start=STRIKE_START) as rig:
        rig.start(seconds)
        nm = rig.modems["jp"]
        replugs = []
        time.sleep(rig.epoch_us / 1e6 - time.monotonic() + 2.0)
        end = rig.epoch_us / 1e6 + seconds - every
        while time.monotonic() < end:
            nm.vanish(down, sides="b")
            replugs.append(time.monotonic_ns() + int(down * 1e9))
            time.sleep(every)
        out = _finish_rig(rig, r)
        rx_t = sorted(rec.t_ns for rec in rig.capture_records() if rec.link == "jp" and rec.direction == "rx")
        tx_t = sorted(f.t_first_in_ns for f in nm.frames("ba"))
        rec_s = []
        for t in replugs:
            a = next((x for x in rx_t if x > t), None)
            b = next((x for x in tx_t if x > t), None)
            if a is None or b is None:
                r.failures.append(f"no traffic after the replug at +{(t / 1e9 - t0):.1f} s")
                continue
            rec_s.append((max(a, b) - t) / 1e9)
        r.recovery_s = max(rec_s) if rec_s else None
        st = out["stats"]["links"]["jp"]
        r.counted = f"{len(replugs)} unplugs: relay reopen {st.get('reopen', '?')}, down_events " \
                    f"{st.get('down_events', '?')}; recovery per replug (s): " + \
                    ", ".join(f"{x:.2f}" for x in rec_s)
        r.check(r.recovery_s is not None and r.recovery_s <= UNPLUG_LIMIT_S,
                f"recovery {r.recovery_s} s > {UNPLUG_LIMIT_S} s")
        r.check(out["summaries"].get("jp", {}).get("counts", {}).get("pictures", 0) > 0, "jp got no picture")
    r.seconds = time.monotonic() - t0
    return r.finish()


def kill_board(tmp: Path, seconds: float) -> CaseResult:
    """JP's board is killed with SIGKILL and restarted (same state file: its
    counter epoch moves on, the relay accepts it at once)."""
    r = CaseResult("fault: board SIGKILL + restart", "SIGKILL jp's board mid-run, restart it 1 s later")
    t0 = time.monotonic()
    with Rig(tmp, "serial", scenario=STRIKE, start=STRIKE_START) as rig:
        rig.start(seconds)
        time.sleep(rig.epoch_us / 1e6 - time.monotonic() + seconds * 0.3)
        b = rig.boards["jp"]
        b.kill(signal.SIGKILL)
        time.sleep(1.0)
        t_spawn = time.monotonic_ns()
        b.start()
        out = _finish_rig(rig, r)
        # Frames of the killed process may still be on the wire after the
        # restart: the new process is the one with a higher counter epoch.
        first, old_epoch = None, -1
        for rec in rig.capture_records():
            d = rec.data
            if rec.link != "jp" or rec.direction != "rx" or len(d) < 28:
                continue
            epoch = int.from_bytes(d[8:14], "little") >> 28
            if rec.t_ns <= t_spawn:
                old_epoch = max(old_epoch, epoch)
            elif epoch > old_epoch:
                first = rec.t_ns
                break
        st = out["stats"]
        r.recovery_s = None if first is None else (first - t_spawn) / 1e9
        r.check(first is not None, "no frame from the restarted board")
        r.check(st["nodes"]["jp"]["replay"] == 0, "the restarted board's frames were taken for replays")
        pics = out["summaries"].get("jp", {}).get("counts", {}).get("pictures", 0)
        r.check(pics > 0, "the restarted board decoded no picture")
        r.counted = f"relay replay {st['nodes']['jp']['replay']}; restarted board decoded {pics} pictures; " \
                    "recovery = process start to first frame at the relay (includes CPython start-up)"
    r.seconds = time.monotonic() - t0
    return r.finish()


def relay_restart(tmp: Path, seconds: float) -> CaseResult:
    """The relay stops (SIGTERM) and a new one starts on the same config and
    state file. Recovery: from the new process's start until both boards
    have decoded a fused update from it (DELIVERY frames counted at the relay)."""
    r = CaseResult("fault: relay restart", "SIGTERM trilink-edge mid-run, start a new one at once")
    t0 = time.monotonic()
    with Rig(tmp, "serial", scenario=STRIKE, start=STRIKE_START) as rig:
        rig.start(seconds)
        time.sleep(rig.epoch_us / 1e6 - time.monotonic() + seconds * 0.3)
        t_stop = time.monotonic()
        rc = rig.stop_relay(signal.SIGTERM)
        stop_s = time.monotonic() - t_stop
        r.check(rc == 0 and stop_s < 1.0, f"SIGTERM: exit {rc} after {stop_s:.2f} s")
        t_spawn = time.monotonic()
        rig.start_relay(wait=False)
        rec = r.recovery_s = _recovery(rig, t_spawn)
        r.check(rec is not None and rec <= RELAY_RESTART_LIMIT_S, f"recovery {rec} s > {RELAY_RESTART_LIMIT_S} s")
        out = _finish_rig(rig, r)
        st = out["stats"]
        r.check(st["nodes"]["jp"]["replay"] == 0 and st["nodes"]["kr"]["replay"] == 0, "boards' frames refused")
        r.counted = f"stop took {stop_s:.2f} s; recovery = new process start to both boards decoding a fused update"
    r.seconds = time.monotonic() - t0
    return r.finish()


def relay_kill_replay(tmp: Path, seconds: float, n_replay: int = 40, lose_state: bool = False) -> CaseResult:
    """The relay is killed (SIGKILL: no stop, no final write) and started
    again; then JP's frames captured before the kill are played back from
    another UDP port. Not one may be accepted (PROTOCOL.md 2.2).

    ``lose_state``: its state file is deleted before the restart too, so it
    is back at relay epoch 1, below the marks the boards keep of its
    counter. It must say so in one line, and the boards, which refuse its
    challenge, must bring it past their marks (their answer's min_epoch)
    without a reboot."""
    what = "kill -9, state file deleted" if lose_state else "kill -9 + replay"
    r = CaseResult(f"fault: relay {what}", f"SIGKILL trilink-edge mid-run, {'delete its state file, ' * lose_state}"
                   f"restart, replay {n_replay} of jp's frames captured before the kill from a new UDP port")
    t0 = time.monotonic()
    with Rig(tmp, "udp", scenario=STRIKE, start=STRIKE_START) as rig:
        rig.start(seconds)
        time.sleep(rig.epoch_us / 1e6 - time.monotonic() + seconds * 0.3)
        rc = rig.stop_relay(signal.SIGKILL)
        captured = [c.data for c in rig.capture_records() if c.link == "jp" and c.direction == "rx"][-n_replay:]
        if lose_state:
            (rig.tmp / "state.json").unlink()
        log_before = len(rig.relay_output())
        rig.start_relay(wait=True)
        rec = r.recovery_s = _recovery(rig, time.monotonic())
        rep = _replay_from_new_port(rig, rig.relay_ports["jp"], captured)
        r.bad_accepted = max(0, rep["replayed"] - rep["refused"])
        out = _finish_rig(rig, r)
        r.check(len(captured) == n_replay, f"only {len(captured)} frames captured")
        r.check(rec is not None and rec <= RELAY_RESTART_LIMIT_S, f"recovery {rec} s > {RELAY_RESTART_LIMIT_S} s")
        r.check(rep["leaked"] == 0, f"{rep['leaked']} frames sent to the replaying address")
        reboots = sum(len(b.runs) - 1 for b in rig.boards.values())
        r.check(reboots == 0, f"{reboots} board restarts")
        r.counts.update(**rep)
        r.counted = (f"killed (exit {rc}); {rep['replayed']} captured frames replayed after the restart: "
                     f"{rep['refused']} refused, {rep['leaked']} frames to the replayer; recovery = new process "
                     "start to both boards decoding a fused update, no board rebooted; final jp replay "
                     f"{out['stats']['nodes']['jp']['replay']}")
        if lose_state:
            log = rig.relay_output()[log_before:]
            epoch = json.loads((rig.tmp / "state.json").read_text())["epoch"]
            r.check(log.count("none yet") == 1, f"{log.count('none yet')} 'no state file' lines (want 1)")
            r.check(epoch == 2 and log.count("relay counter epoch 1 -> 2") >= 1,
                    f"relay epoch {epoch} at the end (want 2, moved by the boards' answers)")
            r.counts.update(epoch=epoch)
            r.counted += (f"; state file deleted: one 'none yet' line, relay epoch 1 -> {epoch} on the boards' "
                          f"answers ({log.count('relay counter epoch')} lines)")
    r.seconds = time.monotonic() - t0
    return r.finish()


def relay_lost_state(tmp: Path, seconds: float, n_replay: int = 40) -> CaseResult:
    """``relay_kill_replay`` with the relay's state file deleted before the restart."""
    return relay_kill_replay(tmp, seconds, n_replay, lose_state=True)


def state_unwritable(tmp: Path, seconds: float) -> CaseResult:
    """The relay's state file can no longer be written (its path turned into a
    non-empty folder mid-run: the run is root, so a read-only mode would not
    stop it); KR's board reboots, a new board epoch the relay must write
    first. The rest of the relay goes on (JP keeps receiving fused updates,
    heartbeats and link checks run); KR is refused and counted (state_error)
    until the file can be written again; SIGTERM stops the relay within 1 s."""
    r = CaseResult("fault: state file unwritable", "state file path made a folder mid-run, then kr's board "
                   "rebooted; restored 4 s later")
    t0 = time.monotonic()
    with Rig(tmp, "udp", scenario=STRIKE, start=STRIKE_START) as rig:
        rig.start(seconds)
        time.sleep(rig.epoch_us / 1e6 - time.monotonic() + seconds * 0.25)
        state = rig.tmp / "state.json"
        keep = state.read_bytes()
        state.unlink()
        state.mkdir()
        (state / "x").write_text("")          # a rename onto a non-empty folder fails
        b = rig.boards["kr"]
        b.kill(signal.SIGKILL)
        time.sleep(0.5)
        b.start()
        time.sleep(3.0)
        mid = rig.stats()
        jp_mid = mid["nodes"]["jp"]["deliveries"]
        shutil.rmtree(state)
        state.write_bytes(keep)
        out = _finish_rig(rig, r)
        st = out["stats"]
        errors = st["nodes"]["kr"]["state_error"]
        r.check(errors > 0, "kr's new epoch was not refused while the state file could not be written")
        r.check(st["nodes"]["jp"]["deliveries"] > jp_mid, "jp got no fused update after the fault")
        r.check(st["nodes"]["kr"]["deliveries"] > mid["nodes"]["kr"]["deliveries"],
                "kr was not taken again once the file could be written")
        log = rig.relay_output()
        r.check(log.count("cannot write") == 1, f"{log.count('cannot write')} error lines (want 1)")
        r.counts.update(state_error=errors)
        r.counted = f"kr refused as state_error {errors} times while unwritable; one error line; jp deliveries " \
                    f"{jp_mid} -> {st['nodes']['jp']['deliveries']}"
    r.seconds = time.monotonic() - t0
    return r.finish()


def capture_disk_full(tmp: Path, seconds: float) -> CaseResult:
    """The capture goes to a full disk (/dev/full: every write ENOSPC). One
    error line, the relay forwards as before, SIGTERM stops it within 1 s."""
    r = CaseResult("fault: capture disk full", "capture file on /dev/full (ENOSPC on every write)")
    t0 = time.monotonic()
    with Rig(tmp, "udp", scenario=STRIKE, start=STRIKE_START) as rig:
        (rig.tmp / "cap").mkdir(parents=True, exist_ok=True)
        full = rig.capture.with_name("relay0.pcapng")          # the first run's capture
        os.symlink("/dev/full", full)
        rig.start(seconds)
        try:
            sums = rig.wait_boards()
        except Exception as e:   # noqa: BLE001 - recorded as a crash
            r.crashes += 1
            r.notes.append(str(e).splitlines()[0])
            sums = {}
        st = rig.stats()
        t_stop = time.monotonic()
        rc = rig.stop_relay()
        stop_s = time.monotonic() - t_stop
        os.unlink(full)                                          # (reading /dev/full never ends)
        r.crashes += rig.crashes() + (rc != 0)
        rec = st.get("recorder", {})
        r.check(rc == 0 and stop_s < 1.0, f"SIGTERM: exit {rc} after {stop_s:.2f} s")
        r.check("No space" in str(rec.get("error")), f"recorder error {rec.get('error')!r}")
        r.check(all(st["nodes"][n]["deliveries"] > 0 for n in rig.names), "forwarding stopped")
        lines = rig.relay_output().count("capture stopped")
        r.check(lines == 1, f"{lines} 'capture stopped' lines (want 1)")
        pics = {n: sums.get(n, {}).get("counts", {}).get("pictures", 0) for n in rig.names}
        r.counts.update(dropped=int(rec.get("dropped", 0)))
        r.counted = f"recorder error {rec.get('error')!r}, {rec.get('dropped')} records dropped; boards decoded " \
                    f"{pics} pictures; stop took {stop_s:.2f} s"
    r.seconds = time.monotonic() - t0
    return r.finish()


def _recovery(rig: Rig, t_spawn: float, timeout: float = 15.0) -> Optional[float]:
    """Seconds from ``t_spawn`` (a relay process start) until every board has
    decoded a fused update from it (its DELIVERY frames counted), or None."""
    while time.monotonic() - t_spawn < timeout:
        try:
            st = rig.stats(0.5)
            if all(st["nodes"][n]["deliveries"] > 0 for n in rig.names):
                return time.monotonic() - t_spawn
        except OSError:      # not listening yet
            pass
        time.sleep(0.05)
    return None


def _replay_from_new_port(rig: Rig, port: int, frames: List[bytes]) -> Dict[str, int]:
    """Send ``frames`` to the relay's ``port`` from a new UDP socket; what
    the relay counted refused for jp meanwhile, and how many frames came back."""
    import socket as _socket
    before = rig.stats()["nodes"]["jp"]
    with _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        for raw in frames:
            sock.sendto(raw, ("127.0.0.1", port))
            time.sleep(0.005)
        time.sleep(0.5)
        after = rig.stats()["nodes"]["jp"]
        sock.setblocking(False)
        leaked = 0
        try:
            while sock.recv(4096):
                leaked += 1
        except BlockingIOError:
            pass
    refused = sum(after[k] - before[k] for k in ("replay", "unverified"))
    return {"replayed": len(frames), "refused": refused, "leaked": leaked}


def _deliveries_named(rig: Rig, node: int) -> Dict[int, int]:
    """Source node -> report ids named in the DELIVERY frames ``node``'s board sent (the capture's)."""
    out: Dict[int, int] = {}
    for run in range(len(rig.captures)):
        for rec in rig.capture_records(run):
            d = rec.data
            if rec.direction != "rx" or len(d) < 28 + 21 or d[4] != 0x31 or d[2] != node:
                continue
            n = d[16 + 20]
            for i in range(n):
                src = d[16 + 21 + 5 * i]
                out[src] = out.get(src, 0) + 1
    return out


def shared_learned_link(tmp: Path, seconds: float) -> CaseResult:
    """Both boards behind one relay UDP port with no configured peer (the
    relay learns each board's address from the frames it accepts, per
    board). Release: Japan's tracks to Korea, Korea's to nobody. Neither
    board may receive a frame meant for the other (each board counts a
    frame under the other's key as auth_fail, one for the other's id as
    not_for_me), Japan no record of Korea's, and 20 of Japan's frames
    replayed from a third address move no peer and get no frame back."""
    r = CaseResult("fault: two boards behind one learned UDP link",
                   "jp and kr on one relay port, no configured peer; release jp->kr only; 20 of jp's frames "
                   "replayed from a third address mid-run")
    t0 = time.monotonic()
    with Rig(tmp, "udp", scenario=STRIKE, start=STRIKE_START, shared=True,
             release={"jp": ["kr"], "kr": []}) as rig:
        rig.start(seconds)
        time.sleep(rig.epoch_us / 1e6 - time.monotonic() + seconds * 0.4)
        frames = [c.data for c in rig.capture_records() if c.direction == "rx" and len(c.data) >= 28
                  and c.data[2] == NODE_IDS["jp"]][-20:]
        rep = _replay_from_new_port(rig, rig.relay_ports["shared"], frames)
        out = _finish_rig(rig, r)
        st = out["stats"]
        parts = []
        for n in rig.names:
            c = out["summaries"].get(n, {}).get("counts", {})
            wrong = c.get("auth_fail", 0) + c.get("not_for_me", 0)
            r.bad_accepted += wrong
            r.check(c.get("frames_in", 0) > 0 and st["nodes"][n]["rx_frames"] > 0, f"{n}: no traffic")
            r.check(c.get("reports", 0) > 0, f"{n} sent no report")
            parts.append(f"{n}: took {c.get('frames_in', 0)} frames, other board's {wrong} "
                         f"(auth_fail + not_for_me)")
        jp_named = _deliveries_named(rig, NODE_IDS["jp"])
        kr_named = _deliveries_named(rig, NODE_IDS["kr"])
        r.check(kr_named.get(NODE_IDS["jp"], 0) > 0, "kr decoded no update naming jp's reports")
        r.check(jp_named.get(NODE_IDS["kr"], 0) == 0, f"jp decoded {jp_named.get(NODE_IDS['kr'])} of kr's "
                                                       "reports (release kr -> nobody)")
        r.check(len(frames) == 20 and rep["refused"] == 20, f"replayed {len(frames)}, refused {rep['refused']}")
        r.check(rep["leaked"] == 0, f"{rep['leaked']} frames sent to the replaying address")
        r.bad_accepted += max(0, rep["replayed"] - rep["refused"])
        r.counts.update(jp_named_kr=jp_named.get(NODE_IDS["kr"], 0), kr_named_jp=kr_named.get(NODE_IDS["jp"], 0),
                        **rep)
        r.counted = ("; ".join(parts) + f"; kr's updates named jp's reports {kr_named.get(NODE_IDS['jp'], 0)} "
                     f"times, jp's named kr's {jp_named.get(NODE_IDS['kr'], 0)}; replayed {rep['replayed']}: "
                     f"refused {rep['refused']}, {rep['leaked']} frames to the replayer")
    r.seconds = time.monotonic() - t0
    return r.finish()


def clock_step(tmp: Path, seconds: float, step_s: float = 5.0) -> CaseResult:
    """JP's board clock jumps ``step_s`` forward mid-run and back again later
    (SIGUSR1/SIGUSR2 to tests/campaign/stepped_board.py, the real firmware)."""
    r = CaseResult("fault: board clock stepped", f"jp's clock +{step_s:g} s at 30% of the run, back at 60%")
    t0 = time.monotonic()
    prefix = {"jp": [sys.executable, str(HERE / "stepped_board.py")]}
    with Rig(tmp, "serial", scenario=STRIKE, start=STRIKE_START, board_prefix=prefix) as rig:
        os.environ["TRILINK_STEP_S"] = str(step_s)
        rig.start(seconds)
        start = rig.epoch_us / 1e6
        time.sleep(start - time.monotonic() + seconds * 0.3)
        d0 = rig.stats()["nodes"]
        rig.boards["jp"].proc.send_signal(signal.SIGUSR1)
        time.sleep(start - time.monotonic() + seconds * 0.6)
        d1 = rig.stats()["nodes"]
        rig.boards["jp"].proc.send_signal(signal.SIGUSR2)
        out = _finish_rig(rig, r)
        d2 = out["stats"]["nodes"]
        for n in rig.names:
            r.check(d1[n]["rx_frames"] > d0[n]["rx_frames"] and d2[n]["rx_frames"] > d1[n]["rx_frames"],
                    f"{n}: frames stopped after a step")
        r.check(d2["kr"]["deliveries"] > d1["kr"]["deliveries"], "kr got no fused update after the steps")
        pl = out["stats"]["pipeline"]
        r.counted = (f"kr deliveries before/while/after: {d0['kr']['deliveries']}/{d1['kr']['deliveries']}/"
                     f"{d2['kr']['deliveries']}; relay records_refused {pl.get('records_refused')}, "
                     f"jp late_scans {out['summaries'].get('jp', {}).get('counts', {}).get('late_scans')}")
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
