"""The shipped scenarios load and describe what boards/SCENARIOS.md promises."""
from __future__ import annotations

import board_sim_helpers  # noqa: F401
from trilink_board import config, truth


def test_all_shipped_scenarios_load() -> None:
    for name in ("default", "salvo", "lofted", "debris", "srbm_japan", "srbm_sea", "srbm_korea_only"):
        s = config.load_scenario(name)
        assert s["name"] == name and s["launches"]


def test_default_has_an_irbm_and_an_srbm() -> None:
    s = config.load_scenario("default")
    assert sorted(ln["cls"] for ln in s["launches"]) == ["irbm", "srbm_depressed"]


def test_salvo_is_four_missiles_in_20_s_from_two_sites() -> None:
    s = config.load_scenario("salvo")
    ts = [ln["t"] for ln in s["launches"]]
    assert len(ts) == 4 and max(ts) - min(ts) <= 20.0
    assert len({(ln["lat"], ln["lon"]) for ln in s["launches"]}) == 2


def test_debris_breaks_into_50_or_more() -> None:
    s = config.load_scenario("debris")
    assert sum(b["count"] for b in s["breakups"]) >= 50


def test_every_scenario_missile_comes_down_within_its_duration() -> None:
    for name in ("default", "salvo", "lofted", "srbm_japan", "srbm_sea", "srbm_korea_only"):
        s = config.load_scenario(name)
        t = truth.Truth(s["launches"], s["breakups"])
        t.advance(s["duration_s"])
        assert all(o.state == 2 for o in t.objects), name
