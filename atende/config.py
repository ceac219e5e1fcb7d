"""The whole config file (``ATENDE_CONFIG``): each package's section under its own key.

```yaml
tenants: [...]   # ingress: tenants and their channels
agents: [...]    # tool gateway: agent profiles and the tools each may call
tools: {...}     # tool gateway: limits, breakers, SMTP, declared HTTP APIs
memory: {...}    # memory manager: embedder, working memory, chunking, search
conversations: {...}  # dispatcher: turns, double texts, routing, handoff
llm: {...}       # ai agent: the chat model's timeouts, retries and breaker
```
Every section is optional; a file with only ``tenants`` is what the ingress needs.
"""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from ai_agent.llm_setup import OpenAIChatConfig
from channels.config import ChannelsConfig
from dispatcher.config import ConversationsConfig
from memory_manager.config import MemoryConfig
from tool_gateway.config import AgentProfilesConfig, ToolsConfig


class AtendeConfig(ChannelsConfig):
    """Tenants and channels, agent profiles, tool settings and memory settings."""

    agents: AgentProfilesConfig = Field(default_factory=lambda: AgentProfilesConfig(()))
    tools: ToolsConfig = Field(default_factory=ToolsConfig)
    memory: MemoryConfig = Field(default_factory=MemoryConfig)
    conversations: ConversationsConfig = Field(default_factory=ConversationsConfig)
    llm: OpenAIChatConfig = Field(default_factory=OpenAIChatConfig)

    @model_validator(mode="after")
    def _agents_of_declared_tenants(self) -> Self:
        # Without tenants (a worker-only file) there is nothing to check against.
        declared = {tenant.id for tenant in self.tenants}
        if not declared:
            return self
        for index, agent in enumerate(self.agents.root):
            if agent.tenant not in declared:
                raise ValueError(
                    f"agents[{index}].tenant: {agent.tenant!r} is not a tenant of this file "
                    f"(declared: {', '.join(sorted(declared))})"
                )
        return self

    def sections(self) -> dict[str, object]:
        """The sections by key, as consumers ask for them (``Resources.section``)."""
        return {
            "tenants": self,
            "agents": self.agents,
            "tools": self.tools,
            "memory": self.memory,
            "conversations": self.conversations,
            "llm": self.llm,
        }
