"""Rate limits hold across gateway processes: two OS processes share one budget in Redis."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sys
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis

from tests.tool_support import seed_conversation

ROOT = Path(__file__).resolve().parent.parent


async def _gateway_process(
    redis_url: str, namespace: str, dsn: str, seeded: str, prefix: str
) -> dict[str, int]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.gateway_tools._process",
        "--redis-url",
        redis_url,
        "--namespace",
        namespace,
        "--dsn",
        dsn,
        "--seeded",
        seeded,
        "--prefix",
        prefix,
        "--calls",
        "5",
        "--limit",
        "5/minute",
        cwd=ROOT,
        env=os.environ.copy(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, stderr.decode()
    outcomes: dict[str, int] = json.loads(stdout.decode().strip().splitlines()[-1])
    return outcomes


@pytest.mark.slow
async def test_two_gateway_processes_share_one_rate_limit(
    redis: aioredis.Redis, redis_url: str, namespace: str, pg_pool: asyncpg.Pool, pg_dsn: str
) -> None:
    seeded = await seed_conversation(pg_pool)
    as_json = json.dumps(dataclasses.asdict(seeded))

    first, second = await asyncio.gather(
        _gateway_process(redis_url, namespace, pg_dsn, as_json, "a"),
        _gateway_process(redis_url, namespace, pg_dsn, as_json, "b"),
    )

    # Each process alone would have been allowed all five of its calls.
    assert first.get("ok", 0) + second.get("ok", 0) == 5, (first, second)
    assert first.get("rate_limited", 0) + second.get("rate_limited", 0) == 5
    rows = await pg_pool.fetch(
        "SELECT outcome, count(*) AS n FROM tool_calls WHERE tenant_id = 'acme' GROUP BY outcome"
    )
    assert {row["outcome"]: row["n"] for row in rows} == {"succeeded": 5, "rate_limited": 5}
