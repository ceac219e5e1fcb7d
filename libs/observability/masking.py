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


def mask_phone_numbers_processor(
    _logger: object, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: masks phone numbers in every string value, and in lists of them."""
    for key, value in event_dict.items():
        if isinstance(value, str):
            event_dict[key] = _PHONE.sub(_mask, value)
        elif isinstance(value, list | tuple) and any(isinstance(item, str) for item in value):
            event_dict[key] = [
                _PHONE.sub(_mask, item) if isinstance(item, str) else item for item in value
            ]
    return event_dict
