"""Identity of the fused picture over whole flights, in-process (host/fusion_check.py): both nations'
board simulations (CPython) into the relay's fused picture (the kernel), each destination's picture
judged against the truth once a second by bench_judge.identity. The salvos (four missiles in 20 s
from two sites; three 4 s apart from one site on azimuths 2 degrees apart) once split and merged
their fused tracks (17 identity switches at Korea on the bench: each board's copy of the truth
depended on its scan times); an SRBM seen by Korea's 1 Hz radar through boost lost its track and got
a second one (1 switch). A few seconds of CPU for all four."""
from __future__ import annotations

import math

import pytest

from trilink import bench_judge as bj
from trilink.fusion_check import picture_ticks
from trilink_board import config


@pytest.mark.parametrize("scenario", ["salvo", "salvo_sinpo", "srbm_sea", "srbm_korea_only"])
def test_one_fused_track_per_missile_for_the_whole_flight(scenario: str) -> None:
    ticks = picture_ticks(scenario)
    names = {ln["name"] for ln in config.load_scenario(scenario)["launches"]}
    # Japan's picture holds every missile (Korea's radar sees all of them), each for a while.
    held = {m: 0 for m in names}
    for _t, truth, est in ticks["jp"]:
        for m, p in truth.items():
            if any(math.dist(p, q) < 5e3 for q in est.values()):
                held[m] += 1
    assert all(n >= 20 for n in held.values()), held
    for nation, v in ticks.items():
        r = bj.identity(v)
        assert sum(r["switches"].values()) == 0, (nation, r)
        assert r["ghosts"] == [] and r["duplicates"] == [], (nation, r)
