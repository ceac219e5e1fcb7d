"""What a tool is: declared once, run by the gateway, never trusted with more than its tenant.

A tool module in ``tool_gateway/tools/`` declares ``Tool`` objects at module level. The
gateway, not the tool, enforces permissions, rate limits, idempotency, audit, timeouts,
breakers and dry runs; the tool only does its job for ``context.tenant_id``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel

from libs.errors import AtendeError

if TYPE_CHECKING:
    import aiohttp
    import asyncpg
    import redis.asyncio as aioredis

    from events.envelope import Envelope
    from events.types.tools import ToolCallRequested
    from libs.keys import KeySpace
    from libs.streams.publisher import Publisher
    from memory_manager.knowledge_search import KnowledgeSearch

In = TypeVar("In", bound=BaseModel)
Out = TypeVar("Out", bound=BaseModel)

_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


class Sensitive:
    """Marks an input field as secret or personal data: the audit row stores it redacted.

    Use as ``email: Annotated[str, SENSITIVE]``; pydantic keeps the marker in the field's
    metadata and it changes nothing in the JSON Schema the LLM sees.
    """

    def __repr__(self) -> str:
        return "SENSITIVE"


SENSITIVE = Sensitive()


Embed = Callable[[Sequence[str]], Awaitable[list[list[float]]]]
"""Embeds texts with the deployment's embedding provider (for vector search in tools)."""


@dataclass(frozen=True, slots=True)
class ToolServices:
    """The process's clients a tool may use. Built once by the gateway's consumer.

    ``settings`` holds the ``tools`` section of the config file (SMTP, declared HTTP APIs…)
    as the gateway's config model; a tool reads only its own part.
    """

    redis: aioredis.Redis
    keys: KeySpace
    publisher: Publisher
    postgres: asyncpg.Pool | None = None
    http: aiohttp.ClientSession | None = None
    knowledge: KnowledgeSearch | None = None
    embed: Embed | None = None
    settings: Any = None


@dataclass(frozen=True, slots=True)
class ToolContext:
    """Who is calling: the tenant (from the event, never from the arguments) and the turn.

    ``request`` is the event being answered: an event a tool publishes is derived from it
    (``Envelope.derived``), so it continues the request's chain and keeps its id on a rerun.
    """

    tenant_id: str
    conversation_id: str | None
    turn_id: str
    fencing_token: int
    agent_profile: str
    tool_call_id: str
    dry_run: bool
    request: Envelope[ToolCallRequested]
    services: ToolServices


class ToolFailed(AtendeError):
    """The tool ran and could not do what was asked; the message is shown to the LLM.

    E.g. "that slot was just taken". Not retryable by the gateway; the agent decides.
    """


class ToolUnavailable(AtendeError):
    """The system behind the tool is down or refused us; counts against the tool's breaker."""

    def __init__(self, message: str, retry_after_ms: int | None = None) -> None:
        super().__init__(message)
        self.retry_after_ms = retry_after_ms


class ToolArgumentsInvalid(AtendeError):
    """Arguments passed the schema but make no sense (an unknown product, a past date)."""


Run = Callable[[ToolContext, In], Awaitable[Out]]


@dataclass(frozen=True, slots=True)
class Tool(Generic[In, Out]):
    """One tool: name, description, typed input and output, and how it behaves.

    ``writes`` tools change something outside the conversation and must give ``simulate``,
    what a dry run (a replay) answers instead of running them. ``external`` tools call a
    system outside our Postgres/Redis and get a circuit breaker of their own.
    """

    name: str
    description: str
    input_model: type[In]
    output_model: type[Out]
    run: Run[In, Out]
    writes: bool
    timeout_s: float = 5.0
    external: bool = False
    simulate: Run[In, Out] | None = None

    def __post_init__(self) -> None:
        if not _NAME.match(self.name) or len(self.name) > 64:
            raise ValueError(f"tool name {self.name!r} must look like 'namespace.action'")
        if not self.description.strip():
            raise ValueError(f"tool {self.name!r} needs a description (the LLM reads it)")
        if self.writes and self.simulate is None:
            raise ValueError(f"tool {self.name!r} writes, so it must say what a dry run returns")
        if not 0 < self.timeout_s <= 120:
            raise ValueError(f"tool {self.name!r}: timeout_s must be in (0, 120]")

    def function_definition(self) -> dict[str, Any]:
        """The OpenAI ``tools`` entry: name (dots are not allowed there), description, schema."""
        return {
            "type": "function",
            "function": {
                "name": self.function_name,
                "description": self.description,
                "parameters": self.input_model.model_json_schema(),
            },
        }

    @property
    def function_name(self) -> str:
        """The name the LLM uses: OpenAI function names allow ``[a-zA-Z0-9_-]`` only."""
        return self.name.replace(".", "__")

    def sensitive_fields(self) -> frozenset[str]:
        """Input fields marked ``SENSITIVE``, redacted in the audit row."""
        return frozenset(
            name
            for name, info in self.input_model.model_fields.items()
            if any(isinstance(item, Sensitive) for item in info.metadata)
        )
