"""Write a relay configuration (relay.toml) from a dict: the one writer the
bench, the campaign and the tests use, so no one quotes TOML by hand.

The dict has the shape ``config.loads`` reads: sections (``relay``,
``nodes``, ``links``, ``release``, ``recorder``, ...) map to tables; a table
inside a table (``nodes.jp``) becomes ``[nodes.jp]``. Values are strings,
booleans, integers, floats, lists of them, and ``pathlib`` paths (written as
strings).

    >>> import tomllib
    >>> doc = {"relay": {"allow_test_keys": True, "key_file": "keys.json"},
    ...        "nodes": {"jp": {"id": 1, "origin": {"lat": 35.0, "lon": 139.0}}},
    ...        "links": {"jp": {"kind": "udp", "bind": "127.0.0.1:0", "boards": ["jp"]}}}
    >>> print(dumps(doc).split("[links.jp]")[0].strip())
    [relay]
    allow_test_keys = true
    key_file = "keys.json"
    <BLANKLINE>
    [nodes.jp]
    id = 1
    <BLANKLINE>
    [nodes.jp.origin]
    lat = 35.0
    lon = 139.0
    >>> tomllib.loads(dumps(doc)) == doc
    True
"""
from __future__ import annotations

import json
import math
import os
from pathlib import PurePath
from typing import Any, List, Mapping, Union

__all__ = ["dumps", "write"]


def _value(v: Any, key: str) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return ("inf" if v > 0 else "-inf") if math.isinf(v) else "nan" if math.isnan(v) else repr(v)
    if isinstance(v, (str, PurePath)):
        return json.dumps(str(v))   # a JSON string (ASCII, JSON escapes) is a valid TOML basic string
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x, key) for x in v) + "]"
    raise TypeError(f"{key}: cannot write a {type(v).__name__} to TOML")


def _key(k: str) -> str:
    return k if k and all(c.isalnum() or c in "_-" for c in k) else json.dumps(k)


def _table(out: List[str], path: List[str], table: Mapping[str, Any]) -> None:
    subs = [(k, v) for k, v in table.items() if isinstance(v, Mapping)]
    if path and (len(subs) < len(table) or not subs):
        out.append("[" + ".".join(_key(p) for p in path) + "]")
    for k, v in table.items():
        if not isinstance(v, Mapping):
            out.append(f"{_key(k)} = {_value(v, '.'.join(path + [k]))}")
    if path and (len(subs) < len(table) or not subs):
        out.append("")
    for k, v in subs:
        _table(out, path + [k], v)


def dumps(doc: Mapping[str, Any]) -> str:
    """The TOML text of ``doc`` (see the module's docstring)."""
    out: List[str] = []
    if any(not isinstance(v, Mapping) for v in doc.values()):
        raise TypeError("a relay configuration's top level holds sections (tables) only")
    _table(out, [], doc)
    return "\n".join(out)


def write(path: Union[str, os.PathLike], doc: Mapping[str, Any]) -> str:
    """Write ``doc`` as TOML to ``path``; returns the path as a string."""
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(dumps(doc))
    return os.fspath(path)
