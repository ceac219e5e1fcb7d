"""An app on atende's generic JSON webhook format, as the config file declares it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, HttpUrl

from channels.base_config import ChannelBase, StrictModel
from libs.env_secret import EnvSecret


class GenericSecrets(StrictModel):
    """Shared secret that signs both directions."""

    signing_secret: EnvSecret


class GenericChannel(ChannelBase):
    """Any app speaking atende's generic JSON webhook format."""

    provider: Literal["generic"]
    secrets: GenericSecrets
    callback_url: HttpUrl | None = Field(
        default=None, description="Where the app receives replies (signed POSTs)."
    )
