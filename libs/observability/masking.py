"""Masking phone numbers in log lines.

Contacts are identified by their phone numbers, and those end up in conversation ids, contact
ids and free text. Logs keep enough to correlate (the first and last two digits) and no more.
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from typing import Any

# 8 to 15 digits (E.164 allows 15), optionally after '+', not part of a longer token: ids such
# as UUID segments or stream entry ids ("1717430401123-0") are bounded by '-' or letters.
_PHONE = re.compile(r"(?<![\w.-])\+?\d{8,15}(?![\w-])")


def _mask(match: re.Match[str]) -> str:
    number = match.group()
    sign = "+" if number.startswith("+") else ""
    digits = number.removeprefix("+")
    return f"{sign}{digits[:2]}{'*' * (len(digits) - 4)}{digits[-2:]}"


def mask_phone_numbers(text: str) -> str:
    """``text`` with every phone-number-like run of digits masked: ``55*********21``."""
    return _PHONE.sub(_mask, text)


_MAX_DEPTH = 4  # log values are flat or shallow; deeper parts are rendered as they are


def _masked(value: object, depth: int) -> object:
    if isinstance(value, str):
        return _PHONE.sub(_mask, value)
    if depth >= _MAX_DEPTH:
        return value
    if isinstance(value, dict):
        return {key: _masked(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(item, depth + 1) for item in value]
    return value


def mask_phone_numbers_processor(
    _logger: object, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: masks phone numbers in every string value, nested ones included.

    Runs after exceptions are formatted, so tracebacks are masked too.
    """
    flat = [value for value in event_dict.values() if type(value) is str]
    # One search over every flat string tells whether any needs masking: most lines hold
    # none, and a call per value costs more than the search itself. '\n' ends a match.
    flat_has_phone = _PHONE.search("\n".join(flat)) is not None
    for key, value in event_dict.items():
        if type(value) is str:
            if flat_has_phone:
                event_dict[key] = _PHONE.sub(_mask, value)
        elif not isinstance(value, int | float | bool | None):
            event_dict[key] = _masked(value, 0)
    return event_dict
