"""``http.request`` against a real local HTTP server: requests, auth, encoding, answers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from pydantic import ValidationError

from libs.keys import KeySpace
from tests.tool_support import SeededConversation, tool_context, tool_services
from tool_gateway.tool import ToolArgumentsInvalid, ToolContext, ToolFailed, ToolUnavailable
from tool_gateway.tools.http_api import HttpApiConfig
from tool_gateway.tools.http_request import (
    HTTP_REQUEST,
    HttpRequestInput,
    HttpRequestOutput,
    describe_apis,
)

SECRETS = {"SHOP_TOKEN": "tok-123", "SHOP_PASSWORD": "pw-456"}
SEEDED = SeededConversation("acme", "acme-wa", "c1", "acme-conversation-1", "acme-turn-1", 1)


@dataclass
class ShopServer:
    """A local API that records every request it receives."""

    base_url: str
    requests: list[web.Request] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)


def _routes(server: ShopServer) -> web.Application:
    async def record(request: web.Request) -> web.StreamResponse:
        server.requests.append(request)
        server.bodies.append(await request.read())
        path = request.match_info["tail"]
        if path.startswith("status/"):
            code = int(path.removeprefix("status/"))
            return web.Response(
                status=code, text=f"status {code} body", headers={"Retry-After": "7"}
            )
        if path == "big":
            return web.Response(text="x" * 10_000)
        if path == "redirect":
            raise web.HTTPFound(request.query["to"])
        return web.json_response(
            {
                "path": request.raw_path,
                "authorization": request.headers.get("Authorization"),
                "api_key": request.headers.get("X-Api-Key"),
                "order": {"status": "shipped", "items": [{"sku": "A1"}]},
            }
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    return app


@pytest.fixture
async def shop() -> AsyncIterator[ShopServer]:
    server = ShopServer(base_url="")
    runner = web.AppRunner(_routes(server))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    server.base_url = f"http://127.0.0.1:{port}"
    yield server
    await runner.cleanup()


def api(shop: ShopServer, **overrides: Any) -> HttpApiConfig:
    """An order-status API on the local server (private addresses allowed explicitly)."""
    values: dict[str, Any] = {
        "name": "order_status",
        "description": "Look up an order.",
        "url": shop.base_url + "/api/orders/{order_id}",
        "parameters": [
            {"name": "order_id", "description": "The order number."},
            {
                "name": "verbose",
                "type": "boolean",
                "description": "More detail.",
                "required": False,
            },
        ],
        "allow_private_networks": True,
    }
    values.update(overrides)
    return HttpApiConfig.model_validate(values, context={"env": SECRETS})


def context_for(
    redis: aioredis.Redis, keys: KeySpace, *apis: HttpApiConfig, dry_run: bool = False
) -> ToolContext:
    services = tool_services(redis, keys, None, settings=SimpleNamespace(http_apis=list(apis)))
    return tool_context(SEEDED, services, dry_run=dry_run)


async def call(context: ToolContext, name: str, **parameters: Any) -> HttpRequestOutput:
    return await HTTP_REQUEST.run(context, HttpRequestInput(api=name, parameters=parameters))


async def test_happy_path_returns_the_declared_fields(
    redis: aioredis.Redis, keys: KeySpace, shop: ShopServer
) -> None:
    config = api(shop, response_fields=["order.status", "order.items.0.sku", "order.missing"])
    result = await call(
        context_for(redis, keys, config), "order_status", order_id="A-1", verbose=True
    )

    assert result.status == 200
    assert result.data == {
        "order.status": "shipped",
        "order.items.0.sku": "A1",
        "order.missing": None,
    }
    assert shop.requests[0].raw_path == "/api/orders/A-1?verbose=true"
    assert shop.requests[0].method == "GET"


@pytest.mark.parametrize(
    ("auth", "header", "expected"),
    [
        ({"kind": "bearer", "token": {"env": "SHOP_TOKEN"}}, "Authorization", "Bearer tok-123"),
        (
            {"kind": "basic", "username": "bot", "password": {"env": "SHOP_PASSWORD"}},
            "Authorization",
            "Basic Ym90OnB3LTQ1Ng==",
        ),
        (
            {"kind": "header", "header": "X-Api-Key", "value": {"env": "SHOP_TOKEN"}},
            "X-Api-Key",
            "tok-123",
        ),
    ],
)
async def test_auth_is_sent(
    redis: aioredis.Redis,
    keys: KeySpace,
    shop: ShopServer,
    auth: dict[str, Any],
    header: str,
    expected: str,
) -> None:
    await call(context_for(redis, keys, api(shop, auth=auth)), "order_status", order_id="1")

    assert shop.requests[0].headers[header] == expected


@pytest.mark.parametrize(
    ("order_id", "raw_path"),
    [
        ("../admin", "/api/orders/..%2Fadmin"),
        ("@evil.example", "/api/orders/%40evil.example"),
        ("a/b?c=d#e", "/api/orders/a%2Fb%3Fc%3Dd%23e"),
        ("ação 1", "/api/orders/a%C3%A7%C3%A3o%201"),
    ],
)
async def test_path_values_stay_one_segment_on_the_declared_host(
    redis: aioredis.Redis, keys: KeySpace, shop: ShopServer, order_id: str, raw_path: str
) -> None:
    result = await call(context_for(redis, keys, api(shop)), "order_status", order_id=order_id)

    assert result.status == 200
    assert [request.raw_path for request in shop.requests] == [raw_path]
    assert shop.requests[0].host == shop.base_url.removeprefix("http://")


async def test_query_values_are_encoded(
    redis: aioredis.Redis, keys: KeySpace, shop: ShopServer
) -> None:
    config = api(
        shop,
        url=shop.base_url + "/api/search?format=json",
        parameters=[{"name": "q", "description": "Words."}],
    )
    await call(context_for(redis, keys, config), "order_status", q="a&b=c d")

    assert shop.requests[0].raw_path == "/api/search?format=json&q=a%26b%3Dc+d"
    assert shop.requests[0].query["q"] == "a&b=c d"


@pytest.mark.parametrize("order_id", ["..", "."])
async def test_dot_segments_are_refused_before_sending(
    redis: aioredis.Redis, keys: KeySpace, shop: ShopServer, order_id: str
) -> None:
    with pytest.raises(ToolArgumentsInvalid, match="order_id"):
        await call(context_for(redis, keys, api(shop)), "order_status", order_id=order_id)
    assert shop.requests == []


async def test_post_sends_a_json_body(
    redis: aioredis.Redis, keys: KeySpace, shop: ShopServer
) -> None:
    config = api(
        shop,
        method="POST",
        url=shop.base_url + "/api/bookings",
        parameters=[
            {"name": "day", "description": "ISO date."},
            {"name": "people", "type": "integer", "description": "How many."},
        ],
    )
    await call(context_for(redis, keys, config), "order_status", day="2025-01-02", people=3)

    assert shop.requests[0].method == "POST"
    assert json.loads(shop.bodies[0]) == {"day": "2025-01-02", "people": 3}


async def test_a_long_answer_is_truncated(
    redis: aioredis.Redis, keys: KeySpace, shop: ShopServer
) -> None:
    config = api(shop, url=shop.base_url + "/big", parameters=[], max_response_bytes=1_000)
    result = await call(context_for(redis, keys, config), "order_status")

    assert result.truncated is True
    assert result.text == "x" * 1_000


async def test_server_errors_mean_unavailable_with_retry_after(
    redis: aioredis.Redis, keys: KeySpace, shop: ShopServer
) -> None:
    config = api(shop, url=shop.base_url + "/status/503", parameters=[])
    with pytest.raises(ToolUnavailable, match="503") as raised:
        await call(context_for(redis, keys, config), "order_status")
    assert raised.value.retry_after_ms == 7_000


async def test_client_errors_mean_failed_with_the_answer(
    redis: aioredis.Redis, keys: KeySpace, shop: ShopServer
) -> None:
    config = api(shop, url=shop.base_url + "/status/404", parameters=[])
    with pytest.raises(ToolFailed, match="404 Not Found: status 404 body"):
        await call(context_for(redis, keys, config), "order_status")


async def test_a_server_that_is_down_is_unavailable(
    redis: aioredis.Redis, keys: KeySpace, shop: ShopServer
) -> None:
    config = api(shop, url="http://127.0.0.1:1/api", parameters=[])
    with pytest.raises(ToolUnavailable, match="could not be reached"):
        await call(context_for(redis, keys, config), "order_status")


async def test_a_redirect_on_the_same_host_is_followed(
    redis: aioredis.Redis, keys: KeySpace, shop: ShopServer
) -> None:
    config = api(shop, url=shop.base_url + "/redirect?to=/api/orders/9", parameters=[])
    result = await call(context_for(redis, keys, config), "order_status")

    assert isinstance(result.data, dict)
    assert result.data["path"] == "/api/orders/9"


async def test_credentials_do_not_follow_a_redirect_to_another_allowed_host(
    redis: aioredis.Redis, keys: KeySpace, shop: ShopServer
) -> None:
    elsewhere = shop.base_url.replace("127.0.0.1", "localhost") + "/api/landing"
    config = api(
        shop,
        url=shop.base_url + "/redirect?to=" + elsewhere,
        parameters=[],
        allowed_hosts=["127.0.0.1", "localhost"],
        auth={"kind": "bearer", "token": {"env": "SHOP_TOKEN"}},
    )
    result = await call(context_for(redis, keys, config), "order_status")

    assert isinstance(result.data, dict)
    assert result.data["path"] == "/api/landing"
    assert result.data["authorization"] is None
    assert shop.requests[0].headers["Authorization"] == "Bearer tok-123"


async def test_arguments_are_checked_against_the_declaration(
    redis: aioredis.Redis, keys: KeySpace, shop: ShopServer
) -> None:
    context = context_for(redis, keys, api(shop))
    with pytest.raises(ToolArgumentsInvalid, match="order_id: Field required"):
        await call(context, "order_status")
    with pytest.raises(ToolArgumentsInvalid, match="verbose: Input should be a valid boolean"):
        await call(context, "order_status", order_id="1", verbose="maybe")
    with pytest.raises(ToolArgumentsInvalid, match="color: Extra inputs are not permitted"):
        await call(context, "order_status", order_id="1", color="red")
    with pytest.raises(ToolArgumentsInvalid, match="no API named 'refunds'; declared APIs: order"):
        await call(context, "refunds")
    assert shop.requests == []


async def test_an_api_of_other_tenants_is_not_offered(
    redis: aioredis.Redis, keys: KeySpace, shop: ShopServer
) -> None:
    context = context_for(redis, keys, api(shop, tenants=["globex"]))
    with pytest.raises(ToolArgumentsInvalid, match="declared APIs: none"):
        await call(context, "order_status", order_id="1")
    assert shop.requests == []


async def test_no_configured_apis_means_unavailable(redis: aioredis.Redis, keys: KeySpace) -> None:
    with pytest.raises(ToolUnavailable, match="no HTTP APIs are configured"):
        await call(context_for(redis, keys), "order_status", order_id="1")


async def test_a_dry_run_sends_nothing(
    redis: aioredis.Redis, keys: KeySpace, shop: ShopServer
) -> None:
    assert HTTP_REQUEST.simulate is not None
    context = context_for(redis, keys, api(shop), dry_run=True)
    result = await HTTP_REQUEST.simulate(
        context, HttpRequestInput(api="order_status", parameters={"order_id": "7"})
    )

    assert result.status == 0
    assert result.data == {"dry_run": True, "method": "GET", "url": shop.base_url + "/api/orders/7"}
    assert shop.requests == []


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"url": "http://{host}/x"}, "placeholders only in the path"),
        ({"url": "http://user@shop.example/x"}, "no user info"),
        ({"url": "ftp://shop.example/x"}, "must be http"),
        ({"url": "http://shop.example/x?id={order_id}"}, "placeholders belong in the path"),
        ({"url": "http://shop.example/{sku}"}, "placeholder {sku} is not a declared parameter"),
        ({"allowed_hosts": ["other.example"]}, "allowed_hosts must include the url's host"),
        ({"auth": {"kind": "bearer", "token": {"env": "NOPE"}}}, "NOPE is not set"),
        ({"auth": {"kind": "header", "header": "Host", "value": {"env": "SHOP_TOKEN"}}}, "Host"),
    ],
)
def test_bad_declarations_are_refused_with_a_reason(
    overrides: dict[str, Any], message: str
) -> None:
    shop = ShopServer(base_url="http://shop.example")
    with pytest.raises(ValidationError, match=message.replace("{", r"\{").replace("?", r"\?")):
        api(shop, **overrides)


def test_the_parameters_schema_describes_the_api() -> None:
    schema = api(ShopServer(base_url="http://shop.example")).parameters_model().model_json_schema()

    assert schema["required"] == ["order_id"]
    assert schema["properties"]["order_id"]["description"] == "The order number."
    assert schema["additionalProperties"] is False


def test_the_declared_apis_are_described_for_the_agent() -> None:
    shop = ShopServer(base_url="http://shop.example")
    other = api(shop, name="refunds", tenants=["globex"])

    assert describe_apis([api(shop), other], "acme") == (
        "- order_status: Look up an order. Parameters: order_id (string): The order number.; "
        "verbose (boolean, optional): More detail."
    )
    assert HTTP_REQUEST.sensitive_fields() == frozenset({"parameters"})
