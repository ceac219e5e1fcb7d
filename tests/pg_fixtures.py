"""Postgres fixtures: one server per session, one migrated template, a fresh database per test.

The server is an embedded Postgres with pgvector, unless ``DATABASE_URL`` is set (its role must
be allowed to create databases; the server needs pgvector). Each test gets its own database,
cloned from the template in tens of milliseconds and dropped after.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest

from libs.embedded.postgres import EmbeddedPostgres
from libs.migrations import apply_migrations
from libs.postgres import dsn_with_database, open_connection, open_pool

T = TypeVar("T")

_SETUP_TIMEOUT_S = 120.0


@pytest.fixture(scope="session")
def pg_admin_dsn() -> Iterator[str]:
    """DSN of a database on the session's server from which test databases are created."""
    configured = os.environ.get("DATABASE_URL")
    if configured:
        yield configured
        return
    base = scratch_folder("atende-pg-")
    server = EmbeddedPostgres(base / "postgres", durable=False)
    try:
        with server:
            yield server.maintenance_dsn
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_template(pg_admin_dsn: str) -> Iterator[str]:
    """Name of a database migrated once per session, the template of every test database."""
    name = f"atende_template_{uuid.uuid4().hex[:8]}"
    run_async_in_thread(lambda: _create_template(pg_admin_dsn, name))
    yield name
    run_async_in_thread(lambda: _drop_database(pg_admin_dsn, name))


@pytest.fixture
async def pg_dsn(pg_admin_dsn: str, pg_template: str) -> AsyncIterator[str]:
    """DSN of a migrated database of this test's own, dropped after it."""
    async with _scratch_database(pg_admin_dsn, template=pg_template) as dsn:
        yield dsn


@pytest.fixture
async def pg_empty_dsn(pg_admin_dsn: str) -> AsyncIterator[str]:
    """DSN of an empty (unmigrated) database of this test's own, dropped after it."""
    async with _scratch_database(pg_admin_dsn, template="template0") as dsn:
        yield dsn


@pytest.fixture
async def pg_pool(pg_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on this test's migrated database."""
    async with open_pool(pg_dsn, min_size=1, max_size=4) as pool:
        yield pool


@asynccontextmanager
async def _scratch_database(admin_dsn: str, *, template: str) -> AsyncIterator[str]:
    """Create a database from ``template``, yield its DSN, drop it."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    async with open_connection(admin_dsn) as admin:
        # FILE_COPY: for a small template, two cheap checkpoints beat WAL-logging every page.
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY FILE_COPY')
    try:
        yield dsn_with_database(admin_dsn, name)
    finally:
        await _drop_database(admin_dsn, name)


async def _create_template(admin_dsn: str, name: str) -> None:
    async with open_connection(admin_dsn) as admin:
        await admin.execute(f'CREATE DATABASE "{name}"')
    async with open_connection(dsn_with_database(admin_dsn, name)) as conn:
        await apply_migrations(conn)
    # Every connection to the template is closed now, as cloning requires.


async def _drop_database(admin_dsn: str, name: str) -> None:
    async with open_connection(admin_dsn) as admin:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def scratch_folder(prefix: str) -> Path:
    """A new folder for a throwaway server's data, removed by the caller.

    In RAM (/dev/shm) when the host has it: creating a database writes hundreds of files, which
    on a busy disk costs ten times more. Not pytest's tmp folder: its root is private to this
    user, and under root the server runs as another account that must pass through.
    """
    ram = Path("/dev/shm")
    parent = ram if ram.is_dir() and os.access(ram, os.W_OK) else None
    base = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    base.chmod(0o711)
    return base


def run_async_in_thread(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine from sync code (session fixtures, sync tests) on a loop in a new thread.

    The thread keeps ``asyncio.run`` away from the event loop pytest-asyncio set up for tests.
    """
    with ThreadPoolExecutor(max_workers=1) as executor:
        return executor.submit(lambda: asyncio.run(make())).result(timeout=_SETUP_TIMEOUT_S)
