"""``http.request``: call one of the external APIs declared in the config, safely.

Requests go through a ``GuardedHttpClient`` built for the API (see ``ssrf``), never through
the process's shared session: that session's resolver would connect wherever a name points.
Redirects are followed by hand, each hop checked like the first, and credentials are sent to
the declared URL's host only.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Sequence
from typing import Annotated, Any

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, JsonValue
from yarl import URL

from tool_gateway.tool import (
    SENSITIVE,
    Tool,
    ToolArgumentsInvalid,
    ToolContext,
    ToolFailed,
    ToolUnavailable,
)
from tool_gateway.tools.http_api import HttpApiConfig, PreparedRequest
from tool_gateway.tools.ssrf import DestinationRefused, GuardedHttpClient, refusal_in

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_ERROR_SNIPPET_CHARS = 300


class HttpRequestInput(BaseModel):
    """Which declared API to call, and its parameters."""

    model_config = ConfigDict(extra="forbid")

    api: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[a-z][a-z0-9_]*$",
        description="Name of one of the APIs declared for this assistant.",
    )
    parameters: Annotated[dict[str, str | int | float | bool], SENSITIVE] = Field(
        default_factory=dict,
        max_length=32,
        description="The API's parameters by name, as its declaration describes them.",
    )


class HttpRequestOutput(BaseModel):
    """What the API answered (or, in a dry run, what would have been sent)."""

    api: str
    status: int = Field(description="HTTP status; 0 when nothing was sent (dry run).")
    data: JsonValue = Field(
        default=None, description="The declared response fields, or the whole JSON answer."
    )
    text: str | None = Field(default=None, description="The answer when it is not JSON.")
    truncated: bool = Field(default=False, description="The answer was cut at its size limit.")


def configured_api(context: ToolContext, name: str) -> HttpApiConfig:
    """The API ``name`` declared in the tools config, if this tenant may call it."""
    declared = getattr(context.services.settings, "http_apis", None)
    apis = [api for api in declared or () if isinstance(api, HttpApiConfig)]
    if not apis:
        raise ToolUnavailable("no HTTP APIs are configured")
    usable = {api.name: api for api in apis if api.allows_tenant(context.tenant_id)}
    api = usable.get(name)
    if api is None:
        known = ", ".join(sorted(usable)) or "none"
        raise ToolArgumentsInvalid(f"there is no API named {name!r}; declared APIs: {known}")
    return api


def describe_apis(apis: Sequence[HttpApiConfig], tenant_id: str) -> str:
    """The APIs ``tenant_id`` may call, one line each, for the agent's instructions.

    ``http.request``'s schema is the same for every deployment, so the names and parameters
    of the declared APIs reach the LLM through this text.
    """
    lines = []
    for api in apis:
        if not api.allows_tenant(tenant_id):
            continue
        parameters = "; ".join(
            f"{p.name} ({p.type}{'' if p.required else ', optional'}): {p.description}"
            for p in api.parameters
        )
        lines.append(f"- {api.name}: {api.description} Parameters: {parameters or 'none'}")
    return "\n".join(lines)


async def request_api(context: ToolContext, arguments: HttpRequestInput) -> HttpRequestOutput:
    """Send the declared request and shape its answer for the LLM."""
    api = configured_api(context, arguments.api)
    prepared = api.prepare(dict(arguments.parameters))
    try:
        async with GuardedHttpClient(api.destination_policy(), timeout_s=api.timeout_s) as client:
            return await _follow(client, api, prepared)
    except DestinationRefused as exc:
        raise ToolFailed(f"API '{api.name}': {exc}") from exc
    except TimeoutError as exc:  # aiohttp's timeouts are TimeoutErrors too
        raise ToolUnavailable(f"API '{api.name}' did not answer within {api.timeout_s}s") from exc
    except aiohttp.ClientError as exc:
        refusal = refusal_in(exc)
        if refusal is not None:
            raise ToolFailed(f"API '{api.name}': {refusal}") from exc
        raise ToolUnavailable(f"API '{api.name}' could not be reached: {exc}") from exc


async def _follow(
    client: GuardedHttpClient, api: HttpApiConfig, prepared: PreparedRequest
) -> HttpRequestOutput:
    method, url, body = prepared.method, prepared.url, prepared.json_body
    for _hop in range(api.max_redirects + 1):
        # Credentials belong to the declared host; a redirect elsewhere goes without them.
        headers = api.auth.headers() if url.origin() == prepared.url.origin() else {}
        headers["Accept"] = "application/json, text/*;q=0.5"
        async with client.request(method, url, headers=headers, json=body) as response:
            if response.status not in _REDIRECTS:
                return await _answer(api, response)
            location = response.headers.get("Location")
            if not location:
                raise ToolFailed(f"API '{api.name}' redirected without saying where")
            try:
                url = url.join(URL(location))
            except ValueError as exc:
                raise ToolFailed(f"API '{api.name}' redirected to an invalid URL") from exc
            if response.status not in (307, 308):
                method, body = "GET", None
    raise ToolFailed(f"API '{api.name}' redirected more than {api.max_redirects} times")


async def _answer(api: HttpApiConfig, response: aiohttp.ClientResponse) -> HttpRequestOutput:
    raw, truncated = await _read_capped(response, api.max_response_bytes)
    text = raw.decode(_codec(response.charset), "replace")
    if response.status >= 500 or response.status in (408, 429):
        raise ToolUnavailable(
            f"API '{api.name}' answered {response.status} {response.reason}",
            retry_after_ms=_retry_after_ms(response),
        )
    if response.status >= 300:
        raise ToolFailed(
            f"API '{api.name}' answered {response.status} {response.reason}: "
            f"{text[:_ERROR_SNIPPET_CHARS]}"
        )
    if truncated or "json" not in response.content_type:
        return HttpRequestOutput(
            api=api.name, status=response.status, text=text, truncated=truncated
        )
    try:
        document: JsonValue = json.loads(text)
    except ValueError:
        return HttpRequestOutput(api=api.name, status=response.status, text=text)
    data = _select(document, api.response_fields) if api.response_fields else document
    return HttpRequestOutput(api=api.name, status=response.status, data=data)


async def _read_capped(response: aiohttp.ClientResponse, limit: int) -> tuple[bytes, bool]:
    """At most ``limit`` bytes of the (decompressed) body, and whether there was more."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(16_384):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(chunks)[:limit], True
    return b"".join(chunks), False


def _select(document: JsonValue, paths: list[str]) -> dict[str, JsonValue]:
    """The values at dotted ``paths`` (``order.items.0.sku``); missing ones are None."""
    selected: dict[str, JsonValue] = {}
    for path in paths:
        value: JsonValue = document
        for part in path.split("."):
            if isinstance(value, dict):
                value = value.get(part)
            elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
                value = value[int(part)]
            else:
                value = None
                break
        selected[path] = value
    return selected


def _codec(charset: str | None) -> str:
    try:
        return codecs.lookup(charset or "utf-8").name
    except LookupError:
        return "utf-8"


def _retry_after_ms(response: aiohttp.ClientResponse) -> int | None:
    value = response.headers.get("Retry-After", "")
    return int(value) * 1_000 if value.isdigit() else None


async def simulate_request(context: ToolContext, arguments: HttpRequestInput) -> HttpRequestOutput:
    """What a dry run answers: the request that would be sent, with nothing sent."""
    api = configured_api(context, arguments.api)
    prepared = api.prepare(dict(arguments.parameters))
    data: dict[str, Any] = {"dry_run": True, "method": prepared.method, "url": str(prepared.url)}
    if prepared.json_body is not None:
        data["json"] = prepared.json_body
    return HttpRequestOutput(api=api.name, status=0, data=data)


HTTP_REQUEST = Tool(
    name="http.request",
    description=(
        "Call one of the external APIs declared for this assistant (order status, stock, "
        "bookings…) by its name, with its parameters. You never give a URL."
    ),
    input_model=HttpRequestInput,
    output_model=HttpRequestOutput,
    run=request_api,
    simulate=simulate_request,
    writes=True,  # a declared API may be a POST that changes something
    timeout_s=35.0,  # above any API's own timeout (at most 30 s), so its error wins
    external=True,
)
