"""Splitting a text that is longer than a channel accepts in one message."""

from __future__ import annotations

from typing import Literal

Measure = Literal["chars", "utf16"]
"""How the channel counts: code points, or UTF-16 code units (Telegram)."""

# A break is looked for only in the last part of a window, so chunks stay near the limit.
_BREAK_SEARCH_FRACTION = 0.5
_BREAKS = ("\n\n", "\n", ". ", " ")


def split_text(text: str, limit: int, *, measure: Measure = "chars") -> list[str]:
    """Cut ``text`` into chunks of at most ``limit`` units, at paragraph, line or word breaks.

    A word longer than the limit is cut where the limit falls. Whitespace at a cut is dropped;
    nothing else is.
    """
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    chunks: list[str] = []
    rest = text
    while _length(rest, measure) > limit:
        end = _fitting_prefix(rest, limit, measure)
        cut = _break_before(rest, end)
        head, rest = rest[:cut].rstrip(), rest[cut:].lstrip()
        if head:
            chunks.append(head)
    if rest.strip():
        chunks.append(rest)
    return chunks


def _length(text: str, measure: Measure) -> int:
    if measure == "chars":
        return len(text)
    return len(text.encode("utf-16-le")) // 2


def _fitting_prefix(text: str, limit: int, measure: Measure) -> int:
    if measure == "chars":
        return limit
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            return max(index, 1)
    return len(text)


def _break_before(text: str, end: int) -> int:
    floor = int(end * (1 - _BREAK_SEARCH_FRACTION))
    for separator in _BREAKS:
        found = text.rfind(separator, floor, end)
        if found > 0:
            return found + len(separator)
    return end
