"""Tenants and their channels, as declared in the config file (``ATENDE_CONFIG``).

Each provider's channel model lives in its folder (``channels/<provider>/config.py``); a
channel is one of them, told apart by its ``provider`` field. Secrets are never written in the
file: each is a reference ``{env: NAME}`` resolved from the environment when the file is
loaded, and a missing variable is an error naming it.
"""

from __future__ import annotations

import functools
import operator
from typing import Annotated, Any, Self

from pydantic import Field, GetCoreSchemaHandler, model_validator
from pydantic_core import CoreSchema

from channels.base_config import ChannelBase, StrictModel
from channels.registry import PROVIDERS
from libs.errors import ConfigurationError


class _OneOfTheProviders:
    """Validates a channel as the model of its ``provider``: a union tagged by that field, of
    every provider's model in the registry."""

    def __get_pydantic_core_schema__(
        self, _source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        models = PROVIDERS.config_models
        if not models:
            raise ConfigurationError("no channel provider is installed: channels/ has no folder")
        if len(models) == 1:
            return handler.generate_schema(models[0])
        union = functools.reduce(operator.or_, models)
        return handler.generate_schema(Annotated[union, Field(discriminator="provider")])


Channel = Annotated[ChannelBase, _OneOfTheProviders()]
"""A configured channel: an instance of its provider's model (``channels/<provider>/config.py``)."""


class TenantConfig(StrictModel):
    """A company using atende, and the channels its customers write to."""

    id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    name: str | None = None
    channels: list[Channel] = Field(default_factory=list)


class ChannelsConfig(StrictModel):
    """The tenants section of the config file; channel ids are unique across tenants."""

    tenants: list[TenantConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_ids(self) -> Self:
        tenants = [tenant.id for tenant in self.tenants]
        if duplicated := sorted({t for t in tenants if tenants.count(t) > 1}):
            raise ValueError(f"tenant ids must be unique; repeated: {', '.join(duplicated)}")
        channels = [channel.id for tenant in self.tenants for channel in tenant.channels]
        if duplicated := sorted({c for c in channels if channels.count(c) > 1}):
            raise ValueError(
                f"channel ids must be unique across tenants (they are in webhook URLs); "
                f"repeated: {', '.join(duplicated)}"
            )
        return self

    def channel(self, provider: str, channel_id: str) -> tuple[TenantConfig, Channel] | None:
        """The tenant and channel a webhook URL names, if configured."""
        for tenant in self.tenants:
            for channel in tenant.channels:
                if channel.id == channel_id and channel.provider == provider:
                    return tenant, channel
        return None
