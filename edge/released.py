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
from trilink_edge.destination import enu_rotation

__all__ = ["ReleasedPicture", "enu_rotation", "record_of", "records_of"]

OPS = {binding.REC_KEY: "key", binding.REC_DELTA: "delta", binding.REC_DROP: "drop"}


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
        ok = [i for i in range(b.n) if int(b.rtype[i]) != binding.REC_DROP and int(b.status[i]) == binding.REC_OK]
        # one geodesy call for the batch: the publisher thread holds the GIL
        # for as short a time as it can (the relay's loop shares it)
        recs = iter(records_of(b, ok, self.R, self.p0)) if ok else iter(())
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
            rec = next(recs)
            rec["op"] = OPS.get(rt, "key")
            self.tracks[tid] = rec
            out.append(rec)
        return out

    def snapshot(self) -> List[Dict[str, Any]]:
        return [dict(r, op="key") for r in self.tracks.values()]


def _local_rotations(lat_deg: np.ndarray, lon_deg: np.ndarray) -> np.ndarray:
    """[n,3,3] ENU rotations at n points."""
    la, lo = np.radians(lat_deg), np.radians(lon_deg)
    sl, cl, so, co = np.sin(la), np.cos(la), np.sin(lo), np.cos(lo)
    z = np.zeros_like(la)
    return np.stack([np.stack([-so, co, z], -1), np.stack([-sl * co, -sl * so, cl], -1),
                     np.stack([cl * co, cl * so, sl], -1)], -2)


def records_of(b: Any, idx: List[int], R: np.ndarray, p0: np.ndarray) -> List[Dict[str, Any]]:
    """Records ``idx`` of a decoded batch as self-describing dicts (what
    ``record_of`` gives one by one, in one pass of array arithmetic)."""
    x = b.x[idx].astype(float)
    P = b.P[idx].astype(float)
    llh = binding.ecef_to_geodetic(x[:, :3] @ R + p0)
    Rt = _local_rotations(llh[:, 0], llh[:, 1]) @ R.T          # destination ENU -> local ENU at each track
    vel = np.einsum("nij,nj->ni", Rt, x[:, 3:])
    T = np.zeros((len(idx), 6, 6))
    T[:, :3, :3] = Rt
    T[:, 3:, 3:] = Rt
    Pl = T @ P @ T.transpose(0, 2, 1)
    sig = np.sqrt(np.maximum(np.einsum("nii->ni", Pl), 0.0))
    imp_rows = [k for k, i in enumerate(idx) if b.has_impact[i]]
    imp_llh = None
    if imp_rows:
        en = b.impact[[idx[k] for k in imp_rows], :2].astype(float)
        imp_llh = binding.ecef_to_geodetic(np.column_stack([en, np.zeros(len(en))]) @ R + p0)
    out = []
    imp_k = 0
    for k, i in enumerate(idx):
        nat = int(b.nations[i])
        rec: Dict[str, Any] = {
            "tid": int(b.tid[i]), "t_us": int(b.t_us[i]), "enu": x[k].tolist(), "P": P[k].tolist(),
            "lat": float(llh[k, 0]), "lon": float(llh[k, 1]), "h": float(llh[k, 2]),
            "vel_local": vel[k].tolist(), "sigma_local": sig[k].tolist(),
            "flags": int(b.flags[i]), "nations": [n for n in range(32) if nat >> n & 1],
            "sources": [[int(b.src_node[i, j]), int(b.src_rid[i, j])] for j in range(int(b.n_src[i]))],
            "impact": None,
        }
        if b.has_impact[i]:
            assert imp_llh is not None
            e, n, a, bb, orient = (float(v) for v in b.impact[i])
            rec["impact"] = {"t_us": int(b.impact_t_us[i]), "east": e, "north": n, "lat": float(imp_llh[imp_k, 0]),
                             "lon": float(imp_llh[imp_k, 1]), "semi_major_m": a, "semi_minor_m": bb,
                             "orient_deg": orient}
            imp_k += 1
        out.append(rec)
    return out


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
