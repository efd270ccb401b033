# bench_latency.py: end-to-end latency per path, split into uplink, relay and downlink, beside the wire floor
"""The latency accounting of docs/BENCH.md "How latency is measured", from a
decoded capture (bench_capture.py):

    e2e      = delivered (DELIVERY rx_relay_us)  - measured (report t_us)
    uplink   = report frame fully received by the relay (capture rx)  - measured
    relay    = first PICTURE carrying the report handed to the link (capture tx) - uplink end
    downlink = delivered - relay's send
    floor    = (uplink frame + PICTURE frame) bytes on the wire x 10 / baud   (8N1; 0 on UDP)

every one on the relay timebase (boards map theirs by time sync). One
sample per (destination, source report) that crossed nations.

    >>> samples = latency_samples(cap, nodes={"jp": 1, "kr": 2}, baud=115200)
    >>> summarise(samples)["jp->kr"]["p50_ms"]
    14.2
"""
from __future__ import annotations

import dataclasses
import math
from typing import Dict, List, Optional, Sequence, Tuple

from trilink.bench_capture import Capture

LOSS_GRACE_NS = 500_000_000   # a picture sent this close to the end may still be in flight: not lost


@dataclasses.dataclass
class Sample:
    """One delivered report. Times in microseconds on the relay timebase."""

    path: str
    src: int
    dst: int
    report_id: int
    t_meas_us: int
    rx_us: float            # report frame fully received by the relay
    tx_us: float            # PICTURE handed to the relay's link
    delivered_us: int       # PICTURE fully received at the destination (board's time sync)
    up_bytes: int
    down_bytes: int
    floor_us: float
    report_raw: bytes
    picture_raw: bytes

    @property
    def e2e_us(self) -> float:
        return self.delivered_us - self.t_meas_us

    @property
    def uplink_us(self) -> float:
        return self.rx_us - self.t_meas_us

    @property
    def relay_us(self) -> float:
        return self.tx_us - self.rx_us

    @property
    def downlink_us(self) -> float:
        return self.delivered_us - self.tx_us


def percentile(values: Sequence[float], q: float) -> Optional[float]:
    """Nearest-rank percentile (q in 0..100) of ``values``; None when empty.

        >>> percentile([1, 2, 3, 4], 50)
        2
    """
    if not values:
        return None
    v = sorted(values)
    k = max(0, min(len(v) - 1, int(math.ceil(q / 100.0 * len(v))) - 1))
    return v[k]


def latency_samples(cap: Capture, nodes: Dict[str, int], baud: Optional[int]) -> Tuple[List[Sample], Dict[str, int]]:
    """The samples of every cross-nation delivery, and per path the deliveries skipped
    (report without RELAY_TIME, board not yet synced, report or picture not in the capture)."""
    names = {v: k for k, v in nodes.items()}
    out: List[Sample] = []
    skipped: Dict[str, int] = {}
    for (dst, src, rid), d in sorted(cap.deliveries.items(), key=lambda kv: kv[1].rx_relay_us):
        if src == dst or src not in names or dst not in names:
            continue
        path = f"{names[src]}->{names[dst]}"
        rep = cap.reports.get((src, rid))
        pic = cap.pictures.get((dst, src, rid))
        if rep is None or pic is None or not rep.relay_time or not d.rx_relay_us:
            skipped[path] = skipped.get(path, 0) + 1
            continue
        floor = (rep.wire_bytes + pic.wire_bytes) * 10e6 / baud if baud else 0.0
        out.append(Sample(path, src, dst, rid, rep.t_meas_us, rep.rx_ns / 1000.0, pic.tx_ns / 1000.0,
                          d.rx_relay_us, rep.wire_bytes, pic.wire_bytes, floor, rep.raw, pic.raw))
    return out, skipped


def lost_by_path(cap: Capture, nodes: Dict[str, int], end_ns: int) -> Dict[str, int]:
    """Per path, source reports the relay sent in a PICTURE (before ``end_ns`` minus a grace)
    for which no DELIVERY came back: the picture or its DELIVERY was lost."""
    names = {v: k for k, v in nodes.items()}
    lost: Dict[str, int] = {}
    for (dst, src, rid), pic in cap.pictures.items():
        if src == dst or src not in names or dst not in names or pic.tx_ns > end_ns - LOSS_GRACE_NS:
            continue
        path = f"{names[src]}->{names[dst]}"
        lost.setdefault(path, 0)
        if (dst, src, rid) not in cap.deliveries:
            lost[path] += 1
    return lost


def _ms(us: Optional[float]) -> Optional[float]:
    return None if us is None else round(us / 1000.0, 3)


def summarise(samples: List[Sample], paths: Sequence[str], lost: Dict[str, int],
              skipped: Dict[str, int]) -> Dict[str, Dict[str, object]]:
    """Per path: count, p50/p90/p99/max of e2e, the floor's p50, the split and the ratios."""
    res: Dict[str, Dict[str, object]] = {}
    for path in paths:
        s = [x for x in samples if x.path == path]
        e2e = [x.e2e_us for x in s]
        floor = [x.floor_us for x in s]
        p50, p99, f50 = percentile(e2e, 50), percentile(e2e, 99), percentile(floor, 50)
        relay50 = percentile([x.relay_us for x in s], 50)
        entry: Dict[str, object] = {
            "count": len(s), "p50_ms": _ms(p50), "p90_ms": _ms(percentile(e2e, 90)), "p99_ms": _ms(p99),
            "max_ms": _ms(max(e2e) if e2e else None), "floor_p50_ms": _ms(f50),
            "lost": lost.get(path, 0), "skipped": skipped.get(path, 0),
            "uplink_p50_ms": _ms(percentile([x.uplink_us for x in s], 50)),
            "relay_p50_ms": _ms(relay50),
            "downlink_p50_ms": _ms(percentile([x.downlink_us for x in s], 50)),
            "up_floor_p50_ms": _ms(percentile([x.floor_us * x.up_bytes / (x.up_bytes + x.down_bytes) for x in s], 50)),
            "down_floor_p50_ms": _ms(percentile([x.floor_us * x.down_bytes / (x.up_bytes + x.down_bytes) for x in s],
                                                50)),
            # ratios against the floor of the same samples: p50 of e2e/floor per report is
            # what "p50 <= 1.5x its wire floor" means when frame sizes vary
            "p50_ratio": _ratio(percentile([x.e2e_us / x.floor_us for x in s if x.floor_us], 50)),
            "p99_ratio": _ratio(percentile([x.e2e_us / x.floor_us for x in s if x.floor_us], 99)),
            "relay_share": _ratio(relay50 / p50 if relay50 is not None and p50 else None),
        }
        res[path] = entry
    return res


def relay_summary(samples: List[Sample]) -> Dict[str, Optional[float]]:
    """The relay's part over every path: p50, p99, max (ms) and its share of the e2e p50."""
    r = [x.relay_us for x in samples]
    e = [x.e2e_us for x in samples]
    p50 = percentile(r, 50)
    e50 = percentile(e, 50)
    return {"p50": _ms(p50), "p90": _ms(percentile(r, 90)), "p99": _ms(percentile(r, 99)),
            "max": _ms(max(r) if r else None), "count": len(r),
            "share_p50": _ratio(p50 / e50 if p50 is not None and e50 else None),
            "share_mean": _ratio(sum(r) / sum(e) if e and sum(e) > 0 else None)}


def _ratio(v: Optional[float]) -> Optional[float]:
    return None if v is None else round(v, 3)
