"""Postgres connections and pools (asyncpg): opened and closed as async contexts, pgvector-aware."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypeAlias
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from pgvector.asyncpg import register_vector

from libs.errors import AtendeError

# A connection as a caller may hold it: alone, or borrowed from a pool.
PgConnection: TypeAlias = asyncpg.Connection | PoolConnectionProxy

_UNREACHABLE = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)


class PostgresUnavailable(AtendeError):
    """Postgres could not be reached, refused the connection, or did not answer in time."""


@asynccontextmanager
async def open_pool(
    dsn: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    connect_timeout_s: float = 10.0,
    command_timeout_s: float | None = 60.0,
    close_timeout_s: float = 10.0,
) -> AsyncIterator[asyncpg.Pool]:
    """Yield a pool whose connections know the ``vector`` type; close it on exit.

    Connections opened before the pgvector extension existed lack its codec: open the pool
    after migrating (``apply_migrations`` given a pool replaces its connections itself).
    """
    try:
        pool = await asyncpg.create_pool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            init=register_vector_type,
            timeout=connect_timeout_s,
            command_timeout=command_timeout_s,
        )
    except TimeoutError as exc:
        raise _unavailable(dsn, f"no answer within {connect_timeout_s}s") from exc
    except _UNREACHABLE as exc:
        raise _unavailable(dsn, str(exc)) from exc
    try:
        yield pool
    finally:
        await _close_pool(pool, close_timeout_s)


@asynccontextmanager
async def open_connection(
    dsn: str,
    *,
    connect_timeout_s: float = 10.0,
    command_timeout_s: float | None = 60.0,
    close_timeout_s: float = 10.0,
) -> AsyncIterator[asyncpg.Connection]:
    """Yield one connection (for tools such as migrations); close it on exit."""
    try:
        conn = await asyncpg.connect(
            dsn, timeout=connect_timeout_s, command_timeout=command_timeout_s
        )
    except TimeoutError as exc:
        raise _unavailable(dsn, f"no answer within {connect_timeout_s}s") from exc
    except _UNREACHABLE as exc:
        raise _unavailable(dsn, str(exc)) from exc
    try:
        await register_vector_type(conn)
        yield conn
    finally:
        await conn.close(timeout=close_timeout_s)


async def register_vector_type(conn: asyncpg.Connection) -> None:
    """Teach ``conn`` the pgvector types, when the extension is installed in its database."""
    schema = await conn.fetchval(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
        "WHERE e.extname = 'vector'"
    )
    if schema is not None:
        await register_vector(conn, schema=schema)


async def ping(pool: asyncpg.Pool, *, timeout_s: float = 2.0) -> float:
    """Run a trivial query; return its round trip in seconds or raise PostgresUnavailable."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout_s), pool.acquire() as conn:
            await conn.fetchval("SELECT 1")
    except TimeoutError as exc:
        raise PostgresUnavailable(f"Postgres did not answer within {timeout_s}s") from exc
    except _UNREACHABLE as exc:
        raise PostgresUnavailable(f"Postgres did not answer: {exc}") from exc
    return time.perf_counter() - started


def describe_dsn(dsn: str) -> str:
    """Return ``dsn`` without its password, fit for logs and error messages."""
    parts = urlsplit(dsn)
    netloc = parts.hostname or ""
    if parts.port is not None:
        netloc = f"{netloc}:{parts.port}"
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    query = [(key, value) for key, value in parse_qsl(parts.query) if key != "password"]
    return urlunsplit(parts._replace(netloc=netloc, query=urlencode(query, safe="/")))


def dsn_with_database(dsn: str, database: str) -> str:
    """Return ``dsn`` pointing at ``database`` on the same server, as the same user."""
    parts = urlsplit(dsn)
    query = [
        (key, value) for key, value in parse_qsl(parts.query) if key not in {"database", "dbname"}
    ]
    return urlunsplit(
        parts._replace(path="/" + quote(database, safe=""), query=urlencode(query, safe="/"))
    )


def _unavailable(dsn: str, reason: str) -> PostgresUnavailable:
    return PostgresUnavailable(
        f"cannot connect to Postgres at {describe_dsn(dsn)}: {reason}; "
        "check DATABASE_URL and that the server is running"
    )


async def _close_pool(pool: asyncpg.Pool, timeout_s: float) -> None:
    # close() waits for every borrowed connection to come back; a leaked one must not hang
    # shutdown, so past the deadline the remaining connections are cut.
    try:
        async with asyncio.timeout(timeout_s):
            await pool.close()
    except TimeoutError:
        pool.terminate()
