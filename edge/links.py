# links.py: the relay's links (serial via pyserial, UDP), one interface, a registry by kind
"""One link interface for every transport, in the manner of python-can's
``BusABC``: a transport implements ``_open``/``_close``/``_send_wire`` and
calls ``_deliver`` for each raw frame; the base class does the receive queue,
the tap (recorder), the counters and ``recv``/``send`` once.

Every link carries raw FRAMES (PROTOCOL.md section 1): ``recv()`` returns a
frame that passed the transport checks (cases 1-7 of section 3.3: COBS,
length, CRC, version, flags), ``send(frame)`` takes a raw frame and adds the
transport's framing (serial: COBS + ``0x00``; UDP: one datagram).
Authentication is the session's job, not the link's.

    >>> link = make_link(cfg.links["jp"])          # SerialLink or UdpLink by kind
    >>> await link.open()                          # never raises for an absent device
    >>> rx = await link.recv()                     # Received(data, t_ns, peer, link)
    >>> await link.send(frame)
    >>> link.stats.as_dict()["crc_error"], link.up

Timestamps: ``Received.t_ns`` is ``time.monotonic_ns()`` taken right after
the read that completed the frame (its last byte was in the OS buffer), the
relay's timebase (``session.relay_now_ns``).

A serial device that vanishes (USB adapter pulled, pty closed: a read that
reports readiness but returns no data, EIO, ENXIO, ENODEV) is closed and
reopened with backoff (50 ms doubling to 1 s, so within about 1 s of the
device's return) without any exception reaching the caller; ``up`` is False
meanwhile and frames sent are dropped and counted (``tx_dropped``).
"""
from __future__ import annotations

from typing import Any, Dict, Type

from trilink_edge.link_base import DEFAULT_BURST, Link, LinkClosed, LinkStats, Received, Tap, serial_wire_size
from trilink_edge.link_serial import SerialLink
from trilink_edge.link_udp import UdpLink

__all__ = [
    "Received", "LinkStats", "Link", "SerialLink", "UdpLink", "LinkClosed", "Tap",
    "BACKENDS", "register", "make_link", "serial_wire_size", "DEFAULT_BURST",
]

# -------------------------------------------------------------- registry ----

BACKENDS: Dict[str, Type[Link]] = {"serial": SerialLink, "udp": UdpLink}


def register(kind: str, cls: Type[Link]) -> None:
    """Add a link kind (``cls.from_config(LinkConfig)`` builds one)."""
    BACKENDS[kind] = cls


def make_link(cfg: Any) -> Link:
    """Build the link a ``config.LinkConfig`` describes (not yet open)."""
    try:
        cls = BACKENDS[cfg.kind]
    except KeyError:
        raise ValueError(f"link {cfg.name}: unknown kind {cfg.kind!r} (known: {', '.join(sorted(BACKENDS))})") from None
    return cls.from_config(cfg)  # type: ignore[attr-defined]
