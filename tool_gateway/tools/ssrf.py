"""Outbound HTTP that the LLM cannot turn against our own network (SSRF).

Three checks, each closing a hole the others leave open:

- every URL we are about to request (the declared one and each redirect hop) must be
  http(s) and name an allowed host; a host written as an address (``10.0.0.1``, ``[::1]``,
  ``2130706433``, ``0x7f.1``) is checked as that address before anything connects;
- names are resolved by ``PinnedResolver`` inside the connector, and the addresses it checks
  are the addresses the connector dials, so DNS rebinding between a check and the connect has
  nothing to exploit;
- the session ignores proxy variables (a proxy would resolve the name for us, unchecked).

Refused: loopback, private (RFC 1918, ULA), shared (carrier-grade NAT), link-local (with the
cloud metadata address 169.254.169.254), multicast, reserved, unspecified, and any IPv4
address smuggled inside an IPv6 one (IPv4-mapped, IPv4-compatible, 6to4, Teredo, NAT64) —
unless the API's config allows private networks.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver
from yarl import URL

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_SHARED = ipaddress.IPv4Network("100.64.0.0/10")
# Only hosts that are all digits, dots and hex markers can be a legacy IPv4 form.
_LEGACY_IPV4 = re.compile(r"^[0-9][0-9a-fA-FxX.]*$")
_SCHEMES = frozenset({"http", "https"})

_CATEGORIES: tuple[tuple[str, Callable[[IPAddress], bool]], ...] = (
    ("unspecified", lambda ip: ip.is_unspecified),
    ("loopback", lambda ip: ip.is_loopback),
    ("link-local (where cloud metadata services live)", lambda ip: ip.is_link_local),
    ("multicast", lambda ip: ip.is_multicast),
    ("shared (carrier-grade NAT)", lambda ip: ip in _SHARED),
    ("reserved", lambda ip: ip.is_reserved),
    ("private", lambda ip: ip.is_private),
    ("site-local", lambda ip: isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local),
    ("not globally routable", lambda ip: not ip.is_global),
)


class DestinationRefused(OSError):
    """A URL or the address behind it is not somewhere this API may go.

    An ``OSError`` so that aiohttp's connector passes it through as the cause of its
    connection error, whichever layer refused.
    """


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries and may route to, if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if 1 < int(ip) <= 0xFFFFFFFF:  # deprecated IPv4-compatible form ``::a.b.c.d``
        return ipaddress.IPv4Address(int(ip))
    return None


def refusal_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public address (e.g. ``"loopback"``), or None when it is."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = embedded_ipv4(ip)
        if inner is not None:
            reason = refusal_reason(inner)
            return f"{reason} (IPv4 {inner} inside IPv6)" if reason else None
    for reason, applies in _CATEGORIES:
        if applies(ip):
            return reason
    return None


def literal_address(host: str) -> IPAddress | None:
    """The address ``host`` denotes without DNS, including legacy IPv4 forms, or None."""
    bare = host.strip("[]")
    try:
        return ipaddress.ip_address(bare.split("%", 1)[0])
    except ValueError:
        pass
    if _LEGACY_IPV4.match(bare):
        try:
            # The C resolver reads ``2130706433``, ``127.1`` and ``0x7f.1`` as addresses.
            return ipaddress.IPv4Address(socket.inet_aton(bare))
        except OSError:
            return None
    return None


def normalize_host(host: str) -> str:
    """A host as compared with allowed hosts: lower case, no brackets or trailing dot.

    An IPv6 address takes its one canonical spelling (``::ffff:7f00:1`` for
    ``::ffff:127.0.0.1``), whichever way the config or a redirect wrote it.
    """
    bare = host.strip("[]").rstrip(".").lower()
    try:
        return str(ipaddress.ip_address(bare))
    except ValueError:
        return bare


@dataclass(frozen=True, slots=True)
class DestinationPolicy:
    """Where one declared API may send requests."""

    allowed_hosts: frozenset[str]
    allow_private_networks: bool = False

    def check_address(self, host: str, ip: IPAddress) -> None:
        """Refuse ``ip`` (what ``host`` denotes) unless it is public or private is allowed."""
        if self.allow_private_networks:
            return
        reason = refusal_reason(ip)
        if reason is not None:
            where = f"address {ip}" if normalize_host(host) == str(ip) else f"{host} ({ip})"
            raise DestinationRefused(
                f"refused to connect to {where}: the address is {reason}, and this API"
                " does not allow private networks"
            )

    def check_url(self, url: URL) -> None:
        """Refuse a URL with another scheme, a host not allowed, or a non-public address."""
        if url.scheme not in _SCHEMES:
            scheme = url.scheme or "(none)"
            raise DestinationRefused(f"refused a URL with scheme {scheme!r}: only http and https")
        host = normalize_host(url.raw_host or "")
        if not host:
            raise DestinationRefused("refused a URL without a host")
        if host not in self.allowed_hosts:
            raise DestinationRefused(
                f"refused host {host!r}: it is not in this API's allowed hosts"
            )
        ip = literal_address(host)
        if ip is not None:
            self.check_address(host, ip)


class PinnedResolver(AbstractResolver):
    """Resolves names and refuses the lot if any address is not allowed.

    The connector dials exactly the addresses returned here, so the check and the connection
    use one and the same answer.
    """

    def __init__(self, policy: DestinationPolicy) -> None:
        self._policy = policy
        self._resolver = ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Addresses of ``host``, each checked against the policy."""
        results = await self._resolver.resolve(host, port, family)
        for result in results:
            self._policy.check_address(host, ipaddress.ip_address(result["host"]))
        return results

    async def close(self) -> None:
        """Release the inner resolver."""
        await self._resolver.close()


class GuardedHttpClient:
    """An aiohttp session that only goes where a ``DestinationPolicy`` allows.

    Used as an async context manager, one per tool call: its connector carries the policy
    of one API, so a shared session (``ToolServices.http``, whose resolver checks nothing)
    is deliberately not used. Redirects are not followed here; the caller re-checks each hop.
    """

    def __init__(self, policy: DestinationPolicy, *, timeout_s: float) -> None:
        self._policy = policy
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        connector = aiohttp.TCPConnector(
            resolver=PinnedResolver(self._policy), use_dns_cache=False, force_close=True
        )
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=self._timeout, trust_env=False
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @asynccontextmanager
    async def request(
        self, method: str, url: URL, **options: Any
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """The response to one request, after checking ``url``; may raise ``DestinationRefused``."""
        if self._session is None:
            raise RuntimeError("GuardedHttpClient is used outside 'async with'")
        self._policy.check_url(url)
        async with self._session.request(method, url, allow_redirects=False, **options) as response:
            yield response


def refusal_in(exc: BaseException) -> DestinationRefused | None:
    """The ``DestinationRefused`` behind an aiohttp connection error, if that was the cause."""
    seen: BaseException | None = exc
    for _ in range(5):  # aiohttp wraps once or twice; the bound keeps a cycle harmless
        if seen is None:
            return None
        if isinstance(seen, DestinationRefused):
            return seen
        os_error = getattr(seen, "os_error", None)
        if isinstance(os_error, DestinationRefused):
            return os_error
        seen = seen.__cause__
    return None
