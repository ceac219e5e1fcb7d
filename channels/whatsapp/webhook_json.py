"""Typed, path-aware reading of a decoded WhatsApp webhook body.

Every accessor either returns a value of the asked type or raises ``PayloadInvalid`` naming
the dotted path of the offending field, so the parser never meets a ``KeyError`` or a
``TypeError`` on a provider's surprise.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import cast

from pydantic import JsonValue, ValidationError

from channels.inbound import PayloadInvalid
from channels.inbound_json import load_json

# The contract's bound on provider ids (``ProviderMessageId``).
ID_MAX_CHARS = 256


def decode_body(body: bytes) -> JsonNode:
    """Decode a webhook body into the root node (see ``load_json`` for what is refused)."""
    return JsonNode(cast(JsonValue, load_json(body)))


class JsonNode:
    """A JSON value and where it sits in the body.

    The dotted path is built only when asked for, which is when something is wrong: a valid
    webhook is read without composing a path string per field.
    """

    __slots__ = ("_key", "_parent", "value")

    def __init__(
        self, value: JsonValue, parent: JsonNode | None = None, key: str | int = ""
    ) -> None:
        self.value = value
        self._parent = parent
        self._key = key

    @property
    def path(self) -> str:
        """The dotted path of this node (``entry[0].changes[0].value``; empty at the root)."""
        if self._parent is None:
            return ""
        if isinstance(self._key, int):
            return f"{self._parent.path}[{self._key}]"
        return self._parent.field_path(self._key)

    def field_path(self, key: str) -> str:
        """The dotted path of ``key`` below this node."""
        path = self.path
        return f"{path}.{key}" if path else key

    def _object(self) -> dict[str, JsonValue]:
        value = self.value
        if type(value) is not dict:
            path = self.path or "body"
            raise PayloadInvalid(path, f"{path} must be an object")
        return value

    def raw(self) -> dict[str, JsonValue]:
        """This node as an object, e.g. to keep a part we do not model."""
        return self._object()

    def has(self, key: str) -> bool:
        """Whether this object holds ``key`` with a non-null value."""
        return self._object().get(key) is not None

    def child(self, key: str) -> JsonNode:
        """The object at ``key``; required."""
        node = self.opt_child(key)
        if node is None:
            raise PayloadInvalid(self.field_path(key), f"{self.field_path(key)} is missing")
        return node

    def opt_child(self, key: str) -> JsonNode | None:
        """The object at ``key``, or None when absent or null."""
        value = self._object().get(key)
        if value is None:
            return None
        node = JsonNode(value, self, key)
        node._object()
        return node

    def items(self, key: str, *, required: bool = False) -> Iterator[JsonNode]:
        """The elements of the list at ``key`` (none when it is absent and not required)."""
        value = self._object().get(key)
        if value is None:
            if required:
                raise PayloadInvalid(self.field_path(key), f"{self.field_path(key)} is missing")
            return
        if not isinstance(value, list):
            raise PayloadInvalid(self.field_path(key), f"{self.field_path(key)} must be a list")
        holder = JsonNode(value, self, key)
        for index, element in enumerate(value):
            yield JsonNode(element, holder, index)

    def text(self, key: str) -> str:
        """The non-empty string at ``key``; required."""
        value = self.opt_text(key)
        if not value:
            raise PayloadInvalid(self.field_path(key), f"{self.field_path(key)} is missing")
        return value

    def ident(self, key: str) -> str:
        """The provider id at ``key``: a non-empty string within the contract's bound."""
        value = self.text(key)
        if len(value) > ID_MAX_CHARS:
            path = self.field_path(key)
            raise PayloadInvalid(path, f"{path} is longer than {ID_MAX_CHARS} characters")
        return value

    def opt_ident(self, key: str) -> str | None:
        """The provider id at ``key``, or None when absent, null or empty."""
        return self.ident(key) if self.opt_text(key) else None

    def opt_text(self, key: str) -> str | None:
        """The string at ``key``, or None when absent or null."""
        value = self._object().get(key)
        if value is None or isinstance(value, str):
            return value
        raise PayloadInvalid(self.field_path(key), f"{self.field_path(key)} must be a string")

    def opt_number(self, key: str) -> float | None:
        """The number at ``key``, or None when absent or null."""
        value = self._object().get(key)
        if value is None:
            return None
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise PayloadInvalid(self.field_path(key), f"{self.field_path(key)} must be a number")

    def number(self, key: str) -> float:
        """The number at ``key``; required."""
        value = self.opt_number(key)
        if value is None:
            raise PayloadInvalid(self.field_path(key), f"{self.field_path(key)} is missing")
        return value

    def opt_flag(self, key: str) -> bool:
        """The boolean at ``key``; false when absent."""
        value = self._object().get(key)
        if value is None or isinstance(value, bool):
            return bool(value)
        raise PayloadInvalid(self.field_path(key), f"{self.field_path(key)} must be true or false")

    def opt_scalar_text(self, key: str) -> str | None:
        """A string or integer at ``key`` as text (Meta sends error codes as numbers)."""
        value = self._object().get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return self.opt_text(key)

    def opt_unix_time(self, key: str) -> datetime | None:
        """The Unix time in seconds at ``key`` (a numeric string or a number), as UTC."""
        value = self._object().get(key)
        if value is None:
            return None
        if not isinstance(value, bool) and isinstance(value, str | int):
            try:
                return datetime.fromtimestamp(int(value), UTC)
            except (ValueError, OverflowError, OSError):
                pass
        path = self.field_path(key)
        raise PayloadInvalid(path, f"{path} must be a Unix time in seconds")


def invalid_model(path: str, error: ValidationError) -> PayloadInvalid:
    """Turn a contract model's rejection of a provider value into a named ``PayloadInvalid``."""
    first = error.errors(include_url=False)[0]
    location = "".join(
        f"[{part}]" if isinstance(part, int) else f".{part}" for part in first["loc"]
    )
    field = f"{path}{location}" if path else location.lstrip(".")
    return PayloadInvalid(field, f"{field} is not acceptable: {first['msg']}")
