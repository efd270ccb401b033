"""The life cycle the loopback emulators share (:mod:`trilink.nullmodem`,
:mod:`trilink.udpproxy`): one daemon thread that runs the emulator's loop
until ``close()``, a wake pipe to interrupt its ``select``, a lock around
its state, the start time and the error that stopped the thread; and the
command-line loop of ``trilink nullmodem`` / ``trilink udpproxy``.

A subclass implements ``_open`` (its ptys or sockets, before the thread
starts), ``_release`` (after it stopped), ``_loop`` (runs while not
``_stop``, selects on ``_wake_r`` too and calls ``_drain_wake`` when it is
readable) and ``_busy`` (something in flight; read under the lock)::

    with SomeEmulator(...) as em:     # start(): _open, the pipe, the thread
        ...
        em.wait_idle(1.0)             # until not _busy()
"""
from __future__ import annotations

import os
import signal
import sys
import threading
import time
from typing import Callable, Mapping, Optional, TypeVar

__all__ = ["Emulator", "serve"]

_E = TypeVar("_E", bound="Emulator")


class Emulator:
    """Base of the emulators: start/close, the context manager, the wake
    pipe, ``wait_idle`` and the thread's ``error``."""

    #: the thread is named ``f"{name}-{thread_role}"``
    thread_role = "thread"

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._stop = False
        self._thread: Optional[threading.Thread] = None
        self._wake_r, self._wake_w = -1, -1
        self.t0_ns = 0
        self.error: Optional[BaseException] = None

    # -- what a subclass provides ---------------------------------------------

    def _open(self) -> None:
        """Acquire the emulator's resources; on failure release what was taken and raise."""
        raise NotImplementedError

    def _release(self) -> None:
        """Release them (the thread has stopped)."""
        raise NotImplementedError

    def _loop(self) -> None:
        """The thread's work, until ``self._stop``."""
        raise NotImplementedError

    def _busy(self) -> bool:
        """Anything still in flight (called under the lock)."""
        raise NotImplementedError

    # -- the life cycle -------------------------------------------------------

    def start(self: _E) -> _E:
        """Open and start the thread. Returns self."""
        if self._thread is not None:
            raise RuntimeError(f"{type(self).__name__} already started")
        self._open()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self.t0_ns = time.monotonic_ns()
        self._thread = threading.Thread(target=self._run, name=f"{self.name}-{self.thread_role}", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop the thread and release everything (a no-op when not started)."""
        if self._thread is None:
            return
        self._stop = True
        self._wake()
        self._thread.join(5.0)
        self._thread = None
        self._release()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def __enter__(self: _E) -> _E:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is in flight either way. True when idle, False
        on timeout (e.g. a receiver that never reads)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                busy = self._busy()
            if not busy:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.002)

    # -- for the loop ---------------------------------------------------------

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except OSError:   # full (a wake is pending anyway) or closed
            pass

    def _drain_wake(self) -> None:
        try:
            os.read(self._wake_r, 4096)
        except BlockingIOError:
            pass

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # kept for the owner; the thread must not die silently
            self.error = exc
            raise


def serve(prog: str, build: Callable[[], Mapping[str, _E]], banner: Callable[[Mapping[str, _E]], None],
          print_counters: Callable[[Mapping[str, _E]], None], stats_s: float, what: str) -> int:
    """The command line's main: ``build()`` the emulators, started (name ->
    emulator; the name prefixes a failure message, "" for none; a
    ValueError or OSError is printed and exits 2), print the ``banner``,
    then until Ctrl-C or SIGTERM print the counters every ``stats_s``
    seconds (when > 0) and stop with 1 when an emulator's thread failed
    (``what`` names its work in the message); print the counters once more
    and close every emulator at the end."""
    try:
        emulators = build()
    except (ValueError, OSError) as exc:  # ImpairmentError is a ValueError
        print(f"trilink {prog}: {exc}", file=sys.stderr)
        return 2
    banner(emulators)
    stop = threading.Event()
    # Ctrl-C and SIGTERM stop it alike. SIGINT is set explicitly: a process
    # started in the background by a non-interactive shell inherits SIGINT
    # ignored, and Python then raises no KeyboardInterrupt for it.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        print("ready; Ctrl-C to stop", flush=True)
        while not stop.wait(stats_s if stats_s > 0 else 0.5):
            if stats_s > 0:
                print_counters(emulators)
            for n, em in emulators.items():
                if em.error is not None:
                    label = f"{n}: " if n else ""
                    print(f"trilink {prog}: {label}{what} failed: {em.error!r}", file=sys.stderr)
                    return 1
    except KeyboardInterrupt:
        pass
    finally:
        print_counters(emulators)
        for em in emulators.values():
            em.close()
    return 0
