"""The config file's tenants and channels in Postgres: recorded once, updated, disabled."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis
from typer.testing import CliRunner

from atende.cli import app
from atende.composition import open_resources
from atende.servers import ServerUrls
from channels.config import ChannelsConfig
from channels.directory import Recorded, record_tenants_and_channels
from libs.errors import ConfigurationError
from tests.streams_support import fast_settings

ENV = {
    "WA_SECRET": "app-secret",
    "WA_VERIFY": "verify-me",
    "TG_SECRET": "tg-secret",
    "TG_BOT": "123456789:AAbbCCdd-EEff",
    "TW_TOKEN": "tw-token",
    "CW_SECRET": "cw-secret",
    "APP_SECRET": "app-signing-secret",
}
WHATSAPP = {
    "id": "wa-main",
    "provider": "whatsapp",
    "phone_number_id": "106540352242922",
    "secrets": {"app_secret": {"env": "WA_SECRET"}, "verify_token": {"env": "WA_VERIFY"}},
}
TELEGRAM = {
    "id": "tg-bot",
    "provider": "telegram",
    "secrets": {"secret_token": {"env": "TG_SECRET"}, "bot_token": {"env": "TG_BOT"}},
}
TWILIO = {
    "id": "sms",
    "provider": "twilio",
    "sender": "+15550001111",
    "secrets": {"auth_token": {"env": "TW_TOKEN"}},
}
CHATWOOT = {
    "id": "cw-inbox",
    "provider": "chatwoot",
    "inbox_id": 42,
    "secrets": {"webhook_secret": {"env": "CW_SECRET"}},
}
GENERIC = {"id": "app", "provider": "generic", "secrets": {"signing_secret": {"env": "APP_SECRET"}}}

_ROWS = """
SELECT tenant_id, channel_id, provider, external_id, enabled, updated_at
FROM channels ORDER BY tenant_id, channel_id
"""


def config(*tenants: dict[str, Any]) -> ChannelsConfig:
    """A tenants section of these tenants."""
    return ChannelsConfig.model_validate({"tenants": list(tenants)}, context={"env": ENV})


def tenant(tenant_id: str, *channels: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    """A tenant entry with these channels."""
    return {"id": tenant_id, "name": name, "channels": list(channels)}


async def record(pool: asyncpg.Pool, declared: ChannelsConfig) -> Recorded:
    async with pool.acquire() as conn:
        return await record_tenants_and_channels(conn, declared)


async def rows(pool: asyncpg.Pool) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in await pool.fetch(_ROWS)]


async def test_each_provider_records_its_account_id(pg_pool: asyncpg.Pool) -> None:
    declared = config(tenant("acme", WHATSAPP, TELEGRAM, TWILIO, CHATWOOT, GENERIC))

    await record(pg_pool, declared)

    found = {(row[1], row[2], row[3], row[4]) for row in await rows(pg_pool)}
    assert found == {
        ("app", "generic", "app", True),
        ("cw-inbox", "chatwoot", "42", True),
        ("sms", "twilio", "+15550001111", True),
        ("tg-bot", "telegram", "123456789", True),
        ("wa-main", "whatsapp", "106540352242922", True),
    }
    assert await pg_pool.fetchval("SELECT name FROM tenants WHERE tenant_id = 'acme'") == "acme"


async def test_a_channel_without_its_account_id_records_its_channel_id(
    pg_pool: asyncpg.Pool,
) -> None:
    receive_only = {**WHATSAPP, "phone_number_id": None}
    telegram = {**TELEGRAM, "secrets": {"secret_token": {"env": "TG_SECRET"}}}

    await record(pg_pool, config(tenant("acme", receive_only, telegram)))

    assert [(row[1], row[3]) for row in await rows(pg_pool)] == [
        ("tg-bot", "tg-bot"),
        ("wa-main", "wa-main"),
    ]


async def test_recording_twice_leaves_the_same_rows(pg_pool: asyncpg.Pool) -> None:
    declared = config(tenant("acme", WHATSAPP, TELEGRAM, name="Acme Dental"))
    first = await record(pg_pool, declared)
    before = await rows(pg_pool)
    tenants_before = await pg_pool.fetch("SELECT * FROM tenants")

    second = await record(pg_pool, declared)

    assert first == Recorded(tenants=1, channels=2, disabled=0)
    assert second == Recorded(tenants=0, channels=0, disabled=0)
    assert await rows(pg_pool) == before
    assert await pg_pool.fetch("SELECT * FROM tenants") == tenants_before


async def test_a_changed_channel_updates_its_row(pg_pool: asyncpg.Pool) -> None:
    await record(pg_pool, config(tenant("acme", WHATSAPP, TWILIO)))
    [sms_before, wa_before] = await rows(pg_pool)

    moved = {**WHATSAPP, "phone_number_id": "999888777666"}
    recorded = await record(pg_pool, config(tenant("acme", moved, TWILIO, name="Acme")))

    [sms_after, wa_after] = await rows(pg_pool)
    assert recorded == Recorded(tenants=1, channels=1, disabled=0)
    assert wa_after[3] == "999888777666"
    assert wa_after[5] > wa_before[5]
    assert sms_after == sms_before
    assert await pg_pool.fetchval("SELECT name FROM tenants WHERE tenant_id = 'acme'") == "Acme"


async def test_a_tenant_without_a_name_keeps_the_one_recorded(pg_pool: asyncpg.Pool) -> None:
    await record(pg_pool, config(tenant("acme", name="Acme Dental")))
    await record(pg_pool, config(tenant("acme")))
    assert await pg_pool.fetchval("SELECT name FROM tenants") == "Acme Dental"


async def test_a_removed_channel_is_disabled_and_kept_until_declared_again(
    pg_pool: asyncpg.Pool,
) -> None:
    await record(pg_pool, config(tenant("acme", WHATSAPP, TELEGRAM)))

    recorded = await record(pg_pool, config(tenant("acme", WHATSAPP)))

    assert recorded == Recorded(tenants=0, channels=0, disabled=1)
    assert [(row[1], row[4]) for row in await rows(pg_pool)] == [
        ("tg-bot", False),
        ("wa-main", True),
    ]
    await record(pg_pool, config(tenant("acme", WHATSAPP, TELEGRAM)))
    assert all(row[4] for row in await rows(pg_pool))


async def test_a_channel_moved_to_another_tenant_takes_its_account_along(
    pg_pool: asyncpg.Pool,
) -> None:
    await record(pg_pool, config(tenant("acme", WHATSAPP)))

    await record(pg_pool, config(tenant("acme"), tenant("beta", {**WHATSAPP, "id": "wa-beta"})))

    [old, new] = await rows(pg_pool)
    assert (old[0], old[1], old[4]) == ("acme", "wa-main", False)
    assert old[3].startswith("retired:")
    assert (new[0], new[1], new[3], new[4]) == ("beta", "wa-beta", "106540352242922", True)


async def test_two_channels_of_one_account_are_refused_naming_both(pg_pool: asyncpg.Pool) -> None:
    twice = config(tenant("acme", WHATSAPP, {**WHATSAPP, "id": "wa-again"}))
    with pytest.raises(ConfigurationError, match="'wa-main' and 'wa-again' are the same whatsapp"):
        await record(pg_pool, twice)
    assert await rows(pg_pool) == []


async def test_a_file_without_tenants_changes_nothing(pg_pool: asyncpg.Pool) -> None:
    await record(pg_pool, config(tenant("acme", WHATSAPP)))
    assert await record(pg_pool, config()) == Recorded(0, 0, 0)
    assert [row[4] for row in await rows(pg_pool)] == [True]


async def test_a_process_records_its_config_once_migrated(
    pg_dsn: str, pg_pool: asyncpg.Pool, redis: aioredis.Redis, redis_url: str, namespace: str
) -> None:
    settings = fast_settings(namespace=namespace)
    declared = config(tenant("acme", WHATSAPP))
    async with open_resources(settings, ServerUrls(redis_url, pg_dsn), {"tenants": declared}):
        pass
    assert [(row[1], row[3]) for row in await rows(pg_pool)] == [("wa-main", "106540352242922")]


async def test_atende_migrate_records_the_config_file(pg_empty_dsn: str, tmp_path: Path) -> None:
    path = tmp_path / "atende.yaml"
    path.write_text(
        "tenants:\n"
        "  - id: demo\n"
        "    channels:\n"
        "      - {id: app, provider: generic, secrets: {signing_secret: {env: APP_SECRET}}}\n",
        encoding="utf-8",
    )
    env = {"DATABASE_URL": pg_empty_dsn, "ATENDE_CONFIG": str(path), "APP_SECRET": "s"}

    result = await asyncio.to_thread(CliRunner().invoke, app, ["migrate"], env=env)

    assert result.exit_code == 0, result.output
    assert "1 tenant(s) and 1 channel(s) written, 0 channel(s) disabled" in result.output
    conn = await asyncpg.connect(pg_empty_dsn)
    try:
        found = await conn.fetch("SELECT tenant_id, channel_id, external_id FROM channels")
    finally:
        await conn.close()
    assert [tuple(row) for row in found] == [("demo", "app", "app")]
