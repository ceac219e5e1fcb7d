"""A provider declared in a folder of its own: the generic channel under another declaration."""

from __future__ import annotations

from channels.generic import provider as generic

provider = generic.__class__(
    name="generic",
    config_model=generic.config_model,
    inbound=generic.inbound,
    sending_config=generic.sending_config,
    sender=generic.sender,
    account_id=generic.account_id,
    webhook=generic.webhook,
)
