"""Routing rules, handoff keywords, business hours and the conversations section."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from dispatcher.config import ConversationsConfig
from dispatcher.routing import Router, normalized
from memory_manager.embedders.deterministic import HashedNgramEmbedder

CONFIG = ConversationsConfig.model_validate(
    {
        "defaults": {"double_text": "enqueue", "merge_window_ms": 900},
        "tenants": {
            "clinic": {
                "timezone": "America/Sao_Paulo",
                "business_hours": {"mon-fri": "08:00-18:00", "sat": "08:00-12:00"},
                "after_hours": "handoff",
                "default_profile": "triage",
                "double_text": "merge",
                "routes": [
                    {
                        "profile": "scheduling",
                        "keywords": ["agendar", "marcar consulta"],
                        "patterns": [r"\bhor[áa]rios?\b"],
                    },
                    {
                        "profile": "billing",
                        "examples": ["how much does a dental cleaning cost", "price of braces"],
                        "min_similarity": 0.5,
                    },
                ],
                "channels": {"wa-main": {"double_text": "interrupt"}},
            }
        },
    }
)
MONDAY_10H_SAO_PAULO = datetime(2026, 12, 7, 13, 0, tzinfo=UTC)
SUNDAY_03H_SAO_PAULO = datetime(2026, 12, 6, 6, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    ["Quero falar com um ATENDENTE", "prefiro um humano", "Can I talk to a human?", "AGENT"],
)
async def test_asking_for_a_person_hands_off_in_either_language(text: str) -> None:
    decision = await Router(CONFIG).route("clinic", text, MONDAY_10H_SAO_PAULO)
    assert (decision.to, decision.reason) == ("human", "asked_for_human")


async def test_keywords_and_patterns_route_to_a_profile_ignoring_case_and_accents() -> None:
    router = Router(CONFIG)
    for text in ("Quero AGENDAR uma limpeza", "vocês têm horario amanhã?", "Marcar Consulta"):
        decision = await router.route("clinic", text, MONDAY_10H_SAO_PAULO)
        assert (decision.to, decision.profile) == ("agent", "scheduling"), text
        assert decision.intent is not None
    assert normalized("  Horário   AMANHÃ ") == "horario amanha"
    assert (await router.route("clinic", "agendamento?", MONDAY_10H_SAO_PAULO)).profile == (
        "triage"
    ), "a keyword is a whole word, not a prefix"


async def test_example_phrases_route_by_embedding_similarity() -> None:
    router = Router(CONFIG, HashedNgramEmbedder())
    priced = await router.route("clinic", "how much does a cleaning cost?", MONDAY_10H_SAO_PAULO)
    assert (priced.profile, priced.reason) == ("billing", "route:billing")
    other = await router.route("clinic", "my tooth hurts since yesterday", MONDAY_10H_SAO_PAULO)
    assert (other.profile, other.reason) == ("triage", "default")


async def test_outside_business_hours_the_tenant_hands_off() -> None:
    router = Router(CONFIG)
    night = await router.route("clinic", "oi", SUNDAY_03H_SAO_PAULO)
    assert (night.to, night.reason) == ("human", "after_hours")
    day = await router.route("clinic", "oi", MONDAY_10H_SAO_PAULO)
    assert (day.to, day.profile) == ("agent", "triage")
    unknown = await router.route("other-tenant", "oi", SUNDAY_03H_SAO_PAULO)
    assert unknown.profile == "triage", "a tenant the section does not name gets the defaults"


def test_turn_settings_inherit_channel_then_tenant_then_defaults() -> None:
    assert CONFIG.settings_for("clinic", "wa-main").double_text == "interrupt"
    assert CONFIG.settings_for("clinic", "tg").double_text == "merge"
    assert CONFIG.settings_for("clinic", "tg").merge_window_ms == 900
    assert CONFIG.settings_for("other", "x").double_text == "enqueue"
    assert CONFIG.settings_for("other", "x").merge_max_wait_ms == 6_000


@pytest.mark.parametrize(
    ("tenant", "message"),
    [
        ({"business_hours": {"mon-fri": "8-18"}}, "'8-18' is not 'HH:MM-HH:MM'"),
        ({"business_hours": {"fri-mon": "08:00-18:00"}}, "'fri-mon' runs backwards"),
        ({"business_hours": {"mon": "18:00-08:00"}}, "ends before it starts"),
        ({"timezone": "Mars/Olympus"}, "'Mars/Olympus' is not a time zone"),
        ({"routes": [{"profile": "x", "patterns": ["("]}]}, "is not a regular expression"),
        ({"routes": [{"profile": "x"}]}, "has no keywords, patterns or examples"),
        ({"double_text": "shout"}, "double_text"),
    ],
)
def test_a_bad_conversations_section_names_what_is_wrong(
    tenant: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        ConversationsConfig.model_validate({"tenants": {"t": tenant}})
