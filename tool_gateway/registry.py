"""Every tool the gateway can run, by name, and the function definitions the LLM is offered."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from libs.errors import ConfigurationError
from tool_gateway.tool import Tool

AnyTool = Tool[Any, Any]


class DuplicateTool(ConfigurationError):
    """Two different tools were declared under the same name."""


class ToolRegistry:
    """Tools by name (``appointments.book``) and by function name (``appointments__book``)."""

    def __init__(self, tools: Iterable[AnyTool]) -> None:
        self._by_name: dict[str, AnyTool] = {}
        self._by_function: dict[str, AnyTool] = {}
        for tool in tools:
            known = self._by_name.get(tool.name)
            if known is tool:
                continue
            if known is not None:
                raise DuplicateTool(f"tool name {tool.name!r} is declared twice")
            self._by_name[tool.name] = tool
            self._by_function[tool.function_name] = tool

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[AnyTool]:
        return iter(self._by_name[name] for name in sorted(self._by_name))

    def __len__(self) -> int:
        return len(self._by_name)

    @property
    def names(self) -> list[str]:
        """Registered tool names, sorted."""
        return sorted(self._by_name)

    def get(self, name: str) -> AnyTool | None:
        """The tool named ``name`` (``namespace.action``), if registered."""
        return self._by_name.get(name)

    def by_function_name(self, function_name: str) -> AnyTool | None:
        """The tool the LLM called by its function name (dots written as ``__``)."""
        return self._by_function.get(function_name)

    def function_definitions(self, allows: Callable[[str], bool]) -> list[dict[str, Any]]:
        """OpenAI ``tools`` entries of the tools ``allows`` accepts, sorted by name.

        Pass a profile's permission check, e.g. ``AccessPolicy.allows_for(tenant, profile)``,
        so the LLM is only offered what the gateway would run.
        """
        return [tool.function_definition() for tool in self if allows(tool.name)]
