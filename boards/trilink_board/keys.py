# keys.py: read the trilink key file (docs/PROTOCOL.md §6) on a board or the relay
"""Load the JSON key file that ``trilink keygen`` writes and turn it into a
``wire.Keyring``. Runs on MicroPython (``json``, ``binascii``) and CPython.

    >>> kf = loads('{"format": "trilink-keys/1", "relay": 0, "keys": [{"key_id": 1,'
    ...            ' "node": 1, "name": "jp", "key": "' + "54" * 32 + '"}]}')
    >>> kf.entry(1).name, len(kf.entry(1).key)
    ('jp', 32)
    >>> ring = kf.keyring(node=1)          # a board: its own key, link = the relay
    >>> ring.link
    (0,)

Every problem with the file raises ``KeyFileError`` (a ``ValueError``).
"""
import json
from binascii import unhexlify

from trilink_board.wire import KEY_SIZE, Keyring

FORMAT = "trilink-keys/1"


class KeyFileError(ValueError):
    """The key file is missing a field, has a bad value or is not JSON."""


class KeyEntry:
    """One pair key: ``key_id`` (1..255), board ``node``, ``name``, ``key`` (32 bytes)."""

    def __init__(self, key_id, node, name, key):
        self.key_id = key_id
        self.node = node
        self.name = name
        self.key = key

    def __repr__(self):
        # Never print the key itself.
        return "KeyEntry(key_id=%d, node=%d, name=%r)" % (self.key_id, self.node, self.name)


class KeyFile:
    """A parsed key file: ``relay`` (its node id) and ``entries`` (``KeyEntry`` list)."""

    def __init__(self, relay, entries):
        self.relay = relay
        self.entries = entries

    def entry(self, node):
        """The entry of board ``node``; ``KeyFileError`` when it has none."""
        for e in self.entries:
            if e.node == node:
                return e
        raise KeyFileError("no key for node %d in the key file" % node)

    def keyring(self, node, link=None):
        """A ``wire.Keyring`` for receiver ``node``.

        At the relay (``node == relay``) it holds every key and the link
        defaults to every board; at a board it holds that board's key and the
        link defaults to the relay alone.
        """
        if node == self.relay:
            entries = self.entries
            default = tuple(e.node for e in entries)
        else:
            entries = [self.entry(node)]
            default = (self.relay,)
        ring = Keyring(node, default if link is None else link)
        for e in entries:
            ring.add(e.key_id, e.node, e.key)
        return ring


def _int(d, name, lo, hi, where):
    v = d.get(name) if isinstance(d, dict) else None
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise KeyFileError("%s: %s must be an integer in %d..%d" % (where, name, lo, hi))
    return v


def loads(text):
    """Parse key file text (str or bytes) into a ``KeyFile``."""
    try:
        doc = json.loads(text)
    except ValueError:
        raise KeyFileError("key file is not valid JSON")
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise KeyFileError("key file format is not %r" % FORMAT)
    relay = _int(doc, "relay", 0, 254, "key file")
    items = doc.get("keys")
    if not isinstance(items, list) or not items:
        raise KeyFileError("key file has no keys")
    entries = []  # type: list
    for i, item in enumerate(items):
        where = "keys[%d]" % i
        key_id = _int(item, "key_id", 1, 255, where)
        node = _int(item, "node", 0, 254, where)
        name = item.get("name", "")
        hexkey = item.get("key")
        if not isinstance(name, str):
            raise KeyFileError("%s: name must be a string" % where)
        if not isinstance(hexkey, str) or len(hexkey) != 2 * KEY_SIZE:
            raise KeyFileError("%s: key must be %d hex digits" % (where, 2 * KEY_SIZE))
        try:
            key = unhexlify(hexkey)
        except ValueError:
            raise KeyFileError("%s: key is not hex" % where)
        if node == relay:
            raise KeyFileError("%s: node %d is the relay" % (where, node))
        for e in entries:
            if e.key_id == key_id or e.node == node:
                raise KeyFileError("%s: key_id %d or node %d appears twice" % (where, key_id, node))
        entries.append(KeyEntry(key_id, node, name, key))
    return KeyFile(relay, entries)


def load(path):
    """Read and parse the key file at ``path``."""
    try:
        with open(path) as fh:
            text = fh.read()
    except OSError:
        raise KeyFileError("cannot read key file %s" % path)
    return loads(text)
