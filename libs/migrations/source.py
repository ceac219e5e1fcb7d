"""Versioned SQL migration files: found, read, checksummed and checked for a gapless sequence."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

from libs.errors import MigrationError

_FILENAME = re.compile(r"^(?P<version>[0-9]{4})_(?P<name>[a-z0-9][a-z0-9_]*)\.sql$")


@dataclass(frozen=True)
class Migration:
    """One ``NNNN_name.sql`` file: applied in a transaction of its own, in version order.

    The SQL must not control transactions itself (no BEGIN/COMMIT, no ``CONCURRENTLY``).
    """

    version: int
    name: str
    filename: str
    sql: str
    checksum: str


def bundled_migrations() -> Traversable:
    """The folder of atende's own migrations, read through importlib so it works installed."""
    return resources.files("libs.migrations") / "sql"


def load_migrations(source: Traversable | None = None) -> list[Migration]:
    """Read every ``.sql`` file of ``source`` (default: the bundled ones), in version order.

    Raise MigrationError naming the file when one is misnamed, not UTF-8, or when versions
    repeat or leave a gap.
    """
    folder = source if source is not None else bundled_migrations()
    migrations = [_read(entry) for entry in folder.iterdir() if entry.name.endswith(".sql")]
    migrations.sort(key=lambda migration: (migration.version, migration.filename))
    _check_sequence(migrations)
    return migrations


def checksum(sql: str) -> str:
    """SHA-256 of the SQL with line endings normalized.

    A checkout that turns LF into CRLF must not look like an edited migration.
    """
    return hashlib.sha256(sql.replace("\r\n", "\n").encode()).hexdigest()


def _read(entry: Traversable) -> Migration:
    match = _FILENAME.match(entry.name)
    if match is None:
        raise MigrationError(
            f"migration file {entry.name} is misnamed: expected NNNN_lower_snake_name.sql"
        )
    try:
        sql = entry.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise MigrationError(f"migration file {entry.name} is not UTF-8: {exc}") from exc
    return Migration(
        version=int(match["version"]),
        name=match["name"],
        filename=entry.name,
        sql=sql,
        checksum=checksum(sql),
    )


def _check_sequence(migrations: list[Migration]) -> None:
    for expected, migration in enumerate(migrations, start=1):
        if migration.version == expected:
            continue
        if migration.version < expected:
            previous = migrations[expected - 2]
            raise MigrationError(
                f"migrations {previous.filename} and {migration.filename} share version "
                f"{migration.version:04d}; give each file its own number"
            )
        raise MigrationError(
            f"migration {migration.filename} follows a gap: no file has version "
            f"{expected:04d}; number the files without gaps"
        )
