"""Process set-up shared by every command: settings read once, logging and tracing on."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from pydantic import ValidationError

from atende.config import AtendeConfig
from libs.errors import ConfigurationError
from libs.observability.logging import configure_logging
from libs.observability.tracing import configure_tracing
from libs.settings import Settings
from libs.yaml_config import load_yaml_model


def load_settings() -> Settings:
    """Read the environment once; a bad value ends the command with what was wrong."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{_variable(error['loc'])}: {error['msg'].removeprefix('Value error, ')}"
            for error in exc.errors()
        )
        typer.echo(f"atende: invalid settings: {problems}", err=True)
        raise typer.Exit(2) from None


def _variable(location: tuple[int | str, ...]) -> str:
    """The environment variable behind an error location (fields read through an alias,
    such as LOG_LEVEL, report the alias; the others are ATENDE_<FIELD>)."""
    if not location:
        return "settings"
    name = str(location[0])
    if name in Settings.model_fields:
        return f"ATENDE_{name.upper()}"
    return name


def configure_process() -> Settings:
    """Load settings and configure logging and tracing for a long-running command."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    configure_tracing(settings.otel_service_name, settings.otel_exporter_otlp_endpoint)
    return settings


def load_config(path: Path) -> AtendeConfig:
    """Read the config file; a bad file ends the command naming the file, place and problem."""
    try:
        return load_yaml_model(path, AtendeConfig, os.environ)
    except ConfigurationError as exc:
        typer.echo(f"atende: invalid config: {exc}", err=True)
        raise typer.Exit(2) from None


@contextmanager
def refusals_at_start() -> Iterator[None]:
    """A ``ConfigurationError`` met while starting (the data in Redis does not fit the
    settings, say) ends the command with its sentence and exit code 2, as invalid settings do.
    """
    try:
        yield
    except ConfigurationError as exc:
        typer.echo(f"atende: {exc}", err=True)
        raise typer.Exit(2) from None
