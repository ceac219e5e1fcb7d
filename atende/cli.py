"""Entry point of the ``atende`` command line."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from atende.commands import conversations, events, kb, migrate, run

app = typer.Typer(
    name="atende",
    help="Event-driven backbone for AI customer conversations.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
for module in (run, migrate, events, kb, conversations):
    module.register(app)


@app.callback()
def _options(
    debug: Annotated[
        bool, typer.Option("--debug", help="Log at DEBUG and show tracebacks of start errors.")
    ] = False,
) -> None:
    """Event-driven backbone for AI customer conversations."""
    if debug:
        # Settings are read from the environment by each command, after this runs.
        os.environ["LOG_LEVEL"] = "DEBUG"


def main() -> None:
    """Run the command line."""
    app()
