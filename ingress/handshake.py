"""``GET /webhooks/whatsapp/{channel_id}``: Meta's subscription handshake."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from channels.inbound import PayloadInvalid, SignatureInvalid
from channels.whatsapp.config import WhatsAppChannel
from channels.whatsapp.inbound import verify_subscription
from ingress import problems
from ingress.channel import IngressChannel


def whatsapp_handshake(
    channels: Mapping[tuple[str, str], IngressChannel],
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A handler that echoes ``hub.challenge`` when ``hub.verify_token`` is the channel's."""

    async def handshake(request: web.Request) -> web.Response:
        channel_id = request.match_info["channel_id"]
        channel = channels.get(("whatsapp", channel_id))
        if channel is None or not isinstance(channel.config, WhatsAppChannel):
            return problems.unknown_channel("whatsapp", channel_id)
        token = channel.config.secrets.verify_token.reveal()
        try:
            challenge = verify_subscription(request.query, token)
        except SignatureInvalid as exc:
            # Meta expects 403 when the token does not match.
            return problems.problem(403, "verify_token_mismatch", str(exc), check=exc.check)
        except PayloadInvalid as exc:
            return problems.problem(400, "invalid_handshake", str(exc), field=exc.field)
        return web.Response(text=challenge, content_type="text/plain")

    return handshake
