"""Customer-service windows: whether a free-form reply may still reach the contact.

WhatsApp delivers free-form messages only within 24 hours of the contact's last message; after
that only an approved template does. A reply can come later than that: the reply of a turn a
human released a day on, or anything atende sends after a long silence. Before sending on a
channel with such a window (``ChannelBase.service_window``), delivery asks here: within the
window the reply goes out as written; outside it, the channel's ``window_template`` goes
instead, or, when none is configured, nothing is sent and the conversation is handed to a
human (reason ``outside_24h_window``): they can write once the contact answers a template of
their own choosing, and a silent bot is worse than a person who knows.

The window opens at the contact's last inbound message (``messages``, direction ``in``, at the
provider's ``occurred_at``), compared with the database's clock, the one clock every replica
shares. A conversation without any inbound message has no open window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
import structlog

from channels.base_config import ServiceWindow
from channels.config import ChannelsConfig
from events.types.agent import AgentResponseGenerated
from events.types.reply_parts import ReplyPart, ReplyTemplate

_log = structlog.get_logger("atende.delivery")

OUTSIDE_WINDOW_REASON = "outside_24h_window"

_WITHIN = """
SELECT EXISTS (
    SELECT 1 FROM messages
    WHERE tenant_id = $1 AND conversation_id = $2 AND direction = 'in'
      AND occurred_at > now() - make_interval(hours => $3)
)
"""


@dataclass(frozen=True, slots=True)
class WindowVerdict:
    """Whether the window is open and, if it is closed, the template to send instead (``None``:
    hand the conversation to a human)."""

    open: bool
    template: ReplyTemplate | None = None


OPEN = WindowVerdict(open=True)


class ServiceWindows:
    """The windows of the configured channels, checked against the stored inbound messages."""

    def __init__(self, pool: asyncpg.Pool, channels: ChannelsConfig) -> None:
        self._pool = pool
        self._windows: dict[tuple[str, str], ServiceWindow] = {}
        for tenant in channels.tenants:
            for channel in tenant.channels:
                window = channel.service_window()
                if window is not None:
                    self._windows[tenant.id, channel.id] = window

    async def verdict(self, tenant_id: str, conversation_id: str, channel_id: str) -> WindowVerdict:
        """Whether a free-form message may reach the contact of ``conversation_id`` now."""
        window = self._windows.get((tenant_id, channel_id))
        if window is None:
            return OPEN
        within = await self._pool.fetchval(_WITHIN, tenant_id, conversation_id, window.hours)
        if within:
            return OPEN
        template = window.template.as_part() if window.template is not None else None
        return WindowVerdict(open=False, template=template)

    async def parts_to_send(
        self, tenant_id: str, conversation_id: str, reply: AgentResponseGenerated
    ) -> Sequence[ReplyPart] | None:
        """The reply's parts when the window lets them through (or they are templates
        already), the channel's template when it does not, ``None`` when there is none."""
        if all(isinstance(part, ReplyTemplate) for part in reply.parts):
            return reply.parts
        verdict = await self.verdict(tenant_id, conversation_id, reply.channel_id)
        if verdict.open:
            return reply.parts
        _log.info(
            "customer-service window closed; the reply is not sent as written",
            turn_id=reply.turn_id,
            template=verdict.template.name if verdict.template else None,
        )
        return (verdict.template,) if verdict.template is not None else None
