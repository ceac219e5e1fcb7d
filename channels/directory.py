"""The config file's tenants and channels, recorded in Postgres (``tenants``, ``channels``).

Conversations, messages and turns reference these rows, so every process with a database
records what its config file declares before it works: ``record_tenants_and_channels`` is run
at start (after the migrations), by ``atende migrate`` and by ``atende kb ingest``. It is
idempotent, in one transaction, and each statement is parameterized:

- a tenant is inserted, or its name updated when the file names it (a tenant without a name
  is recorded under its id);
- a channel is inserted, or updated when its provider or account id changed, and enabled;
- a channel of the database the file no longer declares stays (messages reference it) but is
  disabled (``enabled = false``); if a declared channel now has its account id (a channel
  moved to another tenant, or renamed), the retired row's is set aside to a value of its own,
  ``retired:<md5 of tenant/channel>``, as ``UNIQUE (provider, external_id)`` requires;
- a tenant the file no longer declares is left as it is.

A channel's account id (``external_id``) is what its provider's declaration says
(``ChannelProvider.account_id``: WhatsApp ``phone_number_id``, the Telegram bot's id, the
Twilio sender, the Chatwoot ``inbox_id``); the channel id stands in when the config does not
give it, and is what a generic channel records. A file without tenants (a worker-only file)
changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from channels.config import ChannelsConfig
from channels.registry import PROVIDERS
from libs.errors import ConfigurationError
from libs.postgres import PgConnection

# Concurrent starts record the same rows; one at a time keeps their updates from interleaving.
_LOCK_KEY = 0x61746E_6368616E  # "atn" "chan"

_TENANTS = """
INSERT INTO tenants (tenant_id, name)
SELECT tenant_id, COALESCE(name, tenant_id)
FROM unnest($1::text[], $2::text[]) AS t(tenant_id, name)
ON CONFLICT (tenant_id) DO UPDATE
SET name = EXCLUDED.name, updated_at = now()
WHERE EXCLUDED.name IS DISTINCT FROM tenants.name
  AND EXCLUDED.tenant_id = ANY($3::text[])
"""

_DISABLE_UNDECLARED = """
UPDATE channels SET enabled = false, updated_at = now()
WHERE enabled
  AND (tenant_id, channel_id) NOT IN (SELECT * FROM unnest($1::text[], $2::text[]))
"""

_RETIRE_TAKEN_ACCOUNTS = """
UPDATE channels AS old
SET external_id = 'retired:' || md5(old.tenant_id || '/' || old.channel_id), updated_at = now()
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
     AS new(tenant_id, channel_id, provider, external_id)
WHERE old.provider = new.provider AND old.external_id = new.external_id
  AND (old.tenant_id, old.channel_id) NOT IN (SELECT * FROM unnest($1::text[], $2::text[]))
"""

_CHANNELS = """
INSERT INTO channels (tenant_id, channel_id, provider, external_id, enabled)
SELECT tenant_id, channel_id, provider, external_id, true
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
     AS c(tenant_id, channel_id, provider, external_id)
ON CONFLICT (tenant_id, channel_id) DO UPDATE
SET provider = EXCLUDED.provider, external_id = EXCLUDED.external_id, enabled = true,
    updated_at = now()
WHERE (channels.provider, channels.external_id, channels.enabled)
      IS DISTINCT FROM (EXCLUDED.provider, EXCLUDED.external_id, true)
"""


@dataclass(frozen=True, slots=True)
class DeclaredChannel:
    """A channel row as the config file declares it."""

    tenant_id: str
    channel_id: str
    provider: str
    external_id: str


@dataclass(frozen=True, slots=True)
class Recorded:
    """What recording the config file changed: rows written (inserted or updated), disabled."""

    tenants: int
    channels: int
    disabled: int


def declared_channels(config: ChannelsConfig) -> list[DeclaredChannel]:
    """Every channel of the file as a row; ``ConfigurationError`` when two are one account."""
    rows: list[DeclaredChannel] = []
    owners: dict[tuple[str, str], str] = {}
    for tenant in config.tenants:
        for channel in tenant.channels:
            account = PROVIDERS.of(channel).account_id(channel) or channel.id
            owner = owners.setdefault((channel.provider, account), channel.id)
            if owner != channel.id:
                raise ConfigurationError(
                    f"channels '{owner}' and '{channel.id}' are the same {channel.provider} "
                    f"account ({account}); declare it once"
                )
            rows.append(DeclaredChannel(tenant.id, channel.id, channel.provider, account))
    return rows


async def record_tenants_and_channels(conn: PgConnection, config: ChannelsConfig) -> Recorded:
    """Insert or update the file's tenants and channels, disable channels it dropped."""
    if not config.tenants:
        return Recorded(0, 0, 0)
    channels = declared_channels(config)
    tenant_ids = [tenant.id for tenant in config.tenants]
    named = [tenant.id for tenant in config.tenants if tenant.name is not None]
    columns = (
        [row.tenant_id for row in channels],
        [row.channel_id for row in channels],
        [row.provider for row in channels],
        [row.external_id for row in channels],
    )
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        tenants = await conn.execute(
            _TENANTS, tenant_ids, [tenant.name for tenant in config.tenants], named
        )
        disabled = await conn.execute(_DISABLE_UNDECLARED, *columns[:2])
        await conn.execute(_RETIRE_TAKEN_ACCOUNTS, *columns)
        written = await conn.execute(_CHANNELS, *columns)
    return Recorded(_count(tenants), _count(written), _count(disabled))


def _count(status: str) -> int:
    """The row count of a command status such as ``INSERT 0 3`` or ``UPDATE 2``."""
    return int(status.rsplit(" ", 1)[-1])
