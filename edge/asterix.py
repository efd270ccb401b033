# asterix.py: one destination's released picture as ASTERIX CAT062 system tracks (edition 1.21)
"""Encode the tracks of a released picture (edge/released.py records) as
ASTERIX CAT062 records, and the ``[asterix]`` sink that sends them every
``period_s`` to a UDP port and/or appends them to a file (raw datablocks,
back to back). docs/RELAY.md, "ASTERIX CAT062 export", lists the items and
what does not apply to a ballistic missile.

Items (FRN order): I062/010 SAC/SIC, /015 service, /070 time of track
information (UTC time of day, 1/128 s), /105 WGS-84 position (180/2^25 deg),
/185 velocity east/north at the track (0.25 m/s), /040 track number (the
fused id, low 16 bits), /080 track status (MON, SRC = 3D radar, CNF),
/200 mode of movement (vertical), /130 geometric altitude and /220 rate of
climb when within their ranges (62 km and 1,040 m/s), /500 accuracies (APC,
APW, AGA, ATV; saturated at the field's maximum) and the SP field with the
true height and vertical speed (every phase of flight; section in the doc).

    >>> rec = {"tid": 5, "t_us": 0, "lat": 40.0, "lon": 130.0, "h": 1000.0, "vel_local": [100.0, -50.0, 2.0],
    ...        "sigma_local": [30.0, 40.0, 50.0, 1.0, 1.0, 1.0], "flags": 0, "nations": [1]}
    >>> block = datablock([encode_record(rec, sac=0, sic=1, tod_s=3600.0)])
    >>> block[0], int.from_bytes(block[1:3], "big") == len(block)
    (62, True)
"""
from __future__ import annotations

import logging
import math
import socket
import struct
import time
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

log = logging.getLogger("trilink_edge.asterix")

__all__ = ["CATEGORY", "EDITION", "encode_record", "datablock", "datablocks", "AsterixSink", "SP_FORMAT",
           "LATLON_LSB", "VEL_LSB", "FT", "decode_sp"]

CATEGORY = 62
EDITION = (1, 21)
LATLON_LSB = 180.0 / (1 << 25)      # I062/105, APW
VEL_LSB = 0.25                      # I062/185 m/s; ATV
APC_LSB = 0.5                       # I062/500 APC m
ALT_LSB_FT = 6.25                   # I062/130 ft; AGA
ROC_LSB_FTMIN = 6.25                # I062/220 ft/min
FT = 0.3048
TOD_LSB = 1.0 / 128                 # I062/070 s
MAX_BLOCK = 1400                    # bytes per datablock: one UDP datagram without fragmentation
# SP field content (after its length byte): version 1, height 0.1 m (i32),
# vertical speed 0.01 m/s (i32), quality flags (u8), contributing nations (u32 bitmask).
SP_FORMAT = struct.Struct(">BiiBI")
M_PER_DEG_LAT = 111_132.954         # WGS-84 mean, enough for an accuracy in degrees


def _sat(v: float, lo: int, hi: int) -> int:
    return max(lo, min(hi, int(round(v))))


def _fspec(frns: Iterable[int]) -> bytes:
    frns = sorted(set(frns))
    n = (max(frns) + 6) // 7
    out = bytearray(n)
    for f in frns:
        byte, bit = (f - 1) // 7, (f - 1) % 7
        out[byte] |= 0x80 >> bit
    for i in range(n - 1):
        out[i] |= 0x01
    return bytes(out)


def encode_record(rec: Mapping[str, Any], sac: int, sic: int, tod_s: float, service: int = 1) -> bytes:
    """One CAT062 record (FSPEC + items) of a released-picture record at
    UTC time of day ``tod_s`` (the track's own time)."""
    items: Dict[int, bytes] = {}
    items[1] = bytes((sac, sic))                                            # I062/010
    items[3] = bytes((service & 0xFF,))                                     # I062/015
    items[4] = (int(round(tod_s / TOD_LSB)) % (1 << 24)).to_bytes(3, "big")  # I062/070
    lat, lon, h = float(rec["lat"]), float(rec["lon"]), float(rec["h"])
    items[5] = struct.pack(">ii", _sat(lat / LATLON_LSB, -(1 << 31), (1 << 31) - 1),
                           _sat(((lon + 180.0) % 360.0 - 180.0) / LATLON_LSB, -(1 << 31), (1 << 31) - 1))
    ve, vn, vu = (float(v) for v in rec["vel_local"])
    items[7] = struct.pack(">hh", _sat(ve / VEL_LSB, -32768, 32767), _sat(vn / VEL_LSB, -32768, 32767))  # /185
    items[12] = struct.pack(">H", int(rec["tid"]) & 0xFFFF)                 # I062/040
    flags = int(rec.get("flags", 0))
    mono = len(rec.get("nations", ())) <= 1
    # MON | MRH (geometric altitude is the reliable one) | SRC = 2 (3D radar) | CNF (tentative)
    items[13] = bytes(((0x80 if mono else 0) | 0x20 | (2 << 2) | (0x02 if flags & 0x10 else 0),))
    vert = 1 if vu > 1.0 else 2 if vu < -1.0 else 0
    accel = 1 if flags & 0x02 else 0                                         # boosting: speed increasing
    items[15] = bytes(((accel << 4) | (vert << 2),))                         # I062/200
    h_code = h / FT / ALT_LSB_FT
    if -32768 <= h_code <= 32767:
        items[18] = struct.pack(">h", int(round(h_code)))                    # I062/130
    roc = vu / FT * 60.0 / ROC_LSB_FTMIN
    if -32768 <= roc <= 32767:
        items[20] = struct.pack(">h", int(round(roc)))                       # I062/220
    se, sn, su, sve, svn, _svu = (float(v) for v in rec["sigma_local"])
    m_per_deg_lon = max(M_PER_DEG_LAT * math.cos(math.radians(lat)), 1.0)
    acc = bytes((0x80 | 0x20 | 0x10 | 0x04,))                                # APC, APW, AGA, ATV; no FX
    acc += struct.pack(">HH", _sat(se / APC_LSB, 0, 65535), _sat(sn / APC_LSB, 0, 65535))
    acc += struct.pack(">HH", _sat(sn / M_PER_DEG_LAT / LATLON_LSB, 0, 65535),
                       _sat(se / m_per_deg_lon / LATLON_LSB, 0, 65535))
    acc += bytes((_sat(su / FT / ALT_LSB_FT, 0, 255),))
    acc += bytes((_sat(sve / VEL_LSB, 0, 255), _sat(svn / VEL_LSB, 0, 255)))
    items[27] = acc                                                          # I062/500
    nat = 0
    for n in rec.get("nations", ()):
        nat |= 1 << int(n)
    sp = SP_FORMAT.pack(1, _sat(h * 10.0, -(1 << 31), (1 << 31) - 1), _sat(vu * 100.0, -(1 << 31), (1 << 31) - 1),
                        flags & 0xFF, nat & 0xFFFFFFFF)
    items[35] = bytes((len(sp) + 1,)) + sp                                   # SP
    return _fspec(items) + b"".join(items[f] for f in sorted(items))


def decode_sp(data: bytes) -> Dict[str, Any]:
    """The SP field's content (without its length byte) as a dict.

        >>> decode_sp(SP_FORMAT.pack(1, 12345, -250, 4, 6))["h_m"]
        1234.5
    """
    v, h, vu, flags, nat = SP_FORMAT.unpack(bytes(data[:SP_FORMAT.size]))
    return {"version": v, "h_m": h / 10.0, "vu_mps": vu / 100.0, "flags": flags, "nations": nat}


def datablock(records: Sequence[bytes]) -> bytes:
    """CAT, LEN (big-endian, the whole block), records."""
    body = b"".join(records)
    return bytes((CATEGORY,)) + (3 + len(body)).to_bytes(2, "big") + body


def datablocks(records: Sequence[bytes], max_bytes: int = MAX_BLOCK) -> List[bytes]:
    """Records packed into datablocks of at most ``max_bytes`` each."""
    out: List[bytes] = []
    cur: List[bytes] = []
    size = 3
    for r in records:
        if cur and size + len(r) > max_bytes:
            out.append(datablock(cur))
            cur, size = [], 3
        cur.append(r)
        size += len(r)
    if cur:
        out.append(datablock(cur))
    return out


def utc_time_of_day(t_utc_s: float) -> float:
    return t_utc_s % 86400.0


class AsterixSink:
    """The publisher sink of ``[asterix]``: every tick, the tracks held by
    destination ``node`` (its released picture, nothing else) as CAT062
    datablocks to ``udp`` and/or appended to ``path``."""

    def __init__(self, node: int, udp: Optional[Tuple[str, int]], path: Optional[str], sac: int, sic: int,
                 service: int = 1) -> None:
        self.node, self.udp, self.path, self.sac, self.sic, self.service = node, udp, path, sac, sic, service
        self._sock: Optional[socket.socket] = None
        self._file: Any = None
        self.records = 0
        self.blocks = 0

    def open(self) -> None:
        if self.udp is not None:
            self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self._sock.setblocking(False)
        if self.path is not None:
            self._file = open(self.path, "ab")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._file is not None:
            self._file.close()
            self._file = None

    def tick(self, now_us: int, views: Mapping[int, Any]) -> None:
        view = views.get(self.node)
        if view is None or not view.tracks:
            return
        # Relay time (monotonic) to UTC: the offset now, applied to each track's time.
        offset_s = time.time() - now_us / 1e6
        recs = [encode_record(r, self.sac, self.sic, utc_time_of_day(r["t_us"] / 1e6 + offset_s), self.service)
                for r in view.tracks.values()]
        for block in datablocks(recs):
            if self._sock is not None and self.udp is not None:
                try:
                    self._sock.sendto(block, self.udp)
                except OSError as e:   # nobody listening, a full buffer: the next tick sends anew
                    log.debug("asterix: send failed: %s", e)
            if self._file is not None:
                self._file.write(block)
            self.blocks += 1
        if self._file is not None:
            self._file.flush()
        self.records += len(recs)
