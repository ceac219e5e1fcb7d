"""Rate limits per tenant, agent profile and tool, shared by every replica through Redis.

The windows are ``limits``' moving windows in Redis, so two gateway processes count against
one budget. Which limit applies to a call: the profile's entry for the tool, else its longest
matching ``namespace.*`` entry, else its ``*`` entry, else the ``tools`` section's default.
Dry runs (replays) count in windows of their own, so a replay never eats live traffic's budget.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItem
from limits import parse as parse_rate_limit
from limits.aio.strategies import MovingWindowRateLimiter

from tool_gateway.config import ANY_TOOL, AgentProfilesConfig, ToolsConfig


@dataclass(frozen=True, slots=True)
class RateDecision:
    """Whether a call may run now; when not, the limit and when to try again."""

    allowed: bool
    limit: str
    retry_after_ms: int | None = None


class ToolRateLimits:
    """Applies the configured limits; every limit is parsed once, at construction."""

    def __init__(
        self, limiter: MovingWindowRateLimiter, agents: AgentProfilesConfig, tools: ToolsConfig
    ) -> None:
        self._limiter = limiter
        self._default = parse_rate_limit(tools.default_rate_limit)
        self._per_profile: dict[tuple[str, str], dict[str, RateLimitItem]] = {
            (agent.tenant, agent.profile): {
                pattern: parse_rate_limit(limit) for pattern, limit in agent.rate_limits.items()
            }
            for agent in agents.root
        }

    def limit_for(self, tenant_id: str, profile: str, tool: str) -> RateLimitItem:
        """The limit that applies to ``tool`` called by ``profile`` of ``tenant_id``."""
        limits = self._per_profile.get((tenant_id, profile), {})
        if tool in limits:
            return limits[tool]
        namespaces = [p for p in limits if p.endswith(".*") and tool.startswith(p[:-1])]
        if namespaces:
            return limits[max(namespaces, key=len)]
        return limits.get(ANY_TOOL, self._default)

    async def hit(
        self, tenant_id: str, profile: str, tool: str, *, dry_run: bool = False
    ) -> RateDecision:
        """Count one call; refuse it when its window is full."""
        item = self.limit_for(tenant_id, profile, tool)
        identifiers = ("tool", "dry-run" if dry_run else "live", tenant_id, profile, tool)
        if await self._limiter.hit(item, *identifiers):
            return RateDecision(allowed=True, limit=str(item))
        stats = await self._limiter.get_window_stats(item, *identifiers)
        wait_ms = max(1, math.ceil((stats.reset_time - time.time()) * 1000))
        return RateDecision(allowed=False, limit=str(item), retry_after_ms=wait_ms)
