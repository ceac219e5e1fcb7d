"""Redis keys: a conversation's keys share its partition's hash tag with the partition's sets."""

from __future__ import annotations

from libs.keys import KeySpace

KEYS = KeySpace("ns")


def _slot_tag(key: str) -> str:
    return key[key.index("{") : key.index("}") + 1]


def test_a_conversations_mailbox_is_named_by_partition_tenant_and_conversation() -> None:
    assert KEYS.mailbox(7, "acme", "wa:5511") == "ns:mailbox:{p7}:acme:wa:5511"


def test_due_turns_and_wake_ups_are_one_sorted_set_per_partition() -> None:
    assert KEYS.turns_due(7) == "ns:turns-due:{p7}"
    assert KEYS.wake_due(7) == "ns:wake-due:{p7}"


def test_every_key_of_a_conversation_shares_the_partitions_slot() -> None:
    conversation = (7, "acme", "wa:5511")
    keys = [
        KEYS.stream("inbox.message.received", 7),
        KEYS.sequence(*conversation),
        KEYS.mailbox(*conversation),
        KEYS.turn(*conversation),
        KEYS.lease(KEYS.turn_lease_name(*conversation)),
        KEYS.fence(KEYS.turn_lease_name(*conversation)),
        KEYS.turns_due(7),
        KEYS.wake_due(7),
    ]
    assert {_slot_tag(key) for key in keys} == {"{p7}"}
