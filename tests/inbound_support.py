"""Helpers shared by the inbound adapter tests."""

from __future__ import annotations

from ingress.channels.base import Inbound, InboundAdapter, PayloadInvalid, WebhookRequest


def parse_or_refusal(
    adapter: InboundAdapter, request: WebhookRequest
) -> list[Inbound] | PayloadInvalid:
    """Parse, returning the refusal instead of raising it; anything else propagates."""
    try:
        return adapter.parse(request)
    except PayloadInvalid as refused:
        return refused
