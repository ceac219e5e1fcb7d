"""Redis keys of a conversation's working memory, on the conversation's partition slot.

Both keys carry the partition's hash tag (``{p3}``), as every key about a conversation does, so
one Lua script may touch them together and the layout runs unchanged on Redis Cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

from events.partitions import partition_for
from libs.keys import KeySpace, hash_tag


@dataclass(frozen=True, slots=True)
class WorkingMemoryKeys:
    """The two keys of one conversation's working memory."""

    turns: str
    """List of recent turns, oldest first."""
    values: str
    """Hash of scratch values and pending tool states."""
    partition: int

    @classmethod
    def of(
        cls, keys: KeySpace, tenant_id: str, conversation_id: str, *, partitions: int
    ) -> WorkingMemoryKeys:
        """Keys of ``conversation_id`` in a deployment of ``partitions`` partitions."""
        partition = partition_for(tenant_id, conversation_id, partitions)
        base = f"{keys.namespace}:wm:{hash_tag(partition)}:{tenant_id}:{conversation_id}"
        return cls(turns=f"{base}:turns", values=f"{base}:values", partition=partition)
