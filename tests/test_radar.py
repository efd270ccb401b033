"""Radar visibility against independent geodesy (pymap3d), and who sees a missile first."""
from __future__ import annotations

import math

import numpy as np
import pymap3d

import board_sim_helpers  # noqa: F401
from trilink_board import config
from trilink_board.sim import Simulation

NATIONS = ("jp", "kr", "au")


def ecef_of(sim: Simulation, ob) -> np.ndarray:  # type: ignore[no-untyped-def]
    fr = sim.truth.frames[ob.frame_index]
    return np.array(pymap3d.enu2ecef(float(ob.p[0]), float(ob.p[1]), float(ob.p[2]), fr.lat, fr.lon, fr.alt))


def independent_visible(rc: dict, target: np.ndarray) -> bool:
    """Elevation mask, range and sector from pymap3d; horizon by walking the line of sight
    and asking pymap3d for the geodetic height of each point (no shared code with radar.py)."""
    az, el, rng = pymap3d.ecef2aer(*target, rc["lat"], rc["lon"], rc["alt_m"])
    if rng > rc["max_range_m"] or math.radians(el) < rc["mask_rad"]:
        return False
    if rc["sector_half_rad"] is not None:
        d = (math.radians(az) - rc["sector_az_rad"] + math.pi) % (2 * math.pi) - math.pi
        if abs(d) > rc["sector_half_rad"]:
            return False
    site = np.array(pymap3d.geodetic2ecef(rc["lat"], rc["lon"], rc["alt_m"]))
    for s in np.linspace(0.0, 1.0, 61)[1:]:
        _, _, h = pymap3d.ecef2geodetic(*(site + s * (target - site)))
        if h < -1.0:
            return False
    return True


def test_no_plot_below_the_horizon_and_every_visible_target_plotted() -> None:
    scen = config.load_scenario("default")
    checked = visible_seen = 0
    for name in NATIONS:
        nat = config.load_nation(name)
        for rc in nat["radars"]:
            rc["pd"] = 1.0               # every visible target must then be plotted
        sim = Simulation(scen, nat)
        k = 0
        while sim.step(until=500.0):
            k += 1
            if k % 13:                   # a sample of the scans keeps the test fast
                continue
            rc = nat["radars"][sim.radar]
            plotted = {sim.plots[i].oid for i in range(sim.n_plots)}
            for ob in sim.truth.objects:
                if ob.state != 1:
                    continue
                vis = independent_visible(rc, ecef_of(sim, ob))
                checked += 1
                visible_seen += vis
                assert (ob.oid in plotted) == vis, (name, rc["name"], sim.t, ob.oid, vis)
    assert checked > 200 and 0 < visible_seen < checked


def test_plot_noise_matches_the_configured_sigmas() -> None:
    scen = config.load_scenario("default")
    nat = config.load_nation("jp")
    sim = Simulation(scen, nat)
    dr = []
    while sim.step(until=400.0):
        radar = sim.radars[sim.radar]
        for i in range(sim.n_plots):
            p = sim.plots[i]
            if p.oid:
                ob = sim.truth.objects[p.oid - 1]
                e, n, u = radar.from_truth[ob.frame_index].apply(ob.p[0], ob.p[1], ob.p[2])
                dr.append(p.r - math.sqrt(e * e + n * n + u * u))
    dr_a = np.array(dr)
    assert len(dr_a) > 300
    assert abs(dr_a.std() / nat["radars"][0]["sigma_range_m"] - 1.0) < 0.15
    assert abs(dr_a.mean()) < 3.0


def test_first_radar_to_see_each_missile_follows_from_geometry() -> None:
    scen = config.load_scenario("default")
    radars = []  # (nation, radar cfg)
    for name in NATIONS:
        for rc in config.load_nation(name)["radars"]:
            radars.append((name, rc))
    # Geometry: sample the truth every second and find when each radar first could see each missile.
    sim0 = Simulation(scen, config.load_nation("jp"))
    geo_first: dict[int, dict[str, float]] = {}
    t = 0.0
    while t < 500.0:
        t += 1.0
        sim0.truth.advance(t)
        for ob in sim0.truth.objects:
            if ob.state != 1:
                continue
            x = ecef_of(sim0, ob)
            for name, rc in radars:
                key = name + ":" + rc["name"]
                if key not in geo_first.setdefault(ob.oid, {}) and independent_visible(rc, x):
                    geo_first[ob.oid][key] = t
    # Simulation: first plot of each missile at each radar.
    sim_first: dict[int, dict[str, float]] = {}
    for name in NATIONS:
        nat = config.load_nation(name)
        sim = Simulation(scen, nat)
        while sim.step(until=500.0):
            key = name + ":" + nat["radars"][sim.radar]["name"]
            for i in range(sim.n_plots):
                p = sim.plots[i]
                if p.oid:
                    sim_first.setdefault(p.oid, {}).setdefault(key, p.t)
    for oid, g in geo_first.items():
        expect = min(g, key=lambda k: g[k])
        got = min(sim_first[oid], key=lambda k: sim_first[oid][k])
        assert got == expect, (oid, g, sim_first[oid])
    # For the IRBM the Korean radar is first (it sees the boost), then Japan's Kyogamisaki.
    assert min(geo_first[1], key=lambda k: geo_first[1][k]).startswith("kr:")
