"""The config file: tenants and channels load with their secrets, or fail naming what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from channels.config import ChannelsConfig
from channels.twilio.config import TwilioChannel
from channels.whatsapp.config import WhatsAppChannel
from libs.errors import ConfigurationError
from libs.yaml_config import load_yaml_model

VALID = """
tenants:
  - id: acme-dental
    name: Acme Dental
    channels:
      - id: wa-main
        provider: whatsapp
        phone_number_id: "106540352242922"
        rate_limit: 50/second
        body_limit_bytes: 3000000
        secrets:
          app_secret: {env: WA_APP_SECRET}
          verify_token: {env: WA_VERIFY_TOKEN}
      - id: sms
        provider: twilio
        public_url: https://hooks.acme.example/webhooks/twilio/sms
        secrets:
          auth_token: {env: TWILIO_AUTH_TOKEN}
  - id: beta-shop
    channels:
      - id: tg-bot
        provider: telegram
        secrets:
          secret_token: {env: TG_SECRET}
"""
ENV = {
    "WA_APP_SECRET": "app-secret",
    "WA_VERIFY_TOKEN": "verify",
    "TWILIO_AUTH_TOKEN": "twilio-token",
    "TG_SECRET": "tg-secret",
}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "atende.yaml"
    path.write_text(text)
    return path


def test_a_valid_file_loads_with_secrets_resolved(tmp_path: Path) -> None:
    config = load_yaml_model(write(tmp_path, VALID), ChannelsConfig, ENV)
    found = config.channel("whatsapp", "wa-main")
    assert found is not None
    tenant, channel = found
    assert tenant.id == "acme-dental"
    assert isinstance(channel, WhatsAppChannel)
    assert channel.secrets.app_secret.reveal() == "app-secret"
    assert "app-secret" not in repr(channel), "secrets never show in reprs or logs"
    assert channel.body_limit_bytes == 3_000_000
    twilio = config.channel("twilio", "sms")
    assert twilio is not None
    assert isinstance(twilio[1], TwilioChannel)
    assert str(twilio[1].public_url) == "https://hooks.acme.example/webhooks/twilio/sms"
    assert config.channel("whatsapp", "sms") is None, "the provider in the URL must match"


@pytest.mark.parametrize(
    ("edit", "env", "message"),
    [
        (
            ("", ""),
            {k: v for k, v in ENV.items() if k != "WA_APP_SECRET"},
            "tenants[0].channels[0].whatsapp.secrets.app_secret: "
            "environment variable WA_APP_SECRET is not set",
        ),
        (
            ("provider: telegram", "provider: signal"),
            ENV,
            "tenants[1].channels[0]: Input tag 'signal' found using 'provider' does not match",
        ),
        (
            ("rate_limit: 50/second", "rate_limit: fast"),
            ENV,
            "rate_limit: 'fast' is not a rate limit such as '50/second'",
        ),
        (
            ("body_limit_bytes: 3000000", "body_limit_bytes: 5000000"),
            ENV,
            "body_limit_bytes: Input should be less than or equal to 3000000",
        ),
        (
            ("phone_number_id:", "phone_numbr_id:"),
            ENV,
            "tenants[0].channels[0].whatsapp.phone_numbr_id: Extra inputs are not permitted",
        ),
        (
            ("id: tg-bot", "id: sms"),
            ENV,
            "channel ids must be unique across tenants (they are in webhook URLs); repeated: sms",
        ),
    ],
)
def test_a_bad_file_fails_naming_the_file_the_path_and_the_problem(
    tmp_path: Path, edit: tuple[str, str], env: dict[str, str], message: str
) -> None:
    path = write(tmp_path, VALID.replace(*edit))
    with pytest.raises(ConfigurationError) as failure:
        load_yaml_model(path, ChannelsConfig, env)
    assert str(failure.value).startswith(f"{path}: ")
    assert message in str(failure.value)


def test_yaml_syntax_errors_name_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "tenants:\n  - id: a\n    channels: [\n")
    with pytest.raises(
        ConfigurationError, match=r"atende\.yaml \(line \d+, column \d+\): not valid"
    ):
        load_yaml_model(path, ChannelsConfig, ENV)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"nope\.yaml: cannot read the config file"):
        load_yaml_model(tmp_path / "nope.yaml", ChannelsConfig, ENV)
