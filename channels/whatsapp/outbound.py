"""Sending through the WhatsApp Cloud API (Meta Graph API).

``POST {base_url}/{api_version}/{phone_number_id}/messages`` with a Bearer access token, one
request per message. Our reply id travels in ``biz_opaque_callback_data``, which WhatsApp
echoes in the status webhooks of that message, so a status (or a repeat) maps back to the
reply that caused it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from channels.http_sender import HttpSender
from channels.outbound import SentMessage, send_in_order
from channels.provider_http import ProviderReply, ProviderRequest, json_body
from channels.sending_errors import (
    AuthFailed,
    OutsideMessagingWindow,
    ProviderUnavailable,
    RateLimited,
    SendError,
    error_for_status,
)
from channels.whatsapp.outbound_messages import contents
from events.types.reply_parts import ReplyPart

# Graph API error codes (developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes).
RE_ENGAGEMENT_CODE = 131047
RATE_LIMIT_CODES = frozenset({4, 80007, 130429, 131048, 131056})
AUTH_CODES = frozenset({0, 3, 10, 190})  # 200-299 are permission errors too
TRANSIENT_CODES = frozenset({1, 2, 131000, 131016, 133004})

_API_VERSION = re.compile(r"^v[0-9]+\.[0-9]+$")


@dataclass(frozen=True, slots=True)
class WhatsAppCloudConfig:
    """One WhatsApp Business phone number's sending settings."""

    channel_id: str
    phone_number_id: str
    access_token: str = field(repr=False)
    api_version: str = "v21.0"
    base_url: str = "https://graph.facebook.com"
    list_button_label: str = "Options"

    def __post_init__(self) -> None:
        if not self.phone_number_id.isdigit():
            raise ValueError(
                f"whatsapp channel '{self.channel_id}': phone_number_id must be the numeric id "
                f"Meta shows for the number, got {self.phone_number_id!r}"
            )
        if not self.access_token:
            raise ValueError(f"whatsapp channel '{self.channel_id}': access_token is empty")
        if not _API_VERSION.match(self.api_version):
            raise ValueError(
                f"whatsapp channel '{self.channel_id}': api_version must look like 'v21.0', "
                f"got {self.api_version!r}"
            )

    @property
    def messages_url(self) -> str:
        """Where messages are posted."""
        base = self.base_url.rstrip("/")
        return f"{base}/{self.api_version}/{self.phone_number_id}/messages"


class WhatsAppCloudSender(HttpSender[WhatsAppCloudConfig]):
    """A ``ChannelSender`` for one WhatsApp Cloud API number."""

    provider_label = "whatsapp"

    async def send(
        self, recipient: str, parts: Sequence[ReplyPart], *, reply_id: str
    ) -> list[SentMessage]:
        """Send each part to ``recipient`` (a phone number or WhatsApp id)."""

        async def send_part(index: int, part: ReplyPart) -> list[str]:
            messages = contents(part, list_button_label=self._config.list_button_label)

            async def post(content: dict[str, Any]) -> str:
                return await self._post(recipient, content, reply_id)

            return await self._paced(recipient, messages, post)

        return await send_in_order(parts, reply_id, send_part)

    async def _post(self, recipient: str, content: dict[str, Any], reply_id: str) -> str:
        payload = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": recipient.removeprefix("+"),
            "biz_opaque_callback_data": reply_id,
            **content,
        }
        request = ProviderRequest(
            operation=f"send {content['type']}",
            url=self._config.messages_url,
            body=json_body(payload),
            headers={"Authorization": f"Bearer {self._config.access_token}"},
        )
        reply = await self._http.post(request)
        messages = reply.json_object().get("messages")
        if isinstance(messages, list) and messages and isinstance(messages[0], dict):
            message_id = messages[0].get("id")
            if isinstance(message_id, str) and message_id:
                return message_id
        raise ProviderUnavailable(
            f"{self._describe} accepted a message but its answer has no messages[0].id: "
            f"{reply.snippet()}",
            status=reply.status,
        )

    def _classify(self, reply: ProviderReply, request: ProviderRequest) -> SendError | None:
        if reply.ok:
            return None
        return graph_api_error(reply, what=f"{self._describe} ({request.operation})")


def graph_api_error(reply: ProviderReply, *, what: str) -> SendError:
    """The typed error a Graph API error answer means."""
    error = reply.json_object().get("error")
    if not isinstance(error, dict):
        return error_for_status(
            reply.status, what=what, detail=reply.snippet(), retry_after_s=reply.retry_after_s()
        )
    code = error.get("code")
    detail = _graph_error_detail(error)
    common: dict[str, Any] = {
        "status": reply.status,
        "provider_code": str(code) if code is not None else None,
        "retry_after_s": reply.retry_after_s(),
    }
    if code == RE_ENGAGEMENT_CODE:
        return OutsideMessagingWindow(
            f"{what} is outside the 24-hour customer service window: {detail}; "
            "send an approved template message instead",
            **common,
        )
    if code in RATE_LIMIT_CODES or reply.status == 429:
        return RateLimited(f"{what} was rate limited: {detail}; slow down and retry", **common)
    if code in AUTH_CODES or (isinstance(code, int) and 200 <= code < 300):
        return AuthFailed(
            f"{what} refused the access token: {detail}; renew the token or its permissions",
            **common,
        )
    if code in TRANSIENT_CODES and reply.status < 500:
        return ProviderUnavailable(f"{what} failed on WhatsApp's side: {detail}", **common)
    return error_for_status(
        reply.status,
        what=what,
        detail=detail,
        provider_code=common["provider_code"],
        retry_after_s=common["retry_after_s"],
    )


def _graph_error_detail(error: dict[str, Any]) -> str:
    """``error 131047/2494010 (Re-engagement message; <details>)`` from a Graph API error."""
    code = f"error {error.get('code')}"
    if "error_subcode" in error:
        code += f"/{error['error_subcode']}"
    title = error.get("message") or error.get("error_user_title") or "no message"
    data = error.get("error_data")
    details = data.get("details") if isinstance(data, dict) else None
    return f"{code} ({title}; {details})" if details else f"{code} ({title})"
