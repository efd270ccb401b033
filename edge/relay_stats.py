# relay_stats.py: what a Relay reports: a board's PROTOCOL 4.7 counters and the /stats document
"""The relay's counters, read from its parts (sessions, links, pipeline,
schedulers): ``node_counters(relay, node)`` (what its STATS frames carry)
and ``document(relay)`` (``Relay.stats()``, merged into ``GET /stats`` by
``trilink_edge.stats``). ``Relay.node_counters`` and ``Relay.stats`` call
these."""
from __future__ import annotations

from typing import Any, Dict

__all__ = ["node_counters", "document"]


def node_counters(relay: Any, node: int) -> Dict[str, int]:
    """The PROTOCOL 4.7 counters of one board as the relay sees it."""
    s = relay.sessions.sessions[node]
    name = relay.node_link[node]
    link = relay.links.get(name)
    ls = link.stats.as_dict() if link is not None else {}
    d = {"frames_in": s.rx_frames, "frames_out": s.tx_frames,
         "bytes_in": ls.get("bytes_in", 0), "bytes_out": ls.get("bytes_out", 0),
         "dropped_stale": relay.pipeline.destinations[node].dropped_stale,
         "queue_depth": relay.schedulers[name].depth()}
    le = relay.sessions.link_errors.get(name, {})
    for k in ("crc_error", "malformed", "oversize"):
        d[k] = s.errors.get(k, 0) + ls.get(k, 0)
    # A bad tag or a node not on the link proves nothing about who sent it:
    # those are the counts of the board's link (PROTOCOL 3.3).
    for k in ("auth_fail", "wrong_link"):
        d[k] = le.get(k, 0)
    for k in ("replay", "unknown_type", "not_for_me"):
        d[k] = s.errors.get(k, 0)
    return d


def document(relay: Any) -> Dict[str, Any]:
    """Counters per link and per node, pipeline and scheduler counters,
    deliveries (count per node and the latest few)."""
    sess = relay.sessions.counters()
    nodes: Dict[str, Any] = {}
    for node, name in relay.node_name.items():
        d = dict(sess[name])
        d.update(relay.node_counters(node))
        d["deliveries"] = relay.delivery_count.get(node, 0)
        if node in relay.board_stats:
            d["board_stats"] = relay.board_stats[node]
        nodes[name] = d
    out: Dict[str, Any] = {"links": {}, "nodes": nodes,
                           "pipeline": dict(vars(relay.pipeline.stats)),
                           "picture": relay.pipeline.picture.stats(), "internal_errors": relay.internal_errors,
                           "part_errors": dict(relay.part_errors), "stalls": relay.stalls,
                           "deliveries": {"count": sum(relay.delivery_count.values()),
                                          "recent": list(relay.deliveries)[-16:]}}
    if relay.federation is not None:
        out["federation"] = relay.federation.stats()
    lat = sorted(relay.latency_ns)
    if lat:
        out["relay_latency_us"] = {"count": len(lat), "p50": lat[len(lat) // 2] // 1000,
                                   "p99": lat[min(len(lat) - 1, int(0.99 * len(lat)))] // 1000}
    for name, s in relay.schedulers.items():
        d = dict(relay.counters[name])
        d.update(vars(s.counters))
        on_link = [n for n, lk in relay.node_link.items() if lk == name]
        le = relay.sessions.link_errors.get(name, {})
        for k in ("auth_fail", "wrong_link"):
            d[k] = le.get(k, 0)
        for k in ("replay", "unknown_type", "not_for_me", "unverified", "state_error"):
            d[k] = sum(relay.sessions.sessions[n].errors.get(k, 0) for n in on_link)
        # a link counts all that came in on it: its own malformed frames and its nodes' payloads
        d["malformed"] = d.get("malformed", 0) + sum(relay.sessions.sessions[n].errors.get("malformed", 0)
                                                     for n in on_link)
        d["dropped_stale"] = sum(relay.pipeline.destinations[n].dropped_stale for n in on_link)
        d["queue_depth"] = s.depth()
        d["max_window_bytes"] = relay.meters[name].max
        d["budget"] = s.budget
        out["links"][name] = d
    return out
