"""A tool outside the profile, through the whole loop: the gateway refuses it, the model reads
the refusal and still answers the contact, and nobody is handed off."""

from __future__ import annotations

import pytest

from tests.llm_script import Call, Text, ToolCalls
from tests.streams_support import eventually
from tests.test_conversation_loop import Loop, conversation_status, inbound, loop

__all__ = ["loop"]  # the fixture, used by name


@pytest.mark.parametrize(
    "loop", [{"profile": {"tools": ["knowledge.search"], "max_tool_steps": 3}}], indirect=True
)
async def test_a_tool_outside_the_profile_is_refused_and_the_conversation_still_answered(
    loop: Loop,
) -> None:
    loop.llm.script(
        ToolCalls(Call("appointments__cancel", {"appointment_id": "a-1"}, id="call-1")),
        lambda seen: Text("Não posso cancelar por aqui, mas posso ajudar com outra coisa."),
    )
    await loop.publisher.publish(inbound(1, "cancela minha consulta"))

    async def answered() -> bool:
        status = await loop.pool.fetchval("SELECT status FROM turns LIMIT 1")
        return bool(status == "completed")

    await eventually(answered, timeout_s=20, what="the answer after the refusal")
    (sent,) = loop.app.requests
    assert sent.json()["parts"][0]["text"].startswith("Não posso cancelar por aqui")
    assert await conversation_status(loop.pool) == "open", "no handoff"
    first, second = loop.llm.requests
    assert "appointments__cancel" not in first.tool_names, "never offered"
    [refusal] = [m["content"] for m in second.messages if m["role"] == "tool"]
    assert "not_allowed" in refusal
    assert "not allowed to call 'appointments.cancel'" in refusal
    audit = await loop.pool.fetchrow("SELECT tool, outcome, error_code FROM tool_calls")
    assert audit is not None
    assert tuple(audit) == ("appointments.cancel", "denied", "not_allowed")
