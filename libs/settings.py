"""Process settings, read from the environment once, at the edge, and checked when built."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _env(name: str) -> AliasChoices:
    """Accept the bare 12-factor name and its ``ATENDE_``-prefixed form."""
    return AliasChoices(name, f"ATENDE_{name}")


class Settings(BaseSettings):
    """Every knob of an atende process. Units are part of the names."""

    model_config = SettingsConfigDict(
        env_prefix="ATENDE_", extra="ignore", frozen=True, populate_by_name=True
    )

    redis_url: str | None = Field(
        default=None, validation_alias=_env("REDIS_URL"), description="Unset: embedded Valkey."
    )
    database_url: str | None = Field(
        default=None,
        validation_alias=_env("DATABASE_URL"),
        description="Unset: embedded Postgres with pgvector.",
    )
    openai_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=_env("OPENAI_API_KEY"),
        description="Key of the LLM provider; unset with no base URL: the offline model.",
    )
    openai_base_url: str | None = Field(
        default=None,
        validation_alias=_env("OPENAI_BASE_URL"),
        description="Any OpenAI-compatible server (Azure, vLLM, Ollama); unset: OpenAI's.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", validation_alias=_env("LOG_LEVEL")
    )
    log_format: Literal["auto", "json", "console"] = "auto"
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None, validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_ENDPOINT")
    )
    otel_service_name: str = Field(
        default="atende", validation_alias=AliasChoices("OTEL_SERVICE_NAME")
    )

    config_path: Path | None = Field(
        default=None,
        validation_alias=_env("CONFIG"),
        description="YAML file of tenants, channels and agent profiles (ATENDE_CONFIG).",
    )
    namespace: str = Field(
        default="atende", pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="Redis key prefix."
    )
    data_dir: Path = Field(default=Path(".atende"), description="Embedded servers' data.")
    stream_partitions: int = Field(default=4, ge=1, le=1024)
    stream_capacity: int = Field(
        default=100_000,
        ge=100,
        description="Entries a partition may hold before the ingress refuses webhooks (503).",
    )
    backlog_full_retry_after_s: int = Field(
        default=30,
        ge=1,
        le=3_600,
        description="Retry-After of the ingress's 503 when a partition is at capacity.",
    )
    dead_letter_maxlen: int = Field(
        default=100_000, ge=100, description="Dead letters kept per partition (approximate)."
    )

    batch_size: int = Field(default=100, ge=1, le=10_000)
    concurrency: int = Field(default=64, ge=1, le=10_000)
    block_ms: int = Field(default=1_000, ge=10, le=60_000)
    claim_idle_ms: int = Field(default=60_000, ge=100)
    max_deliveries: int = Field(default=5, ge=1, le=1_000)
    retry_base_ms: int = Field(default=500, ge=1)
    retry_max_ms: int = Field(default=30_000, ge=1)
    shutdown_grace_s: float = Field(default=30.0, gt=0, le=3_600)
    stream_stats_interval_s: float = Field(
        default=5.0, gt=0, description="Lag gauges are sampled and streams trimmed this often."
    )
    consumer_prune_idle_s: float = Field(
        default=3_600.0,
        gt=0,
        description="Consumers idle this long with nothing pending are removed from groups.",
    )

    http_host: str = "0.0.0.0"  # noqa: S104 - the health/metrics server must be reachable in a pod
    http_port: int = Field(default=8080, ge=0, le=65_535)

    pg_pool_min_size: int = Field(default=1, ge=0)
    pg_pool_max_size: int = Field(default=10, ge=1)

    @model_validator(mode="after")
    def _check_combinations(self) -> Self:
        if self.retry_base_ms > self.retry_max_ms:
            raise ValueError(
                f"retry_base_ms ({self.retry_base_ms}) must not exceed "
                f"retry_max_ms ({self.retry_max_ms})"
            )
        if self.retry_max_ms >= self.claim_idle_ms:
            # A retry waiting longer than claim_idle_ms would be reclaimed by another consumer
            # before its own backoff ends.
            raise ValueError(
                f"retry_max_ms ({self.retry_max_ms}) must be below "
                f"claim_idle_ms ({self.claim_idle_ms})"
            )
        if self.pg_pool_min_size > self.pg_pool_max_size:
            raise ValueError("pg_pool_min_size must not exceed pg_pool_max_size")
        return self
