"""The gateway's config sections, the tool registry, discovery, permissions and redaction."""

from __future__ import annotations

from pathlib import Path

import pytest

import tests.gateway_tools
from libs.errors import ConfigurationError
from libs.yaml_config import load_yaml_model
from tests.gateway_tools import notes
from tests.gateway_tools._support import AGENTS, TEST_TOOLS
from tool_gateway import (
    AccessPolicy,
    AgentProfilesConfig,
    DuplicateTool,
    Tool,
    ToolContext,
    ToolRegistry,
    ToolsConfig,
    discover_tools,
    unknown_tool_problems,
)
from tool_gateway.audit import REDACTED, redact
from tool_gateway.rate_limits import ToolRateLimits


def _agents(tmp_path: Path, text: str) -> AgentProfilesConfig:
    path = tmp_path / "agents.yaml"
    path.write_text(text)
    return load_yaml_model(path, AgentProfilesConfig, {})


def test_a_profile_section_loads_from_yaml(tmp_path: Path) -> None:
    agents = _agents(
        tmp_path,
        """
- tenant: acme
  profile: sales
  tools: [catalog.search, "appointments.*"]
  rate_limits: {"*": "30/minute", "appointments.book": "5/minute"}
""",
    )
    sales = agents.profile("acme", "sales")
    assert sales is not None
    assert sales.allows("appointments.book")
    assert sales.allows("catalog.search")
    assert not sales.allows("catalog.update")
    assert not sales.allows("appointmentsx.book")
    assert agents.profile("other", "sales") is None


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("- {tenant: acme, profile: sales, tools: ['*']}", r"\[0\]\.tools\[0\]: '\*' would allow"),
        ("- {tenant: acme, profile: sales, tools: [Catalog]}", r"\[0\]\.tools\[0\]: 'Catalog' is"),
        (
            "- {tenant: acme, profile: sales, tools: [a.b], rate_limits: {a.b: lots}}",
            r"\[0\]\.rate_limits: a\.b: 'lots' is not a rate limit",
        ),
        (
            "- {tenant: acme, profile: sales, tools: [a.b], rate_limits: {a.c: 1/second}}",
            r"names 'a\.c', which is not among the profile's tools",
        ),
        ("- {tenant: acme, profile: sales, tools: [a.b], color: red}", r"\[0\]\.color: Extra"),
        ("- {tenant: acme, profile: Sales, tools: [a.b]}", r"\[0\]\.profile: String should"),
        (
            "- {tenant: acme, profile: sales, tools: [a.b]}\n"
            "- {tenant: acme, profile: sales, tools: [a.c]}",
            r"declared once per tenant; repeated: acme/sales",
        ),
    ],
)
def test_bad_profiles_are_refused_naming_the_place(tmp_path: Path, text: str, error: str) -> None:
    with pytest.raises(ConfigurationError, match=error):
        _agents(tmp_path, text)


def test_tools_section_defaults_and_checks(tmp_path: Path) -> None:
    assert ToolsConfig().default_rate_limit == "60/minute"
    path = tmp_path / "tools.yaml"
    path.write_text("default_rate_limit: often\npending_takeover_s: 0\n")
    with pytest.raises(ConfigurationError) as caught:
        load_yaml_model(path, ToolsConfig, {})
    assert "default_rate_limit: 'often' is not a rate limit" in str(caught.value)
    assert "pending_takeover_s: Input should be greater than or equal to 1" in str(caught.value)


def test_start_up_check_names_tools_nobody_registered() -> None:
    agents = AgentProfilesConfig.model_validate(
        [{"tenant": "acme", "profile": "sales", "tools": ["notes.count", "notes.delete", "x.*"]}]
    )
    assert unknown_tool_problems(agents, TEST_TOOLS.names) == [
        "agents[0].tools[1]: no tool is registered as 'notes.delete' (tenant acme, profile sales)",
        "agents[0].tools[2]: no registered tool is in namespace 'x.*' (tenant acme, profile sales)",
    ]
    assert unknown_tool_problems(AGENTS, TEST_TOOLS.names) == []


def test_discovery_collects_module_level_tools_by_name() -> None:
    found = discover_tools(tests.gateway_tools)
    assert [tool.name for tool in found] == [
        "gate.wait",
        "notes.add",
        "notes.count",
        "remote.ping",
        "slow.wait",
    ]
    assert notes.add in found


def test_two_tools_with_one_name_are_refused() -> None:
    async def run(context: ToolContext, data: notes.CountNotes) -> notes.NoteCount:
        return notes.NoteCount(notes=0)

    twin = Tool(
        name="notes.count",
        description="Another tool under a taken name.",
        input_model=notes.CountNotes,
        output_model=notes.NoteCount,
        run=run,
        writes=False,
    )
    with pytest.raises(DuplicateTool, match=r"'notes\.count' is declared twice"):
        ToolRegistry([notes.count, twin])
    assert len(ToolRegistry([notes.count, notes.count])) == 1  # the same tool twice is fine


def test_a_profile_is_offered_only_the_tools_it_may_call() -> None:
    policy = AccessPolicy(AGENTS)
    sales = TEST_TOOLS.function_definitions(policy.allows_for("acme", "sales"))
    assert [definition["function"]["name"] for definition in sales] == ["notes__count"]
    support = TEST_TOOLS.function_definitions(policy.allows_for("acme", "support"))
    assert len(support) == 5
    add = next(d for d in support if d["function"]["name"] == "notes__add")
    assert add["function"]["parameters"]["required"] == ["text", "email"]
    assert TEST_TOOLS.function_definitions(policy.allows_for("other", "sales")) == []
    assert TEST_TOOLS.by_function_name("notes__add") is notes.add


def test_refusals_say_why() -> None:
    policy = AccessPolicy(AGENTS)
    assert policy.refusal("acme", "support", "notes.add") is None
    assert policy.refusal("acme", "sales", "notes.add") == (
        "agent profile 'sales' is not allowed to call 'notes.add'"
    )
    assert policy.refusal("globex", "sales", "notes.count") == (
        "agent profile 'sales' is not configured for tenant 'globex', so it may call no tool"
    )


def test_the_most_specific_rate_limit_applies() -> None:
    agents = AgentProfilesConfig.model_validate(
        [
            {
                "tenant": "acme",
                "profile": "sales",
                "tools": ["appointments.*", "catalog.search"],
                "rate_limits": {
                    "*": "30/minute",
                    "appointments.*": "10/minute",
                    "appointments.book": "5/minute",
                },
            },
            {"tenant": "acme", "profile": "support", "tools": ["catalog.search"]},
        ]
    )
    limits = ToolRateLimits(limiter=None, agents=agents, tools=ToolsConfig())  # type: ignore[arg-type]
    assert str(limits.limit_for("acme", "sales", "appointments.book")) == "5 per 1 minute"
    assert str(limits.limit_for("acme", "sales", "appointments.cancel")) == "10 per 1 minute"
    assert str(limits.limit_for("acme", "sales", "catalog.search")) == "30 per 1 minute"
    assert str(limits.limit_for("acme", "support", "catalog.search")) == "60 per 1 minute"


def test_sensitive_fields_are_redacted_and_unknown_tools_keep_only_names() -> None:
    arguments = {"text": "call back", "email": "maria@example.com"}
    assert redact(arguments, notes.add.sensitive_fields()) == {
        "text": "call back",
        "email": REDACTED,
    }
    assert redact(arguments, None) == {"text": REDACTED, "email": REDACTED}
