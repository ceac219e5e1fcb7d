"""Dedup keys come from signed content: what is not signed cannot make a webhook new again.

A captured webhook may be replayed within a provider's replay window with anything that its
signature does not cover changed: other headers (Chatwoot's delivery id, a request id, a trace
context) and, where the URL is not signed, the query string. Each such replay is answered as a
duplicate (or refused), and the channel's stream holds one event.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis.asyncio as aioredis
from aiohttp import ClientSession

from events.streams import INBOX_MESSAGE_RECEIVED
from libs.keys import KeySpace
from tests.openapi_support import CHANNEL_IDS, ServedIngress, served_ingress, signed_webhooks

PARTITIONS = 2  # as served_ingress builds the app


@pytest.fixture
def ingress(redis_url: str, keys: KeySpace) -> Iterator[ServedIngress]:
    """The ingress with one channel of every provider, on a local port."""
    with served_ingress(redis_url, keys) as served:
        yield served


async def inbox_events(redis: aioredis.Redis, keys: KeySpace) -> int:
    """Events in every partition of the inbox stream."""
    streams = [keys.stream(INBOX_MESSAGE_RECEIVED, p) for p in range(PARTITIONS)]
    return sum([await redis.xlen(stream) for stream in streams])


def unsigned_changes(delivery: str) -> dict[str, str]:
    """Headers no provider signs, with values a replay is free to pick."""
    return {
        "X-Chatwoot-Delivery": delivery,
        "X-Request-Id": delivery,
        "User-Agent": f"replayer/{delivery}",
        "traceparent": f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01",
    }


async def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    """POST ``body``; the status and the answer's text."""
    async with ClientSession() as http, http.post(url, data=body, headers=headers) as response:
        return response.status, await response.text()


async def test_a_chatwoot_webhook_replayed_with_fresh_delivery_ids_is_one_event(
    ingress: ServedIngress, redis: aioredis.Redis, keys: KeySpace
) -> None:
    [webhook] = [w for w in signed_webhooks(ingress.base_url) if w.provider == "chatwoot"]
    statuses = []
    for delivery in ("delivery-1", "delivery-2", "delivery-3", "delivery-4"):
        headers = {**webhook.headers, "X-Chatwoot-Delivery": delivery}
        statuses.append((await post(ingress.base_url + webhook.path, webhook.body, headers))[0])
    assert statuses == [200] * 4
    assert await inbox_events(redis, keys) == 1


@pytest.mark.parametrize("provider", sorted(CHANNEL_IDS))
async def test_changing_only_unsigned_parts_never_makes_a_second_event(
    ingress: ServedIngress, redis: aioredis.Redis, keys: KeySpace, provider: str
) -> None:
    [webhook] = [w for w in signed_webhooks(ingress.base_url) if w.provider == provider]
    url = ingress.base_url + webhook.path
    status, answer = await post(url, webhook.body, webhook.headers)
    assert status == 200, answer
    stored = await inbox_events(redis, keys)
    assert stored >= 1

    for n in range(3):
        headers = {**webhook.headers, **unsigned_changes(f"replay-{n}")}
        status, answer = await post(url, webhook.body, headers)
        assert status == 200, answer
        assert '"duplicate"' in answer, answer
        # The query string: Twilio signs the URL (the replay is refused), the others do not.
        status, answer = await post(f"{url}?replay={n}", webhook.body, headers)
        assert (status, '"duplicate"' in answer) in {(200, True), (401, False)}, answer
        if provider != "twilio":
            assert status == 200, answer
    assert await inbox_events(redis, keys) == stored
