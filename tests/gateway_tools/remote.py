"""Tools that misbehave on purpose: a slow one, and an external system that is down."""

from __future__ import annotations

import asyncio

from pydantic import BaseModel, Field

from tests.gateway_tools.notes import runs_key
from tool_gateway.tool import Tool, ToolContext, ToolFailed, ToolUnavailable


class Wait(BaseModel):
    """How long to take."""

    seconds: float = Field(ge=0, le=10)


class Waited(BaseModel):
    """Done waiting."""

    seconds: float


async def wait(context: ToolContext, data: Wait) -> Waited:
    """Take ``seconds``; the tool's timeout is much shorter than the tests ask for."""
    await context.services.redis.incr(runs_key(context, "slow.wait"))
    await asyncio.sleep(data.seconds)
    return Waited(seconds=data.seconds)


slow = Tool(
    name="slow.wait",
    description="Wait a while.",
    input_model=Wait,
    output_model=Waited,
    run=wait,
    writes=False,
    timeout_s=0.3,
)


class Ping(BaseModel):
    """Whether the remote system should refuse the request itself (not count as an outage)."""

    refuse: bool = False


class Pong(BaseModel):
    """Never returned: the remote system is down."""

    ok: bool


async def ping(context: ToolContext, data: Ping) -> Pong:
    """Reach a remote system that is down (or that refuses the request)."""
    await context.services.redis.incr(runs_key(context, "remote.ping"))
    if data.refuse:
        raise ToolFailed("the remote system says no")
    raise ToolUnavailable("the remote system is down", retry_after_ms=1_000)


down = Tool(
    name="remote.ping",
    description="Ping a remote system.",
    input_model=Ping,
    output_model=Pong,
    run=ping,
    writes=False,
    external=True,
)


class Gate(BaseModel):
    """No arguments: the tool waits until the test opens its gate."""


class Passed(BaseModel):
    """The gate was opened."""

    opened: bool


def gate_key(context: ToolContext) -> str:
    """The list a test pushes to, to let one waiting call through."""
    return f"{context.services.keys.namespace}:gateway-test:gate"


async def wait_at_gate(context: ToolContext, data: Gate) -> Passed:
    """Hold the call until the test opens the gate (or give up after four seconds)."""
    await context.services.redis.incr(runs_key(context, "gate.wait"))
    opened = await context.services.redis.blpop([gate_key(context)], timeout=4)
    return Passed(opened=opened is not None)


gated = Tool(
    name="gate.wait",
    description="Wait for the gate to open.",
    input_model=Gate,
    output_model=Passed,
    run=wait_at_gate,
    writes=True,
    simulate=wait_at_gate,
    timeout_s=5,
)
