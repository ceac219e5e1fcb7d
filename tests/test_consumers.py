"""Discovered consumers: the archive, discovery rules, and the README's one-file consumer."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from consumers import ConsumerDiscoveryError, discover, select
from consumers.archive import archive_handler
from events.catalog import CATALOG
from events.envelope import Envelope
from events.examples import example_envelope
from libs.keys import KeySpace
from libs.streams import Consumer, ConsumerRunner, Publisher, Received, RunnerConfig
from tests.streams_support import eventually, fast_settings


def fresh(event_type: str, conversation: str) -> Envelope[Any]:
    """The catalog's example of ``event_type`` with a new id, in ``conversation``."""
    example = example_envelope(event_type, 1)
    return Envelope.new(example.payload, tenant_id="acme", conversation_id=conversation)


async def test_archive_keeps_every_event_once_even_when_redelivered(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool
) -> None:
    [archive] = select(discover(), ["archive"])
    settings = fast_settings(stream_partitions=2)
    publisher = Publisher(redis, keys, partitions=2)
    events = [fresh(payload.event_type, f"c{i}") for i, payload in enumerate(CATALOG)]
    await publisher.publish_many(events)
    runner = ConsumerRunner(
        archive,
        archive_handler(pg_pool),
        redis=redis,
        keys=keys,
        registry=CATALOG,
        config=RunnerConfig.for_consumer(archive, settings),
    )
    await runner.start()

    async def archived() -> bool:
        count: int = await pg_pool.fetchval("SELECT count(*) FROM event_archive")
        return count == len(events)

    try:
        await eventually(archived, what="every event archived")
    finally:
        await runner.stop()
    again = Received(events[0], events[0].stream, 0, "0-1", 2, "archive")
    await archive_handler(pg_pool)(again)  # a redelivery changes nothing
    rows = await pg_pool.fetch("SELECT event_id::text, type, envelope FROM event_archive")
    assert len(rows) == len(events)
    assert {row["event_id"] for row in rows} == {event.id for event in events}
    assert {row["type"] for row in rows} == {payload.event_type for payload in CATALOG}


def test_select_names_unknown_consumers() -> None:
    with pytest.raises(
        ConsumerDiscoveryError, match="no consumer named nope; known: ai-agent, archive"
    ):
        select(discover(), ["nope"])


def test_the_readme_consumer_is_discovered_from_one_file(repo_root: Path, tmp_path: Path) -> None:
    readme = (repo_root / "README.md").read_text()
    section = readme.split("## Add a consumer in one file", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert code is not None, "the README shows the consumer's code"
    package = tmp_path / "example_consumers"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "delivery_stats.py").write_text(code.group(1))
    sys.path.insert(0, str(tmp_path))
    try:
        module = types.ModuleType("example_consumers")
        module.__path__ = [str(package)]
        sys.modules["example_consumers"] = module
        [found] = discover(module)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [n for n in sys.modules if n.startswith("example_consumers")]:
            del sys.modules[name]
    assert isinstance(found, Consumer)
    assert found.name == "delivery-stats"
    assert found.streams == ("delivery.status.updated",)
