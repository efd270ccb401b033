#!/usr/bin/env python3
# make_eez.py: approximate exclusive economic zones for the nation files (boards/nations/*.json "eez")
"""Writes each nation file's ``eez`` polygons: an APPROXIMATION of the
nation's exclusive economic zone, not its legal outline. A point of the
sea is in a nation's zone when it lies within 200 nautical miles
(370.4 km) of the nation's coast and nearer to that coast than to any
other state's (the equidistance line: UNCLOS art. 74 leaves delimitation
to agreement; median lines are the usual provisional answer). "Coast" is
the file's territory polygons plus a few islands listed here (they carry
EEZs of their own: Tsushima, Oki, Sado, the Ryukyu and Izu chains,
Ogasawara, Ulleungdo, ...); disputed features (Takeshima/Dokdo, the
southern Kurils, the Senkakus) are left out, and the neighbours' coasts
(China, North Korea, Russia, Taiwan, Indonesia, Papua New Guinea) are
coarse point lists. The zone is computed on a 0.05-degree grid, its
outline traced and simplified to about 0.1 degree (~10 km), which is
far finer than its error against the real zones (tens of km near the
median lines). The outline includes the land: a test "in the EEZ but not
on the territory" is "in an eez polygon and in no territory polygon".

    python3 tools/make_eez.py            # rewrite the "eez" of every nation file
    python3 tools/make_eez.py --check    # exit 1 if a file's eez differs from what this makes
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys

import numpy as np
from scipy.spatial import cKDTree

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NATIONS = os.path.join(ROOT, "boards", "nations")
R_KM = 6371.0088
LIMIT_KM = 370.4            # 200 nautical miles
STEP_DEG = 0.05

# Islands with zones of their own, beyond the territory polygons: (lat, lon) points.
ISLANDS = {
    "jp": [(34.65, 129.35), (34.2, 129.25), (36.25, 133.25), (38.05, 138.4), (45.2, 141.15),
           (33.1, 139.8), (34.7, 139.4), (34.05, 139.55), (32.45, 139.75), (30.45, 130.95), (30.35, 130.5),
           (28.3, 129.5), (27.75, 128.95), (26.6, 128.0), (26.2, 127.7), (24.8, 125.3), (24.4, 124.2),
           (24.45, 123.0), (27.1, 142.2), (26.65, 142.15), (24.8, 141.3), (25.4, 131.25), (24.3, 153.98)],
    "kr": [(37.5, 130.87), (34.68, 125.43), (37.95, 124.67), (34.05, 127.3), (33.15, 126.27)],
    "au": [(-29.03, 167.95), (-31.55, 159.08), (-10.45, 105.69), (-12.19, 96.83), (-9.5, 144.0)],
}

# Other states' coasts (coarse points, lat, lon): they bound the zones by equidistance.
NEIGHBOURS = [
    # North Korea, east then west coast
    (42.3, 130.65), (41.75, 129.8), (40.85, 129.7), (40.0, 128.4), (39.6, 127.6), (39.15, 127.45),
    (38.65, 128.35), (37.75, 125.4), (38.1, 124.7), (38.75, 125.1), (39.55, 124.6), (39.85, 124.35),
    (38.95, 127.2), (38.9, 126.4), (39.3, 126.0), (38.8, 125.7),     # inland, north of the DMZ (no land of kr's)
    # China
    (39.85, 124.2), (39.0, 121.6), (38.0, 120.8), (37.45, 122.65), (36.0, 120.3), (34.7, 119.4), (33.0, 120.9),
    (31.7, 121.9), (30.8, 122.2), (29.0, 121.9), (27.0, 120.5), (25.4, 119.7), (24.5, 118.1), (22.3, 114.2),
    # Taiwan
    (25.3, 121.5), (24.0, 121.65), (22.0, 120.8), (23.5, 120.15),
    # Russia: Primorye, Sakhalin
    (42.65, 130.75), (43.1, 131.9), (43.8, 135.3), (45.5, 137.7), (47.3, 139.0), (48.9, 140.3), (46.05, 141.9),
    (47.0, 142.05), (48.5, 142.0), (46.6, 143.4), (48.0, 142.6), (49.5, 144.0), (51.0, 143.5),
    # Philippines (Batanes, Luzon)
    (20.45, 121.95), (18.5, 122.2), (16.0, 119.8),
    # Indonesia, Timor-Leste, Papua New Guinea, Solomon Is., Vanuatu, New Caledonia, New Zealand
    (-8.6, 115.2), (-8.7, 120.0), (-10.2, 123.6), (-8.5, 125.6), (-9.4, 127.3), (-7.6, 131.3), (-5.7, 134.6),
    (-8.4, 137.6), (-9.1, 141.0), (-9.4, 143.0), (-9.5, 147.2), (-10.7, 150.7), (-9.5, 160.0),
    (-15.5, 167.0), (-20.0, 164.0), (-22.3, 166.5), (-34.4, 173.0), (-40.5, 172.7), (-46.6, 168.3),
]

REGIONS = {   # (lat0, lat1, lon0, lon1) of the grid per nation
    "jp": (17.0, 52.0, 118.0, 160.5),
    "kr": (28.0, 42.0, 120.0, 136.0),
    "au": (-58.0, 0.0, 90.0, 175.0),
}


def _unit(lat, lon):
    la, lo = np.radians(lat), np.radians(lon)
    return np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], axis=-1)


def _densify(poly, step_km=5.0):
    out = []
    n = len(poly)
    for i in range(n):
        (a0, b0), (a1, b1) = poly[i], poly[(i + 1) % n]
        d = math.hypot(a1 - a0, (b1 - b0) * math.cos(math.radians(a0))) * 111.2
        k = max(1, int(d / step_km))
        out += [(a0 + (a1 - a0) * j / k, b0 + (b1 - b0) * j / k) for j in range(k)]
    return out


def _chord_km(km):
    return 2.0 * math.sin(km / (2.0 * R_KM))


def _inside(lat, lon, poly):
    # even-odd rule on the grid (lat/lon plane: fine for these coarse outlines)
    inside = np.zeros(lat.shape, dtype=bool)
    n = len(poly)
    for i in range(n):
        (y1, x1), (y2, x2) = poly[i], poly[(i + 1) % n]
        if y1 == y2:
            continue
        cross = ((y1 > lat) != (y2 > lat)) & (lon < x1 + (lat - y1) * (x2 - x1) / (y2 - y1))
        inside ^= cross
    return inside


def _simplify(pts, tol):
    # Douglas-Peucker on (lat, lon)
    if len(pts) < 3:
        return pts
    a, b = np.array(pts[0]), np.array(pts[-1])
    ab = b - a
    L = float(np.hypot(*ab))
    p = np.array(pts[1:-1])
    if L == 0:
        d = np.hypot(*(p - a).T)
    else:
        d = np.abs(ab[0] * (p[:, 1] - a[1]) - ab[1] * (p[:, 0] - a[0])) / L
    i = int(np.argmax(d))
    if d[i] <= tol:
        return [pts[0], pts[-1]]
    return _simplify(pts[:i + 2], tol)[:-1] + _simplify(pts[i + 1:], tol)


def zone(name, nations):
    """The eez polygons (lists of [lat, lon]) of nation ``name``."""
    import contourpy
    own_polys = [t["polygon"] for t in nations[name]["territory"]]
    own = [p for poly in own_polys for p in _densify(poly)] + ISLANDS.get(name, [])
    other = list(NEIGHBOURS)
    for n, d in nations.items():
        if n != name:
            other += [p for t in d["territory"] for p in _densify(t["polygon"])] + ISLANDS.get(n, [])
    lat0, lat1, lon0, lon1 = REGIONS[name]
    lats = np.arange(lat0, lat1 + 1e-9, STEP_DEG)
    lons = np.arange(lon0, lon1 + 1e-9, STEP_DEG)
    LON, LAT = np.meshgrid(lons, lats)
    g = _unit(LAT, LON).reshape(-1, 3)
    d_own, _ = cKDTree(_unit(*np.array(own).T)).query(g)
    d_other, _ = cKDTree(_unit(*np.array(other).T)).query(g)
    inz = (d_own <= _chord_km(LIMIT_KM)) & (d_own <= d_other)
    inz = inz.reshape(LAT.shape)
    for poly in own_polys:
        inz |= _inside(LAT, LON, poly)
    gen = contourpy.contour_generator(lons, lats, inz.astype(float))
    polys = []
    for line in gen.lines(0.5):
        pts = [(float(la), float(lo)) for lo, la in line]
        if len(pts) > 2 and pts[0] == pts[-1]:
            pts = pts[:-1]
        if len(pts) < 8:
            continue
        s = _simplify(pts + [pts[0]], 2 * STEP_DEG)[:-1]
        # Keep zones of at least ~2,000 km^2 (an island's own circle is 430,000).
        area = 0.5 * abs(sum(s[i][1] * s[(i + 1) % len(s)][0] - s[(i + 1) % len(s)][1] * s[i][0]
                             for i in range(len(s))))
        if area * 111.2 ** 2 * math.cos(math.radians(s[0][0])) < 2000.0 or len(s) < 4:
            continue
        polys.append([[round(a, 2), round(b, 2)] for a, b in s])
    polys.sort(key=len, reverse=True)
    return polys


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args(argv)
    files = {}
    for fn in sorted(os.listdir(NATIONS)):
        if fn.endswith(".json"):
            with open(os.path.join(NATIONS, fn)) as f:
                files[fn[:-5]] = f.read()
    nations = {n: json.loads(t) for n, t in files.items()}
    bad = 0
    for n, d in nations.items():
        if n not in REGIONS:
            continue
        z = [{"name": "%s EEZ (approximate)" % d.get("long_name", n).split(" (")[0] + ("" if i == 0 else " %d" % (i + 1)),
              "polygon": p} for i, p in enumerate(zone(n, nations))]
        if args.check:
            if d.get("eez") != z:
                print("%s: eez differs from tools/make_eez.py" % n)
                bad = 1
            continue
        text = files[n]
        start = text.find('  "eez": [')
        body = ",\n".join('    {"name": %s, "polygon": %s}' % (json.dumps(e["name"]), json.dumps(e["polygon"]))
                          for e in z)
        block = '  "eez": [\n' + body + "\n  ]"
        if start >= 0:
            end = text.index("\n  ]", start) + 4
            text = text[:start] + block + text[end:]
        else:
            end = text.rstrip().rfind("}")
            text = text[:end].rstrip() + ",\n" + block + "\n}\n"
        with open(os.path.join(NATIONS, n + ".json"), "w") as f:
            f.write(text)
        print("%s: %d eez polygons, %d vertices" % (n, len(z), sum(len(e["polygon"]) for e in z)))
    return bad


if __name__ == "__main__":
    sys.exit(main())
