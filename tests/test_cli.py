"""The command line refuses bad input with a sentence, before starting anything."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def atende(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m atende`` with ``args`` in a clean data folder."""
    return subprocess.run(
        [sys.executable, "-m", "atende", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_worker_only_names_an_unknown_consumer(tmp_path: Path) -> None:
    result = atende("worker", "--only", "nope", env={"ATENDE_DATA_DIR": str(tmp_path)})
    assert result.returncode == 2
    assert "no consumer named nope; known: ai-agent, archive" in result.stderr
    assert not (tmp_path / "valkey").exists(), "nothing was started"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("ATENDE_BATCH_SIZE", "0", "ATENDE_BATCH_SIZE: Input should be greater than or equal to 1"),
        (
            "ATENDE_STREAM_PARTITIONS",
            "many",
            "ATENDE_STREAM_PARTITIONS: Input should be a valid integer",
        ),
        ("ATENDE_RETRY_MAX_MS", "90000", "retry_max_ms (90000) must be below claim_idle_ms"),
        ("LOG_LEVEL", "LOUD", "LOG_LEVEL: Input should be 'DEBUG', 'INFO', 'WARNING' or 'ERROR'"),
    ],
)
def test_invalid_settings_stop_the_command_naming_the_variable(
    tmp_path: Path, variable: str, value: str, message: str
) -> None:
    result = atende("dev", env={variable: value, "ATENDE_DATA_DIR": str(tmp_path)})
    assert result.returncode == 2
    assert result.stderr.startswith("atende: invalid settings:")
    assert message in result.stderr
    assert not any(tmp_path.iterdir()), "nothing was started"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"REDIS_URL": "redis://127.0.0.1:1/0"},
            "atende: cannot connect to Redis: Error 111 connecting to 127.0.0.1:1.",
        ),
        (
            {"ATENDE_HTTP_PORT": "{redis_port}"},
            "atende: port {redis_port} on 0.0.0.0 is already in use; stop what listens there",
        ),
    ],
    ids=["redis-unreachable", "port-in-use"],
)
def test_a_start_error_is_one_sentence_and_exit_code_2(
    tmp_path: Path, redis_url: str, pg_dsn: str, env: dict[str, str], message: str
) -> None:
    redis_port = redis_url.rsplit(":", 1)[1].split("/")[0]
    variables = {
        "REDIS_URL": redis_url,
        "DATABASE_URL": pg_dsn,
        "ATENDE_DATA_DIR": str(tmp_path),
        **{name: value.format(redis_port=redis_port) for name, value in env.items()},
    }
    result = atende("worker", "--only", "archive", env=variables)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if not line.startswith("{")]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(message.format(redis_port=redis_port))
    assert "Traceback" not in result.stderr


def test_debug_shows_the_traceback_of_a_start_error(tmp_path: Path, pg_dsn: str) -> None:
    variables = {
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "DATABASE_URL": pg_dsn,
        "ATENDE_DATA_DIR": str(tmp_path),
    }
    result = atende("--debug", "worker", "--only", "archive", env=variables)
    assert result.returncode != 0
    assert "ConnectionError" in result.stderr
    assert "atende: cannot connect" not in result.stderr
