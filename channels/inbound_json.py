"""Reading an untrusted JSON webhook body, with every failure named by its path.

Accessors check each value's type and raise ``PayloadInvalid`` with the dotted path of the
field (``message.chat.id``), so a rejected webhook is answered with what was wrong rather
than a ``KeyError``. Shared by the Telegram, Chatwoot and generic inbound adapters.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TypeVar, cast

import orjson
from pydantic import JsonValue, ValidationError

from channels.inbound import PayloadInvalid

_T = TypeVar("_T")

# Deeper than any real webhook of these providers; bounds the work of every later step that
# walks a kept part (validation, serialization).
MAX_DEPTH = 32
# Provider ids are composed into keys such as "{chat_id}:{message_id}:edit:{update_id}", which
# must stay within the contract's 256 characters; real ids are far shorter than this bound.
ID_MAX_CHARS = 64


def load_json(body: bytes) -> object:
    """Decode a webhook body; refuse what is not JSON (NaN and Infinity are not) or nests
    deeper than ``MAX_DEPTH``. Every inbound adapter reads its body through this."""
    try:
        # orjson refuses NaN/Infinity, invalid UTF-8 and lone surrogates, and bounds its own
        # recursion, so none of those reach the adapters.
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise PayloadInvalid("body", f"the body is not valid JSON: {exc}") from None
    # Nesting needs an opening bracket per level: a body with few brackets cannot be too deep,
    # which spares the walk for every ordinary webhook.
    if body.count(b"[") + body.count(b"{") > MAX_DEPTH and _deeper_than(value, MAX_DEPTH):
        raise PayloadInvalid("body", f"the body nests deeper than {MAX_DEPTH} levels")
    return value


def decode_object(body: bytes) -> JsonObject:
    """Decode a body that must hold one JSON object."""
    value = load_json(body)
    if not isinstance(value, dict):
        raise PayloadInvalid("body", f"the body must be a JSON object, not {_json_kind(value)}")
    return JsonObject(value, "")


def _deeper_than(value: object, limit: int) -> bool:
    """Whether arrays and objects nest beyond ``limit`` levels (iterative: no recursion)."""
    pending: list[tuple[object, int]] = [(value, 1)]
    while pending:
        node, depth = pending.pop()
        if isinstance(node, dict):
            node = list(node.values())
        if isinstance(node, list):
            if depth > limit:
                return True
            pending.extend((child, depth + 1) for child in node if isinstance(child, dict | list))
    return False


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


class JsonObject:
    """One JSON object of a body and its dotted path, read through typed accessors.

    A JSON ``null`` counts as absent: optional accessors return ``None`` and required ones
    say the field is missing.
    """

    __slots__ = ("path", "raw")

    def __init__(self, raw: dict[str, object], path: str) -> None:
        self.raw = raw
        self.path = path

    def at(self, key: str) -> str:
        """The dotted path of ``key`` inside this object."""
        return f"{self.path}.{key}" if self.path else key

    def get(self, key: str) -> object:
        """The raw value of ``key``, unchecked (``None`` when absent)."""
        return self.raw.get(key)

    def has(self, key: str) -> bool:
        """Whether ``key`` is present and not null."""
        return self.raw.get(key) is not None

    def as_json(self) -> dict[str, JsonValue]:
        """The object as decoded, for keeping a part atende does not model."""
        return cast("dict[str, JsonValue]", self.raw)

    def _required(self, key: str) -> object:
        value = self.raw.get(key)
        if value is None:
            raise PayloadInvalid(self.at(key), f"{self.at(key)} is missing")
        return value

    def _wrong(self, key: str, expected: str, value: object) -> PayloadInvalid:
        return PayloadInvalid(
            self.at(key), f"{self.at(key)} must be {expected}, not {_json_kind(value)}"
        )

    def object(self, key: str) -> JsonObject:
        """The object under ``key``."""
        value = self._required(key)
        if not isinstance(value, dict):
            raise self._wrong(key, "an object", value)
        return JsonObject(value, self.at(key))

    def optional_object(self, key: str) -> JsonObject | None:
        """The object under ``key``, or ``None`` when absent."""
        return self.object(key) if self.has(key) else None

    def objects(self, key: str) -> list[JsonObject]:
        """The array of objects under ``key``; an absent array is empty."""
        value = self.raw.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self._wrong(key, "an array", value)
        items: list[JsonObject] = []
        for index, item in enumerate(value):
            path = f"{self.at(key)}[{index}]"
            if not isinstance(item, dict):
                raise PayloadInvalid(path, f"{path} must be an object, not {_json_kind(item)}")
            items.append(JsonObject(item, path))
        return items

    def string(self, key: str) -> str:
        """The string under ``key``."""
        value = self._required(key)
        if not isinstance(value, str):
            raise self._wrong(key, "a string", value)
        return value

    def optional_string(self, key: str) -> str | None:
        """The string under ``key``, or ``None`` when absent."""
        return self.string(key) if self.has(key) else None

    def integer(self, key: str) -> int:
        """The integer under ``key``, within 64 bits (a boolean is not one)."""
        value = self._required(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._wrong(key, "an integer", value)
        # Every provider's integers fit in 64 bits; a longer one would only make long keys.
        if abs(value) >= 2**64:
            raise PayloadInvalid(self.at(key), f"{self.at(key)} does not fit in 64 bits")
        return value

    def optional_integer(self, key: str) -> int | None:
        """The integer under ``key``, or ``None`` when absent."""
        return self.integer(key) if self.has(key) else None

    def number(self, key: str) -> float:
        """The finite number under ``key``."""
        value = self._required(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._wrong(key, "a number", value)
        if not math.isfinite(value):
            raise PayloadInvalid(self.at(key), f"{self.at(key)} must be a finite number")
        return float(value)

    def optional_boolean(self, key: str) -> bool | None:
        """The boolean under ``key``, or ``None`` when absent."""
        value = self.raw.get(key)
        if value is None or isinstance(value, bool):
            return value
        raise self._wrong(key, "a boolean", value)

    def identifier(self, key: str) -> str:
        """An id that providers send as an integer or a string, as a non-empty string."""
        value = self._required(key)
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise self._wrong(key, "an integer or a string", value)
        if value == "":
            raise PayloadInvalid(self.at(key), f"{self.at(key)} is empty")
        text = str(value)
        if len(text) > ID_MAX_CHARS:
            raise PayloadInvalid(
                self.at(key), f"{self.at(key)} is longer than {ID_MAX_CHARS} characters"
            )
        return text

    def optional_identifier(self, key: str) -> str | None:
        """An id as in ``identifier``, or ``None`` when absent."""
        return self.identifier(key) if self.has(key) else None

    def unix_time(self, key: str) -> datetime:
        """A Unix time in seconds under ``key``, as an aware UTC datetime."""
        return utc_from_unix(self.integer(key), self.at(key))


def utc_from_unix(seconds: float, path: str) -> datetime:
    """The aware UTC datetime of a Unix time; out-of-range values name ``path``."""
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise PayloadInvalid(path, f"{path} is not a Unix time in seconds") from None


def validated(path: str, make: Callable[[], _T]) -> _T:
    """Build a contract model, turning a validation error into ``PayloadInvalid`` at ``path``.

    The provider's data passed the accessors' type checks but may still break a contract
    limit (an empty text, a malformed MIME type); that is the sender's fault, not a bug.
    """
    try:
        return make()
    except ValidationError as exc:
        where = path or "body"
        raise PayloadInvalid(where, f"{where} is not acceptable: {describe(exc)}") from None


def describe(exc: ValidationError) -> str:
    """A one-line account of a validation error: the first problem and how many others."""
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0]
    location = field_path(first["loc"])
    text = f"{location}: {problem(first['msg'])}" if location else problem(first["msg"])
    return text + others(len(errors))


def problem(message: str) -> str:
    """Pydantic's message as the tail of our sentence: no "Value error, ", no capital."""
    message = message.removeprefix("Value error, ")
    return message[:1].lower() + message[1:]


def others(count: int) -> str:
    """ " (and N more)" when a validation found more problems than the one reported."""
    return f" (and {count - 1} more)" if count > 1 else ""


def field_path(loc: Sequence[int | str]) -> str:
    """The dotted path of a pydantic error location, e.g. ``messages[0].sender.id``."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path = f"{path}.{part}" if path else part
    return path
