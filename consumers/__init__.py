"""One module per (stream, group). Each declares a ``Consumer`` at module level.

``discover()`` imports every module of this package and collects those declarations, so adding
a consumer is adding one file here.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

from libs.errors import ConfigurationError
from libs.streams import Consumer


class ConsumerDiscoveryError(ConfigurationError):
    """Two consumers share a name, or ``--only`` names one that does not exist."""


def discover(package: ModuleType | None = None) -> list[Consumer]:
    """Return every consumer declared in the modules of ``package`` (default: this one)."""
    package = package or importlib.import_module(__name__)
    found: dict[str, Consumer] = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for value in vars(module).values():
            if not isinstance(value, Consumer):
                continue
            if value.name in found and found[value.name] is not value:
                raise ConsumerDiscoveryError(
                    f"consumer name {value.name!r} is declared twice (in {module.__name__})"
                )
            found[value.name] = value
    return [found[name] for name in sorted(found)]


def select(consumers: list[Consumer], only: list[str] | None) -> list[Consumer]:
    """Keep the consumers named in ``only`` (all when empty); unknown names are an error."""
    if not only:
        return consumers
    by_name = {consumer.name: consumer for consumer in consumers}
    unknown = sorted(set(only) - set(by_name))
    if unknown:
        raise ConsumerDiscoveryError(
            f"no consumer named {', '.join(unknown)}; known: {', '.join(sorted(by_name)) or 'none'}"
        )
    return [by_name[name] for name in only]
