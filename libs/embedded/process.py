"""Child server processes that cannot outlive their parent."""

from __future__ import annotations

import ctypes
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    # Linux delivers SIGTERM to the child when the parent thread exits, even on SIGKILL, so a
    # crashed atende never leaves a server behind.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


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
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
    finally:
        log.close()


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free right now on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
