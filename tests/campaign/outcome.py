# outcome.py: what every campaign case shares: its record (CaseResult), limits, scenarios, the rig's wind-up
"""``CaseResult`` (one row of docs/RELIABILITY.md and the test's verdict),
the acceptance limits, the scenario paths, ``totals`` (rejection counters
over the relay's links) and ``_finish_rig`` (stop a case's rig and read what
it did). ``campaign.cases`` re-exports them."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from campaign.rig import Rig

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
