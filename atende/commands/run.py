"""``atende worker``, ``atende ingress`` and ``atende dev``: run until stopped."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from atende.composition import run_worker
from atende.servers import servers
from atende.setup import configure_process, load_config, refusals_at_start
from consumers import ConsumerDiscoveryError, discover, select


def register(app: typer.Typer) -> None:
    """Add ``worker``, ``ingress`` and ``dev`` to ``app``."""
    app.command("worker")(worker)
    app.command("ingress")(ingress)
    app.command("dev")(dev)


def worker(
    only: Annotated[
        list[str] | None,
        typer.Option("--only", help="Run only this consumer (repeatable). Default: all."),
    ] = None,
) -> None:
    """Run the discovered consumers (or those named with --only) until SIGTERM.

    With ATENDE_CONFIG set, consumers get their sections of it (agent profiles, tools, memory).
    """
    settings = configure_process()
    try:
        consumers = select(discover(), only)
    except ConsumerDiscoveryError as exc:
        raise typer.BadParameter(str(exc), param_hint="--only") from None
    config = load_config(settings.config_path) if settings.config_path else None
    with refusals_at_start(settings), servers(settings) as urls:
        asyncio.run(run_worker(settings, urls, consumers, config))


def ingress() -> None:
    """Take the configured channels' webhooks (ATENDE_CONFIG) on the HTTP port until SIGTERM."""
    settings = configure_process()
    if settings.config_path is None:
        typer.echo("atende ingress: set ATENDE_CONFIG to the file declaring the channels", err=True)
        raise typer.Exit(2)
    config = load_config(settings.config_path)
    with refusals_at_start(settings), servers(settings, postgres=False) as urls:
        asyncio.run(run_worker(settings, urls, [], config, ingress=True))


def dev() -> None:
    """Start embedded servers when REDIS_URL/DATABASE_URL are unset, migrate, run everything.

    With ATENDE_CONFIG set, the channels' webhooks are taken on the same port.
    """
    settings = configure_process()
    config = load_config(settings.config_path) if settings.config_path else None
    with refusals_at_start(settings), servers(settings) as urls:
        asyncio.run(run_worker(settings, urls, discover(), config, ingress=config is not None))
