"""Agent profiles: how each answers, the defaults of one routed to but not declared."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tool_gateway import AgentProfilesConfig

AGENTS = AgentProfilesConfig.model_validate(
    [
        {
            "tenant": "acme",
            "profile": "sales",
            "tools": ["catalog.search"],
            "provider": "openai",
            "model": "gpt-4o",
            "temperature": 0.2,
            "system_prompt": "You sell bicycles.",
            "language": "en-US",
            "max_tool_steps": 3,
            "reply_max_chars": 1_000,
        },
        {"tenant": "acme", "profile": "triage", "language": "es"},
    ]
)


def test_a_declared_profile_keeps_its_answering_fields() -> None:
    sales = AGENTS.answering("acme", "sales")
    assert (sales.provider, sales.model, sales.temperature) == ("openai", "gpt-4o", 0.2)
    assert (sales.max_tool_steps, sales.reply_max_chars) == (3, 1_000)
    assert sales.fallback.startswith("Sorry")


def test_a_profile_not_declared_gets_the_defaults_and_no_tools() -> None:
    support = AGENTS.answering("acme", "support")
    assert support.tools == ()
    assert not support.allows("knowledge.search")
    assert (support.provider, support.language, support.max_tool_steps) == (None, "pt-BR", 5)
    assert support.fallback.startswith("Desculpe")


def test_an_unknown_language_falls_back_in_english_unless_a_text_is_set() -> None:
    assert AGENTS.answering("acme", "triage").fallback.startswith("Sorry")
    own = AgentProfilesConfig.model_validate(
        [{"tenant": "acme", "profile": "x", "fallback_text": "Un momento."}]
    )
    assert own.answering("acme", "x").fallback == "Un momento."


def test_an_unknown_provider_is_refused_naming_the_choices() -> None:
    with pytest.raises(ValidationError, match="'openai' or 'local'"):
        AgentProfilesConfig.model_validate(
            [{"tenant": "acme", "profile": "x", "provider": "anthropic"}]
        )
