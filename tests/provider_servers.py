"""Local HTTP servers that speak the providers' APIs, for the outbound adapter tests.

Each server checks auth the way its provider does (Bearer token, basic auth, token in the
path, ``api_access_token`` header, HMAC signature) and answers a failure in the provider's
own error shape; records every request; and answers from a script of canned responses
(429 with a hint, 500, a permanent 400) before falling back to the provider's success answer.
Signatures are checked here with ``hmac`` directly, independently of the code under test.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import socket
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl

from aiohttp import web
from multidict import CIMultiDict


@dataclass(frozen=True, slots=True)
class Recorded:
    """A request as the server received it."""

    method: str
    path: str
    headers: CIMultiDict[str]
    body: bytes
    match: Mapping[str, str]

    def json(self) -> Any:
        """The body decoded as JSON."""
        return json.loads(self.body)

    def form(self) -> list[tuple[str, str]]:
        """The form-encoded body, in order, repeated keys kept."""
        return parse_qsl(self.body.decode(), keep_blank_values=True)


@dataclass(frozen=True, slots=True)
class Scripted:
    """A canned answer, served once, in the order scripted."""

    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)


class RecordingSleep:
    """An injectable ``sleep`` that notes every delay the retry policy asked for."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        """Record ``delay``; do not wait (the tests assert what was asked, not timing)."""
        self.delays.append(delay)


class ProviderServer:
    """An aiohttp app on a free local port; ``base_url`` is where adapters point."""

    routes: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._script: deque[Scripted] = deque()
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    def script(self, *responses: Scripted) -> None:
        """Answer the next requests with ``responses``, in order."""
        self._script.extend(responses)

    async def __aenter__(self) -> Self:
        app = web.Application()
        for route in self.routes:
            app.router.add_post(route, self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        recorded = Recorded(
            request.method,
            request.path,
            CIMultiDict(request.headers),
            await request.read(),
            dict(request.match_info),
        )
        self.requests.append(recorded)
        if not self.authorized(recorded):
            return self.unauthorized()
        if self._script:
            scripted = self._script.popleft()
            return web.json_response(
                scripted.body, status=scripted.status, headers=scripted.headers
            )
        return self.accept(recorded)

    def authorized(self, request: Recorded) -> bool:
        """Whether the request carries the right credentials."""
        raise NotImplementedError

    def unauthorized(self) -> web.Response:
        """The provider's answer to bad credentials."""
        raise NotImplementedError

    def accept(self, request: Recorded) -> web.Response:
        """The provider's answer to a valid request."""
        raise NotImplementedError


def graph_error(
    code: int, message: str, *, status: int = 400, subcode: int | None = None, details: str = ""
) -> Scripted:
    """A Graph API error answer (WhatsApp Cloud API)."""
    error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    if details:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    error["fbtrace_id"] = "AbCdEfGh123"
    return Scripted(status, {"error": error})


class WhatsAppGraphServer(ProviderServer):
    """``POST /{version}/{phone_number_id}/messages`` with ``Authorization: Bearer``."""

    routes = ("/{version}/{phone_number_id}/messages",)

    def __init__(self, access_token: str, phone_number_id: str) -> None:
        super().__init__()
        self.access_token = access_token
        self.phone_number_id = phone_number_id
        self._ids = itertools.count(1)

    def authorized(self, request: Recorded) -> bool:
        """Bearer token equals the configured access token."""
        return request.headers.get("Authorization") == f"Bearer {self.access_token}"

    def unauthorized(self) -> web.Response:
        """Graph's expired/invalid token error."""
        scripted = graph_error(190, "Invalid OAuth access token.", status=401)
        return web.json_response(scripted.body, status=scripted.status)

    def accept(self, request: Recorded) -> web.Response:
        """Checks the message's envelope and answers with a ``wamid``; a read receipt (with
        its typing indicator) is answered ``success``."""
        body = request.json()
        if body.get("status") == "read":
            return self.accept_read(request, body)
        kind = body.get("type")
        valid = (
            request.match["phone_number_id"] == self.phone_number_id
            and body.get("messaging_product") == "whatsapp"
            and body.get("to")
            and kind in body
        )
        if not valid:
            scripted = graph_error(100, "(#100) Invalid parameter")
            return web.json_response(scripted.body, status=scripted.status)
        answer = {
            "messaging_product": "whatsapp",
            "contacts": [{"input": body["to"], "wa_id": body["to"]}],
            "messages": [{"id": f"wamid.HBgM{next(self._ids):06d}"}],
        }
        return web.json_response(answer)

    def accept_read(self, request: Recorded, body: dict[str, Any]) -> web.Response:
        """Mark a message read (and show typing): needs the message's wamid."""
        typing = body.get("typing_indicator")
        valid = (
            request.match["phone_number_id"] == self.phone_number_id
            and body.get("messaging_product") == "whatsapp"
            and isinstance(body.get("message_id"), str)
            and (typing is None or typing == {"type": "text"})
        )
        if not valid:
            scripted = graph_error(100, "(#100) Invalid parameter")
            return web.json_response(scripted.body, status=scripted.status)
        return web.json_response({"success": True})

    def typing_calls(self) -> list[str]:
        """The message id of every typing indicator asked for, in order."""
        return [
            request.json()["message_id"]
            for request in self.requests
            if request.json().get("typing_indicator") is not None
        ]


def twilio_error(code: int, message: str, *, status: int = 400) -> Scripted:
    """A Twilio REST API error answer."""
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return Scripted(status, body)


class TwilioServer(ProviderServer):
    """``POST /2010-04-01/Accounts/{sid}/Messages.json``, form-encoded, HTTP basic auth."""

    routes = ("/2010-04-01/Accounts/{account_sid}/Messages.json",)

    def __init__(self, account_sid: str, auth_token: str) -> None:
        super().__init__()
        self.account_sid = account_sid
        self.auth_token = auth_token
        self._ids = itertools.count(1)

    def authorized(self, request: Recorded) -> bool:
        """Basic auth is the account SID and auth token, for this account's URL."""
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        header = request.headers.get("Authorization", "")
        return (
            hmac.compare_digest(header, f"Basic {expected}")
            and request.match["account_sid"] == self.account_sid
        )

    def unauthorized(self) -> web.Response:
        """Twilio's 20003."""
        scripted = twilio_error(20003, "Authenticate", status=401)
        return web.json_response(scripted.body, status=scripted.status)

    def accept(self, request: Recorded) -> web.Response:
        """Checks the required parameters and answers 201 with a message SID."""
        form = dict(request.form())
        if "To" not in form:
            scripted = twilio_error(21604, "A 'To' phone number is required.")
            return web.json_response(scripted.body, status=scripted.status)
        if not ({"Body", "MediaUrl", "ContentSid"} & form.keys()):
            scripted = twilio_error(21602, "Message body is required.")
            return web.json_response(scripted.body, status=scripted.status)
        sid = f"SM{next(self._ids):032x}"
        answer = {
            "sid": sid,
            "account_sid": self.account_sid,
            "to": form["To"],
            "from": form.get("From"),
            "body": form.get("Body", ""),
            "status": "queued",
            "num_media": "1" if "MediaUrl" in form else "0",
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
        }
        return web.json_response(answer, status=201)


def telegram_error(code: int, description: str, *, retry_after: float | None = None) -> Scripted:
    """A Bot API error answer (``ok: false``)."""
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return Scripted(code, body)


_TELEGRAM_FILE_FIELDS = {
    "sendMessage": "text",
    "sendPhoto": "photo",
    "sendVideo": "video",
    "sendAudio": "audio",
    "sendVoice": "voice",
    "sendDocument": "document",
    "sendSticker": "sticker",
}


class TelegramBotServer(ProviderServer):
    """``POST /bot{token}/{method}`` with a JSON body."""

    routes = ("/{bot}/{method}",)

    def __init__(self, bot_token: str) -> None:
        super().__init__()
        self.bot_token = bot_token
        self._ids = itertools.count(100)

    def authorized(self, request: Recorded) -> bool:
        """The path holds ``bot`` followed by the bot's token."""
        return request.match["bot"] == f"bot{self.bot_token}"

    def unauthorized(self) -> web.Response:
        """What the Bot API answers to a wrong token."""
        scripted = telegram_error(401, "Unauthorized")
        return web.json_response(scripted.body, status=scripted.status)

    def accept(self, request: Recorded) -> web.Response:
        """Checks the method's required fields and answers with the sent message."""
        body = request.json()
        if request.match["method"] == "sendChatAction":
            return self.accept_chat_action(body)
        required = _TELEGRAM_FILE_FIELDS.get(request.match["method"])
        if required is None:
            scripted = telegram_error(404, "Not Found")
            return web.json_response(scripted.body, status=scripted.status)
        if "chat_id" not in body or not body.get(required):
            scripted = telegram_error(400, f"Bad Request: {required} is empty")
            return web.json_response(scripted.body, status=scripted.status)
        message = {
            "message_id": next(self._ids),
            "chat": {"id": body["chat_id"], "type": "private"},
            "date": int(time.time()),
        }
        return web.json_response({"ok": True, "result": message})

    def accept_chat_action(self, body: dict[str, Any]) -> web.Response:
        """``sendChatAction``: a chat and a known action, answered ``result: true``."""
        actions = {"typing", "upload_photo", "record_voice", "upload_document", "choose_sticker"}
        if "chat_id" not in body or body.get("action") not in actions:
            scripted = telegram_error(400, "Bad Request: wrong parameter action in request")
            return web.json_response(scripted.body, status=scripted.status)
        return web.json_response({"ok": True, "result": True})

    def chat_actions(self) -> list[tuple[str, str]]:
        """Every (chat id, action) asked for, in order."""
        return [
            (str(request.json()["chat_id"]), request.json()["action"])
            for request in self.requests
            if request.path.endswith("/sendChatAction")
        ]


class ChatwootServer(ProviderServer):
    """Chatwoot's application API: create message and toggle status, ``api_access_token``."""

    routes = (
        "/api/v1/accounts/{account_id}/conversations/{conversation_id}/messages",
        "/api/v1/accounts/{account_id}/conversations/{conversation_id}/toggle_status",
    )

    def __init__(self, account_id: int, api_access_token: str) -> None:
        super().__init__()
        self.account_id = account_id
        self.api_access_token = api_access_token
        self._ids = itertools.count(5000)

    def authorized(self, request: Recorded) -> bool:
        """The ``api_access_token`` header holds the token."""
        return request.headers.get("api_access_token") == self.api_access_token

    def unauthorized(self) -> web.Response:
        """Chatwoot's answer to a missing or wrong token."""
        body = {"errors": ["You need to sign in or sign up before continuing."]}
        return web.json_response(body, status=401)

    def accept(self, request: Recorded) -> web.Response:
        """A created message, or the new status."""
        if request.match["account_id"] != str(self.account_id):
            return web.json_response({"error": "Resource could not be found"}, status=404)
        body = request.json()
        conversation_id = int(request.match["conversation_id"])
        if request.path.endswith("/toggle_status"):
            status = body.get("status")
            if status not in ("open", "resolved", "pending", "snoozed"):
                return web.json_response({"error": f"invalid status {status!r}"}, status=422)
            payload = {
                "success": True,
                "current_status": status,
                "conversation_id": conversation_id,
            }
            return web.json_response({"meta": {}, "payload": payload})
        message = {
            "id": next(self._ids),
            "content": body.get("content"),
            "message_type": 1 if body.get("message_type") == "outgoing" else 0,
            "private": body.get("private", False),
            "content_type": body.get("content_type", "text"),
            "content_attributes": body.get("content_attributes", {}),
            "conversation_id": conversation_id,
        }
        return web.json_response(message)

    def statuses(self, conversation_id: int) -> list[str]:
        """Every status the conversation was toggled to, in order."""
        return [
            request.json()["status"]
            for request in self.requests
            if request.path.endswith("/toggle_status")
            and request.match["conversation_id"] == str(conversation_id)
        ]

    def messages(self, conversation_id: int, *, private: bool) -> list[str]:
        """The content of every message created in the conversation: notes, or the others."""
        return [
            request.json().get("content", "")
            for request in self.requests
            if request.path.endswith("/messages")
            and request.match["conversation_id"] == str(conversation_id)
            and bool(request.json().get("private")) is private
        ]


class GenericAppServer(ProviderServer):
    """An app on the generic channel: checks the signature and the timestamp's age."""

    routes = ("/callback",)
    max_age_s = 300

    def __init__(self, signing_secret: str) -> None:
        super().__init__()
        self.signing_secret = signing_secret.encode()
        self._ids = itertools.count(1)

    @property
    def callback_url(self) -> str:
        """Where the adapter posts replies."""
        return f"{self.base_url}/callback"

    def authorized(self, request: Recorded) -> bool:
        """``sha256=HMAC(secret, "{ts}.{body}")`` matches and ``ts`` is recent."""
        timestamp = request.headers.get("X-Atende-Timestamp", "")
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > self.max_age_s:
            return False
        signed = timestamp.encode() + b"." + request.body
        expected = "sha256=" + hmac.new(self.signing_secret, signed, hashlib.sha256).hexdigest()
        return hmac.compare_digest(request.headers.get("X-Atende-Signature", ""), expected)

    def unauthorized(self) -> web.Response:
        """The generic error shape."""
        error = {"code": "signature_invalid", "message": "X-Atende-Signature does not match"}
        return web.json_response({"error": error}, status=401)

    def accept(self, request: Recorded) -> web.Response:
        """One id per part."""
        parts = request.json()["parts"]
        return web.json_response({"message_ids": [f"app-{next(self._ids)}" for _ in parts]})
