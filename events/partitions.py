"""Stable mapping of a conversation to one of P partitions.

Jump consistent hashing (Lamping & Veach, 2014) moves only about 1/P of the conversations
when a deployment changes its partition count, instead of nearly all of them with a modulo.
"""

from __future__ import annotations

import hashlib

_JUMP_MULTIPLIER = 2862933555777941757
_MASK_64 = (1 << 64) - 1


def conversation_key(tenant_id: str, conversation_id: str) -> bytes:
    """Return the bytes that identify a conversation across tenants."""
    return f"{tenant_id}\x1f{conversation_id}".encode()


def jump_hash(key: int, buckets: int) -> int:
    """Map a 64-bit key to a bucket in ``[0, buckets)`` with jump consistent hashing."""
    if buckets < 1:
        raise ValueError(f"buckets must be at least 1, got {buckets}")
    bucket, candidate = -1, 0
    while candidate < buckets:  # at most O(ln buckets) rounds
        bucket = candidate
        key = (key * _JUMP_MULTIPLIER + 1) & _MASK_64
        candidate = int((bucket + 1) * ((1 << 31) / ((key >> 33) + 1)))
    return bucket


def partition_for(tenant_id: str, conversation_id: str, partitions: int) -> int:
    """Return the partition that carries every event and key of this conversation."""
    digest = hashlib.blake2b(conversation_key(tenant_id, conversation_id), digest_size=8).digest()
    return jump_hash(int.from_bytes(digest, "big"), partitions)
