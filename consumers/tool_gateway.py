"""Runs the tools the agent asks for and answers each request with ``tools.call.completed``."""

from __future__ import annotations

import aiohttp
import structlog

from events.envelope import Envelope
from events.streams import TOOLS_CALL_REQUESTED
from events.types.tools import ToolCallRequested
from libs.errors import ConfigurationError, Reject
from libs.resources import Resources
from libs.streams import Consumer, Handler, Received
from memory_manager import Embedder, KnowledgeBase, MemoryConfig, build_embedder
from tool_gateway import (
    AgentProfilesConfig,
    ToolGateway,
    ToolRegistry,
    ToolsConfig,
    completed_event,
    discover_tools,
    unknown_tool_problems,
)
from tool_gateway.tool import ToolServices

_log = structlog.get_logger(__name__)

# Tools that call HTTP APIs share one session (one connection pool) per process.
_HTTP_TIMEOUT = aiohttp.ClientTimeout(total=120, connect=10)


class ToolGatewayHandler:
    """The consumer's handler: one gateway per process, built on the first delivery.

    Built lazily because the HTTP session tools share must be made inside the running event
    loop; ``aclose`` closes it (call it when the worker stops).
    """

    def __init__(
        self,
        resources: Resources,
        registry: ToolRegistry,
        agents: AgentProfilesConfig,
        settings: ToolsConfig,
        memory: MemoryConfig,
    ) -> None:
        if resources.postgres is None:
            raise RuntimeError("the tool gateway consumer needs Postgres (DATABASE_URL)")
        self._resources = resources
        self._registry = registry
        self._agents = agents
        self._settings = settings
        self._memory = memory
        self._gateway: ToolGateway | None = None
        self._http: aiohttp.ClientSession | None = None
        self._embedder: Embedder | None = None

    async def __call__(self, received: Received) -> None:
        """Answer one ``tools.call.requested`` event."""
        envelope = received.envelope
        if not isinstance(envelope.payload, ToolCallRequested):
            raise Reject(f"expected a tool call request, got a {envelope.type} event")
        request: Envelope[ToolCallRequested] = envelope
        completed = await self._ready_gateway().handle(request)
        await self._resources.publisher.publish(completed_event(request, completed))

    async def aclose(self) -> None:
        """Close the HTTP session shared by the tools and the embedder's client."""
        if self._http is not None:
            await self._http.close()
            self._http = None
        # Only embedders with a client of their own (the OpenAI one) have something to close.
        close = getattr(self._embedder, "aclose", None)
        if close is not None:
            await close()
        self._embedder = None
        self._gateway = None

    def _ready_gateway(self) -> ToolGateway:
        if self._gateway is None:
            assert self._resources.postgres is not None  # checked in __init__
            # knowledge.search and catalog's vector search use the deployment's embedder;
            # built before the session, so a failure here leaves nothing open.
            embedder = self._embedder = self._embedder or build_embedder(self._memory)
            knowledge = KnowledgeBase(
                self._resources.postgres,
                embedder,
                chunking=self._memory.chunking,
                search=self._memory.search,
            )
            self._http = self._http or aiohttp.ClientSession(timeout=_HTTP_TIMEOUT)
            services = ToolServices(
                redis=self._resources.redis,
                keys=self._resources.keys,
                publisher=self._resources.publisher,
                postgres=self._resources.postgres,
                http=self._http,
                knowledge=knowledge,
                embed=embedder.embed,
                settings=self._settings,
            )
            self._gateway = ToolGateway(self._registry, self._agents, self._settings, services)
        return self._gateway


def gateway_handler(resources: Resources, registry: ToolRegistry | None = None) -> Handler:
    """The handler for ``resources`` and ``registry`` (default: the built-in tools)."""
    registry = registry if registry is not None else ToolRegistry(discover_tools())
    agents = resources.section("agents", AgentProfilesConfig)
    if agents is None:
        _log.warning("no 'agents' section in the config file: every tool call will be refused")
        agents = AgentProfilesConfig(())
    # A misspelt tool would silently be refused on every call: refuse to start instead.
    if problems := unknown_tool_problems(agents, registry.names):
        raise ConfigurationError("; ".join(problems))
    settings = resources.section("tools", ToolsConfig) or ToolsConfig()
    memory = resources.section("memory", MemoryConfig) or MemoryConfig()
    return ToolGatewayHandler(resources, registry, agents, settings, memory)


consumer = Consumer(
    name="tool-gateway",
    streams=(TOOLS_CALL_REQUESTED,),
    handler_factory=gateway_handler,
    accepts={ToolCallRequested.event_type: frozenset({ToolCallRequested.event_version})},
    tags=frozenset({"postgres"}),
)
