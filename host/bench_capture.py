# bench_capture.py: read the relay's capture into the events the bench measures (reports, pictures, deliveries, warnings)
"""Decode a relay capture (edge/recorder.py pcapng) with the run's keys into
the events that the latency accounting needs, all on the relay timebase
(``time.monotonic_ns()`` of the relay host):

* ``reports[(src, report_id)]``: a TRACK_REPORT record the relay received:
  its measurement time (the record's ``t_us``, relay time: the boards send
  RELAY_TIME once synced), the frame's full receipt (``rx_ns``) and its
  size on the wire;
* ``pictures[(dst, src, report_id)]``: the first PICTURE frame sent to
  ``dst`` carrying that source report: handed to the link at ``tx_ns``;
* ``deliveries[(dst, src, report_id)]``: the destination board's DELIVERY:
  the PICTURE's full receipt on the relay timebase (``rx_relay_us``, mapped
  by the board's time sync) and on its own clock;
* ``fused``: every fused record sent (destination, track, time, state in
  the destination's ENU frame, impact), for the accuracy against truth;
* ``warnings`` / ``acks``: WARNING frames sent and WARNING_ACK received.

    >>> cap = read_capture("relay.pcapng", keys={1: key1, 2: key2}, serial=True)
    >>> len(cap.deliveries), cap.rejected
    (412, 0)

Frames whose tag does not verify (line noise that passed the CRC, or an
attack) are counted in ``rejected`` and never used.
"""
from __future__ import annotations

import dataclasses
import hashlib
import hmac
import struct
from typing import Dict, List, Optional, Tuple

from trilink_board import codec, messages, wire

_DELIVERY = struct.Struct("<QQIB")
_PAIR = struct.Struct("<BI")
_WARNING = struct.Struct(messages.WARNING_FORMAT)     # PROTOCOL.md 4.5


def wire_size(raw_len: int, frame: bytes, serial: bool) -> int:
    """Bytes a frame occupies on the link: COBS + delimiter on serial, the datagram on UDP."""
    if not serial:
        return raw_len
    return len(wire.cobs_encode(frame)) + 1


@dataclasses.dataclass
class Report:
    src: int
    report_id: int
    tid: int
    t_meas_us: int          # measurement time, relay timebase (None-like 0 when the frame lacked RELAY_TIME)
    relay_time: bool
    rx_ns: int
    wire_bytes: int
    frame_records: int
    raw: bytes
    state: Optional[List[float]] = None     # e, n, u, ve, vn, vu in the source's ENU frame


@dataclasses.dataclass
class PictureSend:
    dst: int
    tid: int
    tx_ns: int
    wire_bytes: int
    raw: bytes


@dataclasses.dataclass
class Delivery:
    dst: int
    tid: int
    rx_local_us: int
    rx_relay_us: int
    frame_rx_ns: int        # when the DELIVERY frame itself reached the relay


@dataclasses.dataclass
class Fused:
    dst: int
    tid: int
    t_us: int
    state: List[float]      # e, n, u, ve, vn, vu in the destination's ENU frame
    impact: Optional[Tuple[float, float, int]]   # (east m, north m, impact t_us) or None
    tx_ns: int
    ellipse: Optional[Tuple[float, float, float]] = None   # the impact's 95% ellipse: semi-axes m, orient deg


@dataclasses.dataclass
class Warning:
    dst: int
    tx_ns: int
    warning_id: int
    track_id: int
    status: int
    nation: int
    impact_us: int
    lat: float
    lon: float
    wire_bytes: int
    semi_major_m: int = 0
    semi_minor_m: int = 0
    orient_deg: float = 0.0
    kind: str = "territory"         # "territory", "eez", "overflight" or "launch" (messages.KIND_NAMES)
    class_guess: int = 0            # messages.CLASS_*
    azimuth_deg: float = 0.0
    sigma_t_s: Optional[float] = None   # 1-sigma of impact_us (launch: of the launch time); None: unknown


@dataclasses.dataclass
class Capture:
    """Everything decoded from one capture (module docstring)."""

    reports: Dict[Tuple[int, int], Report] = dataclasses.field(default_factory=dict)
    pictures: Dict[Tuple[int, int, int], PictureSend] = dataclasses.field(default_factory=dict)
    deliveries: Dict[Tuple[int, int, int], Delivery] = dataclasses.field(default_factory=dict)
    fused: List[Fused] = dataclasses.field(default_factory=list)
    warnings: List[Warning] = dataclasses.field(default_factory=list)
    acks: List[Tuple[int, int, int, int]] = dataclasses.field(default_factory=list)  # (node, t_ns, wid, wire)
    bytes: Dict[Tuple[str, str, int], int] = dataclasses.field(default_factory=dict)  # (link, dir, type) -> wire bytes
    frames: Dict[Tuple[str, str, int], int] = dataclasses.field(default_factory=dict)
    report_records: Dict[int, int] = dataclasses.field(default_factory=dict)     # src -> records received
    picture_records: Dict[int, int] = dataclasses.field(default_factory=dict)    # dst -> records sent
    first_ns: Optional[int] = None
    last_ns: Optional[int] = None
    rejected: int = 0
    undecodable: int = 0


def _verify(f: "wire.Frame", keys: Dict[int, bytes]) -> bool:
    key = keys.get(f.key_id)
    if key is None:
        return False
    mac = hmac.new(key, f.raw[:wire.HEADER_SIZE + f.length], hashlib.sha256).digest()[:wire.TAG_SIZE]
    return hmac.compare_digest(mac, bytes(f.tag))


def read_capture(paths: List[str], keys: Dict[int, bytes], serial: bool) -> Capture:
    """Decode the capture files ``paths`` (oldest first) with ``keys`` (key_id -> key)."""
    from trilink_edge.recorder import iter_capture
    cap = Capture()
    held_up: Dict[int, dict] = {}      # src -> the relay's copies of that board's tracks
    held_down: Dict[int, dict] = {}    # dst -> the board's copies of the picture
    for path in paths:
        for r in iter_capture(path):
            try:
                f = wire.parse(r.data)
            except wire.WireError:
                cap.undecodable += 1
                continue
            if not _verify(f, keys):
                cap.rejected += 1
                continue
            size = wire_size(len(r.data), r.data, serial)
            k = (r.link, r.direction, f.mtype)
            cap.bytes[k] = cap.bytes.get(k, 0) + size
            cap.frames[k] = cap.frames.get(k, 0) + 1
            cap.first_ns = r.t_ns if cap.first_ns is None else min(cap.first_ns, r.t_ns)
            cap.last_ns = r.t_ns if cap.last_ns is None else max(cap.last_ns, r.t_ns)
            try:
                if r.direction == "rx":
                    _rx(cap, f, r.t_ns, size, held_up)
                else:
                    _tx(cap, f, r.t_ns, size, held_down)
            except (codec.CodecError, struct.error, ValueError):
                cap.undecodable += 1
    return cap


def _rx(cap: Capture, f: "wire.Frame", t_ns: int, size: int, held_up: Dict[int, dict]) -> None:
    if f.mtype == wire.TRACK_REPORT:
        batch = codec.decode(bytes(f.payload), held_up.setdefault(f.src, {}))
        recs = [rec for rtype, status, rec in batch.items if status == codec.OK and rtype != codec.DROP]
        rt = bool(f.flags & wire.RELAY_TIME)
        cap.report_records[f.src] = cap.report_records.get(f.src, 0) + len(recs)
        for rec in recs:
            key = (f.src, rec.report_id)
            if key not in cap.reports:
                cap.reports[key] = Report(f.src, rec.report_id, rec.tid, rec.t_us if rt else 0, rt, t_ns, size,
                                          len(recs), bytes(f.raw), rec.state(batch.prec))
    elif f.mtype == wire.DELIVERY:
        p = bytes(f.payload)
        rx_local, rx_relay, tid, n = _DELIVERY.unpack_from(p, 0)
        if len(p) != _DELIVERY.size + n * _PAIR.size:
            raise ValueError("DELIVERY length")
        for i in range(n):
            node, rid = _PAIR.unpack_from(p, _DELIVERY.size + i * _PAIR.size)
            key = (f.src, node, rid)
            if key not in cap.deliveries:
                cap.deliveries[key] = Delivery(f.src, tid, rx_local, rx_relay, t_ns)
    elif f.mtype == wire.WARNING_ACK:
        wid = struct.unpack("<I", bytes(f.payload))[0]
        cap.acks.append((f.src, t_ns, wid, size))


def _tx(cap: Capture, f: "wire.Frame", t_ns: int, size: int, held_down: Dict[int, dict]) -> None:
    if f.mtype == wire.PICTURE:
        batch = codec.decode(bytes(f.payload), held_down.setdefault(f.dst, {}))
        n = 0
        for rtype, status, rec in batch.items:
            if status != codec.OK or rtype == codec.DROP:
                continue
            n += 1
            imp = rec.impact(batch.prec)
            cap.fused.append(Fused(f.dst, rec.tid, rec.t_us, rec.state(batch.prec),
                                   (imp[0], imp[1], imp[2]) if imp is not None else None, t_ns,
                                   (imp[3], imp[4], imp[5]) if imp is not None else None))
            for node, rid in rec.sources:
                key = (f.dst, node, rid)
                if key not in cap.pictures:
                    cap.pictures[key] = PictureSend(f.dst, rec.tid, t_ns, size, bytes(f.raw))
        cap.picture_records[f.dst] = cap.picture_records.get(f.dst, 0) + n
    elif f.mtype == wire.WARNING:
        m = _WARNING.unpack(bytes(f.payload))
        cap.warnings.append(Warning(f.dst, t_ns, m[0], m[1], m[2], m[3], m[4], m[5] * 1e-7, m[6] * 1e-7, size,
                                    m[7], m[8], m[9] * 0.01, messages.KIND_NAMES[m[10]], m[11], m[12] * 0.01,
                                    None if m[13] == 0xFFFF else m[13] * 0.1))
