"""Helpers shared by the inbound adapter tests."""

from __future__ import annotations

import copy
import random
from collections.abc import Sequence
from typing import Any

from channels.inbound import Inbound, InboundAdapter, PayloadInvalid, WebhookRequest


def parse_or_refusal(
    adapter: InboundAdapter, request: WebhookRequest
) -> list[Inbound] | PayloadInvalid:
    """Parse, returning the refusal instead of raising it; anything else propagates."""
    try:
        return adapter.parse(request)
    except PayloadInvalid as refused:
        return refused


def json_slots(node: Any) -> list[tuple[Any, Any]]:
    """Every (container, key) pair in a decoded JSON document."""
    found: list[tuple[Any, Any]] = []
    pending = [node]
    while pending:  # bounded: each container is visited once
        current = pending.pop()
        pairs = current.items() if isinstance(current, dict) else enumerate(current)
        for key, value in list(pairs):
            found.append((current, key))
            if isinstance(value, dict | list):
                pending.append(value)
    return found


def mutated(
    document: Any,
    rng: random.Random,
    odd_values: Sequence[Any],
    *,
    most_changes: int,
    replace_share: float,
) -> Any:
    """A copy of ``document`` with 1..``most_changes`` random changes: a value replaced by one
    of ``odd_values`` (``replace_share`` of the time), a key removed, or a value copied from
    elsewhere in the document."""
    result = copy.deepcopy(document)
    for _ in range(rng.randint(1, most_changes)):
        slots = json_slots(result)
        if not slots:
            break
        container, key = rng.choice(slots)
        roll = rng.random()
        if roll < replace_share:
            container[key] = copy.deepcopy(rng.choice(odd_values))
        elif roll < 0.8 and isinstance(container, dict):
            del container[key]
        else:
            other, other_key = rng.choice(slots)
            container[key] = copy.deepcopy(other[other_key])
    return result
