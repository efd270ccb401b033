"""The one cffi builder for the trilink C kernel (API mode, out of line).

Every ``native/c/*.c`` file is compiled into the extension module
``trilink_native._kernel``.  Every ``native/c/*.h`` header is the contract of
its C file; the part of it between the markers ``/* cffi:begin */`` and
``/* cffi:end */`` is what Python may call, and is fed to ``ffibuilder.cdef``.
That region must therefore be plain C declarations without preprocessor lines.

Run by ``pip install .`` through ``setup.py``; by hand::

    python native/build.py      # builds _kernel in the current directory
"""
from __future__ import annotations

import glob
import os
import sys

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
C_DIR = os.path.join(HERE, "c")
BEGIN, END = "/* cffi:begin */", "/* cffi:end */"

# -std=c99 and the warnings the project promises to stay clean of.  The C is
# portable (fixed-width integers, no unaligned casts); Raspberry Pi OS gcc
# accepts the same flags.
CFLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra"]


def _cdef_region(path: str) -> str:
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    if BEGIN not in text:
        return ""
    start = text.index(BEGIN) + len(BEGIN)
    end = text.index(END, start)
    return text[start:end]


def _includes_first(headers: list) -> list:
    # A header's cdef may use the types of the headers it includes
    # (relaypath.h: wire.h's tl_keyring): those come first.
    names = {os.path.basename(h): h for h in headers}
    done: list = []

    def visit(h: str, path: tuple) -> None:
        if h in done or h in path:
            return
        with open(h, encoding="utf-8") as fh:
            for line in fh:
                if line.startswith('#include "') and line.split('"')[1] in names:
                    visit(names[line.split('"')[1]], path + (h,))
        done.append(h)
    for h in headers:
        visit(h, ())
    return done


def make_builder() -> FFI:
    headers = _includes_first(sorted(glob.glob(os.path.join(C_DIR, "*.h"))))
    sources = sorted(glob.glob(os.path.join(C_DIR, "*.c")))
    ffi = FFI()
    ffi.cdef("\n".join(_cdef_region(h) for h in headers))
    includes = "\n".join('#include "%s"' % os.path.basename(h) for h in headers)
    ffi.set_source(
        "trilink_native._kernel",
        includes,
        sources=[os.path.relpath(s) for s in sources],
        include_dirs=[os.path.relpath(C_DIR)],
        extra_compile_args=CFLAGS,
        libraries=[] if sys.platform == "win32" else ["m"],
    )
    return ffi


ffibuilder = make_builder()

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
