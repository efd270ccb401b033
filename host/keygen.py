"""trilink keygen: write the pairwise board-to-relay keys (docs/PROTOCOL.md §6).

One 32-byte random key per board, each bound to that board's node id and
given a key id. The file is created with mode 0600 and never overwritten
unless asked::

    $ trilink keygen --nodes jp:1,kr:2,au:3 --out keys.json
    $ trilink keygen --nodes jp:1,kr:2 --out keys.json --split keys.d
      (also writes keys.d/jp.json and keys.d/kr.json, one key each, for the boards)
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from typing import Dict, List, Optional, Sequence, Tuple

FORMAT = "trilink-keys/1"
KEY_BYTES = 32


def parse_nodes(text: str) -> List[Tuple[str, int]]:
    """Parse ``"jp:1,kr:2"`` into ``[("jp", 1), ("kr", 2)]``.

    >>> parse_nodes("jp:1,kr:2")
    [('jp', 1), ('kr', 2)]
    """
    nodes: List[Tuple[str, int]] = []
    for item in text.split(","):
        name, sep, number = item.strip().partition(":")
        if not sep or not name:
            raise ValueError(f"--nodes: {item!r} is not NAME:ID (e.g. jp:1)")
        try:
            node = int(number)
        except ValueError:
            raise ValueError(f"--nodes: node id {number!r} of {name!r} is not an integer") from None
        if not 0 <= node <= 254:
            raise ValueError(f"--nodes: node id {node} of {name!r} is outside 0..254")
        nodes.append((name, node))
    names = [n for n, _ in nodes]
    ids = [i for _, i in nodes]
    if len(set(names)) != len(names) or len(set(ids)) != len(ids):
        raise ValueError("--nodes: names and node ids must be unique")
    return nodes


def make_keys(nodes: Sequence[Tuple[str, int]], relay: int) -> Dict[str, object]:
    """A key document: key ids 1, 2, ... in the order the nodes are given."""
    if any(node == relay for _, node in nodes):
        raise ValueError(f"--nodes: node id {relay} is the relay's (--relay)")
    keys = [
        {"key_id": i + 1, "node": node, "name": name, "key": secrets.token_hex(KEY_BYTES)}
        for i, (name, node) in enumerate(nodes)
    ]
    return {"format": FORMAT, "relay": relay, "keys": keys}


def write_private(path: str, doc: Dict[str, object], force: bool) -> None:
    """Write JSON to ``path`` created with mode 0600 (never group/world readable)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    fd = os.open(path, flags, 0o600)
    os.fchmod(fd, 0o600)  # O_TRUNC on an existing file keeps its old mode
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=1)
        fh.write("\n")


def _parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="trilink keygen", description=__doc__.split("\n\n")[0])
    p.add_argument("--nodes", required=True, help="boards as NAME:NODE_ID,... e.g. jp:1,kr:2,au:3")
    p.add_argument("--relay", type=int, default=0, help="the relay's node id (default 0)")
    p.add_argument("--out", required=True, help="key file to write (mode 0600)")
    p.add_argument("--split", metavar="DIR", help="also write DIR/NAME.json holding only that board's key")
    p.add_argument("--force", action="store_true", help="overwrite existing files")
    return p.parse_args(list(argv))


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    try:
        doc = make_keys(parse_nodes(args.nodes), args.relay)
        write_private(args.out, doc, args.force)
        written = [args.out]
        if args.split:
            os.makedirs(args.split, mode=0o700, exist_ok=True)
            for entry in doc["keys"]:  # type: ignore[union-attr]
                one = {"format": FORMAT, "relay": doc["relay"], "keys": [entry]}
                path = os.path.join(args.split, f"{entry['name']}.json")
                write_private(path, one, args.force)
                written.append(path)
    except FileExistsError as exc:
        print(f"trilink keygen: {exc.filename} exists; pass --force to overwrite", file=sys.stderr)
        return 1
    except (ValueError, OSError) as exc:
        print(f"trilink keygen: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path} (mode 0600)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
