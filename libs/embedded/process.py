"""Child server processes that cannot outlive their parent."""

from __future__ import annotations

import ctypes
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def stop_with_parent(sig: signal.Signals) -> Callable[[], None] | None:
    """A ``preexec_fn`` that has Linux send ``sig`` to the child when this process dies.

    Linux delivers it even when we are killed with SIGKILL, so a crashed atende never leaves a
    server behind. The signal is tied to the spawning thread, so only spawns from the main
    thread get it (None elsewhere, and off Linux); the others rely on ``stop()``.
    """
    if sys.platform != "linux" or threading.current_thread() is not threading.main_thread():
        return None

    def set_death_signal() -> None:  # pragma: no cover - runs in the forked child
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, sig)

    return set_death_signal


def spawn_bound_to_parent(argv: Sequence[str], log_path: Path) -> subprocess.Popen[bytes]:
    """Start ``argv`` as a child that gets SIGTERM when this process dies.

    Call from the main thread: Linux ties the death signal to the spawning thread.
    """
    log = log_path.open("ab")
    try:
        return subprocess.Popen(  # noqa: S603 - argv is built by us, never from input
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own session: a Ctrl-C or a signal to our process group must not stop the
            # server before we have drained our work; we stop it ourselves, last.
            start_new_session=True,
            preexec_fn=stop_with_parent(signal.SIGTERM),
        )
    finally:
        log.close()


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free right now on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
