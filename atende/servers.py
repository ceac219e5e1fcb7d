"""Where Redis and Postgres are: configured URLs, or embedded servers started for development."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from types import FrameType

import structlog

from libs.embedded.postgres import EmbeddedPostgres
from libs.embedded.valkey import EmbeddedValkey
from libs.settings import Settings

_log = structlog.get_logger("atende")


@dataclass(frozen=True, slots=True)
class ServerUrls:
    """The Redis URL and Postgres DSN a process connects to."""

    redis_url: str
    database_url: str | None


def _exit_on_sigterm(signum: int, _frame: FrameType | None) -> None:
    # Until the event loop takes over the signal, unwind normally so embedded servers stop.
    raise SystemExit(128 + signum)


@contextmanager
def servers(settings: Settings, *, postgres: bool = True) -> Iterator[ServerUrls]:
    """Yield the configured URLs, starting embedded servers for those that are not set.

    Runs in the main thread, before the event loop: embedded servers are bound to the thread
    that starts them, and they stop when this context exits. Without ``postgres`` (the
    ingress needs only Redis) no database is started, required or used, even when
    ``DATABASE_URL`` is set (a Secret shared by every Deployment).
    """
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        with ExitStack() as stack:
            redis_url = settings.redis_url
            if redis_url is None:
                valkey = stack.enter_context(EmbeddedValkey(settings.data_dir / "valkey"))
                redis_url = valkey.url
                _log.info("embedded valkey started", url=redis_url)
            database_url = settings.database_url if postgres else None
            if database_url is None and postgres:
                server = stack.enter_context(EmbeddedPostgres(settings.data_dir / "postgres"))
                database_url = server.dsn
                _log.info("embedded postgres started", dsn=database_url)
            yield ServerUrls(redis_url, database_url)
    finally:
        signal.signal(signal.SIGTERM, previous)
