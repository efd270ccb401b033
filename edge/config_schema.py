# config_schema.py: relay.toml read and validated, key by key, into trilink_edge.config_types
"""The validation of ``relay.toml``: ``load``/``loads``/``from_dict`` (import
them from ``trilink_edge.config``), one function per section, the typed
getters (``_V``) whose every failure is one ``ConfigError`` line naming
``FILE: KEY``, and the federation's key loading.
"""
from __future__ import annotations

import math
import os
import tomllib
from typing import Any, Dict, FrozenSet, List, Mapping, Optional, Sequence, Tuple

from trilink_edge.config_types import (
    CI_MODES, DEFAULT_BAUD, DEFAULT_STATS_ADDR, LINK_KINDS, UDP_DEFAULT_BUDGET, WARN_MODES, AsterixConfig, Config,
    ConfigError, DeadReckoningConfig, FederationConfig, FederationPeer, FusionConfig, LinkConfig, NodeConfig,
    Origin, RecorderConfig, RelaySection, ReleasePolicy, SchedulerConfig, Territory, ZenohConfig,
    federation_key_name, serial_budget)

__all__ = ["load", "loads", "from_dict", "load_federation_keys", "OPS_KEY", "FED_MAX_NODE"]


# ---------------------------------------------------------------- loading ----

def load(path: str) -> Config:
    """Read and validate a TOML file; relative paths inside it are relative to
    the file's folder."""
    label = os.path.basename(path) or path
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror or e}") from None
    return loads(raw.decode("utf-8", "replace"), source=label, base_dir=os.path.dirname(os.path.abspath(path)))


def loads(text: str, source: str = "relay.toml", base_dir: str = ".") -> Config:
    """Validate TOML text (``source`` names it in errors)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{source}: not valid TOML: {e}") from None
    return from_dict(data, source, base_dir)


class _V:
    """Typed getters that raise ConfigError naming ``source: key``."""

    def __init__(self, source: str, base_dir: str) -> None:
        self.source = source
        self.base_dir = base_dir

    def fail(self, key: str, msg: str) -> "ConfigError":
        return ConfigError(f"{self.source}: {key}: {msg}")

    def table(self, d: Mapping[str, Any], key: str, name: str, known: Sequence[str]) -> Mapping[str, Any]:
        v = d.get(name, {})
        if not isinstance(v, dict):
            raise self.fail(key, "expected a table")
        for k in v:
            if k not in known:
                raise self.fail(f"{key}.{k}" if key else k, f"unknown key (known: {', '.join(known)})")
        return v

    def _lookup(self, d: Mapping[str, Any], key: str, name: str, default: Any) -> Tuple[str, bool, Any]:
        """(the key's full name, whether it is given, its value or ``default``);
        ``default`` ``_REQUIRED``: a missing key is an error."""
        full = f"{key}.{name}" if key else name
        if name in d:
            return full, True, d[name]
        if default is _REQUIRED:
            raise self.fail(full, "missing")
        return full, False, default

    def int_(self, d: Mapping[str, Any], key: str, name: str, default: Any, lo: int, hi: int) -> Any:
        full, present, v = self._lookup(d, key, name, default)
        if not present:
            return v
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.fail(full, "expected an integer")
        if not lo <= v <= hi:
            raise self.fail(full, f"{v} out of range [{lo}, {hi}]")
        return v

    def num(self, d: Mapping[str, Any], key: str, name: str, default: Any, lo: float, hi: float) -> Any:
        full, present, v = self._lookup(d, key, name, default)
        if not present:
            return v
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise self.fail(full, "expected a number")
        if not lo <= v <= hi:
            raise self.fail(full, f"{v} out of range [{lo}, {hi}]")
        return float(v)

    def str_(self, d: Mapping[str, Any], key: str, name: str, default: Any,
             choices: Optional[Sequence[str]] = None) -> Any:
        full, present, v = self._lookup(d, key, name, default)
        if not present:
            return v
        if not isinstance(v, str) or not v:
            raise self.fail(full, "expected a non-empty string")
        if choices is not None and v not in choices:
            raise self.fail(full, f"{v!r} is not one of {', '.join(choices)}")
        return v

    def bool_(self, d: Mapping[str, Any], key: str, name: str, default: bool) -> bool:
        if name not in d:
            return default
        if not isinstance(d[name], bool):
            raise self.fail(f"{key}.{name}", "expected true or false")
        return d[name]

    def path(self, d: Mapping[str, Any], key: str, name: str) -> Optional[str]:
        v = self.str_(d, key, name, None)
        return None if v is None else os.path.normpath(os.path.join(self.base_dir, os.path.expanduser(v)))

    def addr(self, d: Mapping[str, Any], key: str, name: str, default: Any, empty_host: str = "0.0.0.0") -> Any:
        """``"host:port"`` -> (host, port); an IPv6 host goes in brackets;
        ``":port"`` means ``empty_host``."""
        full = f"{key}.{name}" if key else name
        v = self.str_(d, key, name, default)
        if v is default:
            return v
        host, sep, port = v.rpartition(":")
        host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise self.fail(full, f"{v!r}: expected \"host:port\"")
        return (host or empty_host, int(port))

    def names(self, d: Mapping[str, Any], key: str, name: str, default: Any) -> Any:
        full, present, v = self._lookup(d, key, name, default)
        if not present:
            return v
        if not isinstance(v, list) or not all(isinstance(x, str) and x for x in v):
            raise self.fail(full, "expected a list of names")
        return tuple(v)


_REQUIRED = object()
_RELAY_KEYS = ("node", "key_file", "state_file", "stats", "stats_interval_s", "stats_frames_s", "log_level",
               "allow_test_keys")
_NODE_KEYS = ("name", "id", "nation", "key_id", "nation_file", "origin", "territory")
_LINK_KEYS = ("kind", "device", "baud", "low_latency", "bind", "peer", "boards", "budget", "burst")


def _nation_file(v: _V, key: str, path: str) -> Tuple[Origin, Tuple[Territory, ...], Optional[str],
                                                     Tuple[Territory, ...]]:
    # The board's own loader validates the file (boards/NATIONS.md); its
    # errors name that file, so they are passed on with our key in front.
    from trilink_board import config as board_config
    try:
        nat = board_config.load_nation(path)
    except board_config.ConfigError as e:
        raise v.fail(key, str(e)) from None
    o = nat["origin"]
    terr, eez = (tuple(Territory(t["name"], tuple((float(a), float(b)) for a, b in t["polygon"]))
                       for t in nat[k]) for k in ("territory", "eez"))
    return Origin(o["lat"], o["lon"], o["alt_m"]), terr, nat["name"], eez


def _inline_origin(v: _V, key: str, d: Mapping[str, Any]) -> Origin:
    o = v.table(d, key, "origin", ("lat", "lon", "alt_m"))
    if "origin" not in d:
        raise v.fail(key + ".origin", "missing (give nation_file or origin)")
    k = key + ".origin"
    return Origin(v.num(o, k, "lat", _REQUIRED, -90, 90), v.num(o, k, "lon", _REQUIRED, -180, 180),
                  v.num(o, k, "alt_m", 0.0, -500, 9000))


def _inline_territory(v: _V, key: str, d: Mapping[str, Any]) -> Tuple[Territory, ...]:
    terr = d.get("territory", [])
    if not isinstance(terr, list):
        raise v.fail(key + ".territory", "expected an array of tables")
    out = []
    for i, t in enumerate(terr):
        k = f"{key}.territory[{i}]"
        if not isinstance(t, dict):
            raise v.fail(k, "expected a table with name and polygon")
        name = v.str_(t, k, "name", f"area{i}")
        poly = t.get("polygon")
        if (not isinstance(poly, list) or len(poly) < 3 or not all(
                isinstance(p, list) and len(p) == 2 and all(isinstance(c, (int, float)) and not isinstance(c, bool)
                                                          for c in p) for p in poly)):
            raise v.fail(k + ".polygon", "expected at least 3 [lat, lon] pairs")
        if not all(-90 <= p[0] <= 90 and -180 <= p[1] <= 180 for p in poly):
            raise v.fail(k + ".polygon", "a point is outside lat [-90, 90] / lon [-180, 180]")
        out.append(Territory(name, tuple((float(a), float(b)) for a, b in poly)))
    return tuple(out)


def _nodes(v: _V, data: Mapping[str, Any]) -> List[Tuple[str, Mapping[str, Any], str]]:
    raw = data.get("nodes", {})
    out: List[Tuple[str, Mapping[str, Any], str]] = []
    if isinstance(raw, dict):           # [nodes.NAME]
        for name, d in raw.items():
            if not isinstance(d, dict):
                raise v.fail(f"nodes.{name}", "expected a table")
            out.append((name, d, f"nodes.{name}"))
        return out
    if isinstance(raw, list):           # [[nodes]] with name = "..."
        for i, d in enumerate(raw):
            if not isinstance(d, dict):
                raise v.fail(f"nodes[{i}]", "expected a table")
            out.append((v.str_(d, f"nodes[{i}]", "name", _REQUIRED), d, f"nodes[{i}]"))
        return out
    raise v.fail("nodes", "expected [nodes.NAME] tables or [[nodes]] entries")


def from_dict(data: Mapping[str, Any], source: str = "relay.toml", base_dir: str = ".") -> Config:
    """Validate an already parsed TOML document."""
    v = _V(source, base_dir)
    known = ("relay", "nodes", "links", "release", "deadreckoning", "fusion", "scheduler", "recorder",
             "zenoh", "asterix", "federation")
    for k in data:
        if k not in known:
            raise v.fail(k, f"unknown section (known: {', '.join(known)})")
    relay = _relay(v, data)
    links, link_of = _links(v, data)     # links first: a node's link is the one whose `boards` names it
    nodes, ids = _node_list(v, data, relay.node, links, link_of)
    federation = _federation(v, data, ids, relay.allow_test_keys)
    # the release policy may name the nations of the federation's boards and hubs
    nations = sorted({n.nation for n in nodes} | {nat for p in federation.peers for nat, _ in p.nodes}
                     | {nat for p in federation.peers for nat in p.serves})
    return Config(source=source, relay=relay, nodes=tuple(nodes), links=links, release=_release(v, data, nations),
                  deadreckoning=_deadreckoning(v, data), fusion=_fusion(v, data), scheduler=_scheduler(v, data),
                  recorder=_recorder(v, data), zenoh=_zenoh(v, data, nations, relay.allow_test_keys),
                  asterix=_asterix(v, data, [n.name for n in nodes]), federation=federation)


def _relay(v: _V, data: Mapping[str, Any]) -> RelaySection:
    r = v.table(data, "relay", "relay", _RELAY_KEYS)
    node = v.int_(r, "relay", "node", 0, 0, 254)
    stats: Any = DEFAULT_STATS_ADDR
    if r.get("stats") in ("", "off", False):
        stats = None
    elif "stats" in r:
        # The endpoint is unauthenticated: ":port" is loopback, every address only when written out.
        stats = v.addr(r, "relay", "stats", DEFAULT_STATS_ADDR, empty_host="127.0.0.1")
    return RelaySection(
        node=node, key_file=v.path(r, "relay", "key_file"),
        state_file=v.path(r, "relay", "state_file"),
        stats_addr=stats, stats_interval_s=v.num(r, "relay", "stats_interval_s", 10.0, 0.0, 86400.0),
        stats_frames_s=v.num(r, "relay", "stats_frames_s", 10.0, 0.0, 86400.0),
        log_level=v.str_(r, "relay", "log_level", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR")),
        allow_test_keys=v.bool_(r, "relay", "allow_test_keys", False))


def _links(v: _V, data: Mapping[str, Any]) -> Tuple[Dict[str, LinkConfig], Dict[str, str]]:
    """``[links.NAME]``, and the link of each board they name."""
    links_raw = data.get("links", {})
    if not isinstance(links_raw, dict) or not links_raw:
        raise v.fail("links", "missing: at least one [links.NAME] table")
    links: Dict[str, LinkConfig] = {}
    link_of: Dict[str, str] = {}
    for lname, d in links_raw.items():
        key = f"links.{lname}"
        if not isinstance(d, dict):
            raise v.fail(key, "expected a table")
        v.table(links_raw, key, lname, _LINK_KEYS)
        kind = v.str_(d, key, "kind", _REQUIRED, LINK_KINDS)
        boards = v.names(d, key, "boards", _REQUIRED)
        for b in boards:
            if b in link_of:
                raise v.fail(f"{key}.boards", f"{b!r} is already on link {link_of[b]!r}")
            link_of[b] = lname
        burst = v.int_(d, key, "burst", None, 64, 1 << 24)
        if kind == "serial":
            for bad in ("bind", "peer"):
                if bad in d:
                    raise v.fail(f"{key}.{bad}", "only for kind = \"udp\"")
            baud = v.int_(d, key, "baud", DEFAULT_BAUD, 50, 20_000_000)
            links[lname] = LinkConfig(
                name=lname, kind=kind, boards=boards, device=v.str_(d, key, "device", _REQUIRED), baud=baud,
                low_latency=v.bool_(d, key, "low_latency", True),
                budget=v.int_(d, key, "budget", serial_budget(baud), 64, 1 << 30), burst=burst)
        else:
            for bad in ("device", "baud", "low_latency"):
                if bad in d:
                    raise v.fail(f"{key}.{bad}", "only for kind = \"serial\"")
            links[lname] = LinkConfig(
                name=lname, kind=kind, boards=boards, bind=v.addr(d, key, "bind", _REQUIRED),
                peer=v.addr(d, key, "peer", None),
                budget=v.int_(d, key, "budget", UDP_DEFAULT_BUDGET, 64, 1 << 30), burst=burst)
    return links, link_of


def _node_list(v: _V, data: Mapping[str, Any], relay_node: int, links: Mapping[str, LinkConfig],
               link_of: Mapping[str, str]) -> Tuple[List[NodeConfig], Dict[int, str]]:
    """The nodes, and every node id in use (the relay's too) -> who uses it."""
    nodes: List[NodeConfig] = []
    ids: Dict[int, str] = {relay_node: "the relay ([relay] node)"}
    key_ids: Dict[int, str] = {}
    for name, d, key in _nodes(v, data):
        for k in d:
            if k not in _NODE_KEYS:
                raise v.fail(f"{key}.{k}", f"unknown key (known: {', '.join(_NODE_KEYS)})")
        nid = v.int_(d, key, "id", _REQUIRED, 1, 254)
        if nid in ids:
            raise v.fail(f"{key}.id", f"{nid} is already used by {ids[nid]}")
        ids[nid] = name
        kid = v.int_(d, key, "key_id", nid, 1, 255)
        if kid in key_ids:
            raise v.fail(f"{key}.key_id", f"{kid} is already used by {key_ids[kid]}")
        key_ids[kid] = name
        nfile = v.path(d, key, "nation_file")
        file_nation = None
        eez: Tuple[Territory, ...] = ()
        if nfile is not None:
            if "origin" in d or "territory" in d:
                raise v.fail(key, "give nation_file or inline origin/territory, not both")
            origin, terr, file_nation, eez = _nation_file(v, f"{key}.nation_file", nfile)
        else:
            origin, terr = _inline_origin(v, key, d), _inline_territory(v, key, d)
        nation = v.str_(d, key, "nation", file_nation or name)
        if name not in link_of:
            raise v.fail(key, f"no link lists {name!r} in its boards")
        nodes.append(NodeConfig(name=name, node=nid, nation=nation, key_id=kid, origin=origin,
                                territory=terr, link=link_of[name], nation_file=nfile, eez=eez))
    if not nodes:
        raise v.fail("nodes", "missing: at least one node")
    for lname, lk in links.items():
        for b in lk.boards:
            if b not in ids.values():
                raise v.fail(f"links.{lname}.boards", f"{b!r} is not a configured node")
    return nodes, ids


def _release(v: _V, data: Mapping[str, Any], nations: Sequence[str]) -> ReleasePolicy:
    rel = data.get("release", {})
    if not isinstance(rel, dict):
        raise v.fail("release", "expected a table")
    allow: Dict[str, FrozenSet[str]] = {}
    for src, dsts in rel.items():
        if src not in nations:
            raise v.fail(f"release.{src}", f"unknown nation (configured: {', '.join(nations)})")
        lst = v.names(rel, "release", src, _REQUIRED)
        for dn in lst:
            if dn not in nations:
                raise v.fail(f"release.{src}", f"unknown nation {dn!r} (configured: {', '.join(nations)})")
        allow[src] = frozenset(lst)
    return ReleasePolicy(allow)


def _deadreckoning(v: _V, data: Mapping[str, Any]) -> DeadReckoningConfig:
    # (velocity_mps and timeout_s were removed: the C sender has no velocity
    # threshold, and the receiver's timeout is the board's own setting.)
    dr = v.table(data, "deadreckoning", "deadreckoning", ("position_m", "heartbeat_s"))
    return DeadReckoningConfig(
        position_m=v.num(dr, "deadreckoning", "position_m", 0.0, 0.0, 1e7),
        heartbeat_s=v.num(dr, "deadreckoning", "heartbeat_s", 5.0, 0.01, 3600.0))


def _fusion(v: _V, data: Mapping[str, Any]) -> FusionConfig:
    fu = v.table(data, "fusion", "fusion", ("gate", "ci_mode", "stay_bonus", "switch_frames", "timeout_s",
                                             "warn_horizon_s", "warn"))
    return FusionConfig(
        gate=v.num(fu, "fusion", "gate", 22.46, 0.1, 1e4), ci_mode=v.str_(fu, "fusion", "ci_mode", "trace", CI_MODES),
        stay_bonus=v.num(fu, "fusion", "stay_bonus", 4.0, 0.0, 1e4),
        switch_frames=v.int_(fu, "fusion", "switch_frames", 3, 1, 1000),
        timeout_s=v.num(fu, "fusion", "timeout_s", 12.0, 0.1, 3600.0),
        warn_horizon_s=v.num(fu, "fusion", "warn_horizon_s", 1800.0, 1.0, 86400.0),
        warn=v.str_(fu, "fusion", "warn", "partners", WARN_MODES))


def _scheduler(v: _V, data: Mapping[str, Any]) -> SchedulerConfig:
    sc = v.table(data, "scheduler", "scheduler", ("max_age_s", "max_control", "max_warnings", "burst",
                                                   "warning_retry_s", "warning_retry_max_s"))
    scheduler = SchedulerConfig(
        max_age_s=v.num(sc, "scheduler", "max_age_s", 2.0, 0.001, 3600.0),
        max_control=v.int_(sc, "scheduler", "max_control", 64, 1, 1 << 20),
        max_warnings=v.int_(sc, "scheduler", "max_warnings", 256, 1, 1 << 20),
        burst=v.int_(sc, "scheduler", "burst", None, 64, 1 << 24),
        warning_retry_s=v.num(sc, "scheduler", "warning_retry_s", 0.5, 0.001, 60.0),
        warning_retry_max_s=v.num(sc, "scheduler", "warning_retry_max_s", 4.0, 0.001, 3600.0))
    if scheduler.warning_retry_max_s < scheduler.warning_retry_s:
        raise v.fail("scheduler.warning_retry_max_s", "must be at least warning_retry_s")
    return scheduler


def _recorder(v: _V, data: Mapping[str, Any]) -> RecorderConfig:
    rc = v.table(data, "recorder", "recorder", ("path", "rotate_bytes", "max_files"))
    return RecorderConfig(path=v.path(rc, "recorder", "path"),
                          rotate_bytes=v.int_(rc, "recorder", "rotate_bytes", 64 << 20, 4096, 1 << 40),
                          max_files=v.int_(rc, "recorder", "max_files", 10, 1, 100000))


# ------------------------------------------------- publishing and export ----

_ZENOH_KEYS = ("enabled", "relay", "key_file", "mode", "listen", "connect", "multicast_scouting", "queue",
               "health_period_s", "stats_period_s", "snapshot_period_s")
_ZENOH_MODES = ("peer", "client")
OPS_KEY = "ops"     # the zenoh key file entry that seals health and stats


def _zenoh(v: _V, data: Mapping[str, Any], nations: Sequence[str], allow_test_keys: bool = False) -> ZenohConfig:
    z = v.table(data, "zenoh", "zenoh", _ZENOH_KEYS)
    enabled = v.bool_(z, "zenoh", "enabled", False)
    relay = v.str_(z, "zenoh", "relay", "relay")
    if not all(c.isalnum() or c in "-_" for c in relay):
        raise v.fail("zenoh.relay", f"{relay!r}: letters, digits, '-' and '_' only (a key expression segment)")
    cfg = ZenohConfig(
        enabled=enabled, relay=relay, key_file=v.path(z, "zenoh", "key_file"),
        mode=v.str_(z, "zenoh", "mode", "peer", _ZENOH_MODES),
        listen=v.names(z, "zenoh", "listen", ()), connect=v.names(z, "zenoh", "connect", ()),
        multicast_scouting=v.bool_(z, "zenoh", "multicast_scouting", False),
        queue=v.int_(z, "zenoh", "queue", 4096, 1, 1 << 20),
        health_period_s=v.num(z, "zenoh", "health_period_s", 1.0, 0.0, 86400.0),
        stats_period_s=v.num(z, "zenoh", "stats_period_s", 5.0, 0.0, 86400.0),
        snapshot_period_s=v.num(z, "zenoh", "snapshot_period_s", 1.0, 0.0, 86400.0))
    if not enabled:
        return cfg
    # A config that asks for Zenoh fails here, in one line, rather than at
    # the first publication: the package, then the key file.
    for mod, pkg in (("zenoh", "eclipse-zenoh"), ("cryptography", "cryptography")):
        try:
            __import__(mod)
        except ImportError:
            raise v.fail("zenoh.enabled", f"needs the {pkg} package: pip install \".[zenoh]\"") from None
    if cfg.key_file is None:
        raise v.fail("zenoh.key_file", "missing (a trilink-keys/1 file with one key per nation, and ops)")
    # The same rules as the relay's own key file (edge/keyfile.py): private,
    # distinct, and no test key outside tests.
    from trilink_board import keys as _keys
    from trilink_edge import keyfile as _keyfile
    try:
        text = _keyfile.read_private(cfg.key_file)
    except ConfigError as e:
        raise v.fail("zenoh.key_file", str(e)) from None
    try:
        entries = _keys.loads(text).entries
    except _keys.KeyFileError as e:
        raise v.fail("zenoh.key_file", f"{cfg.key_file}: {e}") from None
    _keyfile.check_keys({e.key_id: e.key for e in entries}, allow_test_keys, cfg.key_file)
    names = {e.name for e in entries}
    need = list(nations) + ([OPS_KEY] if cfg.health_period_s > 0 or cfg.stats_period_s > 0 else [])
    for n in need:
        if n not in names:
            raise v.fail("zenoh.key_file", f"{cfg.key_file} has no key named {n!r}")
    return cfg


def _asterix(v: _V, data: Mapping[str, Any], node_names: Sequence[str]) -> AsterixConfig:
    a = v.table(data, "asterix", "asterix", ("enabled", "node", "udp", "file", "sac", "sic", "period_s"))
    cfg = AsterixConfig(
        enabled=v.bool_(a, "asterix", "enabled", False), node=v.str_(a, "asterix", "node", None),
        udp=v.addr(a, "asterix", "udp", None), file=v.path(a, "asterix", "file"),
        sac=v.int_(a, "asterix", "sac", 0, 0, 255), sic=v.int_(a, "asterix", "sic", 1, 0, 255),
        period_s=v.num(a, "asterix", "period_s", 1.0, 0.05, 3600.0))
    if cfg.enabled:
        if cfg.node is None:
            raise v.fail("asterix.node", "missing: the node whose released picture is exported")
        if cfg.node not in node_names:
            raise v.fail("asterix.node", f"{cfg.node!r} is not a configured node ({', '.join(node_names)})")
        if cfg.udp is None and cfg.file is None:
            raise v.fail("asterix", "give udp = \"host:port\" and/or file = \"PATH\"")
    return cfg


# ------------------------------------------------------------ federation ----

_FED_KEYS = ("enabled", "hub", "key_file", "mode", "listen", "connect", "multicast_scouting", "max_skew_s",
             "heartbeat_s", "peers")
_PEER_KEYS = ("serves", "nodes")
FED_MAX_NODE = 63      # the fused picture keeps source node ids 0..63


def _segment(v: _V, key: str, name: str) -> str:
    if not all(c.isalnum() or c in "-_" for c in name):
        raise v.fail(key, f"{name!r}: letters, digits, '-' and '_' only (a key expression segment)")
    return name


def _federation(v: _V, data: Mapping[str, Any], ids: Mapping[int, str], allow_test_keys: bool) -> FederationConfig:
    f = v.table(data, "federation", "federation", _FED_KEYS)
    enabled = v.bool_(f, "federation", "enabled", False)
    hub = _segment(v, "federation.hub", v.str_(f, "federation", "hub", "hub"))
    peers_raw = f.get("peers", {})
    if not isinstance(peers_raw, dict):
        raise v.fail("federation.peers", "expected [federation.peers.NAME] tables")
    taken = dict(ids)
    peers = []
    for pname, d in peers_raw.items():
        key = f"federation.peers.{pname}"
        _segment(v, key, pname)
        if pname == hub:
            raise v.fail(key, f"{pname!r} is this hub's own name (federation.hub)")
        if not isinstance(d, dict):
            raise v.fail(key, "expected a table")
        v.table(peers_raw, key, pname, _PEER_KEYS)
        serves = v.names(d, key, "serves", _REQUIRED)
        nodes_raw = d.get("nodes", {})
        if not isinstance(nodes_raw, dict):
            raise v.fail(f"{key}.nodes", "expected a table of nation = node id")
        nodes = []
        for nat in nodes_raw:
            nid = v.int_(nodes_raw, f"{key}.nodes", nat, _REQUIRED, 1, FED_MAX_NODE)
            if nid in taken:
                raise v.fail(f"{key}.nodes.{nat}", f"node id {nid} is already used by {taken[nid]}")
            taken[nid] = f"{pname}'s {nat}"
            nodes.append((nat, nid))
        peers.append(FederationPeer(pname, serves, tuple(nodes)))
    cfg = FederationConfig(
        enabled=enabled, hub=hub, key_file=v.path(f, "federation", "key_file"),
        mode=v.str_(f, "federation", "mode", "peer", _ZENOH_MODES),
        listen=v.names(f, "federation", "listen", ()), connect=v.names(f, "federation", "connect", ()),
        multicast_scouting=v.bool_(f, "federation", "multicast_scouting", False),
        max_skew_s=v.num(f, "federation", "max_skew_s", 2.0, 0.01, 3600.0),
        heartbeat_s=v.num(f, "federation", "heartbeat_s", 1.0, 0.05, 60.0), peers=tuple(peers))
    if not enabled:
        return cfg
    if not peers:
        raise v.fail("federation.peers", "missing: at least one [federation.peers.NAME]")
    if not cfg.listen and not cfg.connect and not cfg.multicast_scouting:
        raise v.fail("federation", "give listen and/or connect endpoints (e.g. listen = [\"tcp/0.0.0.0:7448\"])")
    for mod, pkg in (("zenoh", "eclipse-zenoh"), ("cryptography", "cryptography")):
        try:
            __import__(mod)
        except ImportError:
            raise v.fail("federation.enabled", f"needs the {pkg} package: pip install \".[zenoh]\"") from None
    load_federation_keys(cfg, allow_test_keys, v.source)
    return cfg


def load_federation_keys(cfg: FederationConfig, allow_test_keys: bool, source: str) -> Dict[str, bytes]:
    """peer hub -> the 32-byte key this hub shares with it, from
    ``[federation] key_file`` under the relay key file's rules (0600, not a
    symbolic link, distinct keys, no test key unless allowed)."""
    from trilink_board import keys as _keys
    from trilink_edge import keyfile as _keyfile
    where = f"{source}: federation.key_file"
    if cfg.key_file is None:
        raise ConfigError(f"{where}: missing (a trilink-keys/1 file with one key per peer hub, "
                          f"named e.g. {federation_key_name(cfg.hub, cfg.peers[0].name)!r})")
    try:
        text = _keyfile.read_private(cfg.key_file)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
    try:
        entries = _keys.loads(text).entries
    except _keys.KeyFileError as e:
        raise ConfigError(f"{where}: {cfg.key_file}: {e}") from None
    _keyfile.check_keys({e.key_id: e.key for e in entries}, allow_test_keys, cfg.key_file)
    by_name = {e.name: e.key for e in entries}
    out = {}
    for p in cfg.peers:
        name = federation_key_name(cfg.hub, p.name)
        if name not in by_name:
            raise ConfigError(f"{where}: {cfg.key_file} has no key named {name!r} (the key hubs "
                              f"{cfg.hub!r} and {p.name!r} share: trilink keygen --nodes {name}:1)")
        out[p.name] = by_name[name]
    return out
