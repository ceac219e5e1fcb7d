"""``atende kb ingest``: load markdown and text files into a tenant's knowledge base.

Each file is one document, keyed by its path relative to the folder given (or by its name
when a single file is given). Re-ingesting an unchanged file writes nothing; a changed file
replaces its chunks in one transaction. With ``ATENDE_CONFIG`` set, the tenants and channels
it declares are written to the database first, so a tenant declared only there can be loaded.
Exit codes: 0 done, 2 bad input (the message names the
path, tenant or setting, e.g. a dimension that does not match the table), 1 anything else
(e.g. the database is unreachable).
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from atende.config import AtendeConfig
from atende.setup import load_settings
from channels.directory import record_tenants_and_channels
from libs.embedded.postgres import EmbeddedPostgres
from libs.errors import AtendeError, ConfigurationError
from libs.postgres import open_pool
from libs.settings import Settings
from libs.yaml_config import load_yaml_model
from memory_manager.embedders import build_embedder
from memory_manager.knowledge import IngestResult, KnowledgeBase
from memory_manager.vector_search import check_embedding_dimension

SUFFIXES = frozenset({".md", ".markdown", ".txt"})
# A knowledge-base file bigger than this is almost surely not one (a dump, a binary).
_MAX_FILE_BYTES = 5_000_000


class BadInput(AtendeError):
    """The path, the tenant or the config given to the command is unusable."""


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A file to ingest and its document key."""

    path: Path
    document_key: str
    text: str


def register(app: typer.Typer) -> None:
    """Add the ``kb`` command group to ``app``."""
    group = typer.Typer(name="kb", help="Tenants' knowledge bases.", no_args_is_help=True)
    group.command("ingest")(ingest)
    app.add_typer(group, name="kb")


def ingest(
    path: Annotated[Path, typer.Argument(help="A markdown/text file, or a folder (recursive).")],
    tenant: Annotated[str, typer.Option("--tenant", help="Tenant that owns the documents.")],
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="Tag every chunk (repeatable).")
    ] = None,
) -> None:
    """Load PATH into TENANT's knowledge base; unchanged files are skipped."""
    settings = load_settings()
    console = Console(stderr=True)
    try:
        sources = collect_sources(path)
        config = _config(settings)
        with _database(settings) as dsn:
            results = asyncio.run(_ingest_all(dsn, tenant, sources, tuple(tag or ()), config))
    except (BadInput, ConfigurationError) as exc:
        _fail(console, str(exc), code=2)
    except AtendeError as exc:
        _fail(console, str(exc), code=1)
    counts = Counter(result.outcome for result in results)
    embedded = sum(result.embedded for result in results)
    summary = ", ".join(f"{counts[name]} {name}" for name in sorted(counts)) or "nothing"
    Console().print(
        f"{len(results)} file(s) into tenant {escape(tenant)}: {summary}; "
        f"{embedded} chunk(s) embedded",
        soft_wrap=True,
        highlight=False,
    )


def collect_sources(path: Path) -> list[SourceFile]:
    """The files under ``path`` to ingest, read as UTF-8; ``BadInput`` naming the path if not."""
    if not path.exists():
        raise BadInput(f"{path} does not exist")
    if path.is_file():
        if path.suffix.lower() not in SUFFIXES:
            raise BadInput(f"{path} is not a markdown or text file ({', '.join(sorted(SUFFIXES))})")
        return [_read(path, path.name)]
    files = sorted(
        candidate
        for candidate in path.rglob("*")
        if candidate.is_file() and candidate.suffix.lower() in SUFFIXES
    )
    if not files:
        raise BadInput(f"{path} holds no markdown or text file ({', '.join(sorted(SUFFIXES))})")
    return [_read(file, file.relative_to(path).as_posix()) for file in files]


def _read(path: Path, document_key: str) -> SourceFile:
    try:
        if path.stat().st_size > _MAX_FILE_BYTES:
            raise BadInput(f"{path} is larger than {_MAX_FILE_BYTES} bytes")
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(f"{path} is not UTF-8 text: {exc.reason} at byte {exc.start}") from exc
    except OSError as exc:
        raise BadInput(f"{path} cannot be read: {exc.strerror}") from exc
    if len(document_key) > 512:
        raise BadInput(f"{path}: its document key is longer than 512 characters")
    return SourceFile(path, document_key, text)


def _config(settings: Settings) -> AtendeConfig:
    """The config file, or an empty one (default memory settings, no tenants) without it."""
    if settings.config_path is None:
        return AtendeConfig()
    try:
        return load_yaml_model(settings.config_path, AtendeConfig, os.environ)
    except ConfigurationError as exc:
        raise BadInput(f"invalid config: {exc}") from exc


@contextmanager
def _database(settings: Settings) -> Iterator[str]:
    """The configured database, or the embedded one for the duration of the command."""
    if settings.database_url:
        yield settings.database_url
        return
    with EmbeddedPostgres(settings.data_dir / "postgres") as server:
        yield server.dsn


async def _ingest_all(
    dsn: str, tenant: str, sources: list[SourceFile], tags: tuple[str, ...], config: AtendeConfig
) -> list[IngestResult]:
    memory = config.memory
    embedder = build_embedder(memory)
    async with open_pool(dsn, min_size=1, max_size=2) as pool:
        async with pool.acquire() as connection:
            await check_embedding_dimension(connection, memory.dimension)
            await record_tenants_and_channels(connection, config)
        knowledge = KnowledgeBase(pool, embedder, chunking=memory.chunking, search=memory.search)
        if not await knowledge.tenant_exists(tenant):
            raise BadInput(f"tenant {tenant!r} does not exist in the database")
        results: list[IngestResult] = []
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns, console=Console(stderr=True)) as progress:
            task = progress.add_task("ingesting", total=len(sources))
            for source in sources:
                progress.update(task, description=escape(source.document_key))
                results.append(
                    await knowledge.ingest(tenant, source.document_key, source.text, tags=tags)
                )
                progress.advance(task)
        return results


def _fail(console: Console, message: str, *, code: int) -> NoReturn:
    console.print(
        f"[bold red]atende kb ingest:[/] {escape(message)}", soft_wrap=True, highlight=False
    )
    raise typer.Exit(code=code)
