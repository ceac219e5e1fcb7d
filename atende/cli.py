"""Entry point of the ``atende`` command line."""

from __future__ import annotations

import typer

from atende.commands import events, kb, migrate, run

app = typer.Typer(
    name="atende",
    help="Event-driven backbone for AI customer conversations.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
for module in (run, migrate, events, kb):
    module.register(app)


def main() -> None:
    """Run the command line."""
    app()
