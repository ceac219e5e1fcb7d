"""Cutting markdown or plain text into chunks by headings and paragraphs, with overlap.

Each chunk belongs to one section (the text under one heading) and starts with that section's
heading path (``Shipping > International``), so a chunk read alone, or embedded, still says
what it is about. Paragraphs are packed together up to ``max_chars``; a paragraph longer than
that is cut at sentence, then word, boundaries. The next chunk of the same section repeats the
last ``overlap_chars`` of the previous one (from a word boundary), so a sentence cut between
two chunks is whole in at least one. No chunk, heading included, is longer than ``max_chars``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from memory_manager.config import ChunkingConfig

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+")
_PATH_SEPARATOR = " > "


@dataclass(frozen=True, slots=True)
class Chunk:
    """One piece of a document, ready to embed."""

    index: int
    heading_path: tuple[str, ...]
    content: str

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the content: an unchanged chunk is not embedded again."""
        return hashlib.sha256(self.content.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class _Section:
    path: tuple[str, ...]
    body: str


def chunk_text(text: str, config: ChunkingConfig | None = None) -> list[Chunk]:
    """Cut ``text`` (markdown or plain) into chunks, in reading order, indexed from 0."""
    config = config or ChunkingConfig()
    chunks: list[Chunk] = []
    for section in _sections(text.replace("\r\n", "\n")):
        heading = _heading_line(section.path, config.max_chars)
        budget = config.max_chars - len(heading)
        # Long paragraphs are cut shorter than the budget so that their pieces have room for
        # the overlap too.
        piece = max(budget - config.overlap_chars - 2, budget // 2)
        for body in _pack(_paragraphs(section.body, piece), budget, config.overlap_chars):
            chunks.append(Chunk(len(chunks), section.path, heading + body))
    return chunks


def _sections(text: str) -> list[_Section]:
    """Split at markdown headings (not inside code fences), tracking the heading path."""
    sections: list[_Section] = []
    path: list[tuple[int, str]] = []
    lines: list[str] = []
    in_fence = False

    def close() -> None:
        body = "\n".join(lines).strip()
        if body:
            sections.append(_Section(tuple(title for _, title in path), body))
        lines.clear()

    for line in text.split("\n"):
        if _FENCE.match(line):
            in_fence = not in_fence
        match = None if in_fence else _HEADING.match(line)
        if match is None:
            lines.append(line)
            continue
        close()
        level = len(match.group(1))
        path = [(depth, title) for depth, title in path if depth < level]
        path.append((level, match.group(2).strip()))
    close()
    return sections


def _heading_line(path: tuple[str, ...], max_chars: int) -> str:
    if not path:
        return ""
    line = _PATH_SEPARATOR.join(path)
    # The heading must leave at least half the chunk to the text it introduces.
    limit = max_chars // 2 - 2
    if len(line) > limit:
        line = line[: limit - 1].rstrip() + "…"
    return line + "\n\n"


def _paragraphs(body: str, budget: int) -> list[str]:
    """Paragraphs of ``body``, each cut to fit ``budget`` characters."""
    pieces: list[str] = []
    for paragraph in _PARAGRAPH_BREAK.split(body):
        paragraph = paragraph.strip()
        if paragraph:
            pieces.extend(_fit(paragraph, budget))
    return pieces


def _fit(paragraph: str, budget: int) -> list[str]:
    """Cut a paragraph at sentence ends, then at spaces, then anywhere, to fit ``budget``."""
    if len(paragraph) <= budget:
        return [paragraph]
    parts: list[str] = []
    current = ""
    for sentence in _SENTENCE_END.split(paragraph):
        for word in _words_fitting(sentence, budget):
            candidate = f"{current} {word}" if current else word
            if len(candidate) <= budget:
                current = candidate
            else:
                parts.append(current)
                current = word
    if current:
        parts.append(current)
    return parts


def _words_fitting(sentence: str, budget: int) -> list[str]:
    """A sentence's words; a word longer than ``budget`` is cut into pieces."""
    words: list[str] = []
    for word in sentence.split():
        words.extend(word[start : start + budget] for start in range(0, len(word), budget))
    return words


def _pack(paragraphs: list[str], budget: int, overlap_chars: int) -> list[str]:
    """Join paragraphs into bodies of at most ``budget``, each starting with an overlap."""
    bodies: list[str] = []
    current = ""
    for paragraph in paragraphs:
        candidate = f"{current}\n\n{paragraph}" if current else paragraph
        if len(candidate) <= budget:
            current = candidate
            continue
        bodies.append(current)
        tail = _tail(current, min(overlap_chars, budget - len(paragraph) - 2))
        current = f"{tail}\n\n{paragraph}" if tail else paragraph
    if current:
        bodies.append(current)
    return bodies


def _tail(text: str, chars: int) -> str:
    """The last ``chars`` characters of ``text`` at most, starting at a word."""
    if chars <= 0:
        return ""
    tail = text[-chars:]
    if len(text) > chars and not text[-chars - 1].isspace():
        _, _, tail = tail.partition(" ")
    return tail.strip()
