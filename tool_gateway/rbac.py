"""Which agent profile of which tenant may call which tool.

The tenant is the event envelope's, never the LLM's arguments; a profile not declared for the
tenant may call nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from tool_gateway.config import AgentProfileConfig, AgentProfilesConfig


class AccessPolicy:
    """The ``agents`` section as a permission check."""

    def __init__(self, agents: AgentProfilesConfig) -> None:
        self._profiles: dict[tuple[str, str], AgentProfileConfig] = {
            (agent.tenant, agent.profile): agent for agent in agents.root
        }

    def profile(self, tenant_id: str, profile: str) -> AgentProfileConfig | None:
        """The declared profile, if any."""
        return self._profiles.get((tenant_id, profile))

    def refusal(self, tenant_id: str, profile: str, tool: str) -> str | None:
        """Why ``profile`` of ``tenant_id`` may not call ``tool``; ``None`` when it may."""
        declared = self._profiles.get((tenant_id, profile))
        if declared is None:
            return (
                f"agent profile {profile!r} is not configured for tenant {tenant_id!r}, "
                "so it may call no tool"
            )
        if not declared.allows(tool):
            return f"agent profile {profile!r} is not allowed to call {tool!r}"
        return None

    def allows_for(self, tenant_id: str, profile: str) -> Callable[[str], bool]:
        """A check of tool names for one profile, e.g. for ``ToolRegistry.function_definitions``."""
        declared = self._profiles.get((tenant_id, profile))
        if declared is None:
            return lambda _tool: False
        return declared.allows
