"""The offline model: no network, answers from the tenant's knowledge base or says it cannot.

It implements ``ChatModel`` for one tenant and language (``OfflineChatModel.for_tenant``).
For the contact's latest message it searches the knowledge base: a passage similar enough is
quoted as it is (never paraphrased, so it never invents); otherwise it asks the contact to
rephrase, and when the rephrased question finds nothing either it raises ``OfflineNoAnswer``,
which the agent turns into a handoff to a human. It never calls tools.
"""

from __future__ import annotations

from ai_agent.llm import AssistantMessage, ChatReply, ChatRequest, LLMError, UserMessage
from ai_agent.phrases import phrase
from memory_manager.knowledge_search import KnowledgeSearch

OFFLINE_MODEL = "offline"
"""The model name offline replies carry."""


class OfflineNoAnswer(LLMError):
    """The knowledge base has nothing relevant, even after the contact rephrased."""


class OfflineChatModel:
    """Quotes the tenant's knowledge base; ``min_score`` is the cosine similarity it trusts."""

    def __init__(
        self, knowledge: KnowledgeSearch, tenant_id: str, *, language: str, min_score: float
    ) -> None:
        self._knowledge = knowledge
        self._tenant_id = tenant_id
        self._language = language
        self._min_score = min_score

    async def complete(self, request: ChatRequest) -> ChatReply:
        """A quoted passage, a request to rephrase, or ``OfflineNoAnswer``."""
        question, asked_to_rephrase = self._question(request)
        if question:
            hits = await self._knowledge.search(
                self._tenant_id, question, top_k=1, min_score=self._min_score, tags=()
            )
            if hits:
                intro = phrase("from_knowledge", self._language)
                return _reply(f"{intro}\n\n{hits[0].content.strip()}")
        if asked_to_rephrase:
            raise OfflineNoAnswer(
                "the offline model found nothing relevant in the knowledge base, "
                "even after the contact rephrased"
            )
        return _reply(phrase("rephrase", self._language))

    def _question(self, request: ChatRequest) -> tuple[str, bool]:
        """The latest user text, and whether the answer just before it asked to rephrase."""
        messages = request.messages
        for index in range(len(messages) - 1, -1, -1):
            message = messages[index]
            if isinstance(message, UserMessage):
                before = next(
                    (m for m in reversed(messages[:index]) if isinstance(m, AssistantMessage)),
                    None,
                )
                rephrase = phrase("rephrase", self._language)
                asked = before is not None and before.content == rephrase
                return message.content, asked
        return "", False


def _reply(text: str) -> ChatReply:
    return ChatReply(text=text, finish_reason="stop", model=OFFLINE_MODEL)
