"""``GET /webhooks/{provider}/{channel_id}``: a provider's handshake (Meta's hub.challenge)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from channels.inbound import PayloadInvalid, SignatureInvalid
from channels.provider import Handshake
from channels.registry import ChannelRegistry
from ingress import problems
from ingress.channel import IngressChannel

Handler = Callable[[web.Request], Awaitable[web.Response]]


def handshake_handler(
    provider: str, handshake: Handshake[Any], channels: Mapping[tuple[str, str], IngressChannel]
) -> Handler:
    """A handler that answers ``provider``'s handshake for the channel the URL names."""

    async def handle(request: web.Request) -> web.Response:
        channel_id = request.match_info["channel_id"]
        channel = channels.get((provider, channel_id))
        if channel is None:
            return problems.unknown_channel(provider, channel_id)
        try:
            answer = handshake.answer(channel.config, request.query)
        except SignatureInvalid as exc:
            # Meta expects 403 when the token does not match.
            return problems.problem(403, "verify_token_mismatch", str(exc), check=exc.check)
        except PayloadInvalid as exc:
            return problems.problem(400, "invalid_handshake", str(exc), field=exc.field)
        return web.Response(text=answer, content_type="text/plain")

    return handle


def handshake_handlers(
    registry: ChannelRegistry, channels: Mapping[tuple[str, str], IngressChannel]
) -> dict[str, Handler]:
    """The handshake handler of every provider that has one, by provider name."""
    return {
        provider.name: handshake_handler(provider.name, provider.handshake, channels)
        for provider in registry
        if provider.handshake is not None
    }
