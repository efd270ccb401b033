# config.py: the relay's TOML configuration, validated into typed dataclasses
"""Load ``relay.toml`` (docs/RELAY.md is the reference, edge/relay.example.toml
an example) into a frozen :class:`Config`. The dataclasses are defined in
``config_types``, the validation in ``config_schema``; this module is the
one to import.

Every problem raises :class:`ConfigError` with one line that names the file
and the key, e.g. ``relay.toml: links.jp.baud: expected an integer``.

    >>> cfg = load("edge/relay.example.toml")
    >>> cfg.links["jp"].budget, cfg.release.may("jp", "au")
    (10368, False)
    >>> cfg.node("kr").link
    'kr'
"""
from __future__ import annotations

__all__ = [
    "ConfigError", "Config", "RelaySection", "NodeConfig", "Origin", "Territory", "LinkConfig",
    "ReleasePolicy", "DeadReckoningConfig", "FusionConfig", "SchedulerConfig", "RecorderConfig",
    "load", "loads", "from_dict", "serial_budget", "SERIAL_BUDGET_FACTOR", "UDP_DEFAULT_BUDGET",
    "LINK_KINDS", "CI_MODES", "WARN_MODES", "ZenohConfig", "AsterixConfig", "FederationConfig",
    "FederationPeer", "federation_key_name", "load_federation_keys", "OPS_KEY", "FED_MAX_NODE",
    "DEFAULT_BAUD", "DEFAULT_STATS_ADDR",
]

from trilink_edge.config_types import (  # noqa: E402,F401
    CI_MODES, DEFAULT_BAUD, DEFAULT_STATS_ADDR, LINK_KINDS, SERIAL_BUDGET_FACTOR, UDP_DEFAULT_BUDGET, WARN_MODES,
    AsterixConfig, Config, ConfigError, DeadReckoningConfig, FederationConfig, FederationPeer, FusionConfig,
    LinkConfig, NodeConfig, Origin, RecorderConfig, RelaySection, ReleasePolicy, SchedulerConfig, Territory,
    ZenohConfig, federation_key_name, serial_budget)
from trilink_edge.config_schema import (  # noqa: E402,F401
    FED_MAX_NODE, OPS_KEY, from_dict, load, load_federation_keys, loads)
