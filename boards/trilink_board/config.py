# config.py: load and validate scenario and nation JSON for the board
"""Scenario and nation configuration: load, validate, fill defaults.

Every problem raises ``ConfigError`` with one line that names the file and
the field, e.g. ``boards/nations/jp.json: radars[0].lat: expected a number``.
The formats are documented in boards/SCENARIOS.md and boards/NATIONS.md.

    >>> nation = load_nation("jp")              # boards/nations/jp.json
    >>> scen = load_scenario("default")         # boards/scenarios/default.json
    >>> scen["launches"][0]["cls"]
    'irbm'
"""
import json

from trilink_board import truth

# Named launch sites (public reporting, approximate).
SITES = {
    "Sunan": (39.20, 125.67),
    "Sohae": (39.66, 124.70),
    "Sinpo": (40.03, 128.18),
    "Wonsan": (39.17, 127.48),
}

TRACKER_DEFAULTS = {
    "confirm_m": 3,           # M hits ...
    "confirm_n": 5,           # ... in N looks confirm a track
    "gate": 16.27,            # chi-square, 3 dof, 99.9 %
    "coast_s": 12.0,          # a confirmed track with no update for this long is dropped
    "q_accel": 0.5,           # m/s^2 white acceleration noise, ballistic flight
    "q_boost": 80.0,          # m/s^2, while the track is judged under thrust
    "max_tracks": 40,          # ~600 bytes each on the 64-bit unix port, half on RP2040
    "init_speed_sigma": 3000.0,   # m/s, velocity uncertainty of a one-plot track
}


class ConfigError(Exception):
    """A configuration file is missing, malformed or inconsistent; the message is one line."""


def _root():
    # boards/trilink_board/config.py -> boards ; works on CPython, the unix
    # port and on a board's flash (/trilink_board/config.py -> "").
    f = __file__
    for _ in range(2):
        i = f.rfind("/")
        f = f[:i] if i >= 0 else ""
    return f or "."


def _listdir(path):
    try:
        import os
        return sorted(n[:-5] for n in os.listdir(path) if n.endswith(".json"))
    except (OSError, ImportError):
        return []


def _read_json(path):
    try:
        with open(path) as fh:
            text = fh.read()
    except OSError:
        raise ConfigError(path + ": cannot read file")
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise ConfigError(path + ": invalid JSON (" + str(e).split("\n")[0] + ")")
    if not isinstance(doc, dict):
        raise ConfigError(path + ": (top level): expected an object")
    return doc


def _resolve(kind, name, root):
    if name.endswith(".json") or "/" in name:
        return name
    base = (root if root is not None else _root()) + "/" + kind
    path = base + "/" + name + ".json"
    known = _listdir(base)
    if known and name not in known:
        raise ConfigError(path + ": unknown " + kind[:-1] + " '" + name + "' (known: " + ", ".join(known) + ")")
    return path


class _V:
    """Field checker bound to one file; ``at`` is the dotted path of the current object."""

    def __init__(self, path):
        self.path = path

    def fail(self, field, msg):
        raise ConfigError(self.path + ": " + field + ": " + msg)

    def obj(self, d, at, allowed):
        if not isinstance(d, dict):
            self.fail(at or "(top level)", "expected an object")
        for k in d:
            if k not in allowed:
                self.fail(_join(at, k), "unknown field")
        return d

    def num(self, d, at, key, lo=None, hi=None, default=None):
        f = _join(at, key)
        if key not in d:
            if default is None:
                self.fail(f, "missing")
            return default
        v = d[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            self.fail(f, "expected a number")
        v = float(v)
        if v != v or (lo is not None and v < lo) or (hi is not None and v > hi):
            self.fail(f, "out of range [" + str(lo) + ", " + str(hi) + "]")
        return v

    def int_(self, d, at, key, lo, hi, default=None):
        f = _join(at, key)
        if key not in d:
            if default is None:
                self.fail(f, "missing")
            return default
        v = d[key]
        if isinstance(v, bool) or not isinstance(v, int):
            self.fail(f, "expected an integer")
        if v < lo or v > hi:
            self.fail(f, "out of range [" + str(lo) + ", " + str(hi) + "]")
        return v

    def str_(self, d, at, key, default=None):
        f = _join(at, key)
        if key not in d:
            if default is None:
                self.fail(f, "missing")
            return default
        v = d[key]
        if not isinstance(v, str) or not v:
            self.fail(f, "expected a non-empty string")
        return v

    def list_(self, d, at, key, min_len=0, default=None):
        f = _join(at, key)
        if key not in d:
            if default is None:
                self.fail(f, "missing")
            return default
        v = d[key]
        if not isinstance(v, list):
            self.fail(f, "expected a list")
        if len(v) < min_len:
            self.fail(f, "expected at least " + str(min_len) + " entries")
        return v


def _join(at, key):
    return at + "." + key if at else key


def _site(v, at, d):
    if "site" not in d:
        v.fail(_join(at, "site"), "missing")
    s = d["site"]
    f = _join(at, "site")
    if isinstance(s, str):
        if s not in SITES:
            v.fail(f, "unknown site '" + s + "' (known: " + ", ".join(sorted(SITES)) + ")")
        la, lo = SITES[s]
        return la, lo, 0.0
    v.obj(s, f, ("lat", "lon", "alt_m"))
    return (v.num(s, f, "lat", -90.0, 90.0), v.num(s, f, "lon", -180.0, 180.0),
            v.num(s, f, "alt_m", -500.0, 9000.0, 0.0))


def load_scenario(name, root=None):
    """Load ``boards/scenarios/<name>.json`` (or a path); return a normalised dict.

    Result: name, description, seed, duration_s, launches (dicts for
    ``truth.Truth``: name, lat, lon, alt, t, az, and cls or burnout),
    breakups (launch index, t_s, count, dv_sigma_mps).
    """
    path = _resolve("scenarios", name, root)
    d = _read_json(path)
    v = _V(path)
    v.obj(d, "", ("name", "description", "seed", "duration_s", "launches", "breakups"))
    out = {"name": v.str_(d, "", "name"), "description": v.str_(d, "", "description", ""),
           "seed": v.int_(d, "", "seed", 0, 0xFFFFFFFF, 1),
           "duration_s": v.num(d, "", "duration_s", 1.0, 86400.0), "launches": [], "breakups": []}
    names = []
    for i, ln in enumerate(v.list_(d, "", "launches", 1)):
        at = "launches[" + str(i) + "]"
        v.obj(ln, at, ("name", "site", "t_s", "azimuth_deg", "class", "burnout"))
        la, lo, al = _site(v, at, ln)
        n = v.str_(ln, at, "name", "m" + str(i + 1))
        if n in names:
            v.fail(_join(at, "name"), "duplicate launch name '" + n + "'")
        names.append(n)
        e = {"name": n, "lat": la, "lon": lo, "alt": al, "t": v.num(ln, at, "t_s", 0.0, 86400.0),
             "az": v.num(ln, at, "azimuth_deg", 0.0, 360.0)}
        if ("class" in ln) == ("burnout" in ln):
            v.fail(at, "give exactly one of 'class' and 'burnout'")
        if "class" in ln:
            c = v.str_(ln, at, "class")
            if c not in truth.CLASSES:
                v.fail(_join(at, "class"), "unknown trajectory class '" + c + "' (known: "
                       + ", ".join(sorted(truth.CLASSES)) + ")")
            e["cls"] = c
        else:
            b = ln["burnout"]
            bat = _join(at, "burnout")
            v.obj(b, bat, ("t_s", "alt_m", "downrange_m", "speed_mps", "gamma_deg"))
            e["burnout"] = {"t_s": v.num(b, bat, "t_s", 0.0, 1000.0), "alt_m": v.num(b, bat, "alt_m", 0.0, 2e6),
                            "downrange_m": v.num(b, bat, "downrange_m", 0.0, 5e6),
                            "speed_mps": v.num(b, bat, "speed_mps", 0.0, 11000.0),
                            "gamma_deg": v.num(b, bat, "gamma_deg", -90.0, 90.0)}
        out["launches"].append(e)
    for i, b in enumerate(v.list_(d, "", "breakups", 0, [])):
        at = "breakups[" + str(i) + "]"
        v.obj(b, at, ("launch", "t_s", "count", "dv_sigma_mps"))
        ln = v.str_(b, at, "launch")
        if ln not in names:
            v.fail(_join(at, "launch"), "no launch named '" + ln + "'")
        out["breakups"].append({"launch": names.index(ln), "t_s": v.num(b, at, "t_s", 0.0, 86400.0),
                                "count": v.int_(b, at, "count", 1, 500),
                                "dv_sigma_mps": v.num(b, at, "dv_sigma_mps", 0.0, 1000.0)})
    return out


_RADAR_FIELDS = ("name", "lat", "lon", "alt_m", "max_range_km", "elevation_mask_deg", "sigma_range_m",
                 "sigma_az_deg", "sigma_el_deg", "update_hz", "pd", "false_alarms_per_scan", "sector")


def load_nation(name, root=None):
    """Load ``boards/nations/<name>.json`` (or a path); return a normalised dict.

    Result: node, name, long_name, origin (lat, lon, alt_m), clock
    (offset_s, drift_ppm), radars (list of dicts, SI units: lat, lon,
    alt_m, max_range_m, mask_rad, sigma_range_m, sigma_az_rad,
    sigma_el_rad, update_hz, pd, fa_per_scan, sector_az_rad, sector_half_rad
    or None), tracker (TRACKER_DEFAULTS overridden), territory and eez (lists
    of {name, polygon}; eez: the approximate exclusive economic zone,
    tools/make_eez.py, land included).
    """
    path = _resolve("nations", name, root)
    d = _read_json(path)
    v = _V(path)
    v.obj(d, "", ("node", "name", "long_name", "origin", "clock", "radars", "tracker", "territory", "eez"))
    out = {"node": v.int_(d, "", "node", 1, 254), "name": v.str_(d, "", "name"),
           "long_name": v.str_(d, "", "long_name", "")}
    if len(out["name"]) > 16:
        v.fail("name", "longer than 16 characters")
    if "origin" not in d:
        v.fail("origin", "missing")
    o = v.obj(d["origin"], "origin", ("lat", "lon", "alt_m"))
    out["origin"] = {"lat": v.num(o, "origin", "lat", -90.0, 90.0), "lon": v.num(o, "origin", "lon", -180.0, 180.0),
                     "alt_m": v.num(o, "origin", "alt_m", -500.0, 9000.0, 0.0)}
    c = v.obj(d.get("clock", {}), "clock", ("offset_s", "drift_ppm"))
    out["clock"] = {"offset_s": v.num(c, "clock", "offset_s", -1e6, 1e6, 0.0),
                    "drift_ppm": v.num(c, "clock", "drift_ppm", -1000.0, 1000.0, 0.0)}
    d2r = 0.017453292519943295
    radars = []
    for i, r in enumerate(v.list_(d, "", "radars", 1)):
        at = "radars[" + str(i) + "]"
        v.obj(r, at, _RADAR_FIELDS)
        e = {"name": v.str_(r, at, "name", "radar" + str(i + 1)),
             "lat": v.num(r, at, "lat", -90.0, 90.0), "lon": v.num(r, at, "lon", -180.0, 180.0),
             "alt_m": v.num(r, at, "alt_m", -500.0, 9000.0, 0.0),
             "max_range_m": 1000.0 * v.num(r, at, "max_range_km", 1.0, 10000.0),
             "mask_rad": d2r * v.num(r, at, "elevation_mask_deg", -5.0, 89.0),
             "sigma_range_m": v.num(r, at, "sigma_range_m", 0.01, 10000.0),
             "sigma_az_rad": d2r * v.num(r, at, "sigma_az_deg", 1e-5, 10.0),
             "sigma_el_rad": d2r * v.num(r, at, "sigma_el_deg", 1e-5, 10.0),
             "update_hz": v.num(r, at, "update_hz", 0.01, 50.0),
             "pd": v.num(r, at, "pd", 0.0, 1.0, 1.0),
             "fa_per_scan": v.num(r, at, "false_alarms_per_scan", 0.0, 20.0, 0.0),
             "sector_az_rad": None, "sector_half_rad": None}
        if "sector" in r:
            sat = _join(at, "sector")
            s = v.obj(r["sector"], sat, ("center_az_deg", "width_deg"))
            e["sector_az_rad"] = d2r * v.num(s, sat, "center_az_deg", 0.0, 360.0)
            e["sector_half_rad"] = 0.5 * d2r * v.num(s, sat, "width_deg", 1.0, 360.0)
        radars.append(e)
    out["radars"] = radars
    t = v.obj(d.get("tracker", {}), "tracker", TRACKER_DEFAULTS)
    tr = {}
    for k in TRACKER_DEFAULTS:
        dv = TRACKER_DEFAULTS[k]
        if isinstance(dv, int):
            tr[k] = v.int_(t, "tracker", k, 1, 10000, dv)
        else:
            tr[k] = v.num(t, "tracker", k, 0.0, 1e6, dv)
    if tr["confirm_m"] > tr["confirm_n"]:
        v.fail("tracker.confirm_m", "greater than tracker.confirm_n")
    out["tracker"] = tr
    out["territory"] = _areas(v, d, "territory")
    out["eez"] = _areas(v, d, "eez")
    return out


def _areas(v, d, key):
    # a list of {name, polygon: [[lat, lon], ...]} (territory, eez)
    terr = []
    for i, a in enumerate(v.list_(d, "", key, 0, [])):
        at = key + "[" + str(i) + "]"
        v.obj(a, at, ("name", "polygon"))
        poly = v.list_(a, at, "polygon", 3)
        pts = []
        for j, p in enumerate(poly):
            pat = _join(at, "polygon") + "[" + str(j) + "]"
            if (not isinstance(p, list) or len(p) != 2 or isinstance(p[0], bool) or isinstance(p[1], bool)
                    or not isinstance(p[0], (int, float)) or not isinstance(p[1], (int, float))):
                v.fail(pat, "expected [lat, lon]")
            if not (-90 <= p[0] <= 90 and -180 <= p[1] <= 180):
                v.fail(pat, "out of range")
            pts.append((float(p[0]), float(p[1])))
        terr.append({"name": v.str_(a, at, "name", "area" + str(i + 1)), "polygon": pts})
    return terr
