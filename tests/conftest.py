"""Shared fixtures: a real Redis (REDIS_URL, or an embedded Valkey) isolated per test."""

from __future__ import annotations

import io
import logging
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
import structlog

from libs.embedded.valkey import EmbeddedValkey
from libs.keys import KeySpace
from libs.observability.logging import configure_logging

pytest_plugins = ["tests.pg_fixtures", "tests.per_test_timeout"]


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The machine's Redis when REDIS_URL is set, else one embedded Valkey for the session."""
    configured = os.environ.get("REDIS_URL")
    if configured:
        yield configured
        return
    server = EmbeddedValkey(tmp_path_factory.mktemp("valkey"), persist=False)
    with server:
        yield server.url


@pytest.fixture
def namespace() -> str:
    """A key prefix no other test uses."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def keys(namespace: str) -> KeySpace:
    """Keys under this test's namespace."""
    return KeySpace(namespace)


@pytest.fixture
async def redis(redis_url: str, namespace: str) -> AsyncIterator[aioredis.Redis]:
    """A client on the test Redis; every key under the test's namespace is deleted after."""
    client = aioredis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        async for batch in _scan_batches(client, f"{namespace}:*"):
            await client.unlink(*batch)
        await client.aclose()


async def _scan_batches(client: aioredis.Redis, pattern: str) -> AsyncIterator[list[bytes]]:
    batch: list[bytes] = []
    async for key in client.scan_iter(match=pattern, count=1000):
        batch.append(key)
        if len(batch) >= 500:
            yield batch
            batch = []
    if batch:
        yield batch


@pytest.fixture
def repo_root() -> Path:
    """The checkout's root folder."""
    return Path(__file__).resolve().parent.parent


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """The process's log lines, as production renders them (JSON), for the test's duration."""
    lines = io.StringIO()
    configure_logging("INFO", "json", lines)
    # Loggers bound while this test runs must not keep this stream after it.
    structlog.configure(cache_logger_on_first_use=False)
    try:
        yield lines
    finally:
        structlog.reset_defaults()
        logging.getLogger().handlers.clear()
