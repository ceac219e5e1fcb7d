"""``atende ingress`` as a process: config file in, signed webhook over HTTP, event in Redis."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as aioredis

from events.partitions import partition_for
from events.streams import INBOX_MESSAGE_RECEIVED
from libs.embedded.process import free_port
from libs.keys import KeySpace

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
CONFIG = """
tenants:
  - id: shop
    channels:
      - id: app
        provider: generic
        secrets:
          signing_secret: {env: APP_SIGNING_SECRET}
"""


def atende(*args: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "atende", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def test_the_ingress_process_turns_a_signed_webhook_into_an_event_and_stops_cleanly(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, keys: KeySpace, namespace: str
) -> None:
    (tmp_path / "atende.yaml").write_text(CONFIG)
    port = free_port()
    env = {
        "ATENDE_CONFIG": str(tmp_path / "atende.yaml"),
        "APP_SIGNING_SECRET": "s3cret",
        "REDIS_URL": redis_url,
        "ATENDE_NAMESPACE": namespace,
        "ATENDE_HTTP_PORT": str(port),
        "ATENDE_DATA_DIR": str(tmp_path / "data"),
    }
    process = atende("ingress", env=env)
    try:
        body = json.dumps(
            {"messages": [{"id": "m-1", "conversation_id": "c-42", "sender": {"id": "u-7"},
                           "text": "Is my order on its way?"}]}
        ).encode()  # fmt: skip
        stamp = str(int(time.time()))
        signature = hmac.new(b"s3cret", stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        headers = {
            "Content-Type": "application/json",
            "X-Atende-Timestamp": stamp,
            "X-Atende-Signature": f"sha256={signature}",
        }
        url = f"http://127.0.0.1:{port}/webhooks/generic/app"
        answer = await _post_when_up(url, body, headers)
        assert answer == {"status": "accepted", "events": 1, "duplicates": 0}
        partition = partition_for("shop", "app:c-42", 4)
        assert await redis.xlen(keys.stream(INBOX_MESSAGE_RECEIVED, partition)) == 1
        process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(process.wait, 20) == 0
        assert not (tmp_path / "data" / "postgres").exists(), "the ingress needs no database"
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()


async def test_the_ingress_reports_ready_on_redis_alone_even_with_a_database_url_set(
    tmp_path: Path, redis_url: str, namespace: str
) -> None:
    (tmp_path / "atende.yaml").write_text(CONFIG)
    port = free_port()
    env = {
        "ATENDE_CONFIG": str(tmp_path / "atende.yaml"),
        "APP_SIGNING_SECRET": "s3cret",
        "REDIS_URL": redis_url,
        # A Secret shared by every Deployment may set it; nothing listens there.
        "DATABASE_URL": "postgresql://atende@127.0.0.1:1/atende",
        "ATENDE_NAMESPACE": namespace,
        "ATENDE_HTTP_PORT": str(port),
        "ATENDE_DATA_DIR": str(tmp_path / "data"),
    }
    process = atende("ingress", env=env)
    try:
        status, answer = await _get_when_up(f"http://127.0.0.1:{port}/health/ready")
        assert (status, answer) == (200, {"status": "ok", "checks": {"redis": "ok"}})
        process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(process.wait, 20) == 0
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()


async def _get_when_up(url: str) -> tuple[int, object]:
    async with aiohttp.ClientSession() as http:
        for _ in range(200):  # up to ~20 s for the process to start
            try:
                async with http.get(url) as response:
                    return response.status, await response.json()
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.1)
    raise AssertionError(f"nothing answered on {url}")


async def _post_when_up(url: str, body: bytes, headers: dict[str, str]) -> object:
    async with aiohttp.ClientSession() as http:
        for _ in range(200):  # up to ~20 s for the process to start
            try:
                async with http.post(url, data=body, headers=headers) as response:
                    return await response.json()
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.1)
    raise AssertionError(f"nothing answered on {url}")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (None, "set ATENDE_CONFIG to the file declaring the channels"),
        (CONFIG, "environment variable APP_SIGNING_SECRET is not set"),
        (CONFIG.replace("provider: generic", "provider: fax"), "Input tag 'fax'"),
    ],
)
def test_a_missing_or_bad_config_stops_the_ingress_naming_the_problem(
    tmp_path: Path, config: str | None, message: str
) -> None:
    env = {"ATENDE_DATA_DIR": str(tmp_path / "data")}
    if config is not None:
        (tmp_path / "atende.yaml").write_text(config)
        env["ATENDE_CONFIG"] = str(tmp_path / "atende.yaml")
    process = atende("ingress", env=env)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 2
    assert message in stderr.decode()
    if config is not None:
        assert str(tmp_path / "atende.yaml") in stderr.decode(), "the file is named"
    assert not (tmp_path / "data").exists(), "nothing was started"
