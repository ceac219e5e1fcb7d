"""The whole config file: every package's section, checked together, handed to consumers."""

from __future__ import annotations

from pathlib import Path

import pytest

from atende.config import AtendeConfig
from libs.errors import ConfigurationError
from libs.yaml_config import load_yaml_model
from memory_manager.config import MemoryConfig
from tool_gateway.config import AgentProfilesConfig, ToolsConfig

ENV = {"WA_APP_SECRET": "s3cret", "WA_VERIFY": "verify", "SMTP_PASSWORD": "pw", "CRM_TOKEN": "t"}

FULL = """
tenants:
  - id: acme
    channels:
      - id: wa-main
        provider: whatsapp
        secrets:
          app_secret: {env: WA_APP_SECRET}
          verify_token: {env: WA_VERIFY}
agents:
  - tenant: acme
    profile: support
    tools: [catalog.search, "appointments.*", email.send, http.request]
    rate_limits: {"*": "30/minute", "appointments.book": "5/minute"}
tools:
  default_rate_limit: 60/minute
  email:
    host: smtp.example.com
    username: atende
    password: {env: SMTP_PASSWORD}
    from_address: help@acme.example
  http_apis:
    - name: crm_lookup
      description: Looks a customer up in the CRM.
      url: https://crm.example.com/customers/{customer_id}
      parameters:
        - {name: customer_id, type: string, required: true, description: The id.}
      auth: {kind: bearer, token: {env: CRM_TOKEN}}
      allowed_hosts: [crm.example.com]
memory:
  dimension: 384
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "atende.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_every_section_loads_and_is_handed_out_by_key(tmp_path: Path) -> None:
    config = load_yaml_model(write(tmp_path, FULL), AtendeConfig, ENV)
    sections = config.sections()
    assert sections["tenants"] is config
    assert isinstance(sections["agents"], AgentProfilesConfig)
    assert isinstance(sections["tools"], ToolsConfig)
    assert isinstance(sections["memory"], MemoryConfig)
    profile = config.agents.profile("acme", "support")
    assert profile is not None
    assert profile.allows("appointments.book")
    assert not profile.allows("crm.update_contact")
    assert config.tools.email is not None
    assert config.tools.email.password is not None
    assert config.tools.email.password.reveal() == "pw"
    assert [api.name for api in config.tools.http_apis] == ["crm_lookup"]


def test_a_file_with_only_channels_gets_defaults_for_the_rest(tmp_path: Path) -> None:
    channels_only = FULL.split("agents:")[0]
    config = load_yaml_model(write(tmp_path, channels_only), AtendeConfig, ENV)
    assert config.agents.root == ()
    assert config.tools.email is None
    assert config.memory == MemoryConfig()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("tenant: acme\n    profile", "tenant: globex\n    profile"), "agents[0].tenant"),
        (("appointments.book", "crm.update_contact"), "not among the profile's tools"),
        (("{env: SMTP_PASSWORD}", "{env: NOT_SET}"), "environment variable NOT_SET is not set"),
        (("    - name: crm_lookup", "    - name: crm_lookup\n      bogus: 1"), "tools.http_apis"),
        (("  dimension: 384", "  dimension: 0"), "memory.dimension"),
        (("default_rate_limit: 60/minute", "default_rate_limit: lots"), "default_rate_limit"),
    ],
)
def test_a_bad_section_is_refused_naming_the_file_and_the_place(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    old, new = change
    assert old in FULL
    path = write(tmp_path, FULL.replace(old, new, 1))
    with pytest.raises(ConfigurationError) as caught:
        load_yaml_model(path, AtendeConfig, ENV)
    assert str(path) in str(caught.value)
    assert message in str(caught.value)
