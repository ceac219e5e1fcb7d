"""Apply pending migrations once each, in order, under an advisory lock; report their state."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from importlib.resources.abc import Traversable
from typing import Literal

import asyncpg

from libs.errors import MigrationError
from libs.migrations.source import Migration, load_migrations
from libs.postgres import PgConnection

# One key for every runner on a database, so two `atende migrate` never interleave.
_LOCK_KEY = int.from_bytes(
    hashlib.sha256(b"atende:schema_migrations").digest()[:8], "big", signed=True
)
_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY CHECK (version > 0),
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""

MigrationState = Literal["applied", "pending", "changed", "missing"]


@dataclass(frozen=True)
class MigrationStatus:
    """One migration as the files and the database see it.

    ``changed``: the file differs from what was applied; ``missing``: applied, but no file.
    """

    version: int
    name: str
    state: MigrationState
    applied_at: datetime | None


@dataclass(frozen=True)
class _Applied:
    version: int
    name: str
    checksum: str
    applied_at: datetime


async def apply_migrations(
    db: PgConnection | asyncpg.Pool,
    *,
    source: Traversable | None = None,
    lock_timeout_s: float = 60.0,
) -> list[int]:
    """Apply the pending migrations of ``source`` (default: atende's); return their versions.

    Each runs in a transaction of its own and is recorded in ``schema_migrations``. Concurrent
    runners wait for each other (up to ``lock_timeout_s``, also the limit on any lock a
    migration waits for). Raise MigrationError, naming the file, when an applied migration was
    changed, a file is missing or misnumbered, or a migration fails.
    """
    migrations = load_migrations(source)
    async with _borrow(db, lock_timeout_s) as conn, _runner_lock(conn, lock_timeout_s):
        await conn.execute(_CREATE_TABLE)
        applied = await _read_applied(conn)
        _check_applied(migrations, applied)
        done: list[int] = []
        for migration in migrations:
            if migration.version not in applied:
                await _apply(conn, migration, lock_timeout_s)
                done.append(migration.version)
    if done and isinstance(db, asyncpg.Pool):
        # Connections opened before a migration created a type (e.g. vector) lack its codec.
        await db.expire_connections()
    return done


async def migration_status(
    db: PgConnection | asyncpg.Pool,
    *,
    source: Traversable | None = None,
    timeout_s: float = 10.0,
) -> list[MigrationStatus]:
    """List every migration, of the files or the database, with its state; change nothing."""
    migrations = load_migrations(source)
    async with _borrow(db, timeout_s) as conn:
        exists = await conn.fetchval(
            "SELECT to_regclass('schema_migrations') IS NOT NULL", timeout=timeout_s
        )
        applied = await _read_applied(conn) if exists else {}
    statuses: list[MigrationStatus] = []
    for migration in migrations:
        row = applied.pop(migration.version, None)
        state: MigrationState = "pending"
        if row is not None:
            state = "applied" if _same(migration, row) else "changed"
        at = row.applied_at if row is not None else None
        statuses.append(MigrationStatus(migration.version, migration.name, state, at))
    statuses += [
        MigrationStatus(row.version, row.name, "missing", row.applied_at)
        for row in applied.values()
    ]
    return sorted(statuses, key=lambda status: status.version)


@asynccontextmanager
async def _borrow(db: PgConnection | asyncpg.Pool, timeout_s: float) -> AsyncIterator[PgConnection]:
    if isinstance(db, asyncpg.Pool):
        async with db.acquire(timeout=timeout_s) as conn:
            yield conn
    else:
        yield db


@asynccontextmanager
async def _runner_lock(conn: PgConnection, timeout_s: float) -> AsyncIterator[None]:
    try:
        # A session lock, taken in a transaction only so that lock_timeout applies to it.
        async with conn.transaction():
            await _set_lock_timeout(conn, timeout_s)
            await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    except asyncpg.LockNotAvailableError as exc:
        raise MigrationError(
            f"another migration runner held the lock for over {timeout_s}s; let it finish, "
            "or find its session in pg_locks (locktype 'advisory')"
        ) from exc
    try:
        yield
    finally:
        if not conn.is_closed():
            await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)


async def _set_lock_timeout(conn: PgConnection, timeout_s: float) -> None:
    # Local to the transaction: a caller's own connection keeps its settings.
    await conn.execute("SELECT set_config('lock_timeout', $1, true)", f"{int(timeout_s * 1000)}ms")


async def _read_applied(conn: PgConnection) -> dict[int, _Applied]:
    rows = await conn.fetch(
        "SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version"
    )
    return {row["version"]: _Applied(**dict(row)) for row in rows}


def _check_applied(migrations: list[Migration], applied: dict[int, _Applied]) -> None:
    files = {migration.version: migration for migration in migrations}
    for row in applied.values():
        migration = files.get(row.version)
        if migration is None:
            raise MigrationError(
                f"the database has migration {row.version:04d}_{row.name}.sql applied but no "
                "such file exists; this code is older than the database"
            )
        if not _same(migration, row):
            raise MigrationError(
                f"migration {migration.filename} differs from the one applied as "
                f"{row.version:04d}_{row.name}.sql (checksum {row.checksum[:12]}); restore it "
                "and put the change in a new migration"
            )
    newest = max(applied, default=0)
    for migration in migrations:
        if migration.version < newest and migration.version not in applied:
            raise MigrationError(
                f"migration {migration.filename} is pending but {newest:04d} is already "
                f"applied; renumber it after {newest:04d}"
            )


def _same(migration: Migration, row: _Applied) -> bool:
    return (migration.name, migration.checksum) == (row.name, row.checksum)


async def _apply(conn: PgConnection, migration: Migration, lock_timeout_s: float) -> None:
    try:
        async with conn.transaction():
            await _set_lock_timeout(conn, lock_timeout_s)
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                migration.version,
                migration.name,
                migration.checksum,
            )
    except asyncpg.PostgresError as exc:
        raise MigrationError(
            f"migration {migration.filename} failed{_where(migration.sql, exc)} and was rolled "
            f"back: {exc}"
        ) from exc


def _where(sql: str, exc: asyncpg.PostgresError) -> str:
    """`` at line N`` when Postgres reported where in the file the error is."""
    position = getattr(exc, "position", None)
    if not position or not str(position).isdigit():
        return ""
    return f" at line {sql[: int(position)].count(chr(10)) + 1}"
