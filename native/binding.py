"""The one binding module: the only Python that touches cffi's ``ffi``/``lib``.

Each wrapper checks sizes and return codes and raises a clear exception;
everything above this module is strictly typed and never sees a cdata.

    >>> from trilink_native import binding
    >>> binding.abi_version()
    1
"""
from __future__ import annotations

from trilink_native._kernel import ffi, lib  # noqa: F401  (ffi used by sections below)

ABI_VERSION = 1


class KernelError(Exception):
    """A C kernel call returned an error code."""


def abi_version() -> int:
    """ABI version of the compiled kernel."""
    return int(lib.tl_abi_version())


if abi_version() != ABI_VERSION:  # a stale build next to new Python code
    raise ImportError(
        f"trilink_native._kernel has ABI {abi_version()}, binding expects {ABI_VERSION}; "
        "reinstall with `pip install -e .`"
    )

# ---------------------------------------------------------------- wire ----

# --------------------------------------------------------------- codec ----

# ------------------------------------------- fusion: geodesy and motion ----

# ----------------------------- fusion: association, CI and track picture ----
