"""Process set-up shared by every command: settings read once, logging and tracing on."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from pydantic import ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from atende.config import AtendeConfig
from libs.errors import ConfigurationError, EmbeddedServerError
from libs.observability.logging import configure_logging
from libs.observability.tracing import configure_tracing
from libs.postgres import PostgresUnavailable
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
def refusals_at_start(settings: Settings) -> Iterator[None]:
    """What a person can cause or meet while a command starts ends it with one sentence
    naming what and what to do, and exit code 2: a config or data that does not fit, an
    embedded server that fails, Redis or Postgres out of reach, the HTTP port taken.

    With ``LOG_LEVEL=DEBUG`` (or ``atende --debug``) the error propagates with its traceback.
    """
    try:
        yield
    except (ConfigurationError, EmbeddedServerError, PostgresUnavailable) as exc:
        _refuse(settings, exc, str(exc))
    except (RedisConnectionError, RedisTimeoutError) as exc:
        _refuse(
            settings,
            exc,
            f"cannot connect to Redis: {str(exc).rstrip('.')}; check REDIS_URL and that the "
            "server is running (unset REDIS_URL to use the embedded Valkey)",
        )
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        _refuse(
            settings,
            exc,
            f"port {settings.http_port} on {settings.http_host} is already in use; stop what "
            "listens there or set ATENDE_HTTP_PORT to a free port",
        )


def _refuse(settings: Settings, exc: BaseException, sentence: str) -> None:
    if settings.log_level == "DEBUG":
        raise exc
    typer.echo(f"atende: {sentence}", err=True)
    raise typer.Exit(2) from None
