"""What every HTTP channel sender shares: its config, how it names itself, its HTTP client,
and the pacing of its messages to one recipient."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import ClassVar, Generic, Protocol, TypeVar

import aiohttp

from channels.provider_http import ProviderHttpClient, ProviderReply, ProviderRequest
from channels.send_breaker import ChannelBreaker
from channels.send_pacing import RecipientPacer, Unpaced
from channels.send_retry import SendRetryPolicy
from channels.sending_errors import SendError


class ChannelConfig(Protocol):
    """A sender's config: at least the channel it sends for."""

    @property
    def channel_id(self) -> str:
        """The configured channel's id."""
        ...


C = TypeVar("C", bound=ChannelConfig)
M = TypeVar("M")


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
        pacer: RecipientPacer | None = None,
    ) -> None:
        self.channel_id = config.channel_id
        self._pacer: RecipientPacer = pacer or Unpaced()
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

    async def _paced(
        self, recipient: str, messages: Sequence[M], post: Callable[[M], Awaitable[str]]
    ) -> list[str]:
        """Post the messages one part became, in order, each at its slot for ``recipient``.

        The slots of all of them are reserved before the first leaves, so a pacing refusal
        (``RateLimited``) never leaves a part half sent.
        """
        if not messages:
            return []
        schedule = await self._pacer.reserve(recipient, len(messages))
        ids: list[str] = []
        for index, message in enumerate(messages):
            await schedule.wait(index)
            ids.append(await post(message))
        return ids

    def _classify(self, reply: ProviderReply, request: ProviderRequest) -> SendError | None:
        """The typed error a non-success answer means, or None when it is a success."""
        raise NotImplementedError
