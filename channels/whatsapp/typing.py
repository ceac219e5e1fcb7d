"""WhatsApp Cloud API typing indicator, which also marks the contact's message read.

``POST {base_url}/{api_version}/{phone_number_id}/messages`` with ``status: read``, the
contact's ``message_id`` (its ``wamid``) and ``typing_indicator: {type: text}``, answered
``{"success": true}``. WhatsApp shows the indicator until the reply arrives or for about 25
seconds, whichever comes first; it needs the message being answered, so a turn without one
shows nothing.
"""

from __future__ import annotations

from channels.http_sender import HttpSender
from channels.provider_http import ProviderReply, ProviderRequest, json_body
from channels.sending_errors import SendError
from channels.whatsapp.outbound import WhatsAppCloudConfig, graph_api_error


class WhatsAppTyping(HttpSender[WhatsAppCloudConfig]):
    """A ``TypingIndicator`` for one WhatsApp number."""

    lasts_s = 25.0
    provider_label = "whatsapp"

    async def send_typing(self, recipient: str, *, message_id: str | None) -> None:
        """Mark ``message_id`` read and show the indicator (``recipient`` is implied by it)."""
        if message_id is None:
            return
        payload = {
            "messaging_product": "whatsapp",
            "status": "read",
            "message_id": message_id,
            "typing_indicator": {"type": "text"},
        }
        request = ProviderRequest(
            operation="typing indicator",
            url=self._config.messages_url,
            body=json_body(payload),
            headers={"Authorization": f"Bearer {self._config.access_token}"},
        )
        await self._http.post(request)

    def _classify(self, reply: ProviderReply, request: ProviderRequest) -> SendError | None:
        if reply.ok:
            return None
        return graph_api_error(reply, what=f"{self._describe} ({request.operation})")
