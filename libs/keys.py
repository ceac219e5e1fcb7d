"""Every Redis key atende uses, in one place.

Keys about a conversation carry its partition's hash tag (``{p7}``) so that a Lua script can
touch the stream, the sequence counter, dedup claims, the mailbox and the lease of one
conversation together, and so that the layout runs unchanged on Redis Cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

from events.streams import dead_letter_stream


def hash_tag(partition: int) -> str:
    """Return the cluster hash tag of ``partition``."""
    return f"{{p{partition}}}"


@dataclass(frozen=True, slots=True)
class KeySpace:
    """Builds keys under one namespace (a deployment, or one test)."""

    namespace: str

    def stream(self, stream: str, partition: int) -> str:
        """Physical stream of a logical stream's partition."""
        return f"{self.namespace}:{stream}:{hash_tag(partition)}"

    def dead_letters(self, stream: str, partition: int) -> str:
        """Dead-letter stream beside a partition (same slot, so moving is atomic)."""
        return self.stream(dead_letter_stream(stream), partition)

    def sequence(self, partition: int, tenant_id: str, conversation_id: str) -> str:
        """Counter of a conversation's inbound messages (``seq``)."""
        return f"{self.namespace}:seq:{hash_tag(partition)}:{tenant_id}:{conversation_id}"

    def dedup(self, scope: str, partition: int, token: str) -> str:
        """Claim that a provider message id (or any idempotency key) was seen."""
        return f"{self.namespace}:dedup:{scope}:{hash_tag(partition)}:{token}"

    def dedup_global(self, scope: str, token: str) -> str:
        """Claim that is not tied to a conversation (its own slot)."""
        return f"{self.namespace}:dedup:{scope}:{token}"

    def lease(self, name: str) -> str:
        """Holder record of a lease (a turn lease passes ``turn:{p3}:tenant:conv``)."""
        return f"{self.namespace}:lease:{name}"

    def fence(self, name: str) -> str:
        """Fencing counter of a lease; only grows."""
        return f"{self.namespace}:fence:{name}"

    def partition_count(self) -> str:
        """The partition count the namespace's streams and keys were written with."""
        return f"{self.namespace}:layout:partitions"

    def breaker(self, name: str) -> str:
        """Shared state of a circuit breaker."""
        return f"{self.namespace}:breaker:{name}"

    def turn_lease_name(self, partition: int, tenant_id: str, conversation_id: str) -> str:
        """Lease name of a conversation's turn; carries the partition tag."""
        return f"turn:{hash_tag(partition)}:{tenant_id}:{conversation_id}"

    def mailbox(self, partition: int, tenant_id: str, conversation_id: str) -> str:
        """A conversation's inbound messages waiting for a turn, ordered by ``seq``."""
        return f"{self.namespace}:mailbox:{hash_tag(partition)}:{tenant_id}:{conversation_id}"

    def turns_due(self, partition: int) -> str:
        """Sorted set of a partition's open turns, scored by deadline (to resume crashed ones)."""
        return f"{self.namespace}:turns-due:{hash_tag(partition)}"

    def turn(self, partition: int, tenant_id: str, conversation_id: str) -> str:
        """Hash of a conversation's open turn and of the order its messages are released in."""
        return f"{self.namespace}:turn:{hash_tag(partition)}:{tenant_id}:{conversation_id}"

    def wake_due(self, partition: int) -> str:
        """Sorted set of a partition's conversations waiting out a merge window or a gap in
        ``seq``, by when they may go on."""
        return f"{self.namespace}:wake-due:{hash_tag(partition)}"

    def pace(self, partition: int, tenant_id: str, conversation_id: str) -> str:
        """When the next outbound message to a conversation's recipient may leave (pacing)."""
        return f"{self.namespace}:pace:{hash_tag(partition)}:{tenant_id}:{conversation_id}"

    def tool_steps_due(self, partition: int) -> str:
        """Sorted set of a partition's tool steps awaiting results, by when they time out."""
        return f"{self.namespace}:tool-steps-due:{hash_tag(partition)}"

    def tool_steps(self, partition: int) -> str:
        """Hash of a partition's awaited tool steps: each step's requests, to answer them."""
        return f"{self.namespace}:tool-steps:{hash_tag(partition)}"

    def typing_due(self, partition: int) -> str:
        """Sorted set of a partition's open turns whose typing indicator is due a refresh."""
        return f"{self.namespace}:typing-due:{hash_tag(partition)}"
