"""Memory manager: working memory, workflow state, facts, semantic memory, agent context.

Working memory lives in Redis; workflow state, facts and semantic memory (pgvector) in
Postgres. See docs/MEMORY.md for what is stored where.
"""

from memory_manager.config import MemoryConfig
from memory_manager.context import AgentContext, ContextBuilder, estimate_tokens
from memory_manager.embedders import Embedder, build_embedder
from memory_manager.knowledge import KnowledgeBase
from memory_manager.knowledge_search import KnowledgeHit, KnowledgeSearch
from memory_manager.workflow import WorkflowState, WorkflowStore
from memory_manager.working import WorkingMemory

__all__ = [
    "AgentContext",
    "ContextBuilder",
    "Embedder",
    "KnowledgeBase",
    "KnowledgeHit",
    "KnowledgeSearch",
    "MemoryConfig",
    "WorkflowState",
    "WorkflowStore",
    "WorkingMemory",
    "build_embedder",
    "estimate_tokens",
]
