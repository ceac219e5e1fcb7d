"""A Telegram ``MessageReactionUpdated`` as one contract reaction.

Telegram sends a user's whole set of reactions before and after the change
(https://core.telegram.org/bots/api#messagereactionupdated); the contract records one
reaction per event, as WhatsApp does, so the change is reduced to the emoji added (a new
reaction replaces the old), else the emoji taken back.
"""

from __future__ import annotations

from channels.inbound_json import JsonObject, validated
from channels.telegram.inbound_content import unsupported
from events.types import InboundReaction, InboundUnsupported


def reaction_content(change: JsonObject, target: str) -> InboundReaction | InboundUnsupported:
    """The reaction added or removed; custom-emoji and paid reactions are kept unsupported."""
    before = _emojis(change.objects("old_reaction"))
    after = _emojis(change.objects("new_reaction"))
    added = next((emoji for emoji in after if emoji not in before), None)
    if added is not None:
        return validated(
            change.path, lambda: InboundReaction(target_message_id=target, emoji=added)
        )
    removed = next((emoji for emoji in before if emoji not in after), None)
    if removed is not None:
        return validated(
            change.path,
            lambda: InboundReaction(target_message_id=target, emoji=removed, removed=True),
        )
    return unsupported("message_reaction", change)


def _emojis(reactions: list[JsonObject]) -> list[str]:
    """The plain emoji among ``ReactionType`` objects, in order."""
    return [
        reaction.string("emoji")
        for reaction in reactions
        if reaction.optional_string("type") == "emoji"
    ]
