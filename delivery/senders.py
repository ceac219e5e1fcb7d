"""From configured channels to ready senders: address, credentials, breaker and retries.

``sending_config`` turns a channel of the config file into its sender's settings, or raises
``ChannelCannotSend`` naming every field sending still needs; ``sending_problems`` reports
those for a whole file (a channel may receive webhooks without being able to answer), and
``OutboundSenders`` builds one sender per channel that can send, each with its own shared
breaker and the retry policy of its ``sending`` section.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

import aiohttp
import redis.asyncio as aioredis

from channels.base_config import SendingPolicy
from channels.chatwoot.config import ChatwootChannel
from channels.chatwoot.outbound import ChatwootConfig, ChatwootSender
from channels.config import Channel, ChannelsConfig, TenantConfig
from channels.generic.config import GenericChannel
from channels.generic.outbound import GenericConfig, GenericSender
from channels.send_breaker import ChannelBreaker, channel_breaker
from channels.send_retry import RetryPolicy
from channels.telegram.config import TelegramChannel
from channels.telegram.outbound import TelegramConfig, TelegramSender
from channels.twilio.config import TwilioChannel
from channels.twilio.outbound import TwilioConfig, TwilioSender
from channels.whatsapp.config import WhatsAppChannel
from channels.whatsapp.outbound import WhatsAppCloudConfig, WhatsAppCloudSender
from libs.errors import AtendeError, ConfigurationError
from libs.keys import KeySpace

Sender = WhatsAppCloudSender | TwilioSender | TelegramSender | ChatwootSender | GenericSender
SenderConfig = WhatsAppCloudConfig | TwilioConfig | TelegramConfig | ChatwootConfig | GenericConfig

Lack = tuple[str, str]
"""A field sending needs (its path inside the channel) and what it must hold."""


class ChannelCannotSend(ConfigurationError):
    """A configured channel lacks what sending needs; ``lacks`` lists (field, what) pairs."""

    def __init__(
        self, channel: Channel, lacks: list[Lack], *, tenant_id: str | None = None
    ) -> None:
        details = "; ".join(f"{field}: {what}" if field else what for field, what in lacks)
        of_tenant = f" of tenant '{tenant_id}'" if tenant_id is not None else ""
        super().__init__(
            f"{channel.provider} channel '{channel.id}'{of_tenant} cannot send: {details}"
        )
        self.channel_id = channel.id
        self.lacks = tuple(lacks)


class UnknownChannel(AtendeError):
    """A reply names a channel its tenant has not configured."""


def sending_config(channel: Channel) -> SenderConfig:
    """The sender settings of ``channel``; ``ChannelCannotSend`` names whatever is missing."""
    try:
        return _sending_config(channel)
    except ValueError as exc:  # the sender configs' own checks, e.g. a malformed bot token
        what = str(exc).removeprefix(f"{channel.provider} channel '{channel.id}': ")
        raise ChannelCannotSend(channel, [("", what)]) from None


def sending_problems(config: ChannelsConfig) -> list[str]:
    """What each channel lacks for sending, one sentence per field; empty when all can send.

    E.g. ``tenants[0].channels[1].secrets.bot_token: missing; replies cannot be sent ...``.
    """
    problems: list[str] = []
    for t, tenant in enumerate(config.tenants):
        for c, channel in enumerate(tenant.channels):
            try:
                sending_config(channel)
            except ChannelCannotSend as exc:
                where = f"tenants[{t}].channels[{c}]"
                problems.extend(
                    f"{where}.{field}: {what}" if field else f"{where}: {what}"
                    for field, what in exc.lacks
                )
    return problems


def retry_policy(policy: SendingPolicy) -> RetryPolicy:
    """The retry policy a channel's ``sending`` section describes."""
    return RetryPolicy(
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
) -> Sender:
    """A ready sender for ``channel`` of ``tenant``, with its shared breaker and retries.

    Raises ``ChannelCannotSend`` (naming the tenant) when the channel lacks a sending field.
    """
    try:
        config = sending_config(channel)
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
    return _construct(config, session, breaker, retry_policy(policy), policy.timeout_s)


def _construct(
    config: SenderConfig,
    session: aiohttp.ClientSession,
    breaker: ChannelBreaker,
    retry: RetryPolicy,
    timeout_s: float,
) -> Sender:
    if isinstance(config, WhatsAppCloudConfig):
        return WhatsAppCloudSender(
            config, session, breaker=breaker, retry=retry, timeout_s=timeout_s
        )
    if isinstance(config, TwilioConfig):
        return TwilioSender(config, session, breaker=breaker, retry=retry, timeout_s=timeout_s)
    if isinstance(config, TelegramConfig):
        return TelegramSender(config, session, breaker=breaker, retry=retry, timeout_s=timeout_s)
    if isinstance(config, ChatwootConfig):
        return ChatwootSender(config, session, breaker=breaker, retry=retry, timeout_s=timeout_s)
    return GenericSender(config, session, breaker=breaker, retry=retry, timeout_s=timeout_s)


def _sending_config(channel: Channel) -> SenderConfig:
    if isinstance(channel, WhatsAppChannel):
        return _whatsapp(channel)
    if isinstance(channel, TwilioChannel):
        return _twilio(channel)
    if isinstance(channel, TelegramChannel):
        return _telegram(channel)
    if isinstance(channel, ChatwootChannel):
        return _chatwoot(channel)
    return _generic(channel)


def _lacking(channel: Channel, *fields: tuple[str, object, str]) -> ChannelCannotSend:
    """The error for the ``(field, value, what it holds)`` entries whose value is unset."""
    lacks = [
        (field, f"missing; replies cannot be sent without {what}")
        for field, value, what in fields
        if value is None
    ]
    return ChannelCannotSend(channel, lacks)


def _whatsapp(channel: WhatsAppChannel) -> WhatsAppCloudConfig:
    number, token = channel.phone_number_id, channel.secrets.access_token
    if number is None or token is None:
        raise _lacking(
            channel,
            ("phone_number_id", number, "the number's Cloud API id"),
            ("secrets.access_token", token, "a Cloud API access token ({env: NAME})"),
        )
    return WhatsAppCloudConfig(
        channel_id=channel.id,
        phone_number_id=number,
        access_token=token.reveal(),
        api_version=channel.api_version,
        base_url=str(channel.api_base_url),
        list_button_label=channel.list_button_label,
    )


def _twilio(channel: TwilioChannel) -> TwilioConfig:
    account_sid, sender = channel.account_sid, channel.sender
    if account_sid is None or sender is None:
        raise _lacking(
            channel,
            ("account_sid", account_sid, "the account SID (AC…)"),
            ("sender", sender, "a From number, whatsapp:+… address or messaging service SID"),
        )
    callback = channel.status_callback_url or channel.public_url
    return TwilioConfig(
        channel_id=channel.id,
        account_sid=account_sid,
        auth_token=channel.secrets.auth_token.reveal(),
        sender=sender,
        whatsapp=channel.whatsapp,
        status_callback_url=str(callback) if callback is not None else None,
        base_url=str(channel.api_base_url),
        content_sids=dict(channel.content_sids),
    )


def _telegram(channel: TelegramChannel) -> TelegramConfig:
    token = channel.secrets.bot_token
    if token is None:
        raise _lacking(channel, ("secrets.bot_token", token, "the bot's token ({env: NAME})"))
    return TelegramConfig(
        channel_id=channel.id, bot_token=token.reveal(), base_url=str(channel.api_base_url)
    )


def _chatwoot(channel: ChatwootChannel) -> ChatwootConfig:
    base_url, account_id = channel.api_base_url, channel.account_id
    token = channel.secrets.api_access_token
    if base_url is None or account_id is None or token is None:
        raise _lacking(
            channel,
            ("api_base_url", base_url, "the Chatwoot installation's URL"),
            ("account_id", account_id, "the Chatwoot account id"),
            ("secrets.api_access_token", token, "an agent bot's access token ({env: NAME})"),
        )
    return ChatwootConfig(
        channel_id=channel.id,
        base_url=str(base_url),
        account_id=account_id,
        api_access_token=token.reveal(),
    )


def _generic(channel: GenericChannel) -> GenericConfig:
    if channel.callback_url is None:
        raise _lacking(channel, ("callback_url", None, "the app's URL that receives replies"))
    return GenericConfig(
        channel_id=channel.id,
        callback_url=str(channel.callback_url),
        signing_secret=channel.secrets.signing_secret.reveal(),
    )


class OutboundSenders:
    """The sender of every configured channel, built once on entry, found by tenant and channel.

    Without a ``session`` it opens its own ``aiohttp.ClientSession`` and closes it on exit; a
    given session stays open. A channel that cannot send is kept with its problems, so a reply
    through it fails saying what to configure rather than that the channel is unknown.
    """

    def __init__(
        self,
        config: ChannelsConfig,
        *,
        redis: aioredis.Redis,
        keys: KeySpace,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self._config = config
        self._redis = redis
        self._keys = keys
        self._session = session
        self._owns_session = session is None
        self._senders: dict[tuple[str, str], Sender] = {}
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
                        tenant, channel, session=session, redis=self._redis, keys=self._keys
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

    def get(self, tenant_id: str, channel_id: str) -> Sender:
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
