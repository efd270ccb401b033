# keyfile.py: the relay's pair keys, refused unless private, distinct and real
"""Load the key file a relay config names (PROTOCOL.md section 6) and check
what the relay relies on; every problem is a ``ConfigError`` of one line
naming the file:

* the file is not readable by group or others (mode 0600, as ``trilink
  keygen`` writes it): ``keys.json: mode 0644: readable by group or others
  (chmod 600 keys.json)``;
* the file is not a symbolic link (whoever can change where it points
  chooses the relay's keys): ``keys.json: a symbolic link (to /x/k.json):
  name the key file itself``;
* every configured node's key id is in it and bound to that node;
* no two keys have the same bytes (PROTOCOL.md 2.1: whoever holds one
  board's key must not be able to speak for another);
* no key spells ``TEST-ONLY`` and none is all zeros, unless ``[relay]
  allow_test_keys = true`` (tests and benches only).

    >>> keys = load(cfg)                  # {key_id: 32 bytes}
    >>> check_keys(keys, allow_test=False, where="keys.json")
"""
from __future__ import annotations

import os
import stat
from typing import Any, Dict, Mapping

from trilink_edge.config import ConfigError

__all__ = ["load", "read_private", "check_keys", "is_test_key"]

_TEST_MARK = b"TEST-ONLY"


def is_test_key(key: bytes) -> bool:
    """True for the test vectors' keys (their bytes spell TEST-ONLY) and the all-zero key."""
    return _TEST_MARK in key or not any(key)


def check_keys(keys: Mapping[int, bytes], allow_test: bool, where: str) -> None:
    """Refuse duplicate key bytes, and test or all-zero keys unless ``allow_test``."""
    owner: Dict[bytes, int] = {}
    for kid in sorted(keys):
        key = bytes(keys[kid])
        if key in owner:
            raise ConfigError(f"{where}: key {kid} has the same bytes as key {owner[key]}: every board needs "
                              f"its own key (trilink keygen)")
        owner[key] = kid
        if not allow_test and is_test_key(key):
            raise ConfigError(f"{where}: key {kid} is a test key (TEST-ONLY or all zeros): generate real ones "
                              f"with trilink keygen, or set [relay] allow_test_keys = true in a test")


def read_private(path: str) -> bytes:
    """The bytes of the key file ``path``; ConfigError (one line naming it)
    when it is a symbolic link or readable by group or others. Opened with
    O_NOFOLLOW, so the file judged is the file read."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as e:
        if os.path.islink(path):      # ELOOP under O_NOFOLLOW
            raise ConfigError(f"{path}: a symbolic link (to {os.readlink(path)}): name the key file itself "
                              f"(mode 0600)") from None
        raise ConfigError(f"{path}: {e.strerror or e}") from None
    with os.fdopen(fd, "rb") as fh:
        mode = stat.S_IMODE(os.fstat(fh.fileno()).st_mode)
        if mode & 0o077:
            raise ConfigError(f"{path}: mode {mode:04o}: readable by group or others (chmod 600 {path})")
        return fh.read()


def load(cfg: Any) -> Dict[int, bytes]:
    """The keys of ``cfg.relay.key_file`` after every check above."""
    from trilink_board import keys as _keys
    path = cfg.relay.key_file
    if path is None:
        raise ConfigError(f"{cfg.source}: relay.key_file: missing")
    try:
        text = read_private(path)
    except ConfigError as e:
        raise ConfigError(f"{cfg.source}: relay.key_file: {e}") from None
    try:
        kf = _keys.loads(text)
    except ValueError as e:
        raise ConfigError(f"{cfg.source}: relay.key_file: {path}: {e}") from None
    by_id = {e.key_id: e for e in kf.entries}
    for n in cfg.nodes:
        entry = by_id.get(n.key_id)
        if entry is None:
            raise ConfigError(f"{cfg.source}: nodes.{n.name}.key_id: key {n.key_id} is not in {path}")
        if entry.node != n.node:
            raise ConfigError(f"{cfg.source}: nodes.{n.name}.key_id: key {n.key_id} is bound to node "
                              f"{entry.node} in {path}, not {n.node}")
    keys = {e.key_id: e.key for e in kf.entries}
    check_keys(keys, cfg.relay.allow_test_keys, path)
    return keys
