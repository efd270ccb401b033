# recorder.py: every frame in and out of the relay, in a rotating pcapng capture
"""Capture every frame the relay receives and sends, with its link, direction
and time, in pcapng files that tshark and Wireshark open and dissect.

Format (docs/RELAY.md "Capture format"):

* pcapng, one Interface Description Block per link: ``if_name`` is the link's
  name, link type Ethernet, timestamps in nanoseconds (``if_tsresol`` 9).
* One Enhanced Packet Block per frame; its ``epb_flags`` give the direction
  (inbound = received by the relay, outbound = sent by it).
* Each frame is wrapped in Ethernet/IPv4/UDP so Wireshark dissects it and
  filters work: the relay is 10.0.0.1 port 47300; link number ``i`` (its
  interface id, in order of first use) is 10.0.1.(i+1) port 47301+i
  (ports Wireshark assigns to nothing; ``tools/trilink.lua`` dissects them).
  Received frames go from the link's address to the relay's, sent frames
  the other way. The UDP payload is the raw trilink frame (PROTOCOL.md
  section 1; no COBS).
* Packet times are wall-clock (``time.time_ns``); the section header's
  comment holds ``monotonic_offset_ns=N`` so that ``t_ns = wall - N`` is
  the relay's ``time.monotonic_ns()`` timebase (``iter_capture`` does it).

Rotation: when a file would pass ``rotate_bytes`` it is closed and renamed
``path.1`` (older ones shift to ``.2``, ...); at most ``max_files`` files
are kept, the oldest removed. Writing happens in a background thread with
buffered writes, so ``record()`` (called from the event loop) only appends
to a queue; ``close()`` flushes everything. Frames the relay refused go to
``path.refused`` instead (``record_refused``: two files of at most 4 MiB),
so that a sender without a key cannot rotate accepted history away.

    >>> rec = Recorder("/tmp/relay.pcapng", rotate_bytes=1 << 20, max_files=3)
    >>> rec.record("jp", "rx", frame, time.monotonic_ns())   # also a links.Tap
    >>> rec.close()
    >>> [(r.link, r.direction, len(r.data)) for r in iter_capture("/tmp/relay.pcapng")]
"""
from __future__ import annotations

import collections
import logging
import os
import re
import stat
import struct
import threading
import time
from dataclasses import dataclass
from typing import BinaryIO, Deque, Dict, Iterator, List, Optional, Sequence, Tuple

__all__ = ["Recorder", "CaptureRecord", "iter_capture", "capture_files", "CaptureError",
           "RELAY_IP", "RELAY_PORT", "LINK_PORT_BASE"]

RELAY_IP = (10, 0, 0, 1)
RELAY_PORT = 47300
LINK_PORT_BASE = 47301
# Ethernet: dst 02:00:00:00:00:01, src 02:00:00:00:00:00 (locally administered), type IPv4.
_ETH_HDR = bytes.fromhex("020000000001" "020000000000" "0800")
_SHB, _IDB, _EPB = 0x0A0D0D0A, 0x00000001, 0x00000006
_BOM = 0x1A2B3C4D
_LINKTYPE_ETHERNET = 1
_FLAG_IN, _FLAG_OUT = 1, 2
_QUEUE_MAX = 200_000            # records waiting for the writer; beyond: dropped and counted
_FLUSH_BYTES = 64 * 1024
_FLUSH_S = 0.25
REFUSED_BYTES = 4 << 20         # each of the two files of the refused-frames capture
REFUSED_SUFFIX = ".refused"

log = logging.getLogger("trilink_edge.recorder")


class CaptureError(ValueError):
    """A file is not a capture this module wrote (or is truncated mid-block)."""


@dataclass(frozen=True)
class CaptureRecord:
    """One captured frame."""

    link: str
    direction: str       # "rx" (received by the relay) or "tx" (sent by it)
    t_ns: int            # relay timebase: time.monotonic_ns()
    wall_ns: int         # the packet's pcap timestamp
    data: bytes          # the raw trilink frame


def _opt(code: int, value: bytes) -> bytes:
    pad = (-len(value)) % 4
    return struct.pack("<HH", code, len(value)) + value + b"\x00" * pad


def _block(btype: int, body: bytes) -> bytes:
    n = 12 + len(body)
    return struct.pack("<II", btype, n) + body + struct.pack("<I", n)


def _ip_checksum(h: bytes) -> int:
    s = sum(struct.unpack("!10H", h))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def _encapsulate(idx: int, direction: str, frame: bytes) -> bytes:
    link_ip = bytes((10, 0, 1, (idx + 1) & 0xFF))
    link_port = LINK_PORT_BASE + idx
    if direction == "rx":
        sip, dip, sport, dport = link_ip, bytes(RELAY_IP), link_port, RELAY_PORT
    else:
        sip, dip, sport, dport = bytes(RELAY_IP), link_ip, RELAY_PORT, link_port
    udp = struct.pack("!HHHH", sport, dport, 8 + len(frame), 0)   # checksum 0: none (IPv4 allows it)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp) + len(frame), 0, 0x4000, 64, 17, 0, sip, dip)
    ip = ip[:10] + struct.pack("!H", _ip_checksum(ip)) + ip[12:]
    return _ETH_HDR + ip + udp + frame


class Recorder:
    """Rotating pcapng writer; ``record`` is a ``links.Tap``."""

    def __init__(self, path: str, rotate_bytes: int = 64 << 20, max_files: int = 10,
                 links: Sequence[str] = (), refused_bytes: int = REFUSED_BYTES) -> None:
        if rotate_bytes < 4096:
            raise ValueError("rotate_bytes must be at least 4096")
        if max_files < 1:
            raise ValueError("max_files must be at least 1")
        self.path = path
        self.rotate_bytes = rotate_bytes
        self.max_files = max_files
        self.offset_ns = time.time_ns() - time.monotonic_ns()
        # Interface ids are assigned by the writer thread only, in order of
        # first use (``links`` first); the loop side passes names.
        self._ids: Dict[str, int] = {}
        self._names: List[str] = []
        for name in links:
            if name not in self._ids:
                self._ids[name] = len(self._names)
                self._names.append(name)
        self._q: Deque[Tuple[str, str, bytes, int]] = collections.deque()
        self._gen = 0
        self._wake = threading.Event()
        self._stop = False
        self.recorded = 0            # records written to files
        self.dropped = 0             # records lost: writer too far behind, or a write error
        self.rotations = 0
        self.counts: Dict[Tuple[str, str], int] = {}   # (link, direction) -> records written
        self.error: Optional[str] = None
        d = os.path.dirname(os.path.abspath(path))
        os.makedirs(d, exist_ok=True)
        self._f: Optional[BinaryIO] = None
        self._size = 0
        self._packets_in_file = 0
        self._in_file: Dict[int, bool] = {}
        self._open_file()
        self._thread = threading.Thread(target=self._run, name="trilink-recorder", daemon=True)
        self._thread.start()
        # Frames the relay refused (bad tag, replays, ...) go to their own small capture, so
        # that whoever can send them cannot push accepted history out of the rotation.
        # (made at the first refused frame: most relays never write it)
        self.refused: Optional["Recorder"] = None
        self._refused_bytes = refused_bytes
        self._links = tuple(links)

    # -- loop side ------------------------------------------------------------
    def record(self, link: str, direction: str, frame: bytes, t_ns: int) -> None:
        """Queue one frame (direction "rx" or "tx", ``t_ns`` monotonic).
        Cheap and non-blocking: safe from the event loop. Once the capture
        has stopped on an error, frames are only counted (``dropped``)."""
        if len(self._q) >= _QUEUE_MAX or self._stop or self.error is not None:
            self.dropped += 1
            return
        self._q.append((link, direction, bytes(frame), t_ns))
        if len(self._q) >= 256:
            self._wake.set()

    __call__ = record

    def record_refused(self, link: str, direction: str, frame: bytes, t_ns: int) -> None:
        """Queue a frame the relay refused: into ``path.refused`` (two files of
        at most ``refused_bytes``), never into the main capture."""
        if self.refused is None and self._refused_bytes and not self._stop:
            try:
                self.refused = Recorder(self.path + REFUSED_SUFFIX, max(4096, self._refused_bytes), 2,
                                        self._links, refused_bytes=0)
            except OSError as e:
                self._refused_bytes = 0
                log.error("capture of refused frames not started: %s: %s", self.path + REFUSED_SUFFIX,
                          e.strerror or e)
                return
        if self.refused is not None:
            self.refused.record(link, direction, frame, t_ns)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every queued record is on disk (written and flushed)."""
        end = time.monotonic() + timeout
        target = self._gen + 2      # a whole writer cycle that began after this call
        self._wake.set()
        while self._gen < target and not self._stop and time.monotonic() < end:
            self._wake.set()
            time.sleep(0.002)
        return not self._q

    def close(self, timeout: Optional[float] = None) -> None:
        """Write everything queued, close the file. Idempotent; never raises
        for a disk error (``error`` says what failed). With ``timeout`` the
        writer thread gets that long (a stuck disk cannot hold a stop: the
        records it did not write are counted ``dropped``)."""
        if self._stop:
            return
        end = None if timeout is None else time.monotonic() + timeout
        self._stop = True
        self._wake.set()
        if self.refused is not None:           # ours is flushing meanwhile: one deadline for both
            self.refused.close(timeout)
        self._thread.join(None if end is None else max(0.0, end - time.monotonic()))
        if self._thread.is_alive():
            self._fail(f"{self.path}: writer still busy after {timeout} s at close")
            return   # the daemon thread owns the file until it returns
        if self._f is not None:
            try:
                self._f.close()
            except OSError as e:   # ENOSPC when the last buffer is flushed
                self._fail(f"{self.path}: {e.strerror or e}")
            self._f = None

    def _fail(self, what: str) -> None:
        """Stop the capture on an error: logged once, loudly; the relay goes on."""
        if self.error is None:
            self.error = what
            log.error("capture stopped: %s (frames are no longer recorded; counted as dropped)", what)
        self.dropped += len(self._q)
        self._q.clear()

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writer thread --------------------------------------------------------
    def _header(self) -> bytes:
        comment = f"trilink-edge capture; monotonic_offset_ns={self.offset_ns}".encode()
        shb = _block(_SHB, struct.pack("<IHHq", _BOM, 1, 0, -1) + _opt(1, comment) + _opt(0, b""))
        return shb

    def _idb(self, name: str) -> bytes:
        opts = _opt(2, name.encode()) + _opt(9, b"\x09") + _opt(0, b"")
        return _block(_IDB, struct.pack("<HHI", _LINKTYPE_ETHERNET, 0, 0) + opts)

    def _open_file(self) -> None:
        # 0600: a capture holds every nation's tracks.
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            st = os.fstat(fd)
            if stat.S_ISREG(st.st_mode) and st.st_mode & 0o077:
                os.fchmod(fd, 0o600)    # O_CREAT keeps the mode of a file that was there
        except OSError:
            os.close(fd)
            raise
        self._f = os.fdopen(fd, "wb", buffering=_FLUSH_BYTES)
        head = self._header()
        # Interfaces get ids in order of first use; a new file declares all
        # known ones again, in id order, so ids stay valid in every file.
        self._in_file = {}
        for idx, name in enumerate(self._names):
            head += self._idb(name)
            self._in_file[idx] = True
        self._f.write(head)
        self._size = len(head)
        self._packets_in_file = 0

    def _rotate(self) -> None:
        assert self._f is not None
        self._f.close()
        # path.(max-1) is the oldest kept; shift the rest up by one.
        oldest = f"{self.path}.{self.max_files - 1}"
        if self.max_files == 1:
            os.remove(self.path)
        else:
            if os.path.exists(oldest):
                os.remove(oldest)
            for i in range(self.max_files - 2, 0, -1):
                src = f"{self.path}.{i}"
                if os.path.exists(src):
                    os.replace(src, f"{self.path}.{i + 1}")
            os.replace(self.path, f"{self.path}.1")
        self.rotations += 1
        self._open_file()

    def _write_one(self, link: str, direction: str, frame: bytes, t_ns: int) -> None:
        assert self._f is not None
        idx = self._ids.get(link)
        if idx is None:
            idx = self._ids[link] = len(self._names)
            self._names.append(link)
        pkt = _encapsulate(idx, direction, frame)
        wall = t_ns + self.offset_ns
        pad = (-len(pkt)) % 4
        body = (struct.pack("<IIIII", idx, (wall >> 32) & 0xFFFFFFFF, wall & 0xFFFFFFFF, len(pkt), len(pkt))
                + pkt + b"\x00" * pad
                + _opt(2, struct.pack("<I", _FLAG_IN if direction == "rx" else _FLAG_OUT)) + _opt(0, b""))
        blk = _block(_EPB, body)
        need = b""
        if idx not in self._in_file:
            # A link first seen after the file began: ids are dense and in
            # order, so every lower id is already declared.
            for j in range(len(self._in_file), idx + 1):
                need += self._idb(self._names[j])
                self._in_file[j] = True
        if self._packets_in_file and self._size + len(need) + len(blk) > self.rotate_bytes:
            self._rotate()
            need = b""
        self._f.write(need + blk)
        self._size += len(need) + len(blk)
        self._packets_in_file += 1
        self.recorded += 1
        key = (link, direction)
        self.counts[key] = self.counts.get(key, 0) + 1

    def _drain(self) -> None:
        while self._q:
            link, direction, frame, t_ns = self._q.popleft()
            if self.error is not None:
                self.dropped += 1
                continue
            try:
                self._write_one(link, direction, frame, t_ns)
            except OSError as e:     # disk full, removed folder: keep the relay running
                self.dropped += 1
                self._fail(f"{self.path}: {e.strerror or e}")
            except Exception as e:   # noqa: BLE001 - a bug (e.g. a link name over 65,535 bytes): stop loudly
                self.dropped += 1
                self._fail(f"{self.path}: writer failed: {type(e).__name__}: {e}")

    def _run(self) -> None:
        while True:
            self._wake.wait(_FLUSH_S)
            self._wake.clear()
            stopping = self._stop
            self._drain()
            if self._f is not None and self.error is None:
                try:
                    self._f.flush()
                except OSError as e:
                    self._fail(f"{self.path}: {e.strerror or e}")
            self._gen += 1
            if stopping:
                self._drain()
                if self._f is not None:
                    try:
                        self._f.flush()
                    except OSError:
                        pass
                return


# ---------------------------------------------------------------- reading ----

_OFFSET_RE = re.compile(rb"monotonic_offset_ns=(-?\d+)")


def capture_files(path: str) -> List[str]:
    """``path`` and its rotated siblings (``path.N``), oldest first."""
    d = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    rotated = []
    for name in os.listdir(d):
        if name.startswith(base + ".") and name[len(base) + 1:].isdigit():
            rotated.append((int(name[len(base) + 1:]), os.path.join(d, name)))
    out = [p for _, p in sorted(rotated, reverse=True)]
    if os.path.exists(path):
        out.append(path)
    return out


def _options(buf: bytes) -> Iterator[Tuple[int, bytes]]:
    i = 0
    while i + 4 <= len(buf):
        code, ln = struct.unpack_from("<HH", buf, i)
        if code == 0:
            return
        yield code, buf[i + 4:i + 4 + ln]
        i += 4 + ln + ((-ln) % 4)


def iter_capture(path: str) -> Iterator[CaptureRecord]:
    """Yield every frame of one capture file written by ``Recorder``.

        >>> sum(1 for r in iter_capture("relay.pcapng") if r.direction == "rx")
    """
    with open(path, "rb") as f:
        data = f.read()
    pos = 0
    names: List[str] = []
    offset = 0
    while pos < len(data):
        if pos + 12 > len(data):
            raise CaptureError(f"{path}: truncated block at byte {pos}")
        btype, blen = struct.unpack_from("<II", data, pos)
        if blen < 12 or blen % 4 or pos + blen > len(data):
            raise CaptureError(f"{path}: bad block length {blen} at byte {pos}")
        body = data[pos + 8:pos + blen - 4]
        if btype == _SHB:
            if struct.unpack_from("<I", body)[0] != _BOM:
                raise CaptureError(f"{path}: not a little-endian pcapng section")
            names = []
            for code, val in _options(body[16:]):
                m = _OFFSET_RE.search(val) if code == 1 else None
                if m:
                    offset = int(m.group(1))
        elif btype == _IDB:
            name = f"if{len(names)}"
            for code, val in _options(body[8:]):
                if code == 2:
                    name = val.decode("utf-8", "replace")
            names.append(name)
        elif btype == _EPB:
            idx, hi, lo, cap, _orig = struct.unpack_from("<IIIII", body)
            pkt = body[20:20 + cap]
            flags = 0
            for code, val in _options(body[20 + cap + ((-cap) % 4):]):
                if code == 2 and len(val) == 4:
                    flags = struct.unpack("<I", val)[0]
            if idx >= len(names):
                raise CaptureError(f"{path}: packet on undeclared interface {idx}")
            wall = (hi << 32) | lo
            frame = pkt[14 + 20 + 8:]
            yield CaptureRecord(names[idx], "rx" if flags & 3 == _FLAG_IN else "tx", wall - offset, wall,
                                bytes(frame))
        elif pos == 0:
            raise CaptureError(f"{path}: not a pcapng file")
        pos += blen
