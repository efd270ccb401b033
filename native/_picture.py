"""The relay's fused track picture (native/c/picture.h): source tracks in,
association with persistence, per-destination CI fusion out.
"""
from __future__ import annotations

import numpy as np

from trilink_native._arrays import dptr, f64, iptr, u8ptr, u32ptr
from trilink_native._ci import _ci_mode
from trilink_native._errors import FUSION_BATCH, PICTURE, FusionArgumentError, check
from trilink_native._kernel import ffi, lib

PIC_MAX_MEMBERS = int(lib.TL_PIC_MAX_MEMBERS)
PIC_MAX_NODE = int(lib.TL_PIC_MAX_NODE)
# tl_picture_stats' fields, in the header's order
PICTURE_STATS = tuple(name for name, _ in ffi.typeof("tl_picture_stats").fields)
# tl_picture_init refuses a bad configuration with TL_TRK_EARG: the caller's argument
_INIT = PICTURE.but(TL_TRK_EARG=(FusionArgumentError, "invalid picture configuration"))


class Picture:
    """The relay's fused track picture (native/c/picture.h): source tracks in,
    association with persistence, per-destination CI fusion out.

    >>> import numpy as np
    >>> pic = Picture()
    >>> x = np.array([7.0e6, 0.0, 0.0, 0.0, 7.0e3, 0.0]); P = np.eye(6) * 100.0
    >>> pic.update([1], [10], [500], [0.0], [x], [P]).tolist()
    [0]
    >>> pic.associate(0.0)
    >>> pic.fuse(0.0, sources=[1])["fused_id"].tolist()
    [1]
    """

    def __init__(self, gate: float = 22.46, stay_bonus: float = 4.0, switch_frames: int = 3,
                 timeout: float = 12.0, ci_mode: str = "trace", q: float | None = None,
                 step: float | None = None, j2: bool = True) -> None:
        cfg = ffi.new("tl_picture_config *")
        lib.tl_picture_config_default(cfg)
        cfg.gate, cfg.stay_bonus, cfg.switch_frames = gate, stay_bonus, switch_frames
        cfg.timeout, cfg.ci_mode = timeout, _ci_mode(ci_mode)
        if q is not None:
            cfg.motion.q = q
        if step is not None:
            cfg.motion.step = step
        cfg.motion.j2 = 1 if j2 else 0
        size = lib.tl_picture_size()
        self._mem = ffi.new("char[]", size)
        self._pic = ffi.cast("tl_picture *", self._mem)
        check(lib.tl_picture_init(self._pic, size, cfg), _INIT, "Picture")
        cap = int(lib.TL_PIC_MAX_FUSED)
        self._out = {
            "fused_id": np.empty(cap, dtype=np.uint32), "x": np.empty((cap, 6)),
            "P": np.empty((cap, 6, 6)), "nmem": np.empty(cap, dtype=np.int32),
            "node": np.empty((cap, PIC_MAX_MEMBERS), dtype=np.uint8),
            "track": np.empty((cap, PIC_MAX_MEMBERS), dtype=np.uint32),
            "report": np.empty((cap, PIC_MAX_MEMBERS), dtype=np.uint32),
            "weight": np.empty((cap, PIC_MAX_MEMBERS)),
        }

    def update(self, node: object, track_id: object, report_id: object, t: object,
               x: object, P: object) -> np.ndarray:
        """Store a batch of source track records; returns the status per record
        (0, or the TL_* code of a refused record, which changed nothing)."""
        nd = np.ascontiguousarray(node, dtype=np.uint8)
        n = nd.shape[0]
        tid = np.ascontiguousarray(track_id, dtype=np.uint32)
        rid = np.ascontiguousarray(report_id, dtype=np.uint32)
        tt = f64(t, (n,), "t")
        xx = f64(x, (n, 6), "x")
        PP = f64(P).reshape(n, 36) if np.size(P) == n * 36 else None
        if PP is None or tid.shape != (n,) or rid.shape != (n,):
            raise ValueError("node, track_id, report_id, t, x[n,6], P[n,6,6] must agree in n")
        st = np.zeros(max(n, 1), dtype=np.int32)
        if n == 0:
            return st[:0]
        rc = lib.tl_picture_update(self._pic, n, u8ptr(nd), u32ptr(tid), u32ptr(rid), dptr(tt), dptr(xx),
                                   dptr(np.ascontiguousarray(PP)), iptr(st))
        check(rc, FUSION_BATCH, "Picture.update")   # >= 0: how many records were refused
        return st

    def drop(self, node: int, track_id: int) -> None:
        """Remove a source track now; PictureError (TL_PIC_EUNKNOWN) if unknown."""
        check(lib.tl_picture_drop(self._pic, node, track_id), PICTURE, "drop")

    def associate(self, t: float) -> None:
        """One association round at time t (prediction, gating, assignment)."""
        check(lib.tl_picture_associate(self._pic, float(t)), PICTURE, "associate")

    def lookup(self, node: int, track_id: int) -> int:
        """Fused id holding a source track (0 = none yet); PictureError (TL_PIC_EUNKNOWN) if unknown."""
        out = ffi.new("uint32_t *")
        check(lib.tl_picture_lookup(self._pic, node, track_id, out), PICTURE, "lookup")
        return int(out[0])

    def fuse(self, t: float, sources: object = None, mask: int | None = None) -> dict:
        """The picture at time t from the given source node ids (or a raw
        64-bit mask; default all). Returns a dict of arrays over fused tracks:
        fused_id, x[k,6], P[k,6,6], nmem, node/track/report/weight[k, PIC_MAX_MEMBERS]."""
        if mask is None:
            mask = (1 << 64) - 1 if sources is None else 0
            for nd in ([] if sources is None else sources):
                if not 0 <= int(nd) <= PIC_MAX_NODE:
                    raise ValueError(f"source node ids are 0..{PIC_MAX_NODE}")
                mask |= 1 << int(nd)
        o = self._out
        cap = o["fused_id"].shape[0]
        k = lib.tl_picture_fuse(self._pic, float(t), mask, cap, u32ptr(o["fused_id"]), dptr(o["x"]), dptr(o["P"]),
                                iptr(o["nmem"]), u8ptr(o["node"]), u32ptr(o["track"]), u32ptr(o["report"]),
                                dptr(o["weight"]))
        check(k, FUSION_BATCH, "Picture.fuse")   # >= 0: how many tracks were written
        return {name: arr[:k].copy() for name, arr in o.items()}

    def stats(self) -> dict:
        """Counters (PICTURE_STATS): tracks, fused, initiated, joined, merged,
        switched, split, timed_out, deleted, sat_out."""
        s = ffi.new("tl_picture_stats *")
        lib.tl_picture_get_stats(self._pic, s)
        return {f: int(getattr(s, f)) for f in PICTURE_STATS}
