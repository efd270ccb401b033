"""Shared helpers for the board simulation tests: import path and truth-vs-track scoring."""
from __future__ import annotations

import math
import sys
from pathlib import Path

BOARDS = Path(__file__).resolve().parents[1] / "boards"
if str(BOARDS) not in sys.path:
    sys.path.insert(0, str(BOARDS))

from trilink_board import config, geo  # noqa: E402
from trilink_board.sim import Simulation  # noqa: E402


def truth_positions(sim: Simulation) -> dict[int, tuple[float, float, float]]:
    """Nation-frame positions of every flying truth object, by oid."""
    links = getattr(sim, "_test_links", None)
    if links is None:
        links = [geo.FrameLink(f, sim.frame) for f in sim.truth.frames]
        sim._test_links = links  # type: ignore[attr-defined]
    out = {}
    for ob in sim.truth.objects:
        if ob.state == 1:
            out[ob.oid] = links[ob.frame_index].apply(ob.p[0], ob.p[1], ob.p[2])
    return out


def implied_sigma(radar_cfg: dict, r: float, el: float) -> float:
    """RMS per-axis position sigma of one plot: sqrt((sr^2 + (r sa cos el)^2 + (r se)^2) / 3)."""
    sr = radar_cfg["sigma_range_m"]
    sa = r * radar_cfg["sigma_az_rad"] * math.cos(el)
    se = r * radar_cfg["sigma_el_rad"]
    return math.sqrt((sr * sr + sa * sa + se * se) / 3.0)


def load(scenario: str, nation: str) -> Simulation:
    return Simulation(config.load_scenario(scenario), config.load_nation(nation))
