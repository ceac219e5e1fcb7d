"""A configured channel as the ingress holds it: tenant, config, adapter, parsed rate limit."""

from __future__ import annotations

from dataclasses import dataclass, field

from limits import RateLimitItem
from limits import parse as parse_rate_limit

from channels.config import Channel
from channels.inbound import InboundAdapter
from channels.registry import PROVIDERS


@dataclass(frozen=True, slots=True)
class IngressChannel:
    """A configured channel, ready to take webhooks."""

    tenant_id: str
    config: Channel
    adapter: InboundAdapter
    rate_limit: RateLimitItem = field(init=False)  # parsed once, used on every webhook
    # The configured public URL as text (what signatures cover behind a proxy); None when
    # webhooks are checked against the URL they were sent to.
    public_url: str | None = field(init=False)
    content_type: str = field(init=False)
    """What its provider sends."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "rate_limit", parse_rate_limit(self.config.rate_limit))
        public_url = self.config.public_url
        object.__setattr__(self, "public_url", str(public_url) if public_url else None)
        content_type = PROVIDERS.of(self.config).webhook.content_type
        object.__setattr__(self, "content_type", content_type)
