"""``atende events``: list the event catalog and export its schemas and docs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from events.catalog import CATALOG
from events.export import EXPORT_COMMAND, stale_exports, write_exports
from events.export.schemas import describe


def register(app: typer.Typer) -> None:
    """Add the ``events`` command group to ``app``."""
    group = typer.Typer(
        name="events",
        help="The event contract: list types, export JSON Schemas, AsyncAPI and docs.",
        no_args_is_help=True,
    )
    group.command("export")(export_command)
    group.command("list")(list_command)
    app.add_typer(group, name="events")


def export_command(
    out: Annotated[
        Path,
        typer.Option(help="Folder for schemas/<type>.v<N>.json and asyncapi.json."),
    ] = Path("docs"),
    markdown: Annotated[
        Path | None,
        typer.Option(help="Where to write the Markdown catalog."),
    ] = Path("docs/EVENTS.md"),
    no_markdown: Annotated[
        bool, typer.Option("--no-markdown", help="Skip the Markdown catalog.")
    ] = False,
    check: Annotated[
        bool,
        typer.Option("--check", help="Write nothing; exit 1 when a file is out of date."),
    ] = False,
) -> None:
    """Export JSON Schemas, an AsyncAPI 3.0.0 document and the Markdown catalog."""
    console = Console()
    markdown_path = None if no_markdown else markdown
    if check:
        stale = stale_exports(CATALOG, out, markdown_path=markdown_path)
        for path in stale:
            console.print(f"[red]out of date:[/] {path}")
        if stale:
            console.print(f"Run `{EXPORT_COMMAND}` and commit the result.")
            raise typer.Exit(code=1)
        console.print("Event exports are up to date.")
        return
    changed = write_exports(CATALOG, out, markdown_path=markdown_path)
    for path in changed:
        console.print(f"updated {path}")
    console.print(f"{len(changed)} file(s) changed; {len(CATALOG)} event type(s) exported.")


def list_command() -> None:
    """Show every event type with its version, stream and summary."""
    table = Table(title="Event catalog")
    table.add_column("type", no_wrap=True)
    table.add_column("v")
    table.add_column("stream", no_wrap=True)
    table.add_column("summary")
    for payload_type in CATALOG.payload_types():
        table.add_row(
            payload_type.event_type,
            str(payload_type.event_version),
            payload_type.stream,
            describe(payload_type).split("\n", 1)[0],
        )
    Console().print(table)
