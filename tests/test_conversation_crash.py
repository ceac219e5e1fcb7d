"""A worker SIGKILLed between a turn's tool call and its reply: the turn resumes, one reply.

The workers run as `atende worker` processes, as in production. The first is killed while
it waits for the model's answer to the tool result (the scripted server holds that request);
a second worker, started after, takes the turn over — through the turn's deadline, since
the dead worker's claim on the step cannot be told from a slow one — and the contact gets
exactly one answer.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis

from atende.config import AtendeConfig
from channels.directory import record_tenants_and_channels
from events.envelope import Envelope
from events.types.inbound_content import InboundText
from events.types.inbox import ContactIdentity, InboxMessageReceived
from libs.keys import KeySpace
from libs.streams import Publisher
from libs.yaml_config import load_yaml_model
from tests.llm_script import Call, Hang, Text, ToolCalls
from tests.llm_server import API_KEY, ScriptedOpenAIServer
from tests.provider_servers import GenericAppServer
from tests.streams_support import eventually

ROOT = Path(__file__).resolve().parent.parent
TENANT, CHANNEL, CONTACT = "clinic", "app", "contact-1"
SECRET = "app-secret-for-tests"
PARTITIONS = 2


def _config(app: GenericAppServer) -> str:
    return f"""
tenants:
  - id: {TENANT}
    channels:
      - id: {CHANNEL}
        provider: generic
        callback_url: {app.callback_url}
        secrets: {{signing_secret: {{env: APP_SECRET}}}}
agents:
  - {{tenant: {TENANT}, profile: triage, provider: openai, model: gpt-test,
      tools: [knowledge.search], max_tool_steps: 3}}
conversations:
  turn_deadline_s: 3
llm: {{timeout_s: 30, max_attempts: 1, max_total_s: 30}}
"""


@asynccontextmanager
async def _worker(env: dict[str, str], log: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    with log.open("ab") as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "atende",
            "worker",
            *("--only", "dispatcher", "--only", "ai-agent"),
            *("--only", "tool-gateway", "--only", "delivery"),
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=output,
        )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), timeout=20)
            except TimeoutError:
                process.kill()
                await process.wait()


def _inbound(text: str) -> Envelope[InboxMessageReceived]:
    return Envelope.new(
        InboxMessageReceived(
            channel_id=CHANNEL,
            provider="generic",
            provider_message_id="msg-1",
            seq=1,
            contact=ContactIdentity(provider_user_id=CONTACT, display_name="Ana"),
            message=InboundText(text=text),
            received_at=datetime.now(UTC),
        ),
        tenant_id=TENANT,
        conversation_id=f"{CHANNEL}:{CONTACT}",
    )


@pytest.mark.slow
async def test_a_worker_killed_between_the_tool_call_and_the_reply_leaves_one_reply(
    redis: aioredis.Redis,
    keys: KeySpace,
    redis_url: str,
    namespace: str,
    pg_pool: asyncpg.Pool,
    pg_dsn: str,
    tmp_path: Path,
) -> None:
    async with GenericAppServer(SECRET) as app, ScriptedOpenAIServer() as llm:
        config = tmp_path / "atende.yaml"
        config.write_text(_config(app))
        channels = load_yaml_model(config, AtendeConfig, {"APP_SECRET": SECRET})
        async with pg_pool.acquire() as conn:
            await record_tenants_and_channels(conn, channels)
        env = {
            **os.environ,
            "REDIS_URL": redis_url,
            "DATABASE_URL": pg_dsn,
            "ATENDE_NAMESPACE": namespace,
            "ATENDE_CONFIG": str(config),
            "ATENDE_DATA_DIR": str(tmp_path / "data"),
            "ATENDE_HTTP_PORT": "0",
            "ATENDE_STREAM_PARTITIONS": str(PARTITIONS),
            "ATENDE_CLAIM_IDLE_MS": "1000",
            "ATENDE_BLOCK_MS": "100",
            "ATENDE_RETRY_MAX_MS": "500",
            "APP_SECRET": SECRET,
            "OPENAI_API_KEY": API_KEY,
            "OPENAI_BASE_URL": llm.base_url,
        }
        llm.script(
            ToolCalls(Call("knowledge__search", {"query": "preço"}, id="call-1")),
            Hang(),  # the first worker dies waiting for this answer
            lambda seen: Text("Resposta depois da queda."),
        )
        log = tmp_path / "workers.log"
        publisher = Publisher(redis, keys, partitions=PARTITIONS)
        async with _worker(env, log) as first:
            await publisher.publish(_inbound("quanto custa uma limpeza?"))

            async def asked_after_the_tool() -> bool:
                return len(llm.requests) >= 2

            await eventually(asked_after_the_tool, timeout_s=60, what="the second model call")
            first.kill()
            await first.wait()

        async with _worker(env, log):

            async def answered() -> bool:
                return len(app.requests) >= 1 and await _turns_closed(pg_pool)

            await eventually(answered, timeout_s=60, what="the resumed turn's reply")
            await asyncio.sleep(1.0)  # a second reply, if any, would arrive by now

        assert len(app.requests) == 1, log.read_text()[-3000:]
        assert app.requests[0].json()["parts"][0]["text"] == "Resposta depois da queda."
        statuses = [r["status"] for r in await pg_pool.fetch("SELECT status FROM turns")]
        assert statuses == ["completed"], "one turn, resumed in place"
        sent = await pg_pool.fetchval(
            "SELECT count(*) FROM messages WHERE direction = 'out' AND delivery_status = 'sent'"
        )
        assert sent == 1


async def _turns_closed(pool: asyncpg.Pool) -> bool:
    rows = await pool.fetch("SELECT status FROM turns")
    return bool(rows) and all(row["status"] != "opened" for row in rows)
