"""``/openapi.json``: a valid OpenAPI 3.1 document of every route, which the ingress keeps.

Schemathesis generates requests from the document (the one served, as a test shows) and sends
them to the real ingress (real HTTP, real Redis, a channel of each provider, requests to a
channel signed half the time); every answer must be documented, match its schema, and none
may be a server error.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import hypothesis.strategies as st
import pytest
import redis.asyncio as aioredis
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]  # no stubs
from schemathesis import APIOperation
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from channels.config import ChannelsConfig
from ingress.openapi import OPENAPI_PATH, openapi_document
from ingress.wiring import build_ingress_app
from libs.keys import KeySpace
from tests.openapi_support import (
    CHANNEL_IDS,
    FIXTURES,
    SECRETS,
    SLOW_BODY_LIMIT_BYTES,
    SLOW_CHANNEL_ID,
    ChannelSigner,
    ServedIngress,
    channels_config,
    served_ingress,
    signed_webhooks,
    whatsapp_signature,
)

REQUEST_TIMEOUT_S = 10.0
WEBHOOK = "/webhooks/{provider}/{channel_id}"
HANDSHAKE = "/webhooks/whatsapp/{channel_id}"
JSON = {"Content-Type": "application/json"}
CONFORMANCE = [
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
CHECKS = [not_a_server_error, *CONFORMANCE]


def _schemas(node: Any) -> Iterator[dict[str, Any]]:
    """Every JSON Schema in the document: components and each ``schema`` of an operation."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "schema" and isinstance(value, dict):
                yield value
            elif key == "schemas" and isinstance(value, dict):
                yield from value.values()
            else:
                yield from _schemas(value)
    elif isinstance(node, list):
        for item in node:
            yield from _schemas(item)


def test_the_document_is_valid_openapi_3_1_with_valid_schemas() -> None:
    document = openapi_document()
    assert document["openapi"].startswith("3.1.")
    schemathesis.openapi.from_dict(document).validate()
    schemas = list(_schemas(document))
    assert len(schemas) > 20
    for schema in schemas:
        Draft202012Validator.check_schema(schema)


def test_the_validation_above_refuses_a_broken_document() -> None:
    document = openapi_document()
    del document["paths"][WEBHOOK]["post"]["parameters"][0]["in"]
    with pytest.raises(ValueError, match='"in" is a required property'):
        schemathesis.openapi.from_dict(document).validate()


def _served_routes(config: ChannelsConfig, redis_url: str) -> set[tuple[str, str]]:
    # The client is never used: building the app opens no connection.
    client = aioredis.Redis.from_url(redis_url)
    app = build_ingress_app(
        config,
        redis=client,
        keys=KeySpace("unused"),
        partitions=1,
        capacity=100,
        backlog_full_retry_after_s=30,
        checks={},
    )
    routes = {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None
    }
    # aiohttp answers HEAD on every GET route; HTTP defines HEAD by GET, so it is not listed.
    heads = {path for method, path in routes if method == "head"}
    assert heads <= {path for method, path in routes if method == "get"}
    return {(method, path) for method, path in routes if method != "head"}


def test_the_document_lists_exactly_the_routes_the_app_serves(redis_url: str) -> None:
    documented = {
        (method, path) for path, item in openapi_document()["paths"].items() for method in item
    }
    assert documented == _served_routes(channels_config(), redis_url)


@pytest.fixture
def ingress(redis_url: str, keys: KeySpace) -> Iterator[ServedIngress]:
    """The ingress on a local port, with one channel of every provider."""
    with served_ingress(redis_url, keys) as served:
        yield served


def test_the_served_document_is_the_built_one(ingress: ServedIngress) -> None:
    response = requests.get(ingress.base_url + OPENAPI_PATH, timeout=REQUEST_TIMEOUT_S)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == openapi_document()


def _conforms(operation: APIOperation[Any, Any, Any, Any], response: requests.Response) -> None:
    """``response`` is documented: its status, content type, headers and body."""
    template = operation.path.split("/")
    sent = urlsplit(response.url).path.split("/")
    assert len(sent) == len(template), (operation.path, response.url)
    parameters = {
        name[1:-1]: value
        for name, value in zip(template, sent, strict=True)
        if name.startswith("{")
    }
    operation.Case(path_parameters=parameters).validate_response(response, checks=CONFORMANCE)


def _post(url: str, body: bytes, headers: dict[str, str]) -> requests.Response:
    return requests.post(url, data=body, headers=headers, timeout=REQUEST_TIMEOUT_S)


def test_signed_webhooks_of_every_provider_are_accepted_then_duplicates(
    ingress: ServedIngress,
) -> None:
    schema = schemathesis.openapi.from_dict(openapi_document())
    operation = schema[WEBHOOK]["POST"]
    answers = {}
    for webhook in signed_webhooks(ingress.base_url):
        for attempt in ("first", "repeat"):
            response = _post(ingress.base_url + webhook.path, webhook.body, webhook.headers)
            assert response.status_code == 200, (webhook.provider, response.text)
            _conforms(operation, response)
            answers[webhook.provider, attempt] = response.json()["status"]
    assert set(answers) == {(provider, a) for provider in CHANNEL_IDS for a in ("first", "repeat")}
    assert {answers[p, "first"] for p in CHANNEL_IDS} == {"accepted"}
    assert {answers[p, "repeat"] for p in CHANNEL_IDS} == {"duplicate"}


def test_each_answer_of_a_webhook_is_documented(ingress: ServedIngress) -> None:
    receive = schemathesis.openapi.from_dict(openapi_document())[WEBHOOK]["POST"]
    slow = f"{ingress.base_url}/webhooks/whatsapp/{SLOW_CHANNEL_ID}"
    url = slow.replace(SLOW_CHANNEL_ID, "{}")
    too_big = b"{}" + b" " * SLOW_BODY_LIMIT_BYTES
    not_json = b"{not json"
    genuine = (FIXTURES / "whatsapp" / "text.json").read_bytes()
    assert len(genuine) <= SLOW_BODY_LIMIT_BYTES
    signed = {**JSON, **whatsapp_signature(genuine)}
    answers = [
        (_post(url.format("nope"), b"{}", JSON), 404, "unknown_channel"),
        (_post(slow, too_big, JSON), 413, "body_too_large"),
        (_post(slow, b"{}", {"Content-Type": "text/plain"}), 415, "unsupported_media_type"),
        (_post(slow, b"{}", JSON), 401, "signature_invalid"),
        (_post(slow, not_json, {**JSON, **whatsapp_signature(not_json)}), 400, "invalid_payload"),
        # Only genuine webhooks count against the channel's limit: two fit, the third does not.
        (_post(slow, genuine, signed), 200, "accepted"),
        (_post(slow, genuine, signed), 200, "duplicate"),
        (_post(slow, genuine, signed), 429, "rate_limited"),
    ]
    for response, status, outcome in answers:
        body = response.json()
        assert (response.status_code, body.get("error", body.get("status"))) == (status, outcome)
        _conforms(receive, response)
    assert int(answers[-1][0].headers["Retry-After"]) >= 1


def test_each_answer_of_the_handshake_is_documented(ingress: ServedIngress) -> None:
    handshake = schemathesis.openapi.from_dict(openapi_document())[HANDSHAKE]["GET"]
    url = f"{ingress.base_url}/webhooks/whatsapp/{CHANNEL_IDS['whatsapp']}"
    query = "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token="
    answers = [
        requests.get(f"{url}?{query}{token}", timeout=REQUEST_TIMEOUT_S)
        for token in (SECRETS["WA_VERIFY_TOKEN"], "guess", "")
    ]
    assert [answer.status_code for answer in answers] == [200, 403, 400]
    assert answers[0].text == "1158201444"
    for answer in answers:
        _conforms(handshake, answer)


def test_an_unreachable_redis_gets_documented_503s_with_retry_after(keys: KeySpace) -> None:
    schema = schemathesis.openapi.from_dict(openapi_document())
    with served_ingress("redis://127.0.0.1:1/0", keys) as ingress:
        [webhook, *_] = signed_webhooks(ingress.base_url)
        stored = _post(ingress.base_url + webhook.path, webhook.body, webhook.headers)
        assert stored.status_code == 503
        assert int(stored.headers["Retry-After"]) >= 1
        _conforms(schema[WEBHOOK]["POST"], stored)
        for path in ("/health", "/health/ready"):
            health = requests.get(ingress.base_url + path, timeout=REQUEST_TIMEOUT_S)
            assert health.status_code == 503
            assert health.json()["checks"]["redis"] != "ok"
            _conforms(schema[path]["GET"], health)


def flatmap_path_parameters(
    _context: schemathesis.HookContext, path_parameters: dict[str, Any] | None
) -> st.SearchStrategy[dict[str, Any] | None]:
    """Aim half the generated requests at a configured channel, past the 404 of unknown ones.

    The handshake route has no provider parameter: it is WhatsApp's.
    """
    if not path_parameters or "channel_id" not in path_parameters:
        return st.just(path_parameters)
    configured = CHANNEL_IDS.get(path_parameters.get("provider", "whatsapp"))
    if configured is None:
        return st.just(path_parameters)
    return st.sampled_from([path_parameters, {**path_parameters, "channel_id": configured}])


# Loaded from the built document at collection time, which the test above proves is the one
# served. (Loading the served one through ``schemathesis.pytest.from_fixture`` fails on
# pytest 9.2: schemathesis 4.32 renames the test node through ``Function._nodeid``, gone.)
served_schema = schemathesis.openapi.from_dict(openapi_document())
served_schema.hook(flatmap_path_parameters)


@served_schema.parametrize()
@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    # One server takes every generated request of an operation, as a deployed ingress would.
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_generated_requests_get_no_server_error_and_documented_answers(
    case: schemathesis.Case[Any], ingress: ServedIngress
) -> None:
    case.call_and_validate(
        base_url=ingress.base_url, checks=CHECKS, auth=ChannelSigner(), timeout=REQUEST_TIMEOUT_S
    )
