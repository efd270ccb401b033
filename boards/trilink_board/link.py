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
"""
import select

try:
    import socket
except ImportError:  # a port without networking (a plain Pico)
    socket = None

_VMIN = 6    # c_cc indices on Linux (MicroPython's termios does not name them)
_VTIME = 5
_POLLIN = select.POLLIN


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


class TtyLink(Link):
    """A tty (a real serial port or a pty) at ``path``, raw 8N1, ``baud`` bits/s
    (0: leave the line speed alone, e.g. a bare pty; ``baud`` is then 0 and
    the time sync makes no serialisation correction).

    Reads return what is there: termios VMIN = VTIME = 0 makes read(2)
    return at once, which MicroPython's blocking ``readinto`` needs to stop
    at the bytes available instead of waiting to fill the buffer.
    """

    def __init__(self, path, baud=0):
        import termios
        self.name = "tty:" + path
        self.path = path
        self.baud = baud
        try:
            self._f = _open_tty(path)
        except OSError as e:
            raise LinkError("%s: cannot open (%s)" % (self.name, _why(e)))
        fd = self._f.fileno()
        try:
            if hasattr(termios, "setraw"):  # MicroPython
                termios.setraw(fd)
            else:  # CPython keeps it in tty
                import tty
                tty.setraw(fd)
            attr = termios.tcgetattr(fd)
            cc = attr[6]
            cc[_VMIN] = 0
            cc[_VTIME] = 0
            speed = getattr(termios, "B%d" % baud, None) if baud else None
            if baud and speed is None:
                raise LinkError("%s: baud %d is not a termios speed" % (self.name, baud))
            if speed is not None:
                attr[4] = speed
                attr[5] = speed
            termios.tcsetattr(fd, termios.TCSANOW, attr)
        except LinkError:
            self._f.close()
            raise
        except (OSError, getattr(termios, "error", OSError)) as e:
            self._f.close()
            raise LinkError("%s: not a terminal (%s)" % (self.name, _why(e)))
        self._poll = select.poll()
        self._poll.register(self._f, _POLLIN)

    def poll(self, timeout_ms):
        return bool(self._poll.poll(timeout_ms))

    def readinto(self, buf):
        try:
            n = self._f.readinto(buf)
        except OSError as e:  # EIO: the other end of a pty went away
            raise LinkError("%s: read failed (%s)" % (self.name, _why(e)))
        return n or 0

    def write(self, data):
        mv = memoryview(data)
        done = 0
        while done < len(mv):
            try:
                n = self._f.write(mv[done:])
            except OSError as e:
                raise LinkError("%s: write failed (%s)" % (self.name, _why(e)))
            done += n or 0

    def close(self):
        try:
            self._f.close()
        except OSError:
            pass


class UdpLink(Link):
    """A UDP socket bound to ``bind_host:bind_port`` that sends to the relay at ``peer``."""

    datagram = True

    def __init__(self, bind_host, bind_port, peer_host, peer_port):
        self.name = "udp:%s:%d:%s:%d" % (bind_host, bind_port, peer_host, peer_port)
        if socket is None:
            raise LinkError(self.name + ": this port has no sockets")
        try:
            self._peer = socket.getaddrinfo(peer_host, peer_port)[0][-1]
            local = socket.getaddrinfo(bind_host, bind_port)[0][-1]
            self._s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self._s.bind(local)
            self._s.setblocking(False)
        except OSError as e:
            raise LinkError("%s: cannot open (%s)" % (self.name, _why(e)))
        # CPython has recv_into (no allocation); MicroPython's readinto would
        # run two queued datagrams together, so there one recv per datagram.
        self._recv_into = getattr(self._s, "recv_into", None)
        self._poll = select.poll()
        self._poll.register(self._s, _POLLIN)

    def poll(self, timeout_ms):
        return bool(self._poll.poll(timeout_ms))

    def readinto(self, buf):
        try:
            if self._recv_into is not None:
                return self._recv_into(buf)
            data = self._s.recv(len(buf))
        except OSError:  # EAGAIN, or an ICMP error from an earlier send
            return 0
        n = len(data)
        buf[:n] = data
        return n

    def write(self, data):
        try:
            self._s.sendto(data, self._peer)
        except OSError:
            pass  # UDP is lossy by contract: the relay not listening is a lost datagram

    def close(self):
        self._s.close()


class UartLink(Link):
    """``machine.UART(uart_id, baud)`` on a microcontroller (8N1, no flow control)."""

    def __init__(self, uart_id, baud=115200):
        self.name = "uart:%d" % uart_id
        self.baud = baud
        try:
            import machine
            self._u = machine.UART(uart_id, baudrate=baud, bits=8, parity=None, stop=1)
        except (ImportError, AttributeError):
            raise LinkError(self.name + ": this port has no machine.UART")
        except (ValueError, OSError) as e:
            raise LinkError("%s: cannot open (%s)" % (self.name, _why(e)))
        import time
        self._time = time

    def poll(self, timeout_ms):
        t = self._time
        start = t.ticks_ms()
        while not self._u.any():
            if t.ticks_diff(t.ticks_ms(), start) >= timeout_ms:
                return False
            t.sleep_ms(1)
        return True

    def readinto(self, buf):
        if not self._u.any():
            return 0
        return self._u.readinto(buf) or 0

    def write(self, data):
        self._u.write(data)


def _open_tty(path):
    # CPython: O_NOCTTY so a serial port never becomes our controlling
    # terminal. MicroPython's os has no open(); its open() is enough there.
    try:
        import os
        flags = os.O_RDWR | os.O_NOCTTY
    except (ImportError, AttributeError):
        return open(path, "r+b", buffering=0)
    import io
    return io.FileIO(os.open(path, flags), "r+b")


def _why(e):
    a = getattr(e, "args", ())
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
        return TtyLink(path, _int(baud, "baud", spec) if baud else 0)
    if kind == "udp" and rest:
        parts = rest.split(":")
        if len(parts) == 3:
            parts.insert(0, "0.0.0.0")
        if len(parts) != 4:
            raise LinkError("link %s: want udp:[BIND_HOST:]BIND_PORT:PEER_HOST:PEER_PORT" % spec)
        return UdpLink(parts[0], _int(parts[1], "bind port", spec), parts[2],
                       _int(parts[3], "peer port", spec))
    if kind == "uart" and rest:
        uid, _, baud = rest.partition("@")
        return UartLink(_int(uid, "UART id", spec), _int(baud, "baud", spec) if baud else 115200)
    raise LinkError("link %s: want tty:PATH[@BAUD], udp:[BIND_HOST:]BIND_PORT:PEER_HOST:PEER_PORT "
                    "or uart:ID[@BAUD]" % spec)
