"""Sending SMS and WhatsApp messages through Twilio's Messages API.

``POST {base_url}/2010-04-01/Accounts/{account_sid}/Messages.json``, form-encoded, HTTP basic
auth with the account SID and auth token; one request per message. The Messages API has no
field for our data, so the reply id travels twice: as an ``atende_reply_id`` query parameter
of ``StatusCallback`` (Twilio calls that URL back for every status of the message, and its
signature covers the query, so the status webhook names the reply), and as an
``X-Atende-Reply-Id`` request header, which Twilio ignores but egress proxies and the test
servers record.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiohttp

from channels.http_sender import HttpSender
from channels.outbound import SentMessage, send_in_order
from channels.provider_http import (
    FORM_CONTENT_TYPE,
    ProviderReply,
    ProviderRequest,
)
from channels.send_breaker import ChannelBreaker
from channels.send_pacing import RecipientPacer
from channels.send_retry import SendRetryPolicy
from channels.sending_errors import (
    OutsideMessagingWindow,
    ProviderUnavailable,
    RateLimited,
    SendError,
    UnsupportedPart,
    error_for_status,
)
from channels.text_split import split_text
from events.types.reply_parts import ReplyButtons, ReplyMedia, ReplyPart, ReplyTemplate

BODY_MAX_CHARS = 1_600
RATE_LIMIT_CODE = 20429
WHATSAPP_WINDOW_CODE = 63016  # "outside the allowed window"; use a template (Content API)
REPLY_ID_PARAM = "atende_reply_id"

_ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
_MESSAGING_SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")
_MEDIUM_PREFIX = re.compile(r"^[a-z]+:")  # whatsapp:, messenger:, … (none for SMS)

Form = list[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class TwilioConfig:
    """One Twilio sender: a phone number (``+1555…``), ``whatsapp:+1555…``, or a ``MG…`` service.

    ``whatsapp`` marks a messaging service that sends WhatsApp (a ``whatsapp:`` sender implies
    it). ``content_sids`` maps a template name to the Twilio Content SID (``HX…``) approved for
    it; a template without one cannot be sent.
    """

    channel_id: str
    account_sid: str
    auth_token: str = field(repr=False)
    sender: str
    whatsapp: bool = False
    status_callback_url: str | None = None
    base_url: str = "https://api.twilio.com"
    content_sids: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        where = f"twilio channel '{self.channel_id}'"
        if not _ACCOUNT_SID.match(self.account_sid):
            raise ValueError(f"{where}: account_sid must be 'AC' and 32 hex digits")
        if not self.auth_token:
            raise ValueError(f"{where}: auth_token is empty")
        if not self.sender:
            raise ValueError(f"{where}: sender is empty")

    @property
    def messages_url(self) -> str:
        """Where messages are posted."""
        base = self.base_url.rstrip("/")
        return f"{base}/2010-04-01/Accounts/{self.account_sid}/Messages.json"

    @property
    def sends_whatsapp(self) -> bool:
        """Whether addresses need the ``whatsapp:`` prefix."""
        return self.whatsapp or self.sender.startswith("whatsapp:")


class TwilioSender(HttpSender[TwilioConfig]):
    """A ``ChannelSender`` for one Twilio sender (SMS, MMS or WhatsApp)."""

    provider_label = "twilio"

    def __init__(
        self,
        config: TwilioConfig,
        session: aiohttp.ClientSession,
        *,
        breaker: ChannelBreaker | None = None,
        retry: SendRetryPolicy | None = None,
        timeout_s: float = 10.0,
        pacer: RecipientPacer | None = None,
    ) -> None:
        super().__init__(
            config, session, breaker=breaker, retry=retry, timeout_s=timeout_s, pacer=pacer
        )
        credentials = f"{config.account_sid}:{config.auth_token}".encode()
        self._authorization = f"Basic {base64.b64encode(credentials).decode()}"

    async def send(
        self, recipient: str, parts: Sequence[ReplyPart], *, reply_id: str
    ) -> list[SentMessage]:
        """Send each part to ``recipient`` (an E.164 number, with or without ``whatsapp:``).

        A prefixed recipient is answered on its medium; a bare one on the channel's (WhatsApp
        when the sender or ``whatsapp`` says so, else SMS).
        """

        async def send_part(index: int, part: ReplyPart) -> list[str]:
            async def post(fields: Form) -> str:
                return await self._post(recipient, fields, reply_id)

            return await self._paced(recipient, self._messages(index, part), post)

        return await send_in_order(parts, reply_id, send_part)

    def _messages(self, index: int, part: ReplyPart) -> list[Form]:
        if isinstance(part, ReplyMedia):
            return self._media(index, part)
        if isinstance(part, ReplyButtons):
            # Plain messages have no buttons; numbered choices still work over SMS.
            choices = "\n".join(f"{n}. {b.title}" for n, b in enumerate(part.buttons, 1))
            return _texts(f"{part.text}\n\n{choices}")
        if isinstance(part, ReplyTemplate):
            return [self._template(index, part)]
        return _texts(part.text)

    def _media(self, index: int, part: ReplyMedia) -> list[Form]:
        if part.url is None:
            raise UnsupportedPart(
                f"{self._describe} cannot send part {index}: Twilio fetches media by public "
                "URL, and this media only has a provider media_id"
            )
        caption = part.caption or ""
        if len(caption) <= BODY_MAX_CHARS:
            return [[("MediaUrl", part.url), *([("Body", caption)] if caption else [])]]
        return [[("MediaUrl", part.url)], *_texts(caption)]

    def _template(self, index: int, part: ReplyTemplate) -> Form:
        content_sid = self._config.content_sids.get(part.name)
        if content_sid is None:
            raise UnsupportedPart(
                f"{self._describe} cannot send template '{part.name}' (part {index}): no "
                "Content SID is configured for it; add it to the channel's content_sids"
            )
        variables = {str(n): value for n, value in enumerate(part.parameters, 1)}
        return [("ContentSid", content_sid), ("ContentVariables", json.dumps(variables))]

    async def _post(self, recipient: str, fields: Form, reply_id: str) -> str:
        to = self._address(recipient)
        form: Form = [("To", to), *self._origin(to), *fields]
        if self._config.status_callback_url:
            callback = _with_query(self._config.status_callback_url, REPLY_ID_PARAM, reply_id)
            form.append(("StatusCallback", callback))
        request = ProviderRequest(
            operation="create message",
            url=self._config.messages_url,
            body=urlencode(form).encode(),
            content_type=FORM_CONTENT_TYPE,
            headers={
                "Authorization": self._authorization,
                "Accept": "application/json",
                "X-Atende-Reply-Id": reply_id,
            },
        )
        reply = await self._http.post(request)
        sid = reply.json_object().get("sid")
        if isinstance(sid, str) and sid:
            return sid
        raise ProviderUnavailable(
            f"{self._describe} accepted a message but its answer has no sid: {reply.snippet()}",
            status=reply.status,
        )

    def _origin(self, to: str) -> Form:
        """Who sends: the messaging service, or the sender's number on the medium of ``to``.

        Twilio refuses a From and a To on different media. A number that takes both SMS and
        WhatsApp answers each contact on the medium its address names (``whatsapp:+55…`` came
        in on WhatsApp, ``+55…`` by SMS), as the inbound adapter keeps it.
        """
        sender = self._config.sender
        if _MESSAGING_SERVICE_SID.match(sender):
            return [("MessagingServiceSid", sender)]
        medium = _MEDIUM_PREFIX.match(to)
        number = _MEDIUM_PREFIX.sub("", sender, count=1)
        return [("From", (medium.group() if medium else "") + number)]

    def _address(self, address: str) -> str:
        if self._config.sends_whatsapp and not address.startswith("whatsapp:"):
            return f"whatsapp:{address}"
        return address

    def _classify(self, reply: ProviderReply, request: ProviderRequest) -> SendError | None:
        if reply.ok:
            return None
        return twilio_error(reply, what=f"{self._describe} ({request.operation})")


def twilio_error(reply: ProviderReply, *, what: str) -> SendError:
    """The typed error a Twilio error answer (``code``, ``message``, ``more_info``) means."""
    body = reply.json_object()
    code = body.get("code")
    message = body.get("message") or reply.snippet()
    detail = f"error {code} ({message})" if code is not None else str(message)
    if body.get("more_info"):
        detail += f", see {body['more_info']}"
    provider_code = str(code) if code is not None else None
    retry_after_s = reply.retry_after_s()
    if code == RATE_LIMIT_CODE:
        return RateLimited(
            f"{what} was rate limited: {detail}; slow down and retry",
            status=reply.status,
            provider_code=provider_code,
            retry_after_s=retry_after_s,
        )
    if code == WHATSAPP_WINDOW_CODE:
        return OutsideMessagingWindow(
            f"{what} is outside the WhatsApp 24-hour window: {detail}; send a template",
            status=reply.status,
            provider_code=provider_code,
        )
    return error_for_status(
        reply.status,
        what=what,
        detail=detail,
        provider_code=provider_code,
        retry_after_s=retry_after_s,
    )


def _texts(text: str) -> list[Form]:
    return [[("Body", chunk)] for chunk in split_text(text, BODY_MAX_CHARS)]


def _with_query(url: str, name: str, value: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != name]
    query.append((name, value))
    return urlunsplit(parts._replace(query=urlencode(query)))
