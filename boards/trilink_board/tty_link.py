# tty_link.py: a tty or pty as the board's link, raw 8N1 through termios (unix port, CPython)
"""``TtyLink(path, baud)``, the ``link.Link`` interface over a serial device.

    >>> link = TtyLink("/dev/ttyAMA0", 115200)
    >>> link.write(wire.serial_encode(frame))
"""
import select

from trilink_board.link import Link, LinkError, why

_VMIN = 6    # c_cc indices on Linux (MicroPython's termios does not name them)
_VTIME = 5


class TtyLink(Link):
    """A tty (a real serial port or a pty) at ``path``, raw 8N1, ``baud`` bits/s
    (0: leave the line speed alone, e.g. a bare pty; ``baud`` is then 0 and
    the time sync makes no serialisation correction).

    Reads return what is there: termios VMIN = VTIME = 0 makes read(2)
    return at once, which MicroPython's blocking ``readinto`` needs to stop
    at the bytes available instead of waiting to fill the buffer.
    """

    def __init__(self, path, baud=0):
        import termios  # type: ignore[import-not-found]  # unix port and CPython; rp2 has none
        self.name = "tty:" + path
        self.path = path
        self.baud = baud
        try:
            self._f = _open_tty(path)
        except OSError as e:
            raise LinkError("%s: cannot open (%s)" % (self.name, why(e)))
        fd = self._f.fileno()
        try:
            if hasattr(termios, "setraw"):  # MicroPython
                termios.setraw(fd)
            else:  # CPython keeps it in tty
                import tty  # type: ignore[import-not-found]  # CPython
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
            raise LinkError("%s: not a terminal (%s)" % (self.name, why(e)))
        self._poll = select.poll()
        self._poll.register(self._f, select.POLLIN)

    def poll(self, timeout_ms):
        return bool(self._poll.poll(timeout_ms))

    def readinto(self, buf):
        try:
            n = self._f.readinto(buf)
        except OSError as e:  # EIO: the other end of a pty went away
            raise LinkError("%s: read failed (%s)" % (self.name, why(e)))
        return n or 0

    def write(self, data):
        mv = memoryview(data)
        done = 0
        while done < len(mv):
            try:
                n = self._f.write(mv[done:])
            except OSError as e:
                raise LinkError("%s: write failed (%s)" % (self.name, why(e)))
            done += n or 0

    def close(self):
        try:
            self._f.close()
        except OSError:
            pass


def _open_tty(path):
    # CPython: O_NOCTTY so a serial port never becomes our controlling
    # terminal. MicroPython's os has no open(); its open() is enough there.
    try:
        import os
        flags = os.O_RDWR | os.O_NOCTTY  # type: ignore[attr-defined]  # CPython's os
    except (ImportError, AttributeError):
        return open(path, "r+b", buffering=0)
    import io
    return io.FileIO(os.open(path, flags), "r+b")
