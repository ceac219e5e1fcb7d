"""Every provider atende speaks, found in the folders of ``channels/``.

``discover_providers()`` imports each sub-package of ``channels`` (or of another package, e.g.
a test's) and collects the ``ChannelProvider`` it declares as ``provider``, as consumers and
tools are discovered; ``PROVIDERS`` is the registry of this package's providers. The channel
union of the config file, the ingress's adapters and handshakes, the senders and
``/openapi.json`` are all built from it, so none of them names a provider.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable, Iterator
from types import ModuleType
from typing import Any, Final

from channels.base_config import ChannelBase
from channels.provider import ChannelProvider
from libs.errors import ConfigurationError

AnyProvider = ChannelProvider[Any, Any]


class DuplicateProvider(ConfigurationError):
    """Two folders declare a provider under the same name."""


class UnknownProvider(ConfigurationError):
    """No folder declares a provider of this name."""


class ProviderNotDeclared(ConfigurationError):
    """A folder of ``channels/`` declares no ``provider``."""


class ChannelRegistry:
    """The providers by name, in name order."""

    def __init__(self, providers: Iterable[AnyProvider]) -> None:
        found: dict[str, AnyProvider] = {}
        for provider in providers:
            known = found.get(provider.name)
            if known is not None and known is not provider:
                raise DuplicateProvider(f"provider {provider.name!r} is declared twice")
            found[provider.name] = provider
        self._by_name = {name: found[name] for name in sorted(found)}

    def __iter__(self) -> Iterator[AnyProvider]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    @property
    def names(self) -> list[str]:
        """The providers' names, sorted."""
        return list(self._by_name)

    @property
    def config_models(self) -> tuple[type[ChannelBase], ...]:
        """Each provider's channel model, in name order."""
        return tuple(provider.config_model for provider in self)

    def named(self, name: str) -> AnyProvider:
        """The provider called ``name``; ``UnknownProvider`` when none is."""
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownProvider(
                f"no channel provider is called {name!r}; known: {', '.join(self.names)}"
            ) from None

    def of(self, channel: ChannelBase) -> AnyProvider:
        """The provider of a configured channel."""
        return self.named(channel.provider)


def discover_providers(package: ModuleType | None = None) -> list[AnyProvider]:
    """The ``provider`` each sub-package of ``package`` declares (default: channels), by name.

    Only sub-packages are providers (a name starting with ``_`` is skipped); the package's
    modules are what providers share. Raises ``ProviderNotDeclared`` for a sub-package without
    a ``ChannelProvider`` named ``provider``.
    """
    package = package or importlib.import_module("channels")
    found: list[AnyProvider] = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if not info.ispkg or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        declared = getattr(module, "provider", None)
        if not isinstance(declared, ChannelProvider):
            raise ProviderNotDeclared(
                f"{module.__name__} is a provider folder but declares no ChannelProvider named "
                "'provider'; declare one, or start the folder's name with '_'"
            )
        found.append(declared)
    return found


PROVIDERS: Final = ChannelRegistry(discover_providers())
"""The providers of ``channels/``."""
