"""What a configured channel can do beside sending replies, found through its provider.

``ChannelCapabilities`` builds, once per channel and on first use, the channel's typing
indicator and its agent inbox (``channels.provider``: ``TypingIndicator``, ``AgentInbox``)
on one HTTP session. A provider that declares neither has ``None`` for it, so callers skip it
without naming providers. The agent inbox shares the channel's breaker and retry policy (it
matters as much as a reply); the typing indicator gets neither: it is a hint worth one short
try, and its failures must never open the breaker that replies go through.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import redis.asyncio as aioredis
import structlog

from channels.config import Channel, ChannelsConfig
from channels.provider import AgentInbox, TypingIndicator
from channels.registry import PROVIDERS
from channels.send_breaker import channel_breaker
from channels.send_retry import SendRetryPolicy
from channels.sending_fields import ChannelCannotSend
from delivery.senders import retry_policy
from libs.keys import KeySpace

_log = structlog.get_logger("atende.delivery")

TYPING_TIMEOUT_S = 3.0
_ONE_TRY = SendRetryPolicy(max_attempts=1)


class ChannelCapabilities:
    """Typing indicators and agent inboxes of every configured channel."""

    def __init__(self, config: ChannelsConfig, *, redis: aioredis.Redis, keys: KeySpace) -> None:
        self._channels: dict[tuple[str, str], Channel] = {
            (tenant.id, channel.id): channel
            for tenant in config.tenants
            for channel in tenant.channels
        }
        self._redis = redis
        self._keys = keys
        self._session: aiohttp.ClientSession | None = None
        self._built: dict[tuple[str, str, str], Any] = {}
        self._lock = asyncio.Lock()

    async def typing(self, tenant_id: str, channel_id: str) -> TypingIndicator | None:
        """The channel's typing indicator; ``None`` when its provider has none."""
        found: TypingIndicator | None = await self._get("typing", tenant_id, channel_id)
        return found

    async def agent_inbox(self, tenant_id: str, channel_id: str) -> AgentInbox | None:
        """Where the channel's conversations open for human agents; ``None`` when nowhere."""
        found: AgentInbox | None = await self._get("agent_inbox", tenant_id, channel_id)
        return found

    async def aclose(self) -> None:
        """Close the HTTP session."""
        self._built.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _get(self, kind: str, tenant_id: str, channel_id: str) -> Any:
        key = (kind, tenant_id, channel_id)
        if key in self._built:
            return self._built[key]
        async with self._lock:
            if key not in self._built:
                self._built[key] = self._build(kind, self._channels.get((tenant_id, channel_id)))
        return self._built[key]

    def _build(self, kind: str, channel: Channel | None) -> Any:
        if channel is None:
            return None
        provider = PROVIDERS.of(channel)
        try:
            if kind == "typing":
                factory: Any = provider.prepare_typing(channel)
            else:
                factory = provider.prepare_agent_inbox(channel)
        except ChannelCannotSend as exc:
            _log.warning("channel cannot send; skipped", channel=channel.id, capability=kind)
            _log.debug("what it lacks", lacks=exc.lacks)
            return None
        if factory is None:
            return None
        if self._session is None:
            self._session = aiohttp.ClientSession()
        if kind == "typing":
            return factory(self._session, retry=_ONE_TRY, timeout_s=TYPING_TIMEOUT_S)
        policy = channel.sending
        breaker = channel_breaker(
            self._redis,
            self._keys,
            channel.id,
            fail_max=policy.breaker_fail_max,
            reset_timeout_s=policy.breaker_reset_timeout_s,
        )
        return factory(
            self._session, breaker=breaker, retry=retry_policy(policy), timeout_s=policy.timeout_s
        )
