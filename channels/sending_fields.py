"""What sending needs from a channel's config, and the error naming what a channel lacks.

A channel can take webhooks with only its webhook secret; answering needs more (an access
token, an account id, a callback URL…). Each provider's ``config.py`` turns its channel into
its sender's settings, or raises ``ChannelCannotSend`` listing every field still missing.
"""

from __future__ import annotations

from channels.base_config import ChannelBase
from libs.errors import ConfigurationError

Lack = tuple[str, str]
"""A field sending needs (its path inside the channel) and what it must hold."""


class ChannelCannotSend(ConfigurationError):
    """A configured channel lacks what sending needs; ``lacks`` lists (field, what) pairs."""

    def __init__(
        self, channel: ChannelBase, lacks: list[Lack], *, tenant_id: str | None = None
    ) -> None:
        details = "; ".join(f"{field}: {what}" if field else what for field, what in lacks)
        of_tenant = f" of tenant '{tenant_id}'" if tenant_id is not None else ""
        super().__init__(
            f"{channel.provider} channel '{channel.id}'{of_tenant} cannot send: {details}"
        )
        self.channel_id = channel.id
        self.lacks = tuple(lacks)


def lacking(channel: ChannelBase, *fields: tuple[str, object, str]) -> ChannelCannotSend:
    """The error for the ``(field, value, what it holds)`` entries whose value is unset."""
    lacks = [
        (field, f"missing; replies cannot be sent without {what}")
        for field, value, what in fields
        if value is None
    ]
    return ChannelCannotSend(channel, lacks)
