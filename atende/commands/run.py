"""``atende worker`` and ``atende dev``: run consumers (and, for dev, everything) until stopped."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from atende.composition import run_worker
from atende.servers import servers
from atende.setup import configure_process
from consumers import ConsumerDiscoveryError, discover, select


def register(app: typer.Typer) -> None:
    """Add ``worker`` and ``dev`` to ``app``."""
    app.command("worker")(worker)
    app.command("dev")(dev)


def worker(
    only: Annotated[
        list[str] | None,
        typer.Option("--only", help="Run only this consumer (repeatable). Default: all."),
    ] = None,
) -> None:
    """Run the discovered consumers (or those named with --only) until SIGTERM."""
    settings = configure_process()
    try:
        consumers = select(discover(), only)
    except ConsumerDiscoveryError as exc:
        raise typer.BadParameter(str(exc), param_hint="--only") from None
    with servers(settings) as urls:
        asyncio.run(run_worker(settings, urls, consumers))


def dev() -> None:
    """Start embedded servers when REDIS_URL/DATABASE_URL are unset, migrate, run everything."""
    settings = configure_process()
    with servers(settings) as urls:
        asyncio.run(run_worker(settings, urls, discover()))
