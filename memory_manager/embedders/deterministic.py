"""A small deterministic embedder: hashed words, word pairs and character trigrams.

No model and no network: the offline default and the tests' embedder. Texts are folded
(lowercase, accents removed), common function words dropped, and words lightly stemmed; then
three kinds of features are hashed into ``dimension`` buckets with a sign bit (feature
hashing) and the vector is L2-normalised:

- word stems (weight 1): texts that share content words score higher;
- adjacent stem pairs (weight 0.5): shared phrases score higher still;
- character trigrams of each stem (total weight 0.5 per word): inflections and typos
  ("deliveries", "delivery", "delivry") still meet.

It is lexical, not semantic: a paraphrase that shares no content word with a passage finds
it only through trigrams. Good enough to make knowledge-base search useful offline; use the
local or OpenAI-compatible embedder for meaning.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import math
import re
import unicodedata
from collections.abc import Sequence

from memory_manager.config import DEFAULT_DIMENSION

_WORD = re.compile(r"[a-z0-9]+")
# Function words of English and Portuguese (the two languages of the demo tenants).
_FUNCTION_WORDS = """
a an and are as at be been but by can could did do does for from had has have how i if in into
is it its me my no not of on or our so than that the their them then there these they this to
too us was we were what when where which who why will with would you your
o os um uma uns umas de do da dos das em na nos nas por para com sem que e ou se eu voce voces
ele ela eles elas meu minha seu sua nosso nossa isso esse essa este esta ao aos qual quais
quando onde como mais muito tem ter foi ser sao estou
"""
_STOPWORDS = frozenset(_FUNCTION_WORDS.split())
_SUFFIXES = ("ing", "ies", "ied", "ed", "es", "s")
_WORD_WEIGHT = 1.0
_PAIR_WEIGHT = 0.5
_TRIGRAMS_WEIGHT = 0.5
# Batches longer than this are hashed in a worker thread, off the event loop.
_INLINE_TEXTS = 8


class HashedNgramEmbedder:
    """Feature-hashing embedder; same text, same vector, on every machine."""

    def __init__(self, dimension: int = DEFAULT_DIMENSION) -> None:
        if dimension < 16:
            raise ValueError(
                f"the deterministic embedder needs 16 dimensions or more, not {dimension}"
            )
        self._dimension = dimension

    @property
    def model(self) -> str:
        """Provider and model name stored with each vector."""
        return f"deterministic:hashed-ngrams-v1-{self._dimension}"

    @property
    def dimension(self) -> int:
        """Length of every vector."""
        return self._dimension

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One unit vector per text."""
        if len(texts) <= _INLINE_TEXTS:
            return [self.embed_one(text) for text in texts]
        return await asyncio.to_thread(lambda: [self.embed_one(text) for text in texts])

    def embed_one(self, text: str) -> list[float]:
        """The vector of one text (synchronous; cheap for chat-sized texts)."""
        vector = [0.0] * self._dimension
        words = _words(text)
        stems = [_stem(word) for word in words if word not in _STOPWORDS] or words
        for stem in stems:
            self._add(vector, "w:" + stem, _WORD_WEIGHT)
            grams = _trigrams(stem)
            for gram in grams:
                self._add(vector, "c:" + gram, _TRIGRAMS_WEIGHT / len(grams))
        for first, second in itertools.pairwise(stems):
            self._add(vector, f"p:{first} {second}", _PAIR_WEIGHT)
        norm = math.sqrt(sum(value * value for value in vector))
        if norm == 0.0:
            # Nothing to hash (only punctuation): a fixed unit vector keeps cosine defined.
            vector[0] = 1.0
            return vector
        return [value / norm for value in vector]

    def _add(self, vector: list[float], feature: str, weight: float) -> None:
        digest = int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "big")
        sign = 1.0 if digest >> 63 else -1.0
        vector[digest % self._dimension] += sign * weight


def _words(text: str) -> list[str]:
    folded = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(char for char in folded if not unicodedata.combining(char))
    return _WORD.findall(plain)


def _stem(word: str) -> str:
    """Strip one common inflection, keeping at least four letters."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            stem = word[: -len(suffix)]
            return stem + "y" if suffix in ("ies", "ied") else stem
    return word


def _trigrams(word: str) -> list[str]:
    padded = f"<{word}>"
    return [padded[start : start + 3] for start in range(len(padded) - 2)]
