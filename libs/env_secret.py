"""A secret in the config file, written as a reference to an environment variable."""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, model_validator


class EnvSecret(BaseModel):
    """A secret read from the environment variable ``env`` when the config is loaded.

    The file says ``{env: WA_APP_SECRET}``; ``load_yaml_model`` passes the environment as the
    validation context, and a missing or empty variable is an error naming it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    env: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    value: SecretStr = SecretStr("")

    @model_validator(mode="after")
    def _resolve(self, info: ValidationInfo) -> Self:
        environment = (info.context or {}).get("env", {})
        resolved = environment.get(self.env)
        if not resolved:
            raise ValueError(f"environment variable {self.env} is not set")
        object.__setattr__(self, "value", SecretStr(resolved))
        return self

    def reveal(self) -> str:
        """The secret itself (for adapters; never log it)."""
        return self.value.get_secret_value()
