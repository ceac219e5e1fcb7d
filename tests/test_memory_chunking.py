"""Chunking: by headings and paragraphs, with the heading path kept, overlap, and a hard bound."""

from __future__ import annotations

import itertools

import pytest
from pydantic import ValidationError

from memory_manager.chunking import chunk_text
from memory_manager.config import ChunkingConfig

GUIDE = """Intro paragraph before any heading.

# Shipping

General shipping words.

## International

Customs may hold parcels.

### Fees

Duties are paid by the buyer.

## Domestic

Three to five days.

```python
# not a heading inside code
print("hi")
```

# Returns

Thirty days.
"""


def test_sections_keep_their_heading_path() -> None:
    chunks = chunk_text(GUIDE)
    assert [chunk.heading_path for chunk in chunks] == [
        (),
        ("Shipping",),
        ("Shipping", "International"),
        ("Shipping", "International", "Fees"),
        ("Shipping", "Domestic"),
        ("Returns",),
    ]
    assert chunks[0].content == "Intro paragraph before any heading."
    assert chunks[3].content == "Shipping > International > Fees\n\nDuties are paid by the buyer."
    assert "# not a heading inside code" in chunks[4].content
    assert [chunk.index for chunk in chunks] == list(range(6))


def test_no_chunk_exceeds_the_bound_and_the_next_chunk_overlaps() -> None:
    sentences = [f"Sentence number {n} talks about parcel {n * 7}." for n in range(120)]
    paragraphs = "\n\n".join(" ".join(sentences[i : i + 4]) for i in range(0, 120, 4))
    config = ChunkingConfig(max_chars=400, overlap_chars=80)
    chunks = chunk_text("# Guide\n\n" + paragraphs, config)
    assert len(chunks) > 5
    assert all(len(chunk.content) <= 400 for chunk in chunks)
    for previous, current in itertools.pairwise(chunks):
        body = current.content.removeprefix("Guide\n\n")
        head = body.split("\n\n", 1)[0]
        assert 0 < len(head) <= 80
        assert head in previous.content, "each chunk starts with the previous tail"
    text = " ".join(chunk.content for chunk in chunks)
    assert all(sentence in text for sentence in sentences), "nothing is lost"


def test_a_paragraph_longer_than_the_bound_is_cut_at_sentences_and_words() -> None:
    long_word = "x" * 700
    text = "# T\n\n" + " ".join(f"Word{n}." for n in range(300)) + " " + long_word
    chunks = chunk_text(text, ChunkingConfig(max_chars=300, overlap_chars=50))
    assert all(len(chunk.content) <= 300 for chunk in chunks)
    assert sum(chunk.content.count("x" * 50) > 0 for chunk in chunks) >= 3
    assert "Word0." in chunks[0].content
    assert "Word299." in "".join(chunk.content for chunk in chunks)


def test_a_very_long_heading_path_is_shortened_to_half_the_chunk() -> None:
    text = "# " + "Heading " * 100 + "\n\nBody text."
    [chunk] = chunk_text(text, ChunkingConfig(max_chars=200, overlap_chars=20))
    heading, body = chunk.content.split("\n\n")
    assert len(heading) <= 98
    assert heading.endswith("…")
    assert body == "Body text."


def test_chunks_hash_their_content_and_empty_text_has_none() -> None:
    first, second = chunk_text("# A\n\nsame\n\n# B\n\nsame")
    assert first.sha256 != second.sha256  # the heading is part of the content
    assert chunk_text("A\n\nsame")[0].sha256 == chunk_text("A\n\nsame")[0].sha256
    assert chunk_text("   \n\n  ") == []
    assert chunk_text("# Only a heading") == []


def test_overlap_must_leave_room_for_new_text() -> None:
    with pytest.raises(ValidationError, match="overlap_chars \\(300\\) must be at most half"):
        ChunkingConfig(max_chars=500, overlap_chars=300)
