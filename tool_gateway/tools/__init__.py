"""Built-in tools, one module per domain. Each declares ``Tool`` objects at module level.

``discover_tools()`` imports every module of this package (or of another package, e.g. a test
package) and collects those declarations, so adding a tool is adding one file here.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType
from typing import Any

from tool_gateway.registry import DuplicateTool
from tool_gateway.tool import Tool


def discover_tools(package: ModuleType | None = None) -> list[Tool[Any, Any]]:
    """Every ``Tool`` declared at module level in ``package`` (default: this one), by name.

    Modules whose name starts with ``_`` are skipped (helpers of the tool modules). Raises
    ``DuplicateTool`` when two modules declare different tools under one name.
    """
    package = package or importlib.import_module(__name__)
    found: dict[str, Tool[Any, Any]] = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for value in vars(module).values():
            if not isinstance(value, Tool):
                continue
            known = found.get(value.name)
            if known is not None and known is not value:
                raise DuplicateTool(
                    f"tool name {value.name!r} is declared twice (again in {module.__name__})"
                )
            found[value.name] = value
    return [found[name] for name in sorted(found)]
