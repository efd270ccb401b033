"""Free ports on 127.0.0.1, for the bench, the campaign, the tools and the tests.

The kernel picks them (bind to port 0); they are free when returned, so a
caller binds them soon after. ``free_ports(n)`` holds all n sockets open
while choosing, so the n ports differ.

    >>> p = free_port()
    >>> 1024 <= p <= 65535
    True
    >>> a, b = free_ports(2); a != b
    True
"""
from __future__ import annotations

import socket
from typing import List

__all__ = ["free_port", "free_ports"]


def free_ports(n: int, kind: int = socket.SOCK_DGRAM) -> List[int]:
    """``n`` distinct ports free on 127.0.0.1 (UDP by default; ``socket.SOCK_STREAM`` for TCP)."""
    socks = [socket.socket(socket.AF_INET, kind) for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    """One port free on 127.0.0.1 (UDP by default; ``socket.SOCK_STREAM`` for TCP)."""
    return free_ports(1, kind)[0]
