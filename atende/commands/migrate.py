"""``atende migrate``: apply the database migrations, or list their state with ``--status``.

Applying also records the config file's tenants and channels (``ATENDE_CONFIG``, when set).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, NoReturn

import typer
from pydantic import ValidationError
from pydantic_core import ErrorDetails
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from atende.config import AtendeConfig
from channels.config import ChannelsConfig
from channels.directory import Recorded, record_tenants_and_channels
from libs.embedded.postgres import EmbeddedPostgres
from libs.errors import AtendeError
from libs.migrations import MigrationStatus, apply_migrations, migration_status
from libs.postgres import describe_dsn, open_connection
from libs.settings import Settings
from libs.yaml_config import load_yaml_model

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
    """Apply pending migrations to DATABASE_URL, or to the embedded Postgres when it is unset.

    With ATENDE_CONFIG set, the tenants and channels it declares are then written to the
    database (a channel it no longer declares is disabled).
    """
    console = Console()
    try:
        settings = Settings()
        config = None if status else _config(settings)
        with _database(settings) as dsn:
            # Printed once the work is done, so that a failure is the only line shown.
            if status:
                statuses = asyncio.run(_status(dsn))
                console.print(f"{escape(describe_dsn(dsn))}:", soft_wrap=True)
                console.print(_status_table(statuses))
            else:
                applied, recorded = asyncio.run(_apply(dsn, config))
                console.print(
                    f"{escape(describe_dsn(dsn))}: {_applied_summary(applied)}", soft_wrap=True
                )
                if recorded is not None:
                    console.print(_recorded_summary(settings, recorded), soft_wrap=True)
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


def _config(settings: Settings) -> ChannelsConfig | None:
    """The config file's tenants and channels, when ``ATENDE_CONFIG`` names a file."""
    if settings.config_path is None:
        return None
    return load_yaml_model(settings.config_path, AtendeConfig, os.environ)


async def _apply(dsn: str, config: ChannelsConfig | None) -> tuple[list[int], Recorded | None]:
    async with open_connection(dsn, command_timeout_s=_MIGRATION_COMMAND_TIMEOUT_S) as conn:
        applied = await apply_migrations(conn)
        if config is None:
            return applied, None
        return applied, await record_tenants_and_channels(conn, config)


async def _status(dsn: str) -> list[MigrationStatus]:
    async with open_connection(dsn) as conn:
        return await migration_status(conn)


def _applied_summary(applied: list[int]) -> str:
    if not applied:
        return "up to date, nothing to apply"
    versions = ", ".join(f"{version:04d}" for version in applied)
    return f"applied {len(applied)} migration(s): {versions}"


def _recorded_summary(settings: Settings, recorded: Recorded) -> str:
    where = escape(str(settings.config_path))
    return (
        f"{where}: tenants and channels recorded ({recorded.tenants} tenant(s) and "
        f"{recorded.channels} channel(s) written, {recorded.disabled} channel(s) disabled)"
    )


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
