"""A module beside the provider folders, as ``channels`` has: never taken for a provider."""

from __future__ import annotations

from channels.registry import PROVIDERS

# A provider object in a plain module is what providers share, not a declaration.
GENERIC = PROVIDERS.named("generic")
