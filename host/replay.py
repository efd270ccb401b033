"""trilink replay: read a relay capture and feed its received frames back
through the relay's sessions and pipeline.

    $ trilink replay capture/relay.pcapng                       # counts per link, direction, type
    $ trilink replay capture/relay.pcapng --config relay.toml   # + verify and fuse the received frames

Rotated files (``relay.pcapng.1``, ...) are read oldest first with
``--rotated``. Without ``--config`` only the capture is read (no keys
needed). With it, every received ("rx") frame goes, in capture order with
its original timestamp, through a fresh relay's ``Sessions.accept``
(authentication, replay window: the state file is not used) and, for track
reports, ``Pipeline.ingest`` and ``Pipeline.round``; the pipeline's and the
picture's counters are printed. Exit 2 for an unreadable capture or config.
"""
from __future__ import annotations

import argparse
import collections
import dataclasses
import sys
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from trilink_edge.recorder import CaptureError, CaptureRecord, capture_files, iter_capture
from trilink_native.binding import MSG_NAMES as _TYPE_NAMES   # PROTOCOL.md 4, from wire.h

__all__ = ["main", "_parse_args", "iter_records", "count", "feed"]


def _parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="trilink replay", description="Read a relay capture (pcapng written by "
                                "trilink-edge) and feed its received frames back through the pipeline.")
    p.add_argument("capture", help="capture file (relay.pcapng)")
    p.add_argument("--rotated", action="store_true", help="also read the rotated files capture.N, oldest first")
    p.add_argument("--config", metavar="TOML", help="relay config: verify and fuse the received frames")
    return p.parse_args(list(argv))


def iter_records(path: str, rotated: bool = False) -> Iterator[CaptureRecord]:
    """Every record of ``path`` (and, with ``rotated``, its older siblings first)."""
    for p in (capture_files(path) if rotated else [path]):
        yield from iter_capture(p)


def count(records: Iterable[CaptureRecord]) -> Dict[Tuple[str, str, str], int]:
    """Records per (link, direction, message type name)."""
    out: Dict[Tuple[str, str, str], int] = collections.Counter()
    for r in records:
        t = r.data[4] if len(r.data) > 4 else -1
        out[(r.link, r.direction, _TYPE_NAMES.get(t, f"0x{t:02x}" if t >= 0 else "short"))] += 1
    return dict(out)


def feed(records: Iterable[CaptureRecord], relay: Any) -> Dict[str, int]:
    """Feed the received frames through ``relay.sessions`` and ``relay.pipeline``
    (a ``trilink_edge.relay.Relay`` that is not running); returns counts."""
    out = {"rx": 0, "accepted": 0, "rejected": 0, "track_reports": 0, "rounds_with_output": 0}
    for r in records:
        if r.direction != "rx":
            continue
        out["rx"] += 1
        f = relay.sessions.accept(r.link, r.data, r.t_ns)
        if f is None:
            out["rejected"] += 1
            continue
        out["accepted"] += 1
        if f.mtype == 0x10:
            out["track_reports"] += 1
            if relay.pipeline.ingest(f.src, f, r.t_ns) and relay.pipeline.round(r.t_ns):
                out["rounds_with_output"] += 1
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    try:
        records: List[CaptureRecord] = list(iter_records(args.capture, args.rotated))
    except (OSError, CaptureError) as e:
        print(f"trilink replay: {e}", file=sys.stderr)
        return 2
    counts = count(records)
    print(f"{len(records)} frames in {args.capture}" + (" (+ rotated)" if args.rotated else ""))
    for (link, direction, name), n in sorted(counts.items()):
        print(f"  {link:10s} {direction}  {name:15s} {n}")
    if not args.config:
        return 0
    from trilink_edge import config as edge_config
    try:
        cfg = edge_config.load(args.config)
    except edge_config.ConfigError as e:
        print(f"trilink replay: {e}", file=sys.stderr)
        return 2
    # A replay must neither read nor move the live relay's replay marks, nor record itself.
    cfg = dataclasses.replace(cfg, relay=dataclasses.replace(cfg.relay, state_file=None),
                              recorder=dataclasses.replace(cfg.recorder, path=None))
    from trilink_edge.relay import Relay
    try:
        relay = Relay(cfg)
    except (OSError, ValueError) as e:
        print(f"trilink replay: {e}", file=sys.stderr)
        return 2
    relay.sessions.go_offline()    # a capture cannot answer the live relay's challenges (PROTOCOL.md 2.2)
    result = feed(records, relay)
    print("pipeline: " + ", ".join(f"{k} {v}" for k, v in result.items()))
    print("picture: " + ", ".join(f"{k} {v}" for k, v in relay.pipeline.picture.stats().items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
