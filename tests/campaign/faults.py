# faults.py: the campaign's fault cases: unplug, board and relay kills and restarts, lost state, full disks, clock steps
"""The "faults" group of the reliability campaign (``campaign.cases``
re-exports every case; see its docstring for what a case is)."""
from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

from campaign.outcome import HERE, RELAY_RESTART_LIMIT_S, STRIKE, STRIKE_START, UNPLUG_LIMIT_S, CaseResult, _finish_rig
from campaign.rig import NODE_IDS, Rig

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
