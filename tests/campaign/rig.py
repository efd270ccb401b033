# rig.py: one relay process and its board processes on emulated links, for the campaign cases
"""A running trilink system built from real parts: a ``trilink-edge``
process, CPython board processes (``boards/main.py``, the real firmware),
serial links through :class:`trilink.nullmodem.NullModem` pty pairs (paced
at 115200 baud, impaired on request) or UDP links on 127.0.0.1 (optionally
through :class:`trilink.udpproxy.UdpProxy`). Keys, config, state and
capture live in a temporary folder.

    with Rig(tmp_path, link="serial", impair={"jp": "ber=1e-4"}) as rig:
        rig.start(duration=20)
        rig.stats()["nodes"]["jp"]["rx_frames"]
        rig.wait_boards()          # summaries; raises when a board crashed
        rig.warnings_lost()        # 0

Every board flies the same missile at the same instant: each gets the same
``--epoch`` (scenario time ``start`` on the relay's timebase, a few seconds
after launch of the processes).
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple

REPO = Path(__file__).resolve().parents[2]
BOARD_MAIN = REPO / "boards" / "main.py"
NATIONS = REPO / "boards" / "nations"
NODE_IDS = {"jp": 1, "kr": 2, "au": 3}
BAUD = 115200
# Relay time (µs) from the start of the processes to scenario time `start`:
# a CPython board simulates the scans before `start` at boot (~1-2 s).
LEAD_S = 4.0
WARNING_LINE = re.compile(r"^(\w+): WARNING (\d+) (\w+) track (\d+)")
SUMMARY_LINE = re.compile(r"^(\w+): summary (\{.*\})\s*$")
# A warning the relay first sent this long before a board stopped must have
# reached it (retransmission backoff 0.5, 1, 2, 4 s: five tries fit in 8 s).
WARNING_GRACE_S = 8.0


class RigError(RuntimeError):
    """A part of the rig failed (a process crashed, a port never came up)."""


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mono_us() -> int:
    """The relay's timebase (edge/session.py): CLOCK_MONOTONIC in µs."""
    return time.monotonic_ns() // 1000


def edge_exe() -> str:
    exe = os.path.join(os.path.dirname(sys.executable), "trilink-edge")
    if not os.path.exists(exe):
        raise RigError(f"{exe}: trilink-edge is not installed in this interpreter's environment")
    return exe


def rss_kb(pid: int) -> int:
    """VmRSS of a process in kB (from /proc/PID/status)."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RigError(f"pid {pid}: no VmRSS")


class Board:
    """One board process and what it printed."""

    def __init__(self, name: str, argv: List[str], out_path: Path) -> None:
        self.name, self.argv, self.out_path = name, argv, out_path
        self.proc: Optional[subprocess.Popen] = None
        self.runs: List[Tuple[float, Optional[float], Optional[int]]] = []   # (start mono s, end, rc)

    def start(self) -> None:
        fh = open(self.out_path, "a")
        self.proc = subprocess.Popen(self.argv, stdout=fh, stderr=subprocess.STDOUT, cwd=str(REPO))
        fh.close()
        self.runs.append((time.monotonic(), None, None))

    def _ended(self, rc: int) -> None:
        t0, _, _ = self.runs[-1]
        self.runs[-1] = (t0, time.monotonic(), rc)

    def kill(self, sig: int = signal.SIGKILL) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        rc = self.proc.wait(10)
        self._ended(rc)
        return rc

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        rc = self.proc.wait(timeout)
        self._ended(rc)
        return rc

    def output(self) -> str:
        return self.out_path.read_text(errors="replace")

    def summaries(self) -> List[dict]:
        return [json.loads(m.group(2)) for line in self.output().splitlines()
                if (m := SUMMARY_LINE.match(line))]

    def warnings_shown(self) -> Dict[int, str]:
        """warning_id -> status of every WARNING line the board printed."""
        return {int(m.group(2)): m.group(3) for line in self.output().splitlines()
                if (m := WARNING_LINE.match(line))}


class Rig:
    """See the module docstring. ``impair`` maps a board name to an
    impairment spec for its link (serial: NullModem keys; udp: UdpProxy
    keys, and the link goes through a proxy only when given).
    ``budget`` overrides each link's byte budget (bytes/s). ``shared``
    (udp): every board behind one relay link and port, no peer configured,
    so the relay learns each board's address (``relay_ports["shared"]``).
    ``release`` replaces the default policy (each nation to every other)."""

    def __init__(self, tmp: Path, link: str = "serial", boards: Iterable[str] = ("jp", "kr"),
                 impair: Optional[Dict[str, str]] = None, scenario: str = "default", start: float = 40.0,
                 speed: float = 1.0, seed: Optional[int] = None, budget: Optional[int] = None,
                 proxy: bool = False, stats_frames: float = 10.0, extra_board_args: Iterable[str] = (),
                 board_prefix: Optional[Dict[str, List[str]]] = None, shared: bool = False,
                 release: Optional[Dict[str, List[str]]] = None) -> None:
        if link not in ("serial", "udp"):
            raise ValueError(f"link {link!r}: serial or udp")
        self.tmp = Path(tmp)
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.link = link
        self.names = list(boards)
        self.impair = dict(impair or {})
        self.scenario, self.start_s, self.speed, self.seed = scenario, start, speed, seed
        self.budget = budget
        self.proxy = proxy or bool(self.impair and link == "udp")
        self.stats_frames = stats_frames
        self.extra_board_args = list(extra_board_args)
        self.board_prefix = dict(board_prefix or {})
        if shared and (link != "udp" or self.proxy):
            raise ValueError("shared: one UDP link without a proxy")
        self.shared = shared
        self.release = release
        self.captures: List[Path] = []
        self.key_file = self.tmp / "keys.json"
        self.config_file = self.tmp / "relay.toml"
        self.capture = self.tmp / "cap" / "relay.pcapng"
        self.stats_addr = ("127.0.0.1", free_port(socket.SOCK_STREAM))
        self.modems: Dict[str, Any] = {}
        self.proxies: Dict[str, Any] = {}
        self.relay_ports: Dict[str, int] = {}
        self.board_ports: Dict[str, int] = {}
        self.boards: Dict[str, Board] = {}
        self.relay: Optional[subprocess.Popen] = None
        self.relay_runs: List[Tuple[float, Optional[float], Optional[int]]] = []
        self.relay_log = self.tmp / "relay.log"
        self.epoch_us = 0
        self.duration = 0.0

    # ---- setup ----

    def _keys(self) -> Dict[str, bytes]:
        from trilink.keygen import make_keys, write_private
        doc = make_keys([(n, NODE_IDS[n]) for n in self.names], 0)
        write_private(str(self.key_file), doc, True)
        return {e["name"]: bytes.fromhex(e["key"]) for e in doc["keys"]}   # type: ignore[index,union-attr]

    def _links(self) -> None:
        for n in self.names:
            if self.link == "serial":
                from trilink.nullmodem import NullModem
                nm = NullModem(baud=BAUD, impair=self.impair.get(n), a_link=str(self.tmp / f"{n}-board"),
                               b_link=str(self.tmp / f"{n}-relay"), name=n)
                self.modems[n] = nm.start()
            else:
                self.relay_ports[n] = self.relay_ports.setdefault("shared", free_port()) if self.shared \
                    else free_port()
                self.board_ports[n] = free_port()
                if self.proxy:
                    from trilink.udpproxy import UdpProxy
                    px = UdpProxy(a_peer=("127.0.0.1", self.board_ports[n]),
                                  b_peer=("127.0.0.1", self.relay_ports[n]), impair=self.impair.get(n), name=n)
                    self.proxies[n] = px.start()

    def _config(self) -> None:
        lines = ["[relay]", f'key_file = "{self.key_file}"', f'state_file = "{self.tmp / "state.json"}"',
                 f'stats = "{self.stats_addr[0]}:{self.stats_addr[1]}"', "stats_interval_s = 0",
                 f"stats_frames_s = {self.stats_frames}", "[recorder]", f'path = "{self.capture}"',
                 "rotate_bytes = 1073741824", "max_files = 2"]
        for n in self.names:
            lines += [f"[nodes.{n}]", f"id = {NODE_IDS[n]}", f'nation_file = "{NATIONS / (n + ".json")}"']
        if self.shared:
            boards = ", ".join(f'"{n}"' for n in self.names)
            lines += ["[links.shared]", 'kind = "udp"', f"boards = [{boards}]",
                      f'bind = "127.0.0.1:{self.relay_ports["shared"]}"']
            if self.budget:
                lines.append(f"budget = {self.budget}")
        for n in ([] if self.shared else self.names):
            lines += [f"[links.{n}]", f'kind = "{self.link}"', f'boards = ["{n}"]']
            if self.budget:
                lines.append(f"budget = {self.budget}")
            if self.link == "serial":
                lines += [f'device = "{self.tmp / (n + "-relay")}"', f"baud = {BAUD}"]
            else:
                peer = self.proxies[n].b_port if n in self.proxies else self.board_ports[n]
                lines += [f'bind = "127.0.0.1:{self.relay_ports[n]}"', f'peer = "127.0.0.1:{peer}"']
        lines.append("[release]")
        for n in self.names:
            dests = self.release.get(n, []) if self.release is not None else [o for o in self.names if o != n]
            lines.append(f"{n} = [{', '.join(chr(34) + d + chr(34) for d in dests)}]")
        self.config_file.write_text("\n".join(lines) + "\n")

    def board_link(self, n: str) -> str:
        if self.link == "serial":
            return f"tty:{self.tmp / (n + '-board')}@{BAUD}"
        to = self.proxies[n].a_port if n in self.proxies else self.relay_ports[n]
        return f"udp:127.0.0.1:{self.board_ports[n]}:127.0.0.1:{to}"

    def _board(self, n: str, duration: float) -> Board:
        prefix = self.board_prefix.get(n) or [sys.executable, str(BOARD_MAIN)]
        argv = prefix + ["--nation", n, "--link", self.board_link(n), "--keys", str(self.key_file),
                         "--scenario", self.scenario, "--start", str(self.start_s), "--duration", str(duration),
                         "--speed", str(self.speed), "--epoch", str(self.epoch_us),
                         "--state", str(self.tmp / f"{n}.state"), "--stats", "5", "--quiet"]
        if self.seed is not None:
            argv += ["--seed", str(self.seed)]
        return Board(n, argv + self.extra_board_args, self.tmp / f"{n}.out")

    def start(self, duration: float) -> "Rig":
        """Keys, links, config; the relay; every board for ``duration``
        scenario seconds (real seconds at ``speed`` 1) from scenario time
        ``start``, which begins LEAD_S from now."""
        self.keys = self._keys()
        self._links()
        self._config()
        self.start_relay()
        self.epoch_us = mono_us() + int(LEAD_S * 1e6)
        self.duration = duration
        for n in self.names:
            self.boards[n] = self._board(n, duration)
            self.boards[n].start()
        return self

    def relaunch_boards(self, duration: float) -> None:
        """Start every board again (after the last window ended) on a new
        window of ``duration`` from ``start``, beginning LEAD_S from now;
        output and run history continue."""
        self.epoch_us = mono_us() + int(LEAD_S * 1e6)
        self.duration = duration
        for n in self.names:
            old = self.boards[n]
            b = self._board(n, duration)
            b.runs = old.runs
            self.boards[n] = b
            b.start()

    # ---- the relay ----

    def start_relay(self, wait: bool = True) -> None:
        """Start ``trilink-edge``; each run records into its own capture file."""
        cap = self.capture.with_name(f"relay{len(self.captures)}.pcapng")
        self.captures.append(cap)
        fh = open(self.relay_log, "a")
        self.relay = subprocess.Popen([edge_exe(), "--config", str(self.config_file), "--capture", str(cap)],
                                      stdout=fh, stderr=subprocess.STDOUT, cwd=str(self.tmp))
        fh.close()
        self.relay_runs.append((time.monotonic(), None, None))
        if wait:
            self.wait_stats(10.0)

    def stop_relay(self, sig: int = signal.SIGTERM, timeout: float = 5.0) -> int:
        assert self.relay is not None
        self.relay.send_signal(sig)
        rc = self.relay.wait(timeout)
        t0, _, _ = self.relay_runs[-1]
        self.relay_runs[-1] = (t0, time.monotonic(), rc)
        return rc

    def relay_rss_kb(self) -> int:
        assert self.relay is not None
        return rss_kb(self.relay.pid)

    def stats(self, timeout: float = 2.0) -> Dict[str, Any]:
        from trilink_edge.stats import fetch_stats
        return fetch_stats(self.stats_addr, timeout)

    def wait_stats(self, timeout: float) -> Dict[str, Any]:
        """The first /stats answer of the running relay (raises when it dies first)."""
        end = time.monotonic() + timeout
        while True:
            if self.relay is not None and self.relay.poll() is not None:
                raise RigError(f"trilink-edge exited {self.relay.returncode}:\n{self.relay_output()[-3000:]}")
            try:
                return self.stats(0.5)
            except OSError:
                if time.monotonic() > end:
                    raise RigError("trilink-edge stats endpoint did not come up") from None
                time.sleep(0.05)

    def relay_output(self) -> str:
        return self.relay_log.read_text(errors="replace") if self.relay_log.exists() else ""

    # ---- running ----

    def wait_boards(self, extra: float = 30.0) -> Dict[str, dict]:
        """Wait for every board to finish its window; their last summaries.
        Raises RigError when a board exited non-zero or printed a traceback."""
        out = {}
        for n, b in self.boards.items():
            left = max(1.0, self.epoch_us / 1e6 + self.duration / self.speed - time.monotonic() + extra)
            rc = b.wait(left)
            text = b.output()
            if rc != 0 or "Traceback" in text:
                raise RigError(f"board {n} exited {rc}:\n{text[-3000:]}")
            sums = b.summaries()
            if not sums:
                raise RigError(f"board {n}: no summary line:\n{text[-2000:]}")
            out[n] = sums[-1]
        return out

    def crashes(self) -> int:
        """Processes that died unexpectedly or printed a traceback so far."""
        n = 0
        if self.relay is not None and self.relay.poll() not in (None, 0):
            n += 1
        n += self.relay_output().count("Traceback")
        for b in self.boards.values():
            n += sum(1 for _, _, rc in b.runs if rc not in (None, 0, -signal.SIGKILL))
            n += b.output().count("Traceback")
        return n

    def close(self) -> None:
        for b in self.boards.values():
            if b.proc is not None and b.proc.poll() is None:
                b.kill()
        if self.relay is not None and self.relay.poll() is None:
            try:
                self.stop_relay(signal.SIGTERM, 5.0)
            except subprocess.TimeoutExpired:
                self.relay.kill()
                self.relay.wait(5)
        for nm in self.modems.values():
            nm.close()
        for px in self.proxies.values():
            px.close()

    def __enter__(self) -> "Rig":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- observations ----

    def capture_records(self, run: int = -1) -> List[Any]:
        """Every record of relay run ``run``'s capture (complete once that run stopped)."""
        from trilink_edge.recorder import capture_files, iter_capture
        out = []
        for p in capture_files(str(self.captures[run])):
            try:
                for r in iter_capture(p):
                    out.append(r)
            except Exception:   # a capture being written ends in a partial block
                pass
        return out

    def warnings_sent(self) -> List[Tuple[int, int, Tuple[int, int], int]]:
        """(t_ns, dst node, (relay run, warning_id), track_id) of every WARNING
        the relay wrote, from its captures (warning ids restart with the relay)."""
        out = []
        for run in range(len(self.captures)):
            for r in self.capture_records(run):
                d = r.data
                if r.direction == "tx" and len(d) >= 28 + 36 and d[4] == 0x20:
                    out.append((r.t_ns, d[3], (run, int.from_bytes(d[16:20], "little")),
                                int.from_bytes(d[20:24], "little")))
        return out

    def warnings_lost(self, grace_s: float = WARNING_GRACE_S) -> Tuple[int, int]:
        """(lost, issued): a warning is lost when the relay first sent it at
        least ``grace_s`` before its board stopped and the board showed
        neither it nor a later warning about the same track. Needs the
        boards to have finished (their outputs) and the capture (relay
        stopped, so that it is flushed)."""
        first: Dict[Tuple[int, int], Tuple[int, int, int]] = {}
        for t_ns, dst, wid, tid in self.warnings_sent():
            first.setdefault(wid, (t_ns, dst, tid))
        by_node = {NODE_IDS[n]: n for n in self.names}
        shown = {n: set(b.warnings_shown()) for n, b in self.boards.items()}
        lost = 0
        for wid, (t_ns, dst, tid) in first.items():
            name = by_node.get(dst)
            if name is None:
                continue
            ends = [e for _, e, _ in self.boards[name].runs if e is not None]
            end_s = max(ends) if ends else time.monotonic()
            if t_ns / 1e9 > end_s - grace_s:
                continue
            later = {w[1] for w, (_, d2, t2) in first.items() if d2 == dst and t2 == tid and w >= wid}
            if not later & shown[name]:
                lost += 1
        return lost, len(first)
