"""Delivery statuses on real Redis and Postgres: forward only, failed is final, once each."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from consumers.delivery_status import consumer as status_consumer
from delivery.statuses import OutboundStatuses
from events.catalog import CATALOG
from events.envelope import Envelope
from events.streams import DELIVERY_STATUS_UPDATED
from events.types.delivery import DeliveryError, DeliveryStatus, DeliveryStatusUpdated
from libs.keys import KeySpace
from libs.resources import Resources
from libs.streams import Publisher
from tests.consumer_support import consumers_running
from tests.streams_support import eventually, fast_settings

TENANT, OTHER_TENANT, CHANNEL, CONTACT = "clinic", "bakery", "wa-main", "5511987654321"
CONVERSATION = f"{CHANNEL}:{CONTACT}"
WAMID = "wamid.HBgLNTUxMTk4NzY1NDMyMRUCABEYEjQ"
PARTITIONS = 4


async def seed_tenant(pool: asyncpg.Pool, tenant_id: str) -> None:
    """A tenant with one WhatsApp channel, one conversation and one message sent in it."""
    await pool.execute("INSERT INTO tenants (tenant_id, name) VALUES ($1, $1)", tenant_id)
    await pool.execute(
        "INSERT INTO channels (tenant_id, channel_id, provider, external_id) "
        "VALUES ($1, $2, 'whatsapp', $3)",
        tenant_id,
        CHANNEL,
        f"pn-{tenant_id}",  # a phone number belongs to one tenant; a provider id may repeat
    )
    await pool.execute(
        "INSERT INTO contacts (tenant_id, contact_id, provider, provider_contact_id) "
        "VALUES ($1, 'k1', 'whatsapp', $2)",
        tenant_id,
        CONTACT,
    )
    await pool.execute(
        "INSERT INTO conversations (tenant_id, conversation_id, channel_id, contact_id) "
        "VALUES ($1, $2, $3, 'k1')",
        tenant_id,
        CONVERSATION,
        CHANNEL,
    )
    await pool.execute(
        "INSERT INTO messages (tenant_id, message_id, conversation_id, channel_id, direction, "
        "provider_message_id, kind, body, delivery_status) "
        "VALUES ($1, 'm1', $2, $3, 'out', $4, 'text', '{\"text\": \"Olá!\"}', 'sent')",
        tenant_id,
        CONVERSATION,
        CHANNEL,
        WAMID,
    )


def status_event(
    status: DeliveryStatus,
    *,
    provider_message_id: str = WAMID,
    error: DeliveryError | None = None,
) -> Envelope[DeliveryStatusUpdated]:
    payload = DeliveryStatusUpdated(
        channel_id=CHANNEL, provider_message_id=provider_message_id, status=status, error=error
    )
    return Envelope.new(payload, tenant_id=TENANT, conversation_id=CONVERSATION)


def counted(status: str, outcome: str) -> float:
    """``delivery_statuses_total`` for one status and outcome (counters only grow)."""
    value = REGISTRY.get_sample_value(
        "delivery_statuses_total", {"status": status, "outcome": outcome}
    )
    return value or 0.0


class Handled:
    """Waits until the consumer has counted given statuses, relative to when it was made."""

    def __init__(self) -> None:
        self._start: dict[tuple[str, str], float] = {}

    def mark(self, status: str, outcome: str) -> None:
        self._start[status, outcome] = counted(status, outcome)

    def since(self, status: str, outcome: str) -> float:
        return counted(status, outcome) - self._start[status, outcome]

    async def wait(self, status: str, outcome: str, times: int = 1) -> None:
        async def reached() -> bool:
            return self.since(status, outcome) >= times

        await eventually(reached, what=f"{times} {status} status(es) {outcome}")


async def stored(pool: asyncpg.Pool, tenant_id: str = TENANT) -> tuple[str, dict[str, Any]]:
    row = await pool.fetchrow(
        "SELECT delivery_status, body FROM messages WHERE tenant_id = $1 AND message_id = 'm1'",
        tenant_id,
    )
    assert row is not None
    return row["delivery_status"], json.loads(row["body"])


@pytest.fixture
async def running(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool
) -> AsyncIterator[Publisher]:
    """The delivery-status consumer running over two tenants' messages with the same wamid."""
    await seed_tenant(pg_pool, TENANT)
    await seed_tenant(pg_pool, OTHER_TENANT)
    settings = fast_settings(stream_partitions=PARTITIONS, claim_idle_ms=2_000)
    publisher = Publisher(redis, keys, partitions=PARTITIONS)
    resources = Resources(settings, redis, keys, CATALOG, publisher, pg_pool, {})
    async with consumers_running([status_consumer], resources):
        yield publisher


async def unsettled(redis: aioredis.Redis, keys: KeySpace) -> int:
    """Status entries delivered to the group and not acknowledged, plus dead letters."""
    total = 0
    for partition in range(PARTITIONS):
        key = keys.stream(DELIVERY_STATUS_UPDATED, partition)
        if await redis.exists(key):
            summary = await redis.xpending(key, status_consumer.group_name)
            total += int(summary["pending"])
        total += int(await redis.xlen(keys.dead_letters(DELIVERY_STATUS_UPDATED, partition)))
    return total


async def test_sent_delivered_read_move_the_message_forward(
    running: Publisher, pg_pool: asyncpg.Pool
) -> None:
    handled = Handled()
    for status in ("delivered", "read"):
        handled.mark(status, "applied")
    await running.publish(status_event("delivered"))
    await handled.wait("delivered", "applied")
    assert (await stored(pg_pool))[0] == "delivered"
    await running.publish(status_event("read"))
    await handled.wait("read", "applied")
    assert await stored(pg_pool) == ("read", {"text": "Olá!"})


async def test_a_late_delivered_after_read_changes_nothing(
    running: Publisher, pg_pool: asyncpg.Pool
) -> None:
    handled = Handled()
    handled.mark("read", "applied")
    handled.mark("delivered", "stale")
    await running.publish(status_event("read"))
    await handled.wait("read", "applied")
    await running.publish(status_event("delivered"))
    await handled.wait("delivered", "stale")
    assert (await stored(pg_pool))[0] == "read"


async def test_failed_keeps_its_error_and_is_final(
    running: Publisher, pg_pool: asyncpg.Pool
) -> None:
    handled = Handled()
    handled.mark("failed", "applied")
    handled.mark("read", "stale")
    error = DeliveryError(code="131047", title="Re-engagement message")
    await running.publish(status_event("failed", error=error))
    await handled.wait("failed", "applied")
    await running.publish(status_event("read"))
    await handled.wait("read", "stale")
    status, body = await stored(pg_pool)
    assert status == "failed"
    assert body == {
        "text": "Olá!",
        "delivery_error": {"code": "131047", "title": "Re-engagement message"},
    }


async def test_a_status_for_an_unknown_message_is_acknowledged_and_writes_nothing(
    running: Publisher,
    pg_pool: asyncpg.Pool,
    redis: aioredis.Redis,
    keys: KeySpace,
    log_lines: io.StringIO,
) -> None:
    before = await pg_pool.fetch("SELECT * FROM messages ORDER BY tenant_id, message_id")
    handled = Handled()
    handled.mark("read", "unknown")
    await running.publish(status_event("read", provider_message_id="wamid.sent-by-a-person"))
    await handled.wait("read", "unknown")

    async def settled() -> bool:
        return await unsettled(redis, keys) == 0

    await eventually(settled, what="the status acknowledged, not dead-lettered")
    after = await pg_pool.fetch("SELECT * FROM messages ORDER BY tenant_id, message_id")
    assert after == before
    logged = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    mine = [e for e in logged if e.get("provider_message_id") == "wamid.sent-by-a-person"]
    assert [e["level"] for e in mine] == ["info", "info"], "looked twice, then acknowledged"
    assert mine[-1]["event"] == "delivery status for a message atende did not send"


async def test_the_same_status_twice_changes_the_message_once(
    running: Publisher, pg_pool: asyncpg.Pool
) -> None:
    handled = Handled()
    handled.mark("delivered", "applied")
    handled.mark("delivered", "stale")
    event = status_event("delivered")
    await running.publish_many([event, event])  # a redelivered status
    await handled.wait("delivered", "applied")
    await handled.wait("delivered", "stale")
    assert handled.since("delivered", "applied") == 1
    assert (await stored(pg_pool))[0] == "delivered"


async def test_another_tenants_message_with_the_same_provider_id_is_untouched(
    running: Publisher, pg_pool: asyncpg.Pool
) -> None:
    handled = Handled()
    handled.mark("read", "applied")
    await running.publish(status_event("read"))
    await handled.wait("read", "applied")
    assert (await stored(pg_pool, TENANT))[0] == "read"
    assert (await stored(pg_pool, OTHER_TENANT))[0] == "sent"


async def test_racing_statuses_of_one_message_end_at_the_furthest(pg_pool: asyncpg.Pool) -> None:
    await seed_tenant(pg_pool, TENANT)
    statuses = OutboundStatuses(pg_pool)
    order: list[DeliveryStatus] = ["read", "delivered", "sent", "delivered", "read"] * 4
    outcomes = await asyncio.gather(
        *(statuses.record(TENANT, status_event(s).payload) for s in order)
    )
    assert (await stored(pg_pool))[0] == "read"
    assert outcomes.count("applied") <= 2, "sent is stored already: at most delivered, read"
    assert "unknown" not in outcomes


async def test_a_status_that_overtakes_the_sends_bookkeeping_is_applied_on_a_second_look(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool, log_lines: io.StringIO
) -> None:
    await seed_tenant(pg_pool, TENANT)
    await pg_pool.execute(
        "INSERT INTO messages (tenant_id, message_id, conversation_id, channel_id, direction, "
        "kind, body, delivery_status) "
        "VALUES ($1, 'm2', $2, $3, 'out', 'text', '{}', 'pending')",
        TENANT,
        CONVERSATION,
        CHANNEL,
    )
    settings = fast_settings(stream_partitions=PARTITIONS, claim_idle_ms=5_000, retry_max_ms=3_000)
    publisher = Publisher(redis, keys, partitions=PARTITIONS)
    resources = Resources(settings, redis, keys, CATALOG, publisher, pg_pool, {})
    async with consumers_running([status_consumer], resources):
        late = status_event("delivered")
        late = late.model_copy(
            update={"payload": late.payload.model_copy(update={"provider_message_id": "wamid.new"})}
        )
        await publisher.publish(late)

        async def looked_once() -> bool:
            return "will look again" in log_lines.getvalue()

        await eventually(looked_once, what="the first look to find nothing")
        # Delivery writes the id the provider gave back (Outbox.sent) only now.
        await pg_pool.execute(
            "UPDATE messages SET provider_message_id = 'wamid.new', delivery_status = 'sent' "
            "WHERE message_id = 'm2'"
        )

        async def applied() -> bool:
            status = await pg_pool.fetchval(
                "SELECT delivery_status FROM messages WHERE message_id = 'm2'"
            )
            return bool(status == "delivered")

        await eventually(applied, what="the second look to apply the status")
