"""``GET /openapi.json``: an OpenAPI 3.1 description of every route the ingress serves.

The document is built once, from the code's own definitions where they exist: the channel id
type of the event contract and, for each provider of the registry (``channels.registry``), its
name, webhook body, signature headers and handshake, as its folder declares them (the generic
channel's body comes from its pydantic model; payloads the adapters read field by field are
described by hand, open to the fields providers keep adding). Adding a provider adds it here.
The ingress's own answers are closed, so an undocumented field in a response is caught by the
schema conformance test.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from aiohttp import web
from pydantic import TypeAdapter

from channels.payload_schema import COMPONENTS
from channels.provider import ChannelProvider, Handshake
from channels.registry import PROVIDERS
from events.types.common import ChannelId

OPENAPI_PATH = "/openapi.json"

Schema = dict[str, Any]

_JSON = "application/json"
_TEXT = "text/plain"
_SCHEMAS = COMPONENTS


def _ref(name: str) -> Schema:
    """A reference to the component schema ``name``."""
    return {"$ref": _SCHEMAS + name}


def _closed(properties: dict[str, Schema], *required: str, description: str = "") -> Schema:
    """An object with exactly ``properties``: the shape of an answer the ingress writes."""
    schema: Schema = {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }
    if description:
        schema["description"] = description
    return schema


_COUNT = {"type": "integer", "minimum": 0}
_SECONDS = {"type": "integer", "minimum": 1}
_READY = {"enum": ["ok", "unavailable"]}
_CHECKS = {
    "type": "object",
    "additionalProperties": {"type": "string"},
    "description": "Each check's result: 'ok', or what is wrong.",
}

_ANSWERS: dict[str, Schema] = {
    "Problem": _closed(
        {
            "error": {"type": "string", "description": "A stable code, e.g. signature_invalid."},
            "detail": {"type": "string", "description": "A sentence saying what was wrong."},
            "check": {"type": "string", "description": "The header or rule that failed."},
            "field": {"type": "string", "description": "Dotted path of the invalid field."},
            "limit_bytes": {**_SECONDS, "description": "The channel's body limit."},
            "retry_after_s": {**_SECONDS, "description": "Seconds to wait; as Retry-After."},
        },
        "error",
        "detail",
        description="A refusal: 4xx means do not retry this request, 503 means retry later.",
    ),
    "Accepted": _closed(
        {"status": {"const": "accepted"}, "events": _COUNT, "duplicates": _COUNT},
        "status",
        "events",
        "duplicates",
        description="Stored: ``events`` new events, ``duplicates`` repeats of earlier ones.",
    ),
    "Duplicate": _closed(
        {"status": {"const": "duplicate"}, "duplicates": {"type": "integer", "minimum": 1}},
        "status",
        "duplicates",
        description="Every item was seen before; nothing was appended.",
    ),
    "Liveness": _closed({"status": {"const": "ok"}}, "status"),
    "Readiness": _closed({"status": _READY, "checks": _CHECKS}, "status", "checks"),
    "HealthSummary": _closed(
        {"status": _READY, "checks": _CHECKS, "uptime_s": {"type": "number", "minimum": 0}},
        "status",
        "checks",
        "uptime_s",
    ),
}


def _problem(error: str | tuple[str, ...], *required: str) -> Schema:
    """A ``Problem`` with this ``error`` code (or one of these) and these fields present."""
    code: Schema = {"const": error} if isinstance(error, str) else {"enum": list(error)}
    narrowed: Schema = {"properties": {"error": code}}
    if required:
        narrowed["required"] = list(required)
    return {"allOf": [_ref("Problem"), narrowed]}


def _answer(description: str, schema: Schema, *, retry_after: bool = False) -> Schema:
    response: Schema = {"description": description, "content": {_JSON: {"schema": schema}}}
    if retry_after:
        response["headers"] = {
            "Retry-After": {
                "description": "Seconds to wait before sending the request again.",
                "required": True,
                "schema": {"type": "string", "pattern": "^[1-9][0-9]*$"},
            }
        }
    return response


def _text(description: str) -> Schema:
    return {"description": description, "content": {_TEXT: {"schema": {"type": "string"}}}}


def _parameter(where: str, name: str, description: str, schema: Schema | None = None) -> Schema:
    """A parameter; path and query ones are required, headers differ by provider."""
    return {"name": name, "in": where, "required": where != "header", "description": description,
            "schema": schema or {"type": "string", "minLength": 1}}  # fmt: skip


def _signature_headers() -> dict[str, str]:
    """Every header a provider's adapter checks, with what it holds, and the trace context."""
    headers: dict[str, str] = {}
    for provider in PROVIDERS:
        headers.update(provider.webhook.signature_headers)
    return {**headers, "traceparent": "W3C trace context, carried into the events."}


# The refusals of ``ingress.problems``: status → (when, error code(s), fields always present).
_REFUSALS: dict[str, tuple[str, str | tuple[str, ...], tuple[str, ...]]] = {
    "400": ("The body is malformed or lacks a field (named in field when known).",
            "invalid_payload", ()),
    "401": ("A signature or secret header is missing or wrong (named in check).",
            "signature_invalid", ("check",)),
    "404": ("No channel of this provider has this id.", "unknown_channel", ()),
    "413": ("The body is over the channel's limit.", "body_too_large", ("limit_bytes",)),
    "415": ("The Content-Type is not the one this provider sends.", "unsupported_media_type", ()),
    "429": ("The channel is over its rate limit.", "rate_limited", ("retry_after_s",)),
    "503": ("Retry after Retry-After. unavailable: nothing was stored (Redis unreachable). "
            "backlog_full: too many events await processing; events of the webhook that found "
            "room may be stored, and the retry appends only the others.",
            ("unavailable", "backlog_full"), ("retry_after_s",)),
}  # fmt: skip


def _refusal(status: str) -> Schema:
    when, error, required = _REFUSALS[status]
    return _answer(when, _problem(error, *required), retry_after="retry_after_s" in required)


def _channel_id() -> Schema:
    schema = TypeAdapter(ChannelId).json_schema()
    return _parameter("path", "channel_id", "The channel's id in the config file.", schema)


def _bodies() -> Schema:
    """The request body of each content type the providers post, by component reference."""
    refs: dict[str, list[Schema]] = {}
    for provider in PROVIDERS:
        webhook = provider.webhook
        refs.setdefault(webhook.content_type, []).append(_ref(webhook.body_schema))
    return {
        content_type: {"schema": found[0] if len(found) == 1 else {"anyOf": found}}
        for content_type, found in refs.items()
    }


def _receive_webhook() -> Schema:
    provider: Schema = {"enum": PROVIDERS.names, "type": "string"}
    return {
        "operationId": "receiveWebhook",
        "summary": "Verify a provider's webhook and append its messages and statuses as events.",
        "description": (
            "The channel's provider decides which signature headers are checked and whether "
            "the body is JSON or a form. A repeated webhook is answered 200 and appends nothing."
        ),
        "parameters": [
            _parameter("path", "provider", "The channel's provider.", provider),
            _channel_id(),
            *(
                _parameter("header", name, description, {"type": "string"})
                for name, description in _signature_headers().items()
            ),
        ],
        "requestBody": {"required": True, "content": _bodies()},
        "responses": {
            "200": _answer(
                "Stored, or every item was a duplicate.",
                {"oneOf": [_ref("Accepted"), _ref("Duplicate")]},
            ),
            **{status: _refusal(status) for status in _REFUSALS},
        },
    }


def _handshake(handshake: Handshake[Any]) -> Schema:
    doc = handshake.doc
    return {
        "operationId": doc.operation_id,
        "summary": doc.summary,
        "parameters": [
            _channel_id(),
            *(
                _parameter("query", name, description, schema)
                for name, (description, schema) in doc.query.items()
            ),
        ],
        "responses": {
            "200": _text(doc.answer),
            "400": _answer(doc.invalid, _problem("invalid_handshake", "field")),
            "403": _answer(doc.mismatch, _problem("verify_token_mismatch", "check")),
            "404": _refusal("404"),
        },
    }


def _handshakes() -> dict[str, Schema]:
    """The GET of each provider with a handshake, on its webhook URL."""
    with_handshake: list[tuple[ChannelProvider[Any, Any], Handshake[Any]]] = [
        (provider, provider.handshake) for provider in PROVIDERS if provider.handshake
    ]
    return {
        f"/webhooks/{provider.name}/{{channel_id}}": {"get": _handshake(handshake)}
        for provider, handshake in with_handshake
    }


def _get(operation_id: str, summary: str, responses: Schema) -> Schema:
    return {"get": {"operationId": operation_id, "summary": summary, "responses": responses}}


def _paths() -> Schema:
    failed = "A check failed; checks says which and why."
    return {
        "/webhooks/{provider}/{channel_id}": {"post": _receive_webhook()},
        **_handshakes(),
        "/health": _get(
            "health",
            "Readiness and uptime.",
            {"200": _answer("Ready.", _ref("HealthSummary")),
             "503": _answer(failed, _ref("HealthSummary"))},
        ),
        "/health/live": _get(
            "liveness", "The process answers.", {"200": _answer("Alive.", _ref("Liveness"))}
        ),
        "/health/ready": _get(
            "readiness",
            "Redis reachable, and every other readiness check passing.",
            {"200": _answer("Ready.", _ref("Readiness")),
             "503": _answer(failed, _ref("Readiness"))},
        ),
        "/metrics": _get(
            "metrics", "Prometheus metrics.", {"200": _text("The text exposition format.")}
        ),
        OPENAPI_PATH: _get(
            "openapi", "This document.", {"200": _answer("OpenAPI 3.1.", {"type": "object"})}
        ),
    }  # fmt: skip


def _provider_schemas() -> dict[str, Schema]:
    """Each provider's webhook body and the schemas it refers to."""
    schemas: dict[str, Schema] = {}
    for provider in PROVIDERS:
        schemas.update(provider.webhook.schemas())
    return schemas


@cache
def _document_bytes() -> bytes:
    document = {
        "openapi": "3.1.0",
        "info": {
            "title": "atende ingress",
            "version": "1",
            "description": "Webhooks of every messaging channel, health and metrics.",
        },
        "paths": _paths(),
        "components": {"schemas": {**_ANSWERS, **_provider_schemas()}},
    }
    # The document shares this module's schema dicts, so only its serialization leaves here.
    return json.dumps(document, separators=(",", ":")).encode()


def openapi_document() -> Schema:
    """The OpenAPI 3.1 document of ``ingress.app.ingress_app``, a fresh dict to change freely."""
    loaded: Schema = json.loads(_document_bytes())
    return loaded


async def serve_openapi(_request: web.Request) -> web.Response:
    """The handler of ``GET /openapi.json``."""
    return web.Response(body=_document_bytes(), content_type=_JSON)
