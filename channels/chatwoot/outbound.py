"""Sending through Chatwoot's application API: messages, private notes, conversation status.

``POST {base_url}/api/v1/accounts/{account_id}/conversations/{id}/messages`` creates a message
(``message_type: outgoing``; ``private: true`` makes it a note only agents see), and
``.../conversations/{id}/toggle_status`` moves a conversation to ``open`` (a human takes over),
``pending`` or ``resolved``. Both authenticate with the ``api_access_token`` header.

Chatwoot keeps a message's ``content_attributes``; ours carry ``atende_reply_id``, so a
message (as the API returns it and as Chatwoot's webhooks echo it) names its reply. The
``X-Atende-Reply-Id`` header goes along for proxies. Chatwoot relays the message to the
inbox's own channel; buttons become an ``input_select`` (rendered by the web widget), media
is sent as its link, since the API only takes uploaded attachments.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from channels.http_sender import HttpSender
from channels.outbound import SentMessage, send_in_order
from channels.provider_http import ProviderReply, ProviderRequest, json_body
from channels.sending_errors import (
    ProviderUnavailable,
    Rejected,
    SendError,
    UnsupportedPart,
    error_for_status,
)
from events.types.reply_parts import ReplyButtons, ReplyMedia, ReplyPart, ReplyTemplate

ConversationStatus = Literal["open", "resolved", "pending"]
REPLY_ID_ATTRIBUTE = "atende_reply_id"

Message = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ChatwootConfig:
    """One Chatwoot account's API settings (an agent bot's or an agent's access token)."""

    channel_id: str
    base_url: str
    account_id: int
    api_access_token: str = field(repr=False)

    def __post_init__(self) -> None:
        where = f"chatwoot channel '{self.channel_id}'"
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"{where}: base_url must be an http(s) URL, got {self.base_url!r}")
        if self.account_id < 1:
            raise ValueError(f"{where}: account_id must be >= 1")
        if not self.api_access_token:
            raise ValueError(f"{where}: api_access_token is empty")


class ChatwootSender(HttpSender[ChatwootConfig]):
    """A ``ChannelSender`` whose recipient is a Chatwoot conversation id; also notes and status."""

    provider_label = "chatwoot"

    async def send(
        self, recipient: str, parts: Sequence[ReplyPart], *, reply_id: str
    ) -> list[SentMessage]:
        """Send each part as an outgoing message of conversation ``recipient``."""

        async def send_part(index: int, part: ReplyPart) -> list[str]:
            message = self._message(index, part)
            return [await self._create(recipient, message, reply_id)]

        return await send_in_order(parts, reply_id, send_part)

    async def create_message(
        self, conversation_id: str, content: str, *, reply_id: str, private: bool = False
    ) -> str:
        """Create an outgoing text message (or a private note); return Chatwoot's message id."""
        return await self._create(
            conversation_id, {"content": content, "private": private}, reply_id
        )

    async def add_private_note(self, conversation_id: str, note: str, *, reply_id: str) -> str:
        """Leave a note only agents see, e.g. why the conversation was handed to them."""
        return await self.create_message(conversation_id, note, reply_id=reply_id, private=True)

    async def open_for_agents(self, recipient: str, note: str, *, note_id: str) -> None:
        """Hand conversation ``recipient`` to the inbox's agents: status ``open`` (an agent bot's
        conversations wait as ``pending``), then a private note saying why and what was said.

        In this order because opening twice is harmless and a note twice is not: a failure
        between the two, retried, opens again and leaves the note once.
        """
        await self.toggle_status(recipient, "open")
        await self.add_private_note(recipient, note, reply_id=note_id)

    async def toggle_status(self, conversation_id: str, status: ConversationStatus) -> str:
        """Set the conversation's status (``open`` hands it to agents); return the new status."""
        request = ProviderRequest(
            operation="toggle status",
            url=self._conversation_url(conversation_id, "toggle_status"),
            body=json_body({"status": status}),
            headers=self._headers(),
        )
        reply = await self._http.post(request)
        payload = reply.json_object().get("payload")
        current = payload.get("current_status") if isinstance(payload, dict) else None
        return current if isinstance(current, str) else status

    def _message(self, index: int, part: ReplyPart) -> Message:
        if isinstance(part, ReplyButtons):
            items = [{"title": b.title, "value": b.id} for b in part.buttons]
            return {
                "content": part.text,
                "content_type": "input_select",
                "content_attributes": {"items": items},
            }
        if isinstance(part, ReplyMedia):
            if part.url is None:
                raise UnsupportedPart(
                    f"{self._describe} cannot send part {index}: Chatwoot takes media as an "
                    "upload or a link, and this media only has a provider media_id"
                )
            return {"content": f"{part.caption}\n{part.url}" if part.caption else part.url}
        if isinstance(part, ReplyTemplate):
            # Chatwoot forwards template_params to a WhatsApp inbox's template API.
            processed = {str(n): value for n, value in enumerate(part.parameters, 1)}
            params = {"name": part.name, "language": part.language, "processed_params": processed}
            return {"content": _template_summary(part), "template_params": params}
        return {"content": part.text}

    async def _create(self, conversation_id: str, message: Message, reply_id: str) -> str:
        attributes = {**message.get("content_attributes", {}), REPLY_ID_ATTRIBUTE: reply_id}
        payload = {
            "message_type": "outgoing",
            "private": False,
            "content_type": "text",
            **message,
            "content_attributes": attributes,
        }
        request = ProviderRequest(
            operation="create message",
            url=self._conversation_url(conversation_id, "messages"),
            body=json_body(payload),
            headers={**self._headers(), "X-Atende-Reply-Id": reply_id},
        )
        reply = await self._http.post(request)
        message_id = reply.json_object().get("id")
        if isinstance(message_id, int | str) and str(message_id):
            return str(message_id)
        raise ProviderUnavailable(
            f"{self._describe} created a message but its answer has no id: {reply.snippet()}",
            status=reply.status,
        )

    def _conversation_url(self, conversation_id: str, action: str) -> str:
        if not conversation_id.isdigit():
            raise Rejected(
                f"{self._describe}: {conversation_id!r} is not a Chatwoot conversation id "
                "(digits expected); nothing was sent"
            )
        base = self._config.base_url.rstrip("/")
        account = self._config.account_id
        return f"{base}/api/v1/accounts/{account}/conversations/{conversation_id}/{action}"

    def _headers(self) -> dict[str, str]:
        return {"api_access_token": self._config.api_access_token}

    def _classify(self, reply: ProviderReply, request: ProviderRequest) -> SendError | None:
        if reply.ok:
            return None
        return error_for_status(
            reply.status,
            what=f"{self._describe} ({request.operation})",
            detail=_error_detail(reply),
            retry_after_s=reply.retry_after_s(),
        )


def _error_detail(reply: ProviderReply) -> str:
    body = reply.json_object()
    for key in ("error", "message", "errors"):
        value = body.get(key)
        if isinstance(value, list):
            return "; ".join(str(item) for item in value)
        if value:
            return str(value)
    return reply.snippet()


def _template_summary(part: ReplyTemplate) -> str:
    # What agents read in Chatwoot; the contact receives the rendered template.
    values = ", ".join(part.parameters)
    return f"[template {part.name} ({part.language})]" + (f": {values}" if values else "")
