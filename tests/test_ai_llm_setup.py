"""The chat model built from the settings: the provider's key and URL, and no provider at all."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr, ValidationError

from ai_agent.llm import ChatRequest, UserMessage
from ai_agent.llm_setup import (
    OPENAI_BASE_URL,
    OpenAIChatConfig,
    open_openai_chat_model,
    openai_client,
)
from libs.errors import ConfigurationError
from libs.keys import KeySpace
from libs.settings import Settings
from tests.llm_script import Text
from tests.llm_server import API_KEY, ScriptedOpenAIServer


async def test_the_model_calls_the_configured_server_with_the_configured_key(
    redis: aioredis.Redis, keys: KeySpace
) -> None:
    async with ScriptedOpenAIServer() as server:
        settings = Settings(openai_api_key=SecretStr(API_KEY), openai_base_url=server.base_url)
        server.script(Text("hello from the configured server"))
        async with open_openai_chat_model(settings, redis, keys) as model:
            reply = await model.complete(
                ChatRequest(model="gpt-4o-mini", messages=(UserMessage(content="hi"),))
            )
        assert reply.text == "hello from the configured server"
        assert server.requests[0].headers["Authorization"] == f"Bearer {API_KEY}"


def test_the_environment_names_are_the_bare_twelve_factor_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-the-environment")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://vllm.internal:8000/v1")
    settings = Settings()
    assert settings.openai_api_key is not None
    assert settings.openai_api_key.get_secret_value() == "sk-from-the-environment"
    assert "sk-from-the-environment" not in repr(settings)
    assert settings.openai_base_url == "http://vllm.internal:8000/v1"


async def test_a_local_server_needs_no_key_and_openai_is_the_default_url() -> None:
    local = openai_client(Settings(openai_base_url="http://127.0.0.1:11434/v1"), timeout_s=5)
    hosted = openai_client(Settings(openai_api_key=SecretStr("sk-test")), timeout_s=5)
    async with local, hosted:
        assert str(local.base_url) == "http://127.0.0.1:11434/v1/"
        assert str(hosted.base_url) == OPENAI_BASE_URL + "/"


def test_no_key_and_no_url_is_a_configuration_error_naming_both() -> None:
    with pytest.raises(ConfigurationError, match=r"set OPENAI_API_KEY .* or OPENAI_BASE_URL"):
        openai_client(Settings(openai_api_key=None, openai_base_url=None), timeout_s=5)


def test_the_config_refuses_a_total_time_shorter_than_one_attempt() -> None:
    with pytest.raises(ValidationError, match=r"max_total_s \(10.0\) must be at least timeout_s"):
        OpenAIChatConfig(timeout_s=30, max_total_s=10)
