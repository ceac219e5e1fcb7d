"""What a provider's folder declares: one ``ChannelProvider``, which the registry collects.

``channels/<name>/__init__.py`` declares it at module level, as ``provider``: the provider's
name (the ``provider`` of its channels in the config file and in its webhook URL), its config
model, how its inbound adapter and its sender are built from a configured channel, its webhook
as ``/openapi.json`` describes it, its handshake if it has one, which config field is the
provider's own id of the account, and how the media contacts send are fetched. Nothing outside
the folder names the provider, so a channel is added by adding a folder (and its name to the
event contract's ``Provider``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar, get_args

import aiohttp

from channels.base_config import ChannelBase
from channels.inbound import InboundAdapter
from channels.media_http import MediaFetch
from channels.outbound import ChannelSender
from channels.send_breaker import ChannelBreaker
from channels.send_pacing import RecipientPacer
from channels.send_retry import SendRetryPolicy
from channels.sending_fields import ChannelCannotSend
from events.types.common import Provider

Schema = dict[str, Any]
"""A JSON Schema, as ``/openapi.json`` holds it."""

C = TypeVar("C", bound=ChannelBase)
S = TypeVar("S")
S_contra = TypeVar("S_contra", contravariant=True)


class SenderClass(Protocol[S_contra]):
    """A sender's constructor: its settings, the process's HTTP session, breaker, retries and
    pacing."""

    def __call__(
        self,
        config: S_contra,
        session: aiohttp.ClientSession,
        *,
        breaker: ChannelBreaker | None = ...,
        retry: SendRetryPolicy | None = ...,
        timeout_s: float = ...,
        pacer: RecipientPacer | None = ...,
    ) -> ChannelSender:
        """Build the sender."""
        ...


class SenderFactory(Protocol):
    """A sender whose settings are checked, waiting for the process's session and policies."""

    def __call__(
        self,
        session: aiohttp.ClientSession,
        *,
        breaker: ChannelBreaker | None = ...,
        retry: SendRetryPolicy | None = ...,
        timeout_s: float = ...,
        pacer: RecipientPacer | None = ...,
    ) -> ChannelSender:
        """Build the sender."""
        ...


class TypingIndicator(Protocol):
    """Shows the contact that an answer is being written (and marks their message read where
    the provider does both in one call). What lacks it, skips it."""

    @property
    def lasts_s(self) -> float:
        """How long the provider shows the indicator after one call."""
        ...

    async def send_typing(self, recipient: str, *, message_id: str | None) -> None:
        """Show the indicator to ``recipient``; ``message_id`` is the contact's last message."""
        ...


class AgentInbox(Protocol):
    """A provider where people answer too (Chatwoot): a conversation handed to a human is
    opened for them there, with a note only they see."""

    async def open_for_agents(self, recipient: str, note: str, *, note_id: str) -> None:
        """Open conversation ``recipient`` for agents and leave them ``note``."""
        ...


T_co = TypeVar("T_co", covariant=True)


class CapabilityClass(Protocol[S_contra, T_co]):
    """A capability's constructor, called like a sender's: settings, session, policies."""

    def __call__(
        self,
        config: S_contra,
        session: aiohttp.ClientSession,
        *,
        breaker: ChannelBreaker | None = ...,
        retry: SendRetryPolicy | None = ...,
        timeout_s: float = ...,
    ) -> T_co:
        """Build it."""
        ...


class CapabilityFactory(Protocol[T_co]):
    """A capability whose settings are checked, waiting for the session and policies."""

    def __call__(
        self,
        session: aiohttp.ClientSession,
        *,
        breaker: ChannelBreaker | None = ...,
        retry: SendRetryPolicy | None = ...,
        timeout_s: float = ...,
    ) -> T_co:
        """Build it."""
        ...


@dataclass(frozen=True, slots=True)
class WebhookDoc:
    """A provider's webhook as ``/openapi.json`` describes it.

    ``schemas`` returns the body's schema under ``body_schema`` and the schemas it refers to
    (as ``#/components/schemas/<name>``); ``signature_headers`` maps each header the adapter
    checks to what it holds.
    """

    content_type: str
    body_schema: str
    schemas: Callable[[], Mapping[str, Schema]]
    signature_headers: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class HandshakeDoc:
    """A handshake's operation in ``/openapi.json``: its query and what its refusals mean."""

    operation_id: str
    summary: str
    query: Mapping[str, tuple[str, Schema | None]]
    """Each query parameter: what it holds, and its schema (a non-empty string by default)."""
    answer: str
    """What the 200 holds (a plain text body)."""
    invalid: str
    """When the handshake is answered 400 (a parameter missing or wrong)."""
    mismatch: str
    """When it is answered 403 (the token is not the channel's)."""


@dataclass(frozen=True, slots=True)
class Handshake(Generic[C]):
    """A GET on the webhook URL by which the provider checks the URL is ours (Meta's hub.*).

    ``answer`` returns the body of the 200 (the challenge to echo) for a channel and the query;
    it raises ``SignatureInvalid`` (answered 403) or ``PayloadInvalid`` (400).
    """

    answer: Callable[[C, Mapping[str, str]], str]
    doc: HandshakeDoc


@dataclass(frozen=True, slots=True)
class ChannelProvider(Generic[C, S]):
    """Everything atende knows of one provider, declared once in its folder.

    ``sending_config`` turns a channel into its sender's settings ``S`` (raising
    ``ChannelCannotSend`` naming what is missing, or ``ValueError`` for a malformed value) and
    ``sender`` builds the sender from them. ``account_id`` is the provider's own id of the
    account the channel is (WhatsApp's ``phone_number_id``, the Telegram bot's id, the Twilio
    number, the Chatwoot inbox), recorded in the ``channels`` table; ``None`` when the config
    does not say it. ``typing`` and ``agent_inbox`` are what a provider may also do
    (``TypingIndicator``, ``AgentInbox``), built from the same settings; ``None`` when it cannot.
    """

    name: Provider
    config_model: type[C]
    inbound: Callable[[C], InboundAdapter]
    sending_config: Callable[[C], S]
    sender: SenderClass[S]
    account_id: Callable[[C], str | None]
    webhook: WebhookDoc
    handshake: Handshake[C] | None = field(default=None)
    typing: CapabilityClass[S, TypingIndicator] | None = field(default=None)
    agent_inbox: CapabilityClass[S, AgentInbox] | None = field(default=None)
    fetch_media: MediaFetch[C] | None = field(default=None)
    """How a message's media is downloaded (``channels/<name>/media.py``); None: it cannot be."""

    def __post_init__(self) -> None:
        declared = get_args(self.config_model.model_fields["provider"].annotation)
        if declared != (self.name,):
            raise ValueError(
                f"provider {self.name!r} declares {self.config_model.__name__}, whose provider "
                f"field accepts {', '.join(map(repr, declared)) or 'any value'}, not only "
                f"{self.name!r}"
            )

    def prepare_sender(self, channel: C) -> SenderFactory:
        """The channel's sender, once given a session; ``ChannelCannotSend`` names what lacks."""
        return functools.partial(self.sender, self._settings(channel))

    def prepare_typing(self, channel: C) -> CapabilityFactory[TypingIndicator] | None:
        """The channel's typing indicator; ``None`` when the provider has none.

        Raises ``ChannelCannotSend`` as ``prepare_sender`` does.
        """
        if self.typing is None:
            return None
        return functools.partial(self.typing, self._settings(channel))

    def prepare_agent_inbox(self, channel: C) -> CapabilityFactory[AgentInbox] | None:
        """Where the channel's conversations open for human agents; ``None`` when nowhere.

        Raises ``ChannelCannotSend`` as ``prepare_sender`` does.
        """
        if self.agent_inbox is None:
            return None
        return functools.partial(self.agent_inbox, self._settings(channel))

    def _settings(self, channel: C) -> S:
        try:
            return self.sending_config(channel)
        except ValueError as exc:  # the sender settings' own checks, e.g. a malformed token
            what = str(exc).removeprefix(f"{channel.provider} channel '{channel.id}': ")
            raise ChannelCannotSend(channel, [("", what)]) from None
