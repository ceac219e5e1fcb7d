"""``atende migrate``: apply the database migrations, or list their state with ``--status``."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, NoReturn

import typer
from pydantic import ValidationError
from pydantic_core import ErrorDetails
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from libs.embedded.postgres import EmbeddedPostgres
from libs.errors import AtendeError
from libs.migrations import MigrationStatus, apply_migrations, migration_status
from libs.postgres import describe_dsn, open_connection
from libs.settings import Settings

# Migrations may rewrite big tables: no per-statement limit, only the lock wait is bounded.
_MIGRATION_COMMAND_TIMEOUT_S = None
_STATE_STYLES = {"applied": "green", "pending": "yellow", "changed": "bold red", "missing": "red"}


def register(app: typer.Typer) -> None:
    """Add ``atende migrate`` to ``app``."""
    app.command("migrate")(migrate)


def migrate(
    status: Annotated[
        bool, typer.Option("--status", help="List applied and pending migrations; change nothing.")
    ] = False,
) -> None:
    """Apply pending migrations to DATABASE_URL, or to the embedded Postgres when it is unset."""
    console = Console()
    try:
        settings = Settings()
        with _database(settings) as dsn:
            # Printed once the work is done, so that a failure is the only line shown.
            if status:
                statuses = asyncio.run(_status(dsn))
                console.print(f"{escape(describe_dsn(dsn))}:", soft_wrap=True)
                console.print(_status_table(statuses))
            else:
                summary = _applied_summary(asyncio.run(_apply(dsn)))
                console.print(f"{escape(describe_dsn(dsn))}: {summary}", soft_wrap=True)
    except ValidationError as exc:
        _fail("invalid settings: " + "; ".join(_describe_error(error) for error in exc.errors()))
    except AtendeError as exc:
        _fail(str(exc))


@contextmanager
def _database(settings: Settings) -> Iterator[str]:
    """The configured database, or the embedded one for the duration of the command."""
    if settings.database_url:
        yield settings.database_url
        return
    with EmbeddedPostgres(settings.data_dir / "postgres") as server:
        yield server.dsn


async def _apply(dsn: str) -> list[int]:
    async with open_connection(dsn, command_timeout_s=_MIGRATION_COMMAND_TIMEOUT_S) as conn:
        return await apply_migrations(conn)


async def _status(dsn: str) -> list[MigrationStatus]:
    async with open_connection(dsn) as conn:
        return await migration_status(conn)


def _applied_summary(applied: list[int]) -> str:
    if not applied:
        return "up to date, nothing to apply"
    versions = ", ".join(f"{version:04d}" for version in applied)
    return f"applied {len(applied)} migration(s): {versions}"


def _status_table(statuses: list[MigrationStatus]) -> Table:
    table = Table("version", "name", "state", "applied at")
    for row in statuses:
        style = _STATE_STYLES[row.state]
        applied_at = row.applied_at.isoformat(timespec="seconds") if row.applied_at else ""
        table.add_row(
            f"{row.version:04d}", escape(row.name), f"[{style}]{row.state}[/]", applied_at
        )
    return table


def _describe_error(error: ErrorDetails) -> str:
    location = ".".join(str(part) for part in error["loc"])
    return f"{location}: {error['msg']}" if location else error["msg"]


def _fail(message: str) -> NoReturn:
    Console(stderr=True).print(
        f"[bold red]atende migrate:[/] {escape(message)}", soft_wrap=True, highlight=False
    )
    raise typer.Exit(code=1)
