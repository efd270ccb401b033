# cpucap.py: run a process under a CPU quota (a Linux cgroup), the way a
# Raspberry Pi-class relay would have only a share of a small core.
"""A CPU cap for one process tree, by a Linux cgroup's CPU bandwidth limit.

``trilink bench --relay-cpu 25`` gives the relay 25% of one core: in every
period (100 ms unless said otherwise) the relay's processes together may run
for a quarter of it, then wait for the next period, which is what a systemd
unit's ``CPUQuota=25%`` does. A Raspberry Pi Zero 2 W (four Cortex-A53 cores
at 1 GHz) running the relay beside its other work is about that share of this
machine's core; docs/BENCH_RELAY.md has the numbers.

Both cgroup versions are handled: version 2 (``cpu.max`` in the unified
hierarchy) and version 1 (``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` of the
``cpu`` controller). Creating a cgroup needs write access to the hierarchy
(root, or a delegated subtree such as ``systemd-run --user --scope``); where
there is none, :class:`CpuCapError` says what was tried and how to get it.

>>> CpuCap.parse("25")
(25.0, 100.0)
>>> CpuCap.parse("12.5/10")
(12.5, 10.0)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, Optional, Tuple

CGROUP_ROOT = Path("/sys/fs/cgroup")
DEFAULT_PERIOD_MS = 100.0


class CpuCapError(Exception):
    """No cgroup could be made for the cap; the message says why and what to do."""


def _own_cgroup(controller: Optional[str]) -> Optional[str]:
    """This process's cgroup path in the v2 hierarchy (controller None) or in
    the v1 hierarchy of ``controller``, from /proc/self/cgroup."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if controller is None and parts[0] == "0" and parts[1] == "":
            return parts[2]
        if controller is not None and controller in parts[1].split(","):
            return parts[2]
    return None


def _make(path: Path, settings: List[Tuple[str, str]]) -> Path:
    """A new cgroup at ``path`` with its control files written; removed again if a write fails."""
    path.mkdir()
    try:
        for name, value in settings:
            (path / name).write_text(value)
    except OSError:
        path.rmdir()
        raise
    return path


def _v2_mount() -> Optional[Path]:
    for candidate in (CGROUP_ROOT, CGROUP_ROOT / "unified"):
        if (candidate / "cgroup.controllers").exists():
            return candidate
    return None


class CpuCap:
    """A cgroup holding the capped processes; ``with CpuCap(25) as cap:
    cap.add(pid); ...; cap.stats()``. The cgroup is removed on close (what
    still runs in it goes back to the parent group first)."""

    _made = 0

    def __init__(self, percent: float, period_ms: float = DEFAULT_PERIOD_MS) -> None:
        if not 0.0 < percent <= 100.0 * (os.cpu_count() or 1):
            raise CpuCapError(f"CPU cap {percent}% is out of range (0 < cap <= 100% per core)")
        if not 1.0 <= period_ms <= 1000.0:
            raise CpuCapError(f"CPU cap period {period_ms} ms is out of range (1..1000 ms)")
        self.percent = percent
        self.period_us = int(period_ms * 1000)
        self.quota_us = max(1000, int(self.period_us * percent / 100.0))
        self.path: Optional[Path] = None
        self.version = 0
        self._final: Optional[Dict[str, float]] = None

    @staticmethod
    def parse(spec: str) -> Tuple[float, float]:
        """``PERCENT`` or ``PERCENT/PERIOD_MS`` -> (percent, period_ms)."""
        pct, _, period = spec.partition("/")
        try:
            return float(pct), float(period) if period else DEFAULT_PERIOD_MS
        except ValueError:
            raise CpuCapError(f"bad CPU cap {spec!r}: expected PERCENT or PERCENT/PERIOD_MS, e.g. 25 or 25/10")

    def __enter__(self) -> "CpuCap":
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        """Make the cgroup (once; a second call does nothing)."""
        if self.path is not None:
            return
        CpuCap._made += 1
        name = f"trilink-cap-{os.getpid()}-{CpuCap._made}"
        tried: List[str] = []
        mount = _v2_mount()
        own = _own_cgroup(None)
        if mount is not None and own is not None:
            parent = mount / own.lstrip("/")
            try:
                if "cpu" not in (parent / "cgroup.controllers").read_text().split():
                    raise OSError(f"no cpu controller in {parent / 'cgroup.controllers'}")
                ctl = (parent / "cgroup.subtree_control").read_text().split()
                if "cpu" not in ctl:
                    (parent / "cgroup.subtree_control").write_text("+cpu")
                self.path = _make(parent / name, [("cpu.max", f"{self.quota_us} {self.period_us}")])
                self.version = 2
                return
            except OSError as e:
                tried.append(f"cgroup v2 under {parent}: {e.strerror or e}")
        own1 = _own_cgroup("cpu")
        base = CGROUP_ROOT / "cpu"
        if own1 is not None and (base / "cpu.cfs_quota_us").exists():
            parent = base / own1.lstrip("/")
            try:
                self.path = _make(parent / name, [("cpu.cfs_period_us", str(self.period_us)),
                                                  ("cpu.cfs_quota_us", str(self.quota_us))])
                self.version = 1
                return
            except OSError as e:
                tried.append(f"cgroup v1 under {parent}: {e.strerror or e}")
        if not tried:
            tried.append("no cgroup CPU controller is mounted under /sys/fs/cgroup")
        raise CpuCapError("cannot cap the relay's CPU: " + "; ".join(tried) +
                          ". Run as root, or inside a delegated scope "
                          "(systemd-run --user --scope -p Delegate=yes trilink bench ...)")

    def add(self, pid: int) -> None:
        """Move process ``pid`` (its later children follow) into the cap."""
        assert self.path is not None, "CpuCap.open() first"
        (self.path / "cgroup.procs").write_text(str(pid))

    def stats(self) -> Dict[str, float]:
        """What the cap did so far: periods, throttled periods and seconds
        (and CPU seconds used, cgroup v2 only). After close, the last reading."""
        if self.path is None:
            return dict(self._final or {})
        out: Dict[str, float] = {"percent": self.percent, "period_ms": self.period_us / 1000.0}
        try:
            for line in (self.path / "cpu.stat").read_text().splitlines():
                k, _, v = line.partition(" ")
                if k == "nr_periods":
                    out["periods"] = float(v)
                elif k == "nr_throttled":
                    out["throttled_periods"] = float(v)
                elif k == "throttled_time":          # v1: ns
                    out["throttled_s"] = float(v) / 1e9
                elif k == "throttled_usec":          # v2
                    out["throttled_s"] = float(v) / 1e6
                elif k == "usage_usec":
                    out["cpu_s"] = float(v) / 1e6
        except OSError:
            pass
        return out

    def close(self) -> None:
        if self.path is None:
            return
        self._final = self.stats()
        path, self.path = self.path, None
        try:
            # Anything still in the cgroup goes back to the parent first.
            for pid in (path / "cgroup.procs").read_text().split():
                try:
                    (path.parent / "cgroup.procs").write_text(pid)
                except OSError:
                    pass
            path.rmdir()
        except OSError:
            pass
