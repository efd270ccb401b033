# link_udp.py: the UDP link (one frame per datagram, peers learned per board)
"""``UdpLink``: one UDP socket (see ``trilink_edge.links`` for the interface)."""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Dict, Optional, Tuple

from trilink_edge.link_base import Link
from trilink_native import binding

__all__ = ["UdpLink"]

log = logging.getLogger("trilink_edge.links")


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, link: "UdpLink") -> None:
        self.link = link
        self.closed = asyncio.Event()

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self.closed.set()

    def datagram_received(self, data: bytes, addr: Tuple[str, int]) -> None:
        self.link._on_datagram(data, addr, time.monotonic_ns())

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from a peer that is not listening yet: count, go on.
        self.link.stats.tx_errors += 1


class UdpLink(Link):
    """One UDP socket: bound to ``bind``, sending to ``peer``. One frame per
    datagram (PROTOCOL 3.2); a datagram that is not exactly one well-formed
    frame is counted (``malformed`` / ``crc_error``) and dropped.

    With ``peer=None`` the link sends each frame to the address of the
    latest frame its destination board sent that the relay accepted, which
    the relay reports through ``learn_peer(addr, node)`` (never an address
    a rejected frame came from): boards behind one link each keep their
    own address. Until a board's address is known, frames for it are
    dropped and counted (``tx_dropped``), never sent to another board.

        >>> link = UdpLink("au", ("0.0.0.0", 9100), ("192.0.2.10", 9101))
    """

    kind = "udp"
    reorders = True

    def __init__(self, name: str, bind: Tuple[str, int], peer: Optional[Tuple[str, int]] = None,
                 rx_queue: int = 4096) -> None:
        super().__init__(name, rx_queue)
        self.bind = bind
        self.configured_peer = peer
        self.peer = peer                      # link-wide: configured, or learned without a node
        self.peers: Dict[int, Tuple[str, int]] = {}   # learned per board node (accepted frames)
        self.hello_peers: Dict[int, Tuple[str, int]] = {}   # ... from authentic refused frames: HELLO only
        self._transport: Optional[asyncio.DatagramTransport] = None
        self._protocol: Optional[_UdpProtocol] = None

    @classmethod
    def from_config(cls, cfg: Any) -> "UdpLink":
        return cls(cfg.name, cfg.bind, cfg.peer)

    @property
    def up(self) -> bool:
        return self._transport is not None

    @property
    def local_addr(self) -> Optional[Tuple[str, int]]:
        """The bound (host, port), useful after binding port 0."""
        if self._transport is None:
            return None
        return self._transport.get_extra_info("sockname")[:2]

    def set_peer(self, peer: Optional[Tuple[str, int]]) -> None:
        """Set (or clear) the address frames are sent to."""
        self.configured_peer = peer
        self.peer = peer

    def learn_peer(self, peer: Any, node: Optional[int] = None, accepted: bool = True) -> None:
        """``accepted=False``: ``peer`` sent an authentic frame of ``node``
        that was refused (a board not yet verified, or a replay): only the
        relay's HELLO (its challenge) may go there, and only while no
        accepted frame has given that board's address."""
        if self.configured_peer is not None or peer is None:
            return
        addr = (peer[0], peer[1])
        if not accepted:
            if node is not None:
                self.hello_peers[node] = addr
            return
        if node is None:
            if addr != self.peer:
                log.info("link %s: peer is now %s:%d", self.name, addr[0], addr[1])
                self.peer = addr
        elif self.peers.get(node) != addr:
            log.info("link %s: node %d is at %s:%d", self.name, node, addr[0], addr[1])
            self.peers[node] = addr

    def _peer_for(self, frame: bytes) -> Optional[Tuple[str, int]]:
        if self.configured_peer is not None:
            return self.configured_peer
        if len(frame) > 4:
            dst = frame[3]
            if dst in self.peers:
                return self.peers[dst]
            if frame[4] == binding.MSG_HELLO and dst in self.hello_peers:
                return self.hello_peers[dst]    # the challenge that lets the board be accepted
        if self.peers:     # per board: a frame for a board not heard from yet goes nowhere
            return None
        return self.peer

    async def _open(self) -> None:
        assert self._loop is not None
        transport, protocol = await self._loop.create_datagram_endpoint(
            lambda: _UdpProtocol(self), local_addr=self.bind)
        self._transport = transport  # type: ignore[assignment]
        self._protocol = protocol
        # Bound to port 0: keep the port the OS chose, so a reopen (close,
        # open) comes back on the address the peer already sends to.
        if self.bind[1] == 0:
            self.bind = (self.bind[0], self.local_addr[1])  # type: ignore[index]
        log.info("link %s: udp bound to %s:%d", self.name, *self.local_addr)  # type: ignore[misc]

    async def _close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            # The socket is released on a later loop turn: wait, so that an
            # open() right after close() can bind the same port again.
            if self._protocol is not None:
                await self._protocol.closed.wait()
        self._transport = None
        self._protocol = None

    def _on_datagram(self, data: bytes, addr: Tuple[str, int], t_ns: int) -> None:
        self.stats.bytes_in += len(data)
        try:
            binding.parse_frame(data)
        except binding.WireError as e:
            if e.reason == "crc_error":
                self.stats.crc_error += 1
            else:
                self.stats.malformed += 1
            return
        self._deliver(bytes(data), t_ns, addr)

    def _write_wire(self, frame: bytes) -> Optional[int]:
        peer = self._peer_for(frame)
        if self._transport is None or peer is None:
            self.stats.tx_dropped += 1
            return None
        try:
            self._transport.sendto(frame, peer)
        except OSError:
            self.stats.tx_errors += 1
            return None
        return len(frame)
