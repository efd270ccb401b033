# epoch.py: the board's authentication counter (PROTOCOL.md 2.2), its epoch persisted once per boot
"""``counter = epoch << 28 | index``: at boot the stored epoch ``e`` is read,
``e + 1`` stored and used with ``index`` from 0; one flash write per boot.

The state file is one line of JSON, ``{"format": "trilink-board-state/1",
"epoch": 7}``, written whole to a temporary name and renamed over the old
one, so a power cut never leaves half a file. A missing file is epoch 0 (a
new board); a file that does not parse is an error naming it (overwriting
it could move the epoch backwards).

    >>> ec = EpochCounter("/tmp/jp.state")     # epoch e+1 stored
    >>> ec.next() == ec.epoch << 28
    True
"""
import json

SHIFT = 28
INDEX_MAX = (1 << SHIFT) - 1
EPOCH_MAX = (1 << 20) - 1
FORMAT = "trilink-board-state/1"


class StateError(ValueError):
    """The state file cannot be read or written; the message names it."""


class EpochCounter:
    """``EpochCounter(path)``; ``next()`` returns the next 48-bit counter; ``jump(min_epoch)``."""

    def __init__(self, path):
        self.path = path
        self.epoch = self._read() + 1
        self.index = 0
        self._store()

    def _read(self):
        try:
            with open(self.path) as fh:
                text = fh.read()
        except OSError:
            return 0
        try:
            doc = json.loads(text)
        except ValueError:
            raise StateError(self.path + ": invalid JSON")
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise StateError(self.path + ": format: expected " + FORMAT)
        e = doc.get("epoch")
        if not isinstance(e, int) or isinstance(e, bool) or not 0 <= e <= EPOCH_MAX:
            raise StateError(self.path + ": epoch: expected an integer in 0..%d" % EPOCH_MAX)
        return e

    def _store(self):
        if self.epoch > EPOCH_MAX:
            raise StateError(self.path + ": epoch: counter epochs exhausted (2^20)")
        tmp = self.path + ".tmp"
        try:
            with open(tmp, "w") as fh:
                fh.write('{"format": "%s", "epoch": %d}\n' % (FORMAT, self.epoch))
            import os
            os.rename(tmp, self.path)
        except OSError as e:
            raise StateError(self.path + ": cannot write (" + str(e) + ")")

    def next(self):
        """The counter for the next frame (strictly increasing, across reboots)."""
        if self.index > INDEX_MAX:
            self.epoch += 1
            self.index = 0
            self._store()
        c = (self.epoch << SHIFT) | self.index
        self.index += 1
        return c

    def jump(self, min_epoch):
        """HELLO's ``min_epoch`` above ours: move to it (stored), index 0. True if moved."""
        if min_epoch <= self.epoch:
            return False
        self.epoch = min_epoch
        self.index = 0
        self._store()
        return True
