"""Building a gateway over the test tools, requests for the seeded turn, and reading results."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from prometheus_client import REGISTRY
from pydantic import JsonValue

import tests.gateway_tools
from events.envelope import Envelope
from events.types.tools import ToolCallRequested
from libs.keys import KeySpace
from tests.tool_support import SeededConversation, tool_services
from tool_gateway import AgentProfilesConfig, ToolGateway, ToolRegistry, ToolsConfig
from tool_gateway.tools import discover_tools

TEST_TOOLS = ToolRegistry(discover_tools(tests.gateway_tools))

AGENTS = AgentProfilesConfig.model_validate(
    [
        {
            "tenant": "acme",
            "profile": "support",
            "tools": ["notes.*", "slow.wait", "remote.ping", "gate.wait"],
            "rate_limits": {"*": "1000/minute"},
        },
        {"tenant": "acme", "profile": "sales", "tools": ["notes.count"]},
    ]
)

SETTINGS = ToolsConfig(breaker_fail_max=3, breaker_reset_timeout_s=60)


def make_gateway(
    redis: aioredis.Redis,
    keys: KeySpace,
    pool: asyncpg.Pool,
    *,
    agents: AgentProfilesConfig = AGENTS,
    settings: ToolsConfig = SETTINGS,
) -> ToolGateway:
    """A gateway over the test tools, on the test's Redis namespace and database."""
    services = tool_services(redis, keys, pool, settings=settings)
    return ToolGateway(TEST_TOOLS, agents, settings, services)


def request(
    seeded: SeededConversation,
    tool: str,
    arguments: Mapping[str, JsonValue] | None = None,
    *,
    call_id: str = "call-1",
    profile: str = "support",
    dry_run: bool = False,
    fencing_token: int | None = None,
    turn_id: str | None = None,
) -> Envelope[ToolCallRequested]:
    """A request of the seeded conversation's turn."""
    payload = ToolCallRequested(
        turn_id=turn_id or seeded.turn_id,
        fencing_token=fencing_token or seeded.fencing_token,
        tool_call_id=call_id,
        tool=tool,
        arguments=dict(arguments or {}),
        agent_profile=profile,
        dry_run=dry_run,
    )
    return Envelope.new(payload, tenant_id=seeded.tenant_id, conversation_id=seeded.conversation_id)


async def runs(redis: aioredis.Redis, keys: KeySpace, tool: str) -> int:
    """How often ``tool`` really ran (its simulation does not count)."""
    raw = await redis.get(f"{keys.namespace}:gateway-test:runs:{tool}")
    return int(raw or 0)


async def audit_rows(pool: asyncpg.Pool, tenant_id: str) -> list[dict[str, Any]]:
    """Every audit row of ``tenant_id``, oldest first."""
    rows = await pool.fetch(
        "SELECT * FROM tool_calls WHERE tenant_id = $1 ORDER BY tool_call_id", tenant_id
    )
    return [dict(row) for row in rows]


def counted(tool: str, outcome: str) -> float:
    """The ``tool_calls_total`` counter of ``tool`` and ``outcome`` in this process."""
    value = REGISTRY.get_sample_value("tool_calls_total", {"tool": tool, "outcome": outcome})
    return value or 0.0
