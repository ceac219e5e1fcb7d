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
