"""What every HTTP channel sender shares: its config, how it names itself, its HTTP client."""

from __future__ import annotations

from typing import ClassVar, Generic, Protocol, TypeVar

import aiohttp

from channels.provider_http import ProviderHttpClient, ProviderReply, ProviderRequest
from channels.send_breaker import ChannelBreaker
from channels.send_retry import SendRetryPolicy
from channels.sending_errors import SendError


class ChannelConfig(Protocol):
    """A sender's config: at least the channel it sends for."""

    @property
    def channel_id(self) -> str:
        """The configured channel's id."""
        ...


C = TypeVar("C", bound=ChannelConfig)


class HttpSender(Generic[C]):
    """Base of the senders: ``provider_label`` names the channel in every error message.

    Subclasses build their provider's requests and map its error answers in ``_classify``.
    """

    provider_label: ClassVar[str]

    def __init__(
        self,
        config: C,
        session: aiohttp.ClientSession,
        *,
        breaker: ChannelBreaker | None = None,
        retry: SendRetryPolicy | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.channel_id = config.channel_id
        self._config = config
        self._describe = f"{self.provider_label} channel '{config.channel_id}'"
        self._http = ProviderHttpClient(
            session,
            describe=self._describe,
            classify=self._classify,
            breaker=breaker,
            retry=retry,
            timeout_s=timeout_s,
        )

    def _classify(self, reply: ProviderReply, request: ProviderRequest) -> SendError | None:
        """The typed error a non-success answer means, or None when it is a success."""
        raise NotImplementedError
