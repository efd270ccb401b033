# uart_link.py: machine.UART as the board's link (RP2040, ESP32)
"""``UartLink(uart_id, baud)``, the ``link.Link`` interface over a microcontroller UART.
On a Pico, UART0 is GP0 (TX) and GP1 (RX) by default.

    >>> link = UartLink(0, 115200)
"""
import time

from trilink_board.link import Link, LinkError, why


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
            raise LinkError("%s: cannot open (%s)" % (self.name, why(e)))

    def poll(self, timeout_ms):
        t = time
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
