# relay_state.py: what the relay persists (PROTOCOL 2.2): its counter epoch and the board epochs seen
"""The relay's state file: ``RelayState`` (JSON, saved atomically and
durably, 0600) and ``StateFileError``; the counter layout it bounds
(``epoch << EPOCH_SHIFT | index``). ``trilink_edge.session`` uses it and
re-exports both names.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from typing import Dict, Optional

from trilink_native import binding

__all__ = ["RelayState", "StateFileError", "EPOCH_SHIFT", "EPOCH_MAX", "STATE_FORMAT"]

EPOCH_SHIFT = 28
EPOCH_MAX = (1 << 20) - 1
STATE_FORMAT = "trilink-relay-state/2"
STATE_FORMAT_V1 = "trilink-relay-state/1"   # read: its marks give the epochs seen
STATE_TEMP_PREFIX = ".relay-state-"


class StateFileError(ValueError):
    """The state file exists but cannot be read (names the file and what is wrong)."""


@dataclass
class RelayState:
    """What the relay persists (PROTOCOL 2.2): its own counter epoch and, per
    key id, the highest board epoch it ever accepted. ``save`` is atomic
    (temporary file, fsync, rename, fsync of the folder) and creates the
    file 0600.

        >>> st = RelayState(epoch=3, seen={1: 5})
        >>> RelayState.from_json(st.to_json()).seen
        {1: 5}
    """

    epoch: int = 0
    seen: Dict[int, int] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"format": STATE_FORMAT, "epoch": self.epoch,
                           "seen": {str(k): v for k, v in sorted(self.seen.items())}})

    @classmethod
    def from_json(cls, text: str, where: str = "state") -> "RelayState":
        try:
            doc = json.loads(text)
        except ValueError as e:
            raise StateFileError(f"{where}: not JSON ({e})") from None
        fmt = doc.get("format") if isinstance(doc, dict) else None
        if fmt not in (STATE_FORMAT, STATE_FORMAT_V1):
            raise StateFileError(f"{where}: format is not {STATE_FORMAT!r}")
        epoch = doc.get("epoch")
        table = doc.get("seen" if fmt == STATE_FORMAT else "marks")
        if (not isinstance(epoch, int) or isinstance(epoch, bool) or not 0 <= epoch <= EPOCH_MAX
                or not isinstance(table, dict)):
            raise StateFileError(f"{where}: epoch must be 0..{EPOCH_MAX} and "
                                 f"{'seen' if fmt == STATE_FORMAT else 'marks'} an object")
        out = {}
        for k, v in table.items():
            if fmt == STATE_FORMAT_V1:   # v1 kept marks: their epochs are what was seen
                if not (k.isdigit() and 1 <= int(k) <= 255 and isinstance(v, int) and not isinstance(v, bool)
                        and 0 <= v <= binding.MAX_COUNTER):
                    raise StateFileError(f"{where}: marks.{k}: key id 1..255 with a 48-bit counter")
                v >>= EPOCH_SHIFT
            elif not (k.isdigit() and 1 <= int(k) <= 255 and isinstance(v, int) and not isinstance(v, bool)
                      and 0 <= v <= EPOCH_MAX):
                raise StateFileError(f"{where}: seen.{k}: key id 1..255 with an epoch 0..{EPOCH_MAX}")
            out[int(k)] = v
        return cls(epoch, out)

    @classmethod
    def load(cls, path: Optional[str]) -> "RelayState":
        """The state at ``path``; a fresh state when there is no file. A file
        that cannot be read or parsed raises StateFileError naming it."""
        if path is None or not os.path.exists(path):
            return cls()
        try:
            with open(path) as fh:
                text = fh.read()
        except (OSError, UnicodeDecodeError) as e:
            raise StateFileError(f"{path}: cannot read: {getattr(e, 'strerror', None) or e}") from None
        return cls.from_json(text, path)

    def save(self, path: Optional[str]) -> None:
        """Write atomically and durably: a 0600 temporary file in the same
        folder, fsync, rename over ``path``, fsync of the folder (so that the
        rename itself survives a power cut). Raises OSError."""
        if path is None:
            return
        d = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(prefix=STATE_TEMP_PREFIX, dir=d)   # mode 0600
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(self.to_json())
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        dfd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    @staticmethod
    def clean_temps(path: Optional[str]) -> int:
        """Remove temporary files a killed save left beside ``path``; returns how many."""
        if path is None:
            return 0
        d = os.path.dirname(os.path.abspath(path))
        n = 0
        try:
            names = os.listdir(d)
        except OSError:
            return 0
        for name in names:
            if name.startswith(STATE_TEMP_PREFIX):
                try:
                    os.unlink(os.path.join(d, name))
                    n += 1
                except OSError:
                    pass
        return n
