# udp_link.py: a UDP socket as the board's link, one frame per datagram (unix port, CPython, Pico W)
"""``UdpLink(bind_host, bind_port, peer_host, peer_port)``, the ``link.Link`` interface over UDP.

    >>> link = UdpLink("0.0.0.0", 9101, "127.0.0.1", 9100)
    >>> link.write(frame)                     # raw frame, no COBS (PROTOCOL.md 3.2)
"""
import select
import socket

from trilink_board.link import Link, LinkError, why


class UdpLink(Link):
    """A UDP socket bound to ``bind_host:bind_port`` that sends to the relay at ``peer``."""

    datagram = True

    def __init__(self, bind_host, bind_port, peer_host, peer_port):
        self.name = "udp:%s:%d:%s:%d" % (bind_host, bind_port, peer_host, peer_port)
        try:
            self._peer = socket.getaddrinfo(peer_host, peer_port)[0][-1]
            local = socket.getaddrinfo(bind_host, bind_port)[0][-1]
            self._s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self._s.bind(local)
            self._s.setblocking(False)
        except OSError as e:
            raise LinkError("%s: cannot open (%s)" % (self.name, why(e)))
        # CPython has recv_into (no allocation). MicroPython's readinto would
        # run two queued datagrams together, and recv(len(buf)) asks a
        # fragmented 192 KB heap for 1 KB per datagram: there the header is
        # peeked first and the datagram read at its own size.
        self._recv_into = getattr(self._s, "recv_into", None)
        self._poll = select.poll()
        self._poll.register(self._s, select.POLLIN)

    def poll(self, timeout_ms):
        return bool(self._poll.poll(timeout_ms))

    def readinto(self, buf):
        try:
            if self._recv_into is not None:
                return self._recv_into(buf)
            # The unix port's recv takes flags; the rp2 stubs describe a Pico W's, which does not.
            head = self._s.recv(16, socket.MSG_PEEK)  # type: ignore[call-arg]
            size = len(buf)
            if len(head) == 16:
                size = min(size, 28 + (head[14] | head[15] << 8))
            # One byte more than the header promises: a longer datagram then shows
            # as a wrong length (PROTOCOL.md 3.2) instead of passing truncated.
            data = self._s.recv(size + 1)
        except OSError:  # EAGAIN, or an ICMP error from an earlier send
            return 0
        n = min(len(data), len(buf))
        buf[:n] = data[:n] if n < len(data) else data
        return n

    def write(self, data):
        try:
            self._s.sendto(data, self._peer)
        except OSError:
            pass  # UDP is lossy by contract: the relay not listening is a lost datagram

    def close(self):
        self._s.close()
