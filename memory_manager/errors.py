"""What goes wrong in the memory manager, each error a sentence naming what and where."""

from __future__ import annotations

from libs.errors import AtendeError, ConfigurationError


class WorkflowConflict(AtendeError):
    """A workflow write named a version that is no longer current (someone else wrote first)."""


class WorkflowNotFound(AtendeError):
    """A workflow update or delete named a conversation that has no workflow state."""


class WorkingMemoryFull(AtendeError):
    """A working-memory value is too big, or the conversation already holds the most values."""


class UnknownConversation(AtendeError):
    """A memory write named a conversation that the tenant does not have."""


class EmbeddingFailed(AtendeError):
    """The embedding provider failed or answered something unusable (wrong count or width)."""


class EmbeddingDimensionMismatch(ConfigurationError):
    """The configured dimension, the embedder's and the table column's disagree."""


class EmbedderUnavailable(ConfigurationError):
    """The configured embedder cannot be built here (e.g. its optional extra is missing)."""
