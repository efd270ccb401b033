# released.py: one destination's released picture, decoded as its board decodes it
"""``ReleasedPicture``: the PICTURE payloads the relay wrote to one
destination, decoded against held copies (the C codec, as the board does),
kept as that destination's current picture and turned into the
self-describing records the publisher sends (docs/PROTOCOL.md section 8)
and the ASTERIX exporter encodes.

Records are in the destination's ENU frame (``enu``: east, north, up m and
m/s; ``P`` its 6x6 covariance) and, for readers without the frame, in
WGS-84 (``lat``, ``lon`` degrees, ``h`` m) with the velocity and the
position/velocity standard deviations in the local east/north/up axes at
the track's own position (``vel_local``, ``sigma_local``).

    >>> from trilink_native import binding
    >>> b = binding.TrackBatch.empty(1); b.P[0] = np.eye(6); b.tid[0] = 3; b.x[0, 2] = 1e5
    >>> view = ReleasedPicture((36.9, 127.4, 0.0))
    >>> [r["tid"] for r in view.apply(binding.codec_encode(binding.CODEC_PICTURE, b))]
    [3]
    >>> round(view.tracks[3]["h"] / 1e3)
    100
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from trilink_native import binding

__all__ = ["ReleasedPicture", "enu_rotation", "record_of"]

OPS = {binding.REC_KEY: "key", binding.REC_DELTA: "delta", binding.REC_DROP: "drop"}


def enu_rotation(lat_deg: float, lon_deg: float) -> np.ndarray:
    """R with enu = R @ (ecef - origin)."""
    la, lo = math.radians(lat_deg), math.radians(lon_deg)
    sl, cl, so, co = math.sin(la), math.cos(la), math.sin(lo), math.cos(lo)
    return np.array([[-so, co, 0.0], [-sl * co, -sl * so, cl], [cl * co, cl * so, sl]])


class ReleasedPicture:
    """The picture one destination holds: ``apply(payload)`` decodes a
    PICTURE payload and returns its records; ``tracks`` (tid -> record)
    is the current picture; ``snapshot()`` all of it."""

    def __init__(self, origin: Tuple[float, float, float]) -> None:
        self.origin = tuple(float(v) for v in origin)
        self.held = binding.CodecTable()
        self.tracks: Dict[int, Dict[str, Any]] = {}
        self.R = enu_rotation(self.origin[0], self.origin[1])
        self.p0 = binding.geodetic_to_ecef(np.array([self.origin]))[0]
        self.no_base = 0
        self.errors = 0

    def apply(self, payload: bytes) -> List[Dict[str, Any]]:
        """The records of one payload that changed the picture (KEY, applied
        DELTA, DROP); a payload that does not decode changes nothing."""
        try:
            _hdr, b = binding.codec_decode(payload, self.held)
        except binding.CodecError:
            self.errors += 1
            return []
        out = []
        for i in range(b.n):
            st, rt = int(b.status[i]), int(b.rtype[i])
            tid = int(b.tid[i])
            if rt == binding.REC_DROP:
                self.tracks.pop(tid, None)
                out.append({"tid": tid, "op": "drop", "t_us": int(b.t_us[i])})
                continue
            if st == binding.REC_NO_BASE:
                self.no_base += 1
                continue
            if st != binding.REC_OK:
                continue
            rec = record_of(b, i, self.origin, self.R, self.p0)
            rec["op"] = OPS.get(rt, "key")
            self.tracks[tid] = rec
            out.append(rec)
        return out

    def snapshot(self) -> List[Dict[str, Any]]:
        return [dict(r, op="key") for r in self.tracks.values()]


def record_of(b: Any, i: int, origin: Tuple[float, ...], R: np.ndarray, p0: np.ndarray) -> Dict[str, Any]:
    """Record ``i`` of a decoded batch as a self-describing dict."""
    x = b.x[i].astype(float)
    P = b.P[i].astype(float)
    ecef_pos = R.T @ x[:3] + p0
    ecef_vel = R.T @ x[3:]
    lat, lon, h = binding.ecef_to_geodetic(ecef_pos.reshape(1, 3))[0]
    # Velocity and accuracies in the local axes at the track (what ASTERIX
    # and a map mean by east/north), not at the destination's origin.
    Rt = enu_rotation(lat, lon) @ R.T
    T = np.zeros((6, 6))
    T[:3, :3] = Rt
    T[3:, 3:] = Rt
    Pl = T @ P @ T.T
    rec: Dict[str, Any] = {
        "tid": int(b.tid[i]), "t_us": int(b.t_us[i]), "enu": [float(v) for v in x],
        "P": [[float(v) for v in row] for row in P],
        "lat": float(lat), "lon": float(lon), "h": float(h),
        "vel_local": [float(v) for v in Rt @ x[3:]],
        "sigma_local": [float(math.sqrt(max(Pl[k, k], 0.0))) for k in range(6)],
        "flags": int(b.flags[i]), "nations": [n for n in range(32) if int(b.nations[i]) >> n & 1],
        "sources": [[int(b.src_node[i, k]), int(b.src_rid[i, k])] for k in range(int(b.n_src[i]))],
        "impact": None,
    }
    if b.has_impact[i]:
        e, n, a, bb, orient = (float(v) for v in b.impact[i])
        ilat, ilon, _ = binding.ecef_to_geodetic((R.T @ np.array([e, n, 0.0]) + p0).reshape(1, 3))[0]
        rec["impact"] = {"t_us": int(b.impact_t_us[i]), "east": e, "north": n, "lat": float(ilat),
                         "lon": float(ilon), "semi_major_m": a, "semi_minor_m": bb, "orient_deg": orient}
    return rec


def ecef_velocity(rec: Dict[str, Any], origin: Tuple[float, float, float]) -> np.ndarray:
    """The ECEF velocity of a record (from ``enu`` in the destination frame)."""
    return enu_rotation(origin[0], origin[1]).T @ np.asarray(rec["enu"][3:], dtype=float)
