"""Matching printed counts without substring accidents: ``"0 damaged" in
"70 damaged"`` is True, ``has(out, "0 damaged")`` is not.

>>> has("70 damaged frames", "0 damaged"), has("0 damaged frames", "0 damaged")
(False, True)
>>> has("crc=20 q=9", "crc=2"), has("crc=2, q=9", "crc=2")
(False, True)
"""
from __future__ import annotations

import re


def has(text: str, phrase: str) -> bool:
    """True when ``phrase`` occurs in ``text`` with no digit (or decimal
    point) running on from either of its ends, so a number in it is read
    whole."""
    return re.search(r"(?<![\d.])" + re.escape(phrase) + r"(?![\d.])", text) is not None
