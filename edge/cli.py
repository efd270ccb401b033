# cli.py: the `trilink-edge` command: load the config, run the relay, stop cleanly on SIGTERM
"""``trilink-edge --config relay.toml``: run the relay daemon.

    $ trilink-edge --config relay.toml              # run until SIGTERM / Ctrl-C
    $ trilink-edge --config relay.toml --check      # validate config and key file, exit 0 or 2
    $ trilink-edge --config relay.toml --capture /tmp/x.pcapng --stats 127.0.0.1:0

Exit status: 0 after a clean stop (SIGTERM, SIGINT), 2 for a bad config,
key file or state file (one line naming the file and the key), 1 if the
relay failed. ``--check`` reads the key file and the state file too.
SIGTERM stops the relay within 1 s: links closed, replay marks saved, the
capture flushed.
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import signal
import sys
from typing import Any, List, Optional, Sequence

from trilink_edge import config as _config

log = logging.getLogger("trilink_edge")

__all__ = ["main", "_parse_args", "check", "run"]


def _parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="trilink-edge",
        description="The trilink relay: authenticate, fuse and relay missile-warning tracks between nations' "
                    "boards over serial and UDP links. Config reference: docs/RELAY.md.")
    p.add_argument("--config", "-c", required=True, metavar="TOML", help="relay configuration (relay.toml)")
    p.add_argument("--check", action="store_true",
                   help="validate the configuration and the key file, print a summary and exit")
    p.add_argument("--log-level", choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                   help="override [relay] log_level")
    p.add_argument("--capture", metavar="PATH", help="override [recorder] path (pcapng capture)")
    p.add_argument("--stats", metavar="HOST:PORT",
                   help="override [relay] stats (the GET /stats endpoint); 'off' disables it")
    return p.parse_args(list(argv))


def _apply_overrides(cfg: _config.Config, args: argparse.Namespace) -> _config.Config:
    relay, rec = cfg.relay, cfg.recorder
    if args.log_level:
        relay = dataclasses.replace(relay, log_level=args.log_level)
    if args.stats is not None:
        if args.stats == "off":
            relay = dataclasses.replace(relay, stats_addr=None)
        else:
            host, sep, port = args.stats.rpartition(":")
            if not sep or not port.isdigit():
                raise _config.ConfigError(f"--stats: {args.stats!r}: expected \"host:port\" or \"off\"")
            relay = dataclasses.replace(relay, stats_addr=(host or "127.0.0.1", int(port)))
    if args.capture:
        rec = dataclasses.replace(rec, path=args.capture)
    return dataclasses.replace(cfg, relay=relay, recorder=rec)


def check(cfg: _config.Config) -> List[str]:
    """Check what the config refers to: the key file (private, parses, each
    node's key bound to that node, no duplicate or test keys: keyfile.load)
    and the state file. Returns summary lines; raises ConfigError naming
    the file and key."""
    from trilink_edge import keyfile
    keyfile.load(cfg)
    lines = [f"{cfg.source}: OK: relay node {cfg.relay.node}, {len(cfg.nodes)} nodes, {len(cfg.links)} links"]
    lines.append("  " + check_state(cfg))
    for name, lk in cfg.links.items():
        where = f"{lk.device} at {lk.baud} baud" if lk.kind == "serial" else \
            f"bind {lk.bind[0]}:{lk.bind[1]} peer {'%s:%d' % lk.peer if lk.peer else '(learned)'}"  # type: ignore[index]
        lines.append(f"  link {name}: {lk.kind} {where}, budget {lk.budget} B/s, boards {', '.join(lk.boards)}")
    for src in sorted({n.nation for n in cfg.nodes}):
        dst = sorted(d for d in {n.nation for n in cfg.nodes} if d != src and cfg.release.may(src, d))
        lines.append(f"  release {src} -> {', '.join(dst) or '(none)'}")
    return lines


def check_state(cfg: _config.Config) -> str:
    """Read the state file (PROTOCOL.md 2.2) as the relay will: a summary
    line; ConfigError naming the file when it is unreadable or corrupt, or
    when its folder cannot be written (the relay writes it at every start)."""
    from trilink_edge.session import RelayState, StateFileError
    path = cfg.relay.state_file
    if path is None:
        return "state: none configured (relay.state_file): the relay epoch starts at 1 at every start"
    try:
        st = RelayState.load(path)
    except StateFileError as e:
        raise _config.ConfigError(f"{cfg.source}: relay.state_file: {e}") from None
    folder = os.path.dirname(os.path.abspath(path))
    if not os.access(folder, os.W_OK | os.X_OK):
        raise _config.ConfigError(f"{cfg.source}: relay.state_file: {folder}: folder missing or not writable")
    if not os.path.exists(path):
        return f"state: {path}: none yet (the relay creates it)"
    return f"state: {path}: relay epoch {st.epoch}, board epochs seen for {len(st.seen)} keys"


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


async def run(cfg: _config.Config, relay: Any = None) -> int:
    """Run the relay until SIGTERM/SIGINT (or ``relay.stop()``); 0 on a clean stop."""
    from trilink_edge import stats as _stats
    if relay is None:
        from trilink_edge.relay import Relay
        from trilink_edge.session import StateFileError
        try:
            relay = Relay(cfg)
        except (StateFileError, OSError, _config.ConfigError) as e:   # corrupt state, unwritable folder, keys
            log.error("%s", e if not isinstance(e, OSError) else f"relay.state_file: cannot write: {e}")
            return 2
    loop = asyncio.get_running_loop()
    st = _stats.Stats(links=lambda: getattr(relay, "links", {}))
    if hasattr(relay, "stats"):
        st.add_source(relay.stats)
    rec = getattr(relay, "recorder", None)
    if rec is not None:
        st.add_source(lambda: {"recorder": {"path": rec.path, "recorded": rec.recorded, "dropped": rec.dropped,
                                            "rotations": rec.rotations, "error": rec.error}})
    server = None
    if cfg.relay.stats_addr is not None:
        try:
            server = await _stats.serve(st, *cfg.relay.stats_addr)
            addr = server.sockets[0].getsockname()
            log.info("stats endpoint: http://%s:%d/stats", addr[0], addr[1])
        except OSError as e:   # a busy port must not keep the relay down
            log.error("stats endpoint %s:%d not started: %s", *cfg.relay.stats_addr, e.strerror or e)
    ticker = None
    if cfg.relay.stats_interval_s > 0:
        ticker = loop.create_task(_stats.log_periodically(st, cfg.relay.stats_interval_s, log))

    stopping: List[asyncio.Task] = []

    def _on_signal(signame: str) -> None:
        if not stopping:
            log.info("%s: stopping", signame)
            stopping.append(loop.create_task(relay.stop()))

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _on_signal, sig.name)
    rc = 0
    try:
        await relay.run()
    except Exception:  # noqa: BLE001 - report it as the exit status, with the traceback in the log
        log.exception("relay failed")
        rc = 1
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        if ticker is not None:
            ticker.cancel()
        if server is not None:
            server.close()
        if stopping:
            await asyncio.gather(*stopping, return_exceptions=True)
    log.info("%s", st.log_line())
    log.info("stopped")
    return rc


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    try:
        cfg = _apply_overrides(_config.load(args.config), args)
        if args.check:
            print("\n".join(check(cfg)))
            return 0
        check(cfg)
    except _config.ConfigError as e:
        print(f"trilink-edge: {e}", file=sys.stderr)
        return 2
    _setup_logging(cfg.relay.log_level)
    try:
        return asyncio.run(run(cfg))
    except KeyboardInterrupt:  # pragma: no cover - SIGINT is handled inside run()
        return 0


if __name__ == "__main__":
    sys.exit(main())
