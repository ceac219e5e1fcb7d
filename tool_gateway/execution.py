"""Running one tool: its timeout, its circuit breaker when external, its simulation in dry runs.

Whatever a tool raises becomes an answer the agent can show the LLM; nothing a tool does can
crash the worker. A tool that calls a system outside atende (``Tool.external``) runs under a
breaker shared by every replica (``libs.breaker``), named ``tool:<name>``: its timeouts,
``ToolUnavailable`` and unexpected errors count as failures; ``ToolFailed`` and
``ToolArgumentsInvalid`` are answers, not outages, and do not.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
import structlog
from pydantic import BaseModel

from events.types.tools import ToolError, ToolErrorCode
from libs.breaker import SharedCircuitBreaker
from libs.errors import CircuitOpen
from libs.keys import KeySpace
from tool_gateway.audit import Outcome
from tool_gateway.idempotency import StoredAnswer
from tool_gateway.tool import Tool, ToolArgumentsInvalid, ToolContext, ToolFailed, ToolUnavailable

_log = structlog.get_logger(__name__)

MESSAGE_MAX_CHARS = 2_048


def tool_error(
    code: ToolErrorCode, message: str, retry_after_ms: int | None = None
) -> StoredAnswer:
    """An error answer; the message is cut to what the event allows."""
    if len(message) > MESSAGE_MAX_CHARS:
        message = message[: MESSAGE_MAX_CHARS - 1] + "…"
    error = ToolError(code=code, message=message or code, retry_after_ms=retry_after_ms)
    return StoredAnswer(outcome="error", error=error)


@dataclass(frozen=True, slots=True)
class Execution:
    """How a run ended. ``ran`` is false when the tool was never started (breaker open)."""

    outcome: Outcome
    error_code: str | None
    answer: StoredAnswer
    ran: bool = True


class ToolExecutor:
    """Runs tools with their timeout, and external ones under their shared breaker."""

    def __init__(
        self, redis: aioredis.Redis, keys: KeySpace, *, fail_max: int, reset_timeout_s: float
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._fail_max = fail_max
        self._reset_timeout_s = reset_timeout_s
        self._breakers: dict[str, SharedCircuitBreaker] = {}

    def breaker(self, tool: Tool[Any, Any]) -> SharedCircuitBreaker:
        """The breaker of an external tool (made on first use, one per tool and process)."""
        breaker = self._breakers.get(tool.name)
        if breaker is None:
            breaker = SharedCircuitBreaker(
                self._redis,
                self._keys,
                f"tool:{tool.name}",
                fail_max=self._fail_max,
                reset_timeout_s=self._reset_timeout_s,
                # The trial is one call of the tool: its claim must outlast the tool's timeout,
                # or a slow trial's claim lapses and a second trial gets in.
                trial_timeout_s=max(tool.timeout_s, self._reset_timeout_s),
                exclude=[ToolFailed, ToolArgumentsInvalid],
            )
            self._breakers[tool.name] = breaker
        return breaker

    async def execute(
        self, tool: Tool[Any, Any], context: ToolContext, arguments: BaseModel
    ) -> Execution:
        """Run ``tool`` (or, in a dry run of a writing tool, its ``simulate``)."""
        simulated = context.dry_run and tool.writes
        run = tool.simulate if simulated and tool.simulate is not None else tool.run
        try:
            async with self._guard(tool, guarded=tool.external and not simulated):
                async with asyncio.timeout(tool.timeout_s):
                    output = await run(context, arguments)
        except CircuitOpen as exc:
            answer = tool_error("unavailable", str(exc), int(self._reset_timeout_s * 1000))
            return Execution("unavailable", "circuit_open", answer, ran=False)
        except TimeoutError:
            message = f"{tool.name} did not answer within {tool.timeout_s:g}s"
            return Execution("timed_out", "timeout", tool_error("timeout", message))
        except ToolUnavailable as exc:
            answer = tool_error("unavailable", str(exc), exc.retry_after_ms)
            return Execution("unavailable", "unavailable", answer)
        except ToolFailed as exc:
            return Execution("failed", "failed", tool_error("failed", str(exc)))
        except ToolArgumentsInvalid as exc:
            answer = tool_error("invalid_arguments", str(exc))
            return Execution("invalid_arguments", "invalid_arguments", answer)
        except Exception:  # noqa: BLE001 - a tool is a plug-in: its bugs become an answer, logged
            _log.exception("tool raised an unexpected error", tool=tool.name)
            message = f"{tool.name} failed unexpectedly; the error was logged for operators"
            return Execution("failed", "crashed", tool_error("failed", message))
        return self._succeeded(tool, output)

    def _succeeded(self, tool: Tool[Any, Any], output: object) -> Execution:
        if not isinstance(output, tool.output_model):
            _log.error(
                "tool returned the wrong type",
                tool=tool.name,
                expected=tool.output_model.__name__,
                got=type(output).__name__,
            )
            message = f"{tool.name} returned an unusable result; the error was logged"
            return Execution("failed", "bad_output", tool_error("failed", message))
        result = output.model_dump(mode="json")
        return Execution("succeeded", None, StoredAnswer(outcome="ok", result=result))

    @contextlib.asynccontextmanager
    async def _guard(self, tool: Tool[Any, Any], *, guarded: bool) -> AsyncIterator[None]:
        if not guarded:
            yield
            return
        async with self.breaker(tool).guard():
            yield
