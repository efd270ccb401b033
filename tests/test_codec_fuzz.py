"""The C track decoder under AddressSanitizer and UndefinedBehaviorSanitizer:
tests/fuzz/fuzz_codec.c decodes one million mutated and random payloads
(seeded from valid keyframe, delta, drop and dead-reckoning payloads) with
and without a held table. Any sanitizer report aborts the driver
(-fno-sanitize-recover=all); the driver itself checks that every result is
a documented one and every decoded covariance is positive definite.

A longer campaign::

    gcc -std=c99 -fsanitize=address,undefined -fno-sanitize-recover=all -g -O1 \\
        -Inative/c tests/fuzz/fuzz_codec.c native/c/codec.c native/c/deadreckon.c native/c/drmodel.c -lm -o /tmp/fuzz_codec
    /tmp/fuzz_codec 20000000 7
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
C_DIR = REPO / "native" / "c"
DRIVER = REPO / "tests" / "fuzz" / "fuzz_codec.c"
INPUTS = 1_000_000


def test_one_million_payloads_under_asan_and_ubsan(tmp_path):
    gcc = shutil.which("gcc")
    assert gcc, "gcc is required"
    exe = tmp_path / "fuzz_codec"
    subprocess.run([gcc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-fsanitize=address,undefined",
                    "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-g", "-O1", f"-I{C_DIR}",
                    str(DRIVER), str(C_DIR / "codec.c"), str(C_DIR / "deadreckon.c"), str(C_DIR / "drmodel.c"), "-lm", "-o", str(exe)],
                   check=True, capture_output=True, text=True)
    env = {"ASAN_OPTIONS": "abort_on_error=1:detect_leaks=1", "UBSAN_OPTIONS": "print_stacktrace=1",
           "PATH": "/usr/bin:/bin"}
    res = subprocess.run([str(exe), str(INPUTS), "3"], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-4000:]
    m = re.search(r"inputs (\d+) decoded (\d+) records (\d+)", res.stdout)
    assert m, res.stdout
    inputs, decoded, records = (int(g) for g in m.groups())
    assert inputs == INPUTS
    # mutations reach past the header: a good share still decodes, with records
    assert decoded > INPUTS // 20 and records > decoded
    assert "runtime error" not in res.stderr and "AddressSanitizer" not in res.stderr
