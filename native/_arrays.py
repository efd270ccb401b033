"""numpy arrays in and out of the kernel: shape checks and C pointers.

The wrappers hand arrays to C as pointers (one call per batch); these helpers
check a shape once and make the pointer, so each wrapper says only what it
needs.

    >>> rows([[1, 2, 3]], (3,), "pos").dtype.name
    'float64'
    >>> rows([[1, 2]], (3,), "pos")
    Traceback (most recent call last):
    ...
    ValueError: pos must have shape (N, 3), got (1, 2)
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from trilink_native._kernel import ffi


def f64(a: object, shape: Optional[tuple] = None, what: str = "array") -> np.ndarray:
    """``a`` as a C-contiguous float64 array, of exactly ``shape`` if given."""
    arr = np.ascontiguousarray(a, dtype=np.float64)
    if shape is not None and arr.shape != shape:
        raise ValueError(f"{what} must have shape {shape}, got {arr.shape}")
    return arr


def rows(a: object, tail: Tuple[int, ...], name: str, n: Optional[int] = None) -> np.ndarray:
    """A read-only input as a C-contiguous float64 array of shape (n,) + tail
    (any n when None)."""
    arr = np.ascontiguousarray(a, dtype=np.float64)
    if arr.shape[1:] != tail or arr.ndim != 1 + len(tail) or (n is not None and arr.shape[0] != n):
        want = ("N" if n is None else str(n),) + tuple(str(s) for s in tail)
        raise ValueError(f"{name} must have shape ({', '.join(want)}), got {arr.shape}")
    return arr


def inplace(a: object, tail: Tuple[int, ...], name: str, n: Optional[int] = None) -> np.ndarray:
    """An argument updated in place: it must already be a writable
    C-contiguous float64 array of shape (n,) + tail."""
    if not isinstance(a, np.ndarray) or a.dtype != np.float64 or not a.flags.c_contiguous or not a.flags.writeable:
        raise ValueError(f"{name} must be a writable C-contiguous float64 numpy array (it is updated in place)")
    return rows(a, tail, name, n)


def per_track(a: object, tail: Tuple[int, ...], name: str, n: int) -> np.ndarray:
    """One array per track [n, *tail], or one shared array [*tail] repeated."""
    arr = np.asarray(a, dtype=np.float64)
    return rows(np.broadcast_to(arr, (n,) + tail) if arr.ndim == len(tail) else arr, tail, name, n)


def dptr(a: np.ndarray):
    """``double *`` into a float64 array (valid while the array lives)."""
    return ffi.from_buffer("double[]", a)


def iptr(a: np.ndarray):
    """``int32_t *`` into an int32 array."""
    return ffi.from_buffer("int32_t[]", a)


def u8ptr(a: np.ndarray):
    """``uint8_t *`` into a uint8 array."""
    return ffi.from_buffer("uint8_t[]", a)


def u32ptr(a: np.ndarray):
    """``uint32_t *`` into a uint32 array."""
    return ffi.from_buffer("uint32_t[]", a)

