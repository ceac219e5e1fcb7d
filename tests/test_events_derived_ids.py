"""Ids of derived events: a function of the cause, the producer's role, the type and a key."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from events.envelope import Envelope
from events.examples import example_envelope
from events.ids import derived_event_id, new_event_id
from events.types import ToolCallCompleted

CAUSE = "01906e2a-99a0-7004-8abc-0123456789ab"
COMPLETED = "tools.call.completed"


def _in_another_process(cause_id: str, role: str, event_type: str, key: str) -> str:
    # A different hash seed too: nothing may depend on Python's per-process str hashing.
    code = (
        "import sys; from events.ids import derived_event_id; "
        "print(derived_event_id(sys.argv[1], role=sys.argv[2], event_type=sys.argv[3], "
        "key=sys.argv[4]))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    done = subprocess.run(
        [sys.executable, "-c", code, cause_id, role, event_type, key],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    return done.stdout.strip()


def test_the_same_cause_role_type_and_key_give_the_same_id_in_every_process() -> None:
    here = derived_event_id(CAUSE, role="tool-gateway", event_type=COMPLETED, key="call-1")
    again = derived_event_id(CAUSE, role="tool-gateway", event_type=COMPLETED, key="call-1")
    there = _in_another_process(CAUSE, "tool-gateway", COMPLETED, "call-1")
    assert here == again == there


def test_another_role_type_key_or_cause_gives_another_id() -> None:
    base = {"role": "ai-agent", "event_type": "tools.call.requested", "key": "call-1"}
    ids = {
        derived_event_id(CAUSE, **base),
        derived_event_id(CAUSE, **(base | {"role": "tool-gateway"})),
        derived_event_id(CAUSE, **(base | {"event_type": COMPLETED})),
        derived_event_id(CAUSE, **(base | {"key": "call-2"})),
        derived_event_id(CAUSE, **(base | {"key": ""})),
        derived_event_id(new_event_id(), **base),
        # The parts are length-prefixed: moving a character from one part to the next differs.
        derived_event_id(CAUSE, role="ai-agentt", event_type="ools.call.requested", key="call-1"),
    }
    assert len(ids) == 7


def test_a_derived_id_is_a_uuid7_sorting_right_after_its_cause() -> None:
    causes = [new_event_id() for _ in range(200)]
    derived = [derived_event_id(c, role="r", event_type="t") for c in causes]
    for cause, effect in zip(causes, derived, strict=True):
        parsed = uuid.UUID(effect)
        assert (parsed.version, parsed.variant) == (7, uuid.RFC_4122)
        assert str(parsed) == effect  # canonical, lowercase
        assert parsed.int >> 80 == uuid.UUID(cause).int >> 80  # the cause's millisecond
        assert cause < effect
    # Chained derivations keep sorting in causal order.
    chain = [CAUSE]
    for step in range(5):
        chain.append(derived_event_id(chain[-1], role="r", event_type="t", key=str(step)))
    assert chain == sorted(chain)


def test_the_sequence_of_a_cause_at_its_last_value_carries_into_the_next_millisecond() -> None:
    cause = "01906e2a-99a0-7fff-8000-000000000000"
    effect = uuid.UUID(derived_event_id(cause, role="r", event_type="t"))
    assert effect.int >> 80 == (uuid.UUID(cause).int >> 80) + 1
    assert (effect.int >> 64) & 0xFFF == 0
    assert effect.version == 7


@pytest.mark.parametrize(
    "cause",
    ["evt-1", "", "6ba7b810-9dad-41d1-80b4-00c04fd430c8", "01906e2a-99a0-7004-c000-000000000000"],
)
def test_a_cause_that_is_not_a_uuid7_is_refused(cause: str) -> None:
    with pytest.raises(ValueError, match="is not a UUIDv7"):
        derived_event_id(cause, role="r", event_type="t")


def test_a_derived_envelope_continues_its_causes_chain_with_the_derived_id() -> None:
    request = example_envelope("tools.call.requested", 1)
    payload = example_envelope(COMPLETED, 1).payload
    assert isinstance(payload, ToolCallCompleted)

    first = Envelope.derived(payload, cause=request, role="tool-gateway")
    republished = Envelope.derived(
        payload.model_copy(update={"replayed": True}), cause=request, role="tool-gateway"
    )

    assert first.id == republished.id
    assert first.id == derived_event_id(request.id, role="tool-gateway", event_type=COMPLETED)
    assert (first.causation_id, first.correlation_id) == (request.id, request.correlation_id)
    assert (first.tenant_id, first.conversation_id) == (request.tenant_id, request.conversation_id)
    assert (first.traceparent, first.tracestate) == (request.traceparent, request.tracestate)
    assert first.type == COMPLETED
