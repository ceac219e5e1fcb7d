"""Tool gateway: registry, RBAC, rate limits, idempotency and audit of tool calls.

Declare tools in ``tool_gateway/tools/`` (see ``docs/TOOLS.md``); the ``tool-gateway``
consumer runs them for ``tools.call.requested`` events through ``ToolGateway``.
"""

from tool_gateway.config import (
    AgentProfileConfig,
    AgentProfilesConfig,
    ToolsConfig,
    unknown_tool_problems,
)
from tool_gateway.gateway import ToolGateway, completed_event
from tool_gateway.rbac import AccessPolicy
from tool_gateway.registry import DuplicateTool, ToolRegistry
from tool_gateway.tool import (
    SENSITIVE,
    Tool,
    ToolArgumentsInvalid,
    ToolContext,
    ToolFailed,
    ToolServices,
    ToolUnavailable,
)
from tool_gateway.tools import discover_tools

__all__ = [
    "SENSITIVE",
    "AccessPolicy",
    "AgentProfileConfig",
    "AgentProfilesConfig",
    "DuplicateTool",
    "Tool",
    "ToolArgumentsInvalid",
    "ToolContext",
    "ToolFailed",
    "ToolGateway",
    "ToolRegistry",
    "ToolServices",
    "ToolUnavailable",
    "ToolsConfig",
    "completed_event",
    "discover_tools",
    "unknown_tool_problems",
]
