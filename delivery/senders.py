"""From configured channels to ready senders: address, credentials, breaker and retries.

``prepare_sender`` asks the channel's provider (``channels.registry``) for its sender, or
raises ``ChannelCannotSend`` naming every field sending still needs; ``sending_problems``
reports those for a whole file (a channel may receive webhooks without being able to answer),
and ``OutboundSenders`` builds one sender per channel that can send, each with its own shared
breaker, the retry policy of its ``sending`` section and its pacing per recipient (the
channel's ``sending.recipient_pace``, else its provider's documented limit) kept in Redis.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

import aiohttp
import redis.asyncio as aioredis

from channels.base_config import SendingPolicy
from channels.config import Channel, ChannelsConfig, TenantConfig
from channels.outbound import ChannelSender
from channels.provider import SenderFactory
from channels.registry import PROVIDERS
from channels.send_breaker import channel_breaker
from channels.send_pacing import PaceClock, RecipientPacer, RedisRecipientPacer
from channels.send_retry import SendRetryPolicy
from channels.sending_fields import ChannelCannotSend
from libs.errors import AtendeError
from libs.keys import KeySpace


class UnknownChannel(AtendeError):
    """A reply names a channel its tenant has not configured."""


def prepare_sender(channel: Channel) -> SenderFactory:
    """The sender of ``channel``, waiting for a session; ``ChannelCannotSend`` names what lacks."""
    return PROVIDERS.of(channel).prepare_sender(channel)


def sending_problems(config: ChannelsConfig) -> list[str]:
    """What each channel lacks for sending, one sentence per field; empty when all can send.

    E.g. ``tenants[0].channels[1].secrets.bot_token: missing; replies cannot be sent ...``.
    """
    problems: list[str] = []
    for t, tenant in enumerate(config.tenants):
        for c, channel in enumerate(tenant.channels):
            try:
                prepare_sender(channel)
            except ChannelCannotSend as exc:
                where = f"tenants[{t}].channels[{c}]"
                problems.extend(
                    f"{where}.{field}: {what}" if field else f"{where}: {what}"
                    for field, what in exc.lacks
                )
    return problems


def retry_policy(policy: SendingPolicy) -> SendRetryPolicy:
    """The retry policy a channel's ``sending`` section describes."""
    return SendRetryPolicy(
        max_attempts=policy.max_attempts,
        max_total_s=policy.max_total_s,
        backoff_initial_s=policy.backoff_initial_s,
        backoff_max_s=policy.backoff_max_s,
    )


def build_sender(
    tenant: TenantConfig,
    channel: Channel,
    *,
    session: aiohttp.ClientSession,
    redis: aioredis.Redis,
    keys: KeySpace,
    partitions: int = 1,
    pace_clock: PaceClock | None = None,
) -> ChannelSender:
    """A ready sender for ``channel`` of ``tenant``, with its shared breaker, retries and pacing.

    ``partitions`` is the stream partition count (pacing keys carry the conversation's
    partition tag). Raises ``ChannelCannotSend`` (naming the tenant) when the channel lacks a
    sending field.
    """
    try:
        factory = prepare_sender(channel)
    except ChannelCannotSend as exc:
        raise ChannelCannotSend(channel, list(exc.lacks), tenant_id=tenant.id) from None
    policy = channel.sending
    breaker = channel_breaker(
        redis,
        keys,
        channel.id,
        fail_max=policy.breaker_fail_max,
        reset_timeout_s=policy.breaker_reset_timeout_s,
    )
    pace = channel.recipient_pace()
    pacer: RecipientPacer | None = None
    if pace is not None:
        pacer = RedisRecipientPacer(
            redis,
            keys,
            tenant_id=tenant.id,
            channel_id=channel.id,
            pace=pace,
            partitions=partitions,
            clock=pace_clock,
        )
    return factory(
        session,
        breaker=breaker,
        retry=retry_policy(policy),
        timeout_s=policy.timeout_s,
        pacer=pacer,
    )


class OutboundSenders:
    """The sender of every configured channel, built once on entry, found by tenant and channel.

    Without a ``session`` it opens its own ``aiohttp.ClientSession`` and closes it on exit; a
    given session stays open. ``partitions`` (the stream partition count) places each pacing
    key under its conversation's partition tag; ``pace_clock`` lets tests move time by hand.
    A channel that cannot send is kept with its problems, so a reply through it fails saying
    what to configure rather than that the channel is unknown.
    """

    def __init__(
        self,
        config: ChannelsConfig,
        *,
        redis: aioredis.Redis,
        keys: KeySpace,
        session: aiohttp.ClientSession | None = None,
        partitions: int = 1,
        pace_clock: PaceClock | None = None,
    ) -> None:
        self._config = config
        self._partitions = partitions
        self._pace_clock = pace_clock
        self._redis = redis
        self._keys = keys
        self._session = session
        self._owns_session = session is None
        self._senders: dict[tuple[str, str], ChannelSender] = {}
        self._unable: dict[tuple[str, str], ChannelCannotSend] = {}
        self._started = False

    async def __aenter__(self) -> Self:
        if self._started:
            raise RuntimeError("OutboundSenders is already started")
        session = self._session
        if session is None:
            session = self._session = aiohttp.ClientSession()
        for tenant in self._config.tenants:
            for channel in tenant.channels:
                key = (tenant.id, channel.id)
                try:
                    self._senders[key] = build_sender(
                        tenant,
                        channel,
                        session=session,
                        redis=self._redis,
                        keys=self._keys,
                        partitions=self._partitions,
                        pace_clock=self._pace_clock,
                    )
                except ChannelCannotSend as exc:
                    self._unable[key] = exc
        self._started = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP session if this object opened it; lookups fail afterwards."""
        self._senders.clear()
        self._unable.clear()
        self._started = False
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    def get(self, tenant_id: str, channel_id: str) -> ChannelSender:
        """The sender of ``channel_id`` of ``tenant_id``.

        Raises ``UnknownChannel`` when the tenant has no such channel (another tenant's channel
        included) and ``ChannelCannotSend`` when the channel lacks a sending field.
        """
        if not self._started:
            raise RuntimeError("OutboundSenders is not started; enter it with 'async with'")
        key = (tenant_id, channel_id)
        if key in self._senders:
            return self._senders[key]
        if key in self._unable:
            raise self._unable[key]
        raise UnknownChannel(self._unknown(tenant_id, channel_id))

    def _unknown(self, tenant_id: str, channel_id: str) -> str:
        for tenant in self._config.tenants:
            if tenant.id == tenant_id:
                # Only the tenant's own channels are listed: ids of others stay private.
                own = ", ".join(channel.id for channel in tenant.channels) or "none"
                return (
                    f"tenant '{tenant_id}' has no channel '{channel_id}' to send through; "
                    f"its channels: {own}"
                )
        return f"no tenant '{tenant_id}' is configured, so channel '{channel_id}' cannot send"
