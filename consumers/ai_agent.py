"""Runs the AI agent: turns from the dispatcher (routing.handoff.requested) and tool results.

Also wires what the agent needs from the channels: media downloads (``channels.media``),
adapted to the agent's ``MediaSource``, and the transcription client.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

import aiohttp
import structlog

from ai_agent.agent import AgentDeps, AIAgent
from ai_agent.chat_models import ChatModels
from ai_agent.llm import ChatModel
from ai_agent.llm_setup import OpenAIChatConfig, open_openai_chat_model, openai_client
from ai_agent.media import MediaFile, MediaUnavailable
from ai_agent.step_timeouts import ToolStepTimeouts
from ai_agent.transcript import TranscriptStore
from ai_agent.transcription import OpenAITranscriber
from ai_agent.turn_media import TurnMedia
from channels.config import ChannelsConfig
from channels.media import ChannelMedia, MediaFetchFailed
from dispatcher.config import ConversationsConfig
from dispatcher.mailbox import Mailbox
from dispatcher.turns import TurnGuard
from events.streams import ROUTING_HANDOFF_REQUESTED, TOOLS_CALL_COMPLETED
from events.types.inbound_content import InboundMedia
from events.types.routing import RoutingHandoffRequested
from events.types.tools import ToolCallCompleted
from libs.errors import Reject
from libs.resources import Resources
from libs.streams import Consumer, Handler, Received
from libs.streams.config import consumer_instance_name
from memory_manager import ContextBuilder, KnowledgeBase, MemoryConfig, WorkingMemory
from memory_manager.embedders import build_embedder
from tool_gateway import AgentProfilesConfig, ToolRegistry, discover_tools

_log = structlog.get_logger(__name__)


class AIAgentHandler:
    """The consumer's handler: the agent is built on the first delivery, inside the loop
    (the OpenAI client's connections belong to it); ``aclose`` closes them."""

    def __init__(self, resources: Resources, registry: ToolRegistry, llm: OpenAIChatConfig) -> None:
        if resources.postgres is None:
            raise RuntimeError("the AI agent consumer needs Postgres (DATABASE_URL)")
        self._resources = resources
        self._registry = registry
        self._llm = llm
        self._exits = AsyncExitStack()
        self._agent: AIAgent | None = None
        partitions = resources.settings.stream_partitions
        self._transcript = TranscriptStore(resources.redis, resources.keys, partitions=partitions)
        self._step_timeouts = ToolStepTimeouts(
            resources.redis,
            resources.keys,
            self._transcript,
            resources.publisher.publish_many,
            partitions=partitions,
        )

    async def __call__(self, delivery: Received) -> None:
        """Start a turn, or continue one with a tool's result."""
        envelope = delivery.envelope
        agent = await self._ready_agent()
        if isinstance(envelope.payload, RoutingHandoffRequested):
            await agent.start_turn(envelope)
        elif isinstance(envelope.payload, ToolCallCompleted):
            await agent.resume(envelope)
        else:
            raise Reject(f"expected a turn or a tool result, got a {envelope.type} event")

    async def run_background(self, stopping: asyncio.Event) -> None:
        """Answer overdue tool steps with ``timeout`` results until the worker stops."""
        await self._step_timeouts.run(stopping)

    async def aclose(self) -> None:
        """Close the chat model's HTTP connections."""
        await self._exits.aclose()
        self._agent = None

    async def _ready_agent(self) -> AIAgent:
        if self._agent is None:
            self._agent = await self._build()
        return self._agent

    async def _build(self) -> AIAgent:
        resources = self._resources
        assert resources.postgres is not None  # checked in __init__
        settings = resources.settings
        memory = resources.section("memory", MemoryConfig) or MemoryConfig()
        conversations = (
            resources.section("conversations", ConversationsConfig) or ConversationsConfig()
        )
        partitions = settings.stream_partitions
        knowledge = KnowledgeBase(
            resources.postgres,
            build_embedder(memory),
            chunking=memory.chunking,
            search=memory.search,
        )
        openai: ChatModel | None = None
        transcriber: OpenAITranscriber | None = None
        if settings.openai_api_key is not None or settings.openai_base_url is not None:
            openai = await self._exits.enter_async_context(
                open_openai_chat_model(settings, resources.redis, resources.keys, self._llm)
            )
            audio_client = openai_client(settings, timeout_s=self._llm.timeout_s)
            self._exits.push_async_callback(audio_client.close)
            transcriber = OpenAITranscriber(audio_client, timeout_s=self._llm.timeout_s)
        channels = resources.section("tenants", ChannelsConfig) or ChannelsConfig(tenants=[])
        session = await self._exits.enter_async_context(aiohttp.ClientSession())
        media = ChannelMediaSource(ChannelMedia(channels, session))
        working = WorkingMemory(
            resources.redis, resources.keys, partitions=partitions, config=memory.working_memory
        )
        deps = AgentDeps(
            pool=resources.postgres,
            transcript=self._transcript,
            models=ChatModels(openai, knowledge),
            profiles=resources.section("agents", AgentProfilesConfig) or AgentProfilesConfig(()),
            tools=self._registry,
            guard=TurnGuard(
                resources.postgres, resources.redis, resources.keys, partitions=partitions
            ),
            mailbox=Mailbox(
                resources.redis,
                resources.keys,
                partitions=partitions,
                holder=consumer_instance_name(),
                turn_ttl_ms=int(conversations.turn_deadline_s * 1000),
                gap_wait_ms=conversations.gap_wait_ms,
            ),
            context=ContextBuilder(resources.postgres, working_memory=working, knowledge=knowledge),
            publish=resources.publisher.publish_many,
            partitions=partitions,
            media=TurnMedia(resources.postgres, media, transcriber),
            step_timeouts=self._step_timeouts,
        )
        return AIAgent(deps)


class ChannelMediaSource:
    """The channels' media downloads as the agent's ``MediaSource``."""

    def __init__(self, media: ChannelMedia) -> None:
        self._media = media

    async def fetch(
        self, tenant_id: str, channel_id: str, media: InboundMedia, *, max_bytes: int
    ) -> MediaFile:
        """The media's bytes; ``MediaUnavailable`` with the channel's reason when it fails."""
        try:
            fetched = await self._media.fetch(tenant_id, channel_id, media, max_bytes=max_bytes)
        except MediaFetchFailed as exc:
            raise MediaUnavailable(str(exc)) from exc
        return MediaFile(fetched.data, fetched.mime_type)


def agent_handler(
    resources: Resources,
    registry: ToolRegistry | None = None,
    llm: OpenAIChatConfig | None = None,
) -> Handler:
    """The handler for ``resources``; ``registry`` defaults to the built-in tools, ``llm`` to
    the config file's ``llm`` section (timeouts, retries, breaker)."""
    registry = registry if registry is not None else ToolRegistry(discover_tools())
    llm = llm or resources.section("llm", OpenAIChatConfig) or OpenAIChatConfig()
    return AIAgentHandler(resources, registry, llm)


consumer = Consumer(
    name="ai-agent",
    streams=(ROUTING_HANDOFF_REQUESTED, TOOLS_CALL_COMPLETED),
    handler_factory=agent_handler,
    accepts={
        RoutingHandoffRequested.event_type: frozenset({RoutingHandoffRequested.event_version}),
        ToolCallCompleted.event_type: frozenset({ToolCallCompleted.event_version}),
    },
    tags=frozenset({"postgres"}),
)
