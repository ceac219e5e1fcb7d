"""Sending through the Telegram Bot API.

``POST {base_url}/bot{token}/{method}`` with a JSON body: ``sendMessage`` for text and buttons
(an inline keyboard whose ``callback_data`` is the button id), ``sendPhoto``, ``sendVideo``,
``sendAudio``, ``sendVoice``, ``sendDocument`` and ``sendSticker`` for media (a ``file_id`` or
a URL). The Bot API has no field for our data and sends no delivery statuses, so the reply id
only travels as an ``X-Atende-Reply-Id`` header (ignored by Telegram, recorded by proxies);
a repeated send is recognized by delivery's own record of the reply, not by Telegram.
Templates do not exist on Telegram.
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
    ProviderUnavailable,
    Rejected,
    SendError,
    UnsupportedPart,
    error_for_status,
)
from channels.text_split import split_text
from events.types.reply_parts import ReplyButtons, ReplyMedia, ReplyPart, ReplyTemplate

TEXT_MAX_UNITS = 4_096  # UTF-16 code units, as Telegram counts
CAPTION_MAX_UNITS = 1_024
CALLBACK_DATA_MAX_BYTES = 64

# Media kind → (method, field of the file).
_MEDIA_METHODS = {
    "image": ("sendPhoto", "photo"),
    "video": ("sendVideo", "video"),
    "audio": ("sendAudio", "audio"),
    "voice": ("sendVoice", "voice"),
    "document": ("sendDocument", "document"),
    "sticker": ("sendSticker", "sticker"),
}

_BOT_TOKEN = re.compile(r"^[0-9]+:[A-Za-z0-9_-]+$")

Call = tuple[str, dict[str, Any]]


@dataclass(frozen=True, slots=True)
class TelegramConfig:
    """One Telegram bot's sending settings."""

    channel_id: str
    bot_token: str = field(repr=False)
    base_url: str = "https://api.telegram.org"

    def __post_init__(self) -> None:
        if not _BOT_TOKEN.match(self.bot_token):
            raise ValueError(
                f"telegram channel '{self.channel_id}': bot_token must look like "
                "'123456:ABC-DEF…' (as BotFather gives it)"
            )

    def method_url(self, method: str) -> str:
        """URL of a Bot API method (it holds the token: never log it)."""
        return f"{self.base_url.rstrip('/')}/bot{self.bot_token}/{method}"


class TelegramSender(HttpSender[TelegramConfig]):
    """A ``ChannelSender`` for one Telegram bot."""

    provider_label = "telegram"

    async def send(
        self, recipient: str, parts: Sequence[ReplyPart], *, reply_id: str
    ) -> list[SentMessage]:
        """Send each part to the chat ``recipient`` (a chat id or ``@channelusername``)."""

        async def send_part(index: int, part: ReplyPart) -> list[str]:
            async def post(call: Call) -> str:
                method, fields = call
                return await self._call(method, {"chat_id": recipient, **fields}, reply_id)

            return await self._paced(recipient, self._calls(index, part), post)

        return await send_in_order(parts, reply_id, send_part)

    def _calls(self, index: int, part: ReplyPart) -> list[Call]:
        if isinstance(part, ReplyMedia):
            return _media_calls(part)
        if isinstance(part, ReplyButtons):
            return self._buttons_calls(index, part)
        if isinstance(part, ReplyTemplate):
            raise UnsupportedPart(
                f"{self._describe} cannot send template '{part.name}' (part {index}): Telegram "
                "has no message templates; send text instead"
            )
        return _text_calls(part.text)

    def _buttons_calls(self, index: int, part: ReplyButtons) -> list[Call]:
        for button in part.buttons:
            if len(button.id.encode()) > CALLBACK_DATA_MAX_BYTES:
                raise UnsupportedPart(
                    f"{self._describe} cannot send part {index}: button id {button.id!r} is "
                    f"longer than Telegram's {CALLBACK_DATA_MAX_BYTES}-byte callback_data"
                )
        # One button per row: titles stay readable on a phone.
        keyboard = [[{"text": b.title, "callback_data": b.id}] for b in part.buttons]
        *leading, last = _text_calls(part.text) or [("sendMessage", {"text": part.text})]
        last[1]["reply_markup"] = {"inline_keyboard": keyboard}
        return [*leading, last]

    async def _call(self, method: str, fields: dict[str, Any], reply_id: str) -> str:
        request = ProviderRequest(
            operation=method,
            url=self._config.method_url(method),
            body=json_body(fields),
            headers={"X-Atende-Reply-Id": reply_id},
        )
        reply = await self._http.post(request)
        result = reply.json_object().get("result")
        message_id = result.get("message_id") if isinstance(result, dict) else None
        if isinstance(message_id, int):
            return str(message_id)
        raise ProviderUnavailable(
            f"{self._describe} ({method}) answered without result.message_id: {reply.snippet()}",
            status=reply.status,
        )

    def _classify(self, reply: ProviderReply, request: ProviderRequest) -> SendError | None:
        body = reply.json_object()
        if reply.ok and body.get("ok") is True:
            return None
        return bot_api_error(reply, body, what=f"{self._describe} ({request.operation})")


def bot_api_error(reply: ProviderReply, body: dict[str, Any], *, what: str) -> SendError:
    """The typed error a Bot API answer with ``ok: false`` means."""
    code = body.get("error_code")
    status = code if isinstance(code, int) else reply.status
    description = body.get("description") or reply.snippet()
    detail = f"error {status} ({description})"
    parameters = body.get("parameters")
    hint = parameters.get("retry_after") if isinstance(parameters, dict) else None
    retry_after_s = float(hint) if isinstance(hint, int | float) else reply.retry_after_s()
    provider_code = str(status)
    if status == 403:
        # Telegram's 403 is about the chat (bot blocked, kicked), not our token.
        return Rejected(
            f"{what} was refused for this chat: {detail}; the contact cannot be reached",
            status=reply.status,
            provider_code=provider_code,
        )
    if status == 404:
        # The Bot API answers 404 to a token it does not know.
        return AuthFailed(
            f"{what} does not know this bot token: {detail}; check the channel's bot_token",
            status=reply.status,
            provider_code=provider_code,
        )
    if 200 <= status < 300:
        return ProviderUnavailable(
            f"{what} answered {status} without ok: true: {detail}; nothing was sent",
            status=reply.status,
            provider_code=provider_code,
        )
    return error_for_status(
        status,
        what=what,
        detail=detail,
        provider_code=provider_code,
        retry_after_s=retry_after_s,
    )


def _text_calls(text: str) -> list[Call]:
    return [
        ("sendMessage", {"text": chunk})
        for chunk in split_text(text, TEXT_MAX_UNITS, measure="utf16")
    ]


def _media_calls(part: ReplyMedia) -> list[Call]:
    method, file_field = _MEDIA_METHODS[part.media_kind]
    fields: dict[str, Any] = {file_field: part.media_id or part.url}
    caption = part.caption or ""
    fits = len(caption.encode("utf-16-le")) // 2 <= CAPTION_MAX_UNITS
    if caption and fits and part.media_kind != "sticker":
        fields["caption"] = caption
        return [(method, fields)]
    return [(method, fields), *(_text_calls(caption) if caption else [])]
