"""Which chat model answers a profile: the OpenAI-compatible one, or the offline one."""

from __future__ import annotations

from dataclasses import dataclass

from ai_agent.llm import (
    ChatModel,
    ChatReply,
    ChatRequest,
    LLMCircuitOpen,
    LLMError,
    LLMRequestRejected,
    LLMUnavailable,
)
from ai_agent.offline import OFFLINE_MODEL, OfflineChatModel, OfflineNoAnswer
from memory_manager.knowledge_search import KnowledgeSearch
from tool_gateway.config import AgentProfileConfig

DEFAULT_OPENAI_MODEL = "gpt-4o-mini"
OFFLINE_MIN_SCORE = 0.35
"""Cosine similarity the offline model trusts with the default (lexical) embedder."""


@dataclass(frozen=True, slots=True)
class ChosenModel:
    """The model that answers a turn, and the name it is asked by."""

    model: ChatModel
    name: str

    @property
    def offline(self) -> bool:
        """Whether it is the offline model (no tools, no images, no summaries)."""
        return isinstance(self.model, OfflineChatModel)


class NoProvider:
    """Stands in for OpenAI when none is configured: every call says so (and hands off)."""

    async def complete(self, request: ChatRequest) -> ChatReply:
        """Always ``LLMUnavailable``."""
        raise LLMUnavailable(
            "the profile asks for provider 'openai', but neither OPENAI_API_KEY nor "
            "OPENAI_BASE_URL is set",
            transient=False,
        )


class ChatModels:
    """Picks each profile's model: ``openai`` is the configured provider (None if there is
    none), ``knowledge`` what the offline model quotes from."""

    def __init__(
        self,
        openai: ChatModel | None,
        knowledge: KnowledgeSearch,
        *,
        offline_min_score: float = OFFLINE_MIN_SCORE,
    ) -> None:
        self._openai = openai
        self._knowledge = knowledge
        self._offline_min_score = offline_min_score

    def for_profile(self, profile: AgentProfileConfig) -> ChosenModel:
        """The model of ``profile``: its provider, or OpenAI when configured, else offline."""
        provider = profile.provider or ("openai" if self._openai is not None else "local")
        if provider == "local":
            offline = OfflineChatModel(
                self._knowledge,
                profile.tenant,
                language=profile.language,
                min_score=self._offline_min_score,
            )
            return ChosenModel(offline, profile.model or OFFLINE_MODEL)
        model: ChatModel = self._openai if self._openai is not None else _NO_PROVIDER
        return ChosenModel(model, profile.model or DEFAULT_OPENAI_MODEL)


_NO_PROVIDER: ChatModel = NoProvider()


def failure_reason(exc: LLMError) -> str:
    """Why a model gave no answer, as the handoff's reason."""
    if isinstance(exc, OfflineNoAnswer):
        return str(exc)
    if isinstance(exc, LLMCircuitOpen):
        return f"the language model's circuit breaker is open: {exc}"
    if isinstance(exc, LLMRequestRejected):
        return f"the language model refused the request: {exc}"
    return f"the language model is unavailable: {exc}"
