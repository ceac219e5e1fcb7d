"""The partition count is recorded on first start, and a process with another one is refused."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from libs.keys import KeySpace
from libs.partition_layout import PartitionCountChanged, check_partition_count

REFUSAL = (
    "holds data written with ATENDE_STREAM_PARTITIONS=4 but this process is set to 5: start it "
    "with ATENDE_STREAM_PARTITIONS=4, or move the data to the new count first (not supported yet)"
)
CONFIG = """
tenants:
  - id: shop
    channels:
      - id: app
        provider: generic
        secrets:
          signing_secret: {env: APP_SIGNING_SECRET}
"""


async def test_the_first_start_records_the_count(redis: aioredis.Redis, keys: KeySpace) -> None:
    await check_partition_count(redis, keys, 4)

    assert await redis.get(keys.partition_count()) == b"4"


async def test_a_start_with_the_recorded_count_passes(
    redis: aioredis.Redis, keys: KeySpace
) -> None:
    await check_partition_count(redis, keys, 4)
    await check_partition_count(redis, keys, 4)

    assert await redis.get(keys.partition_count()) == b"4"


async def test_a_start_with_another_count_is_refused_naming_both(
    redis: aioredis.Redis, keys: KeySpace, namespace: str
) -> None:
    await check_partition_count(redis, keys, 4)

    with pytest.raises(PartitionCountChanged) as refused:
        await check_partition_count(redis, keys, 5)

    assert REFUSAL in str(refused.value)
    assert f"(namespace '{namespace}')" in str(refused.value)
    assert await redis.get(keys.partition_count()) == b"4", "the record is kept"


async def test_of_processes_starting_together_with_different_counts_one_is_refused(
    redis_url: str, redis: aioredis.Redis, keys: KeySpace
) -> None:
    clients = [aioredis.Redis.from_url(redis_url) for _ in range(2)]
    try:
        outcomes = await asyncio.gather(
            check_partition_count(clients[0], keys, 4),
            check_partition_count(clients[1], keys, 5),
            return_exceptions=True,
        )
    finally:
        for client in clients:
            await client.aclose()

    recorded = int(await redis.get(keys.partition_count()) or 0)
    assert recorded in (4, 5)
    assert [type(outcome) for outcome in outcomes].count(PartitionCountChanged) == 1


@pytest.mark.slow
async def test_the_process_refuses_to_start_with_another_count_and_exits_2(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, keys: KeySpace, namespace: str
) -> None:
    await check_partition_count(redis, keys, 4)
    (tmp_path / "atende.yaml").write_text(CONFIG)
    env = {
        **os.environ,
        "ATENDE_CONFIG": str(tmp_path / "atende.yaml"),
        "APP_SIGNING_SECRET": "s3cret",
        "REDIS_URL": redis_url,
        "ATENDE_NAMESPACE": namespace,
        "ATENDE_STREAM_PARTITIONS": "5",
        "ATENDE_HTTP_PORT": "0",
        "ATENDE_DATA_DIR": str(tmp_path / "data"),
    }

    # The ingress is the cheapest command that opens the streams: it needs no database.
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "atende", "ingress"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 2, result.stderr
    assert REFUSAL in result.stderr
    assert "Traceback" not in result.stderr
    assert await redis.get(keys.partition_count()) == b"4"
