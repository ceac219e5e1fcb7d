"""Providers are found in the folders of ``channels/``; everything else is built from them."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import get_args

import pytest

import tests.channel_providers
from channels.config import ChannelsConfig
from channels.generic.config import GenericChannel
from channels.inbound import FORM, JSON
from channels.provider import ChannelProvider
from channels.registry import (
    PROVIDERS,
    ChannelRegistry,
    DuplicateProvider,
    ProviderNotDeclared,
    UnknownProvider,
    discover_providers,
)
from events.types.common import Provider
from ingress.openapi import openapi_document
from tests.channel_providers.loopback import provider as loopback


def test_every_provider_of_the_contract_has_a_folder() -> None:
    assert PROVIDERS.names == sorted(get_args(Provider))
    for provider in PROVIDERS:
        assert provider.__module__ == "channels.provider"
        assert provider.config_model.__module__ == f"channels.{provider.name}.config"


def test_a_folder_is_a_provider_and_a_module_beside_it_is_not() -> None:
    assert discover_providers(tests.channel_providers) == [loopback]


def test_a_folder_without_a_declaration_is_refused_naming_it(tmp_path: Path) -> None:
    package = tmp_path / "undeclared_channels"
    (package / "fax").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "fax" / "__init__.py").write_text('"""A folder that forgot its provider."""\n')
    sys.path.insert(0, str(tmp_path))
    try:
        module = importlib.import_module("undeclared_channels")
        with pytest.raises(ProviderNotDeclared, match=r"undeclared_channels\.fax is a provider f"):
            discover_providers(module)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [n for n in sys.modules if n.startswith("undeclared_channels")]:
            del sys.modules[name]


def test_two_declarations_of_one_name_are_refused() -> None:
    with pytest.raises(DuplicateProvider, match="provider 'generic' is declared twice"):
        ChannelRegistry([PROVIDERS.named("generic"), loopback])


def test_an_unknown_name_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(UnknownProvider, match="no channel provider is called 'sms'; known: chat"):
        PROVIDERS.named("sms")


def test_a_declaration_whose_model_is_of_another_provider_is_refused() -> None:
    generic = PROVIDERS.named("generic")
    with pytest.raises(ValueError, match="accepts 'generic', not only 'telegram'"):
        ChannelProvider(
            name="telegram",
            config_model=GenericChannel,
            inbound=generic.inbound,
            sending_config=generic.sending_config,
            sender=generic.sender,
            account_id=generic.account_id,
            webhook=generic.webhook,
        )


def test_the_config_file_accepts_exactly_the_registered_providers() -> None:
    data = {"tenants": [{"id": "acme", "channels": [{"id": "x", "provider": "sms"}]}]}
    with pytest.raises(ValueError, match="does not match any of the expected tags") as failure:
        ChannelsConfig.model_validate(data)
    for name in PROVIDERS.names:
        assert repr(name) in str(failure.value)


def test_the_openapi_document_describes_every_provider_from_its_declaration() -> None:
    document = openapi_document()
    receive = document["paths"]["/webhooks/{provider}/{channel_id}"]["post"]
    [provider] = [p for p in receive["parameters"] if p["name"] == "provider"]
    headers = {p["name"] for p in receive["parameters"] if p["in"] == "header"}
    bodies = receive["requestBody"]["content"]
    assert provider["schema"]["enum"] == PROVIDERS.names
    for declared in PROVIDERS:
        webhook = declared.webhook
        assert webhook.content_type in (JSON, FORM)
        assert set(webhook.signature_headers) <= headers
        assert webhook.body_schema in document["components"]["schemas"]
        assert f'"#/components/schemas/{webhook.body_schema}"' in str(bodies).replace("'", '"')
        with_handshake = f"/webhooks/{declared.name}/{{channel_id}}" in document["paths"]
        assert with_handshake == (declared.handshake is not None)
