"""Telegram's typing indicator: ``sendChatAction`` with ``action: typing``.

``POST {base_url}/bot{token}/sendChatAction`` answered ``{"ok": true, "result": true}``.
Telegram shows it for about 5 seconds, or until the bot's next message. Bots have no read
receipts.
"""

from __future__ import annotations

from channels.http_sender import HttpSender
from channels.provider_http import ProviderReply, ProviderRequest, json_body
from channels.sending_errors import SendError
from channels.telegram.outbound import TelegramConfig, bot_api_error


class TelegramTyping(HttpSender[TelegramConfig]):
    """A ``TypingIndicator`` for one Telegram bot."""

    lasts_s = 5.0
    provider_label = "telegram"

    async def send_typing(self, recipient: str, *, message_id: str | None) -> None:
        """Show "typing…" in chat ``recipient``."""
        request = ProviderRequest(
            operation="sendChatAction",
            url=self._config.method_url("sendChatAction"),
            body=json_body({"chat_id": recipient, "action": "typing"}),
        )
        await self._http.post(request)

    def _classify(self, reply: ProviderReply, request: ProviderRequest) -> SendError | None:
        body = reply.json_object()
        if reply.ok and body.get("ok") is True:
            return None
        return bot_api_error(reply, body, what=f"{self._describe} ({request.operation})")
