# link.py: the board's link adaptors (UART, tty, UDP) behind one small stream interface
"""One interface for every way a board reaches the relay, so the firmware
never knows which it has (python-can's one bus, many transports):

* ``poll(timeout_ms)``: True when ``readinto`` has something (waits at most
  ``timeout_ms``; 0 = just look);
* ``readinto(buf)``: copy what arrived into ``buf`` (a bytearray) and return
  the count, 0 when nothing did; never blocks. A serial link returns any
  run of bytes (feed them to ``wire.Deframer``); a datagram link returns
  exactly one datagram (one frame, ``wire.parse`` it);
* ``write(data)``: send all of ``data`` (a serial chunk or one datagram);
* ``datagram``: True for UDP (one frame per datagram, no COBS);
* ``baud``: bits per second of a serial line (0 for UDP or a tty given no
  rate), for the time sync's serialisation correction;
* ``close()``.

    >>> link = open_link("udp:9101:127.0.0.1:9100")    # bind 9101, relay at 9100
    >>> link.write(frame)
    >>> if link.poll(10): n = link.readinto(buf)

Specs (``open_link``): ``tty:PATH[@BAUD]`` (a tty or pty, raw 8N1 through
termios; unix port and CPython; give ``@BAUD`` for a real serial port or a
pty paced at a baud rate, as `trilink nullmodem` does), ``udp:[BIND_HOST:]BIND_PORT:PEER_HOST:PEER_PORT``
and ``uart:ID[@BAUD]`` (``machine.UART``: RP2040 UART0 is GP0 TX / GP1 RX).
Every failure to open raises ``LinkError`` with one line naming the link.
Each adaptor lives in its own module (tty_link, udp_link, uart_link),
imported only when a spec names it: a board's heap holds one.
"""



class LinkError(OSError):
    """A link could not be opened or failed; the message is one line naming it."""


class Link:
    """The interface (see the module docstring); subclasses fill it in."""

    datagram = False
    baud = 0
    name = ""

    def poll(self, timeout_ms):
        raise NotImplementedError

    def readinto(self, buf):
        raise NotImplementedError

    def write(self, data):
        raise NotImplementedError

    def close(self):
        pass


def why(e):
    a = getattr(e, "args", ())  # type: tuple
    if len(a) >= 2:
        return str(a[1])
    if a and isinstance(a[0], int):
        return "errno %d" % a[0]
    return str(e) or e.__class__.__name__


def _int(text, what, spec):
    try:
        v = int(text)
    except ValueError:
        raise LinkError("link %s: %s %r is not a number" % (spec, what, text))
    if not 0 <= v <= 65535 and what.endswith("port"):
        raise LinkError("link %s: %s %d outside 0..65535" % (spec, what, v))
    return v


def open_link(spec):
    """Open the link a spec names (module docstring); ``LinkError`` on any failure.

        >>> open_link("tty:/dev/pts/5@115200").baud
        115200
    """
    kind, _, rest = spec.partition(":")
    if kind == "tty" and rest:
        path, _, baud = rest.partition("@")
        from trilink_board.tty_link import TtyLink
        return TtyLink(path, _int(baud, "baud", spec) if baud else 0)
    if kind == "udp" and rest:
        parts = rest.split(":")
        if len(parts) == 3:
            parts.insert(0, "0.0.0.0")
        if len(parts) != 4:
            raise LinkError("link %s: want udp:[BIND_HOST:]BIND_PORT:PEER_HOST:PEER_PORT" % spec)
        from trilink_board.udp_link import UdpLink
        return UdpLink(parts[0], _int(parts[1], "bind port", spec), parts[2],
                       _int(parts[3], "peer port", spec))
    if kind == "uart" and rest:
        uid, _, baud = rest.partition("@")
        from trilink_board.uart_link import UartLink
        return UartLink(_int(uid, "UART id", spec), _int(baud, "baud", spec) if baud else 115200)
    raise LinkError("link %s: want tty:PATH[@BAUD], udp:[BIND_HOST:]BIND_PORT:PEER_HOST:PEER_PORT "
                    "or uart:ID[@BAUD]" % spec)
