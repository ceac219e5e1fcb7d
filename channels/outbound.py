"""The port delivery sends replies through, and what a send hands back."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from channels.sending_errors import SendError
from events.types.reply_parts import ReplyPart


@dataclass(frozen=True, slots=True)
class SentMessage:
    """One message the provider accepted.

    A part may become several messages (a text longer than the channel's limit is split, a
    caption the channel cannot attach follows its media), each with the same ``part_index``.
    """

    provider_message_id: str
    reply_id: str
    part_index: int


class ChannelSender(Protocol):
    """Sends a reply's parts, in order, to one recipient of one channel.

    ``recipient`` is what the channel addresses: a phone number or WhatsApp id, a Telegram
    chat id, a Chatwoot conversation id, the generic app's contact id. Every request carries
    ``reply_id`` where the provider lets it (each adapter documents where). A failure raises a
    ``SendError`` whose ``sent`` lists the messages that went out before it.
    """

    channel_id: str

    async def send(
        self, recipient: str, parts: Sequence[ReplyPart], *, reply_id: str
    ) -> list[SentMessage]:
        """Send ``parts`` in order; return one entry per message the provider accepted."""
        ...


SendPart = Callable[[int, ReplyPart], Awaitable[list[str]]]
"""Sends one part (by index) and returns the provider's ids of the messages it became."""


async def send_in_order(
    parts: Sequence[ReplyPart], reply_id: str, send_part: SendPart
) -> list[SentMessage]:
    """Send each part after the previous one succeeded; stop at the first failure.

    Parts are never sent concurrently: the contact must read them in the order they were
    written, and a failure must leave a clean prefix that a retry can skip.
    """
    sent: list[SentMessage] = []
    for index, part in enumerate(parts):
        try:
            ids = await send_part(index, part)
        except SendError as exc:
            exc.sent = tuple(sent)
            raise
        sent.extend(SentMessage(message_id, reply_id, index) for message_id in ids)
    return sent
