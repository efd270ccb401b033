# config_types.py: the relay configuration's typed, frozen dataclasses, defaults and ConfigError
"""What ``trilink_edge.config`` loads ``relay.toml`` into: one frozen
dataclass per section (``Config`` holds them), the defaults they share with
the validation (``trilink_edge.config_schema``) and ``ConfigError``. Import
them from ``trilink_edge.config``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, FrozenSet, Mapping, Optional, Sequence, Tuple

__all__ = [
    "ConfigError", "Config", "RelaySection", "NodeConfig", "Origin", "Territory", "LinkConfig",
    "ReleasePolicy", "DeadReckoningConfig", "FusionConfig", "SchedulerConfig", "RecorderConfig",
    "serial_budget", "SERIAL_BUDGET_FACTOR", "UDP_DEFAULT_BUDGET", "LINK_KINDS", "CI_MODES", "WARN_MODES",
    "DEFAULT_BAUD", "DEFAULT_STATS_ADDR", "ZenohConfig", "AsterixConfig", "FederationConfig",
    "FederationPeer", "federation_key_name",
]

# A serial link's default byte budget is baud/10 bytes/s (8N1: 10 bits a byte)
# times this factor: 10% of the line is left for the boards' own control
# traffic bursts, clock tolerance between the two UARTs and COBS bound slack.
SERIAL_BUDGET_FACTOR = 0.9
# A UDP link's default budget: 1 Mbit/s (125,000 bytes/s), far above what the
# relay makes at debris load yet a cap that keeps a radio or VPN hop sane.
UDP_DEFAULT_BUDGET = 125_000
LINK_KINDS = ("serial", "udp")
CI_MODES = ("trace", "logdet", "fast", "naive")
WARN_MODES = ("partners", "threatened")
DEFAULT_BAUD = 115200
DEFAULT_STATS_ADDR = ("127.0.0.1", 8765)


class ConfigError(ValueError):
    """The configuration is missing, malformed or inconsistent; the message is
    one line ``FILE: KEY: problem``."""


def serial_budget(baud: int, factor: float = SERIAL_BUDGET_FACTOR) -> int:
    """Default byte budget of a serial link: ``int(baud / 10 * factor)``.

        >>> serial_budget(115200)
        10368
    """
    return int(baud / 10 * factor)


@dataclass(frozen=True)
class RelaySection:
    """``[relay]``: the relay's own node id, key file, state file, stats endpoint."""

    node: int = 0
    key_file: Optional[str] = None
    state_file: Optional[str] = None
    stats_addr: Optional[Tuple[str, int]] = DEFAULT_STATS_ADDR   # None: endpoint off
    stats_interval_s: float = 10.0                               # periodic log line; 0 = off
    stats_frames_s: float = 10.0                                 # STATS frame to every board; 0 = off
    log_level: str = "INFO"
    allow_test_keys: bool = False                                # TEST-ONLY / all-zero keys: tests and benches only


@dataclass(frozen=True)
class Origin:
    lat: float
    lon: float
    alt_m: float = 0.0


@dataclass(frozen=True)
class Territory:
    name: str
    polygon: Tuple[Tuple[float, float], ...]     # (lat, lon) degrees


@dataclass(frozen=True)
class NodeConfig:
    """One board: ``[nodes.NAME]`` (or ``[[nodes]]`` with ``name``).

    ``link`` is the link whose ``boards`` list names this node; ``nation`` is
    the nation whose data the board reports (release policy key)."""

    name: str
    node: int
    nation: str
    key_id: int
    origin: Origin
    territory: Tuple[Territory, ...]
    link: str
    nation_file: Optional[str] = None
    eez: Tuple[Territory, ...] = ()             # approximate exclusive economic zone (nation file "eez")


@dataclass(frozen=True)
class LinkConfig:
    """``[links.NAME]``: a serial port or a UDP socket and the boards on it."""

    name: str
    kind: str                                   # "serial" | "udp"
    boards: Tuple[str, ...]
    budget: int                                 # bytes per second the relay may write
    burst: Optional[int] = None                 # token bucket depth; None = scheduler default
    device: Optional[str] = None                # serial
    baud: int = DEFAULT_BAUD                    # serial
    low_latency: bool = True                    # serial: try ASYNC_LOW_LATENCY
    bind: Optional[Tuple[str, int]] = None      # udp
    peer: Optional[Tuple[str, int]] = None      # udp; None = learned from the first authenticated frame


@dataclass(frozen=True)
class ReleasePolicy:
    """``[release]``: nation -> nations that may receive its data.

    A nation's own data always reaches it. ``may(src, dst)`` answers one pair.

        >>> ReleasePolicy({"jp": frozenset({"kr"})}).may("jp", "kr")
        True
    """

    allow: Mapping[str, FrozenSet[str]] = field(default_factory=dict)

    def may(self, src_nation: str, dst_nation: str) -> bool:
        return src_nation == dst_nation or dst_nation in self.allow.get(src_nation, frozenset())

    def sources_for(self, dst_nation: str, nations: Sequence[str]) -> Tuple[str, ...]:
        """The nations (of ``nations``) whose data may reach ``dst_nation``."""
        return tuple(n for n in nations if self.may(n, dst_nation))


@dataclass(frozen=True)
class DeadReckoningConfig:
    """``[deadreckoning]``: the relay's PICTURE sender (the dead-reckoning
    sender of the C codec, ``tl_dr``) sends a track update when the
    receiver's extrapolation is off by more than ``position_m``, or
    ``heartbeat_s`` after the last one. The default 0 sends every update:
    the relay offers a destination an update only when it carries a source
    report the destination has not had, so a positive threshold saves no
    redundant frame; it holds that report until the next one (or the
    heartbeat), trading latency for downlink bytes."""

    position_m: float = 0.0
    heartbeat_s: float = 5.0


@dataclass(frozen=True)
class FusionConfig:
    """``[fusion]``: the fused picture's settings (binding.Picture arguments)."""

    gate: float = 22.46            # chi-square 6 dof, 99.9%
    ci_mode: str = "trace"
    stay_bonus: float = 4.0
    switch_frames: int = 3
    timeout_s: float = 12.0        # a source track with no report for this long is dropped
    warn_horizon_s: float = 1800.0  # warn about impacts predicted within this time
    warn: str = "partners"         # "partners": every destination hears of a threat to any nation; "threatened": only that nation


@dataclass(frozen=True)
class SchedulerConfig:
    """``[scheduler]``: staleness and queue bounds per link."""

    max_age_s: float = 2.0         # track updates older than this are dropped (dropped_stale)
    max_control: int = 64          # bounded control queue per link
    max_warnings: int = 256        # bounded warning queue per link (oldest obsolete first)
    burst: Optional[int] = None    # default token bucket depth, bytes; None = per kind (Link.default_burst)
    warning_retry_s: float = 0.5   # first retransmission of an unacknowledged warning
    warning_retry_max_s: float = 4.0


@dataclass(frozen=True)
class RecorderConfig:
    """``[recorder]``: pcap capture of every frame (docs/RELAY.md). ``path``
    None: no capture."""

    path: Optional[str] = None
    rotate_bytes: int = 64 << 20
    max_files: int = 10


@dataclass(frozen=True)
class ZenohConfig:
    """``[zenoh]``: publish each destination's released picture, warnings,
    health and stats on Eclipse Zenoh (docs/RELAY.md, "Publishing on
    Zenoh"; edge/zenoh_pub.py). ``key_file`` (trilink-keys/1, one entry
    named for each nation, and ``ops`` for health and stats) seals every
    publication for its nation; ``enabled`` False: nothing is published."""

    enabled: bool = False
    relay: str = "relay"                        # the <relay> segment of the key expressions
    key_file: Optional[str] = None
    mode: str = "peer"                          # "peer" | "client"
    listen: Tuple[str, ...] = ()                # Zenoh endpoints, e.g. "tcp/127.0.0.1:7447"
    connect: Tuple[str, ...] = ()
    multicast_scouting: bool = False
    queue: int = 4096                           # publications waiting for the publisher thread
    health_period_s: float = 1.0                # 0 = no health publication
    stats_period_s: float = 5.0                 # 0 = no stats publication
    snapshot_period_s: float = 1.0              # each destination's whole picture, for late joiners; 0 = off


@dataclass(frozen=True)
class AsterixConfig:
    """``[asterix]``: the picture released to node ``node`` as ASTERIX
    CAT062 system tracks (edge/asterix.py), every ``period_s``, to ``udp``
    (host:port) and/or appended to ``file``."""

    enabled: bool = False
    node: Optional[str] = None
    udp: Optional[Tuple[str, int]] = None
    file: Optional[str] = None
    sac: int = 0
    sic: int = 1
    period_s: float = 1.0


@dataclass(frozen=True)
class FederationPeer:
    """``[federation.peers.NAME]``: another hub. ``serves``: the nations it
    serves (a report of ours goes to it only when our release policy lets
    that report's nation reach every one of them); ``nodes``: its boards
    whose reports we take, (nation, node id), the node ids unique across
    the federation."""

    name: str
    serves: Tuple[str, ...]
    nodes: Tuple[Tuple[str, int], ...]


@dataclass(frozen=True)
class FederationConfig:
    """``[federation]``: exchange national reports with other hubs over
    Eclipse Zenoh (docs/RELAY.md, "Federation"; edge/federation.py), each
    frame sealed with the key the two hubs share (``key_file``, an entry
    named ``federation_key_name(hub, peer)``)."""

    enabled: bool = False
    hub: str = "hub"                            # this hub's name (trilink/fed/<hub>/<peer>)
    key_file: Optional[str] = None
    mode: str = "peer"
    listen: Tuple[str, ...] = ()
    connect: Tuple[str, ...] = ()
    multicast_scouting: bool = False
    max_skew_s: float = 2.0                     # a frame's timestamp this far from our clock is refused
    heartbeat_s: float = 1.0
    peers: Tuple[FederationPeer, ...] = ()

    def remote_nodes(self) -> Dict[int, Tuple[str, str]]:
        """node id -> (peer hub, nation) of every remote board."""
        return {nid: (p.name, nat) for p in self.peers for nat, nid in p.nodes}


def federation_key_name(a: str, b: str) -> str:
    """The key file entry two hubs share: their names sorted, joined by '+'.

        >>> federation_key_name("us", "au")
        'au+us'
    """
    return "+".join(sorted((a, b)))


@dataclass(frozen=True)
class Config:
    source: str
    relay: RelaySection
    nodes: Tuple[NodeConfig, ...]
    links: Mapping[str, LinkConfig]
    release: ReleasePolicy
    deadreckoning: DeadReckoningConfig
    fusion: FusionConfig
    scheduler: SchedulerConfig
    recorder: RecorderConfig
    zenoh: ZenohConfig = ZenohConfig()
    asterix: AsterixConfig = AsterixConfig()
    federation: FederationConfig = FederationConfig()

    def node(self, name: str) -> NodeConfig:
        """The node called ``name`` (KeyError if none)."""
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def nodes_on(self, link: str) -> Tuple[NodeConfig, ...]:
        return tuple(n for n in self.nodes if n.link == link)


