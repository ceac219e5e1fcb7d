"""SSRF: ``http.request`` cannot be pointed at our own network, whatever the URL says."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from yarl import URL

from libs.keys import KeySpace
from tests.tool_support import SeededConversation, tool_context, tool_services
from tool_gateway.tool import ToolContext, ToolFailed
from tool_gateway.tools.http_api import HttpApiConfig
from tool_gateway.tools.http_request import HTTP_REQUEST, HttpRequestInput
from tool_gateway.tools.ssrf import (
    DestinationPolicy,
    DestinationRefused,
    PinnedResolver,
    literal_address,
    refusal_reason,
)

SEEDED = SeededConversation("acme", "acme-wa", "c1", "acme-conversation-1", "acme-turn-1", 1)


@dataclass
class Victim:
    """A local server standing in for an internal service; it counts who reached it."""

    port: int = 0
    paths: list[str] = field(default_factory=list)


@pytest.fixture
async def victim() -> AsyncIterator[Victim]:
    """Listens on 127.0.0.1 and [::1] on one port, so every loopback spelling reaches it."""
    found = Victim()

    async def record(request: web.Request) -> web.Response:
        found.paths.append(request.raw_path)
        if request.path == "/hop":
            raise web.HTTPFound(request.query["to"])
        return web.json_response({"secret": "internal"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app)
    await runner.setup()
    first = web.TCPSite(runner, "127.0.0.1", 0)
    await first.start()
    found.port = runner.addresses[0][1]
    await web.TCPSite(runner, "::1", found.port).start()
    yield found
    await runner.cleanup()


def context_with(redis: aioredis.Redis, keys: KeySpace, url: str, **overrides: Any) -> ToolContext:
    config = HttpApiConfig.model_validate(
        {"name": "internal", "description": "An API.", "url": url, **overrides}
    )
    services = tool_services(redis, keys, None, settings=SimpleNamespace(http_apis=[config]))
    return tool_context(SEEDED, services)


async def call(context: ToolContext) -> None:
    await HTTP_REQUEST.run(context, HttpRequestInput(api="internal"))


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:{port}/", "address 127.0.0.1: the address is loopback"),
        ("http://localhost:{port}/", r"localhost \((127\.0\.0\.1|::1)\): the address is loopback"),
        ("http://[::1]:{port}/", "address ::1: the address is loopback"),
        ("http://0.0.0.0:{port}/", "address 0.0.0.0: the address is unspecified"),
        ("http://2130706433:{port}/", r"2130706433 \(127\.0\.0\.1\): the address is loopback"),
        ("http://0x7f.1:{port}/", r"0x7f\.1 \(127\.0\.0\.1\): the address is loopback"),
        ("http://[::ffff:127.0.0.1]:{port}/", r"loopback \(IPv4 127\.0\.0\.1 inside IPv6\)"),
        ("http://10.0.0.1:{port}/", "address 10.0.0.1: the address is private"),
        ("http://192.168.1.10/", "address 192.168.1.10: the address is private"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[fd00::1]/", "address fd00::1: the address is private"),
    ],
)
async def test_private_destinations_are_refused_before_connecting(
    redis: aioredis.Redis, keys: KeySpace, victim: Victim, url: str, reason: str
) -> None:
    context = context_with(redis, keys, url.format(port=victim.port))
    with pytest.raises(ToolFailed, match=reason) as raised:
        await call(context)
    assert "does not allow private networks" in str(raised.value)
    assert victim.paths == []


async def test_the_same_urls_reach_the_server_when_private_networks_are_allowed(
    redis: aioredis.Redis, keys: KeySpace, victim: Victim
) -> None:
    for host in ("127.0.0.1", "localhost", "[::1]", "[::ffff:127.0.0.1]"):
        url = f"http://{host}:{victim.port}/{host.strip('[]')}"
        await call(context_with(redis, keys, url, allow_private_networks=True))
    assert victim.paths == ["/127.0.0.1", "/localhost", "/::1", "/::ffff:127.0.0.1"]


async def test_a_redirect_to_a_host_not_allowed_is_refused(
    redis: aioredis.Redis, keys: KeySpace, victim: Victim
) -> None:
    target = f"http://localhost:{victim.port}/admin"
    url = f"http://127.0.0.1:{victim.port}/hop?to={target}"
    context = context_with(redis, keys, url, allow_private_networks=True)
    with pytest.raises(
        ToolFailed, match="refused host 'localhost': it is not in this API's allowed"
    ):
        await call(context)
    assert victim.paths == [f"/hop?to={target}"]


@pytest.mark.parametrize(
    "hop",
    ["http://127.0.0.1/admin", "http://[::1]/", "http://2130706433/", "http://169.254.169.254/"],
)
def test_a_redirect_hop_to_a_loopback_or_metadata_address_is_refused(hop: str) -> None:
    # Every hop passes this check before a request; the allowed hosts include the hop's
    # host here so that only the address can be what refuses it.
    host = URL(hop).raw_host or ""
    policy = DestinationPolicy(allowed_hosts=frozenset({"api.example.com", host.strip("[]")}))
    policy.check_url(URL("https://api.example.com/v1"))
    with pytest.raises(DestinationRefused, match="does not allow private networks"):
        policy.check_url(URL(hop))


@pytest.mark.parametrize("url", ["file:///etc/passwd", "gopher://api.example.com/", "//x"])
def test_only_http_and_https_are_allowed(url: str) -> None:
    policy = DestinationPolicy(allowed_hosts=frozenset({"api.example.com"}))
    with pytest.raises(DestinationRefused, match="only http and https"):
        policy.check_url(URL(url))


async def test_the_resolver_refuses_names_that_point_inside() -> None:
    resolver = PinnedResolver(DestinationPolicy(allowed_hosts=frozenset({"localhost"})))
    try:
        with pytest.raises(DestinationRefused, match=r"localhost \(.*\): the address is loopback"):
            await resolver.resolve("localhost", 80)
    finally:
        await resolver.close()


async def test_the_resolver_returns_what_it_checked_when_private_is_allowed() -> None:
    policy = DestinationPolicy(allowed_hosts=frozenset({"localhost"}), allow_private_networks=True)
    resolver = PinnedResolver(policy)
    try:
        results = await resolver.resolve("localhost", 80)
    finally:
        await resolver.close()
    assert {ipaddress.ip_address(result["host"]).is_loopback for result in results} == {True}


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.0.1", "private"),
        ("100.64.0.1", "shared (carrier-grade NAT)"),
        ("169.254.169.254", "link-local (where cloud metadata services live)"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("::1", "loopback"),
        ("fc00::1", "private"),
        ("fe80::1", "link-local (where cloud metadata services live)"),
        ("ff02::1", "multicast"),
        ("::ffff:10.0.0.1", "private (IPv4 10.0.0.1 inside IPv6)"),
        ("::127.0.0.1", "loopback (IPv4 127.0.0.1 inside IPv6)"),
        (
            "2002:a9fe:a9fe::",
            "link-local (where cloud metadata services live) (IPv4 169.254.169.254 inside IPv6)",
        ),
        ("64:ff9b::7f00:1", "loopback (IPv4 127.0.0.1 inside IPv6)"),
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
        ("::ffff:8.8.8.8", None),
    ],
)
def test_address_categories(address: str, reason: str | None) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("2130706433", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("0x7f.0.0.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("[::1]", "::1"),
        ("api.example.com", None),
        ("cafe", None),
    ],
)
def test_hosts_written_as_addresses_are_read_as_the_resolver_would(
    host: str, address: str | None
) -> None:
    found = literal_address(host)
    assert (str(found) if found else None) == address
