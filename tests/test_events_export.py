"""Export of the contract: JSON Schemas, AsyncAPI 3.0.0, docs/EVENTS.md and the command."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # no stubs in the dev extras
import pytest
import typer
from typer.testing import CliRunner

from atende.commands import events as events_command
from events.catalog import CATALOG
from events.export import (
    EXPORT_COMMAND,
    asyncapi_document,
    dump_json,
    events_markdown,
    json_schemas,
    stale_exports,
    write_exports,
)
from events.streams import ALL_STREAMS

SCHEMAS = json_schemas(CATALOG)
ASYNCAPI = asyncapi_document(CATALOG)


def _validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def test_one_schema_per_type_and_version() -> None:
    assert sorted(SCHEMAS) == sorted(
        f"{p.event_type}.v{p.event_version}" for p in CATALOG.payload_types()
    )


@pytest.mark.parametrize("key", sorted(SCHEMAS))
def test_schema_is_valid_draft_2020_12_and_accepts_its_example(key: str) -> None:
    schema = SCHEMAS[key]
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    (example,) = schema["examples"]
    _validator(schema).validate(example)
    assert CATALOG.decode(example["type"], example["version"], json.dumps(example), strict=True)


@pytest.mark.parametrize("key", sorted(SCHEMAS))
def test_schema_pins_the_type_and_version(key: str) -> None:
    schema = SCHEMAS[key]
    example = copy.deepcopy(schema["examples"][0])
    example["type"] = "some.other.type"
    assert not _validator(schema).is_valid(example)
    example = copy.deepcopy(schema["examples"][0])
    example["version"] = example["version"] + 1
    assert not _validator(schema).is_valid(example)


def test_schema_and_model_agree_on_invalid_payloads() -> None:
    schema = SCHEMAS["inbox.message.received.v1"]
    example = schema["examples"][0]
    for change in ({"seq": 0}, {"message": {"text": "no kind"}}, {"provider": "sms"}):
        broken = {**example, "payload": {**example["payload"], **change}}
        assert not _validator(schema).is_valid(broken), change


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def test_asyncapi_document_shape() -> None:
    assert ASYNCAPI["asyncapi"] == "3.0.0"
    assert ASYNCAPI["info"]["title"]
    assert ASYNCAPI["info"]["version"]
    assert set(ASYNCAPI["channels"]) == set(ALL_STREAMS)
    for stream, channel in ASYNCAPI["channels"].items():
        assert channel["address"] == stream
        assert f"<namespace>:{stream}:{{p<N>}}" in channel["description"]
    actions = {(op["action"], op["channel"]["$ref"]) for op in ASYNCAPI["operations"].values()}
    assert actions == {
        (action, f"#/channels/{stream}") for stream in ALL_STREAMS for action in ("send", "receive")
    }


def test_asyncapi_references_all_resolve() -> None:
    refs = list(_refs(ASYNCAPI))
    assert refs
    for ref in refs:
        assert _resolve(ASYNCAPI, ref) is not None, ref
    for operation in ASYNCAPI["operations"].values():
        channel = operation["channel"]["$ref"]
        for message in operation["messages"]:
            assert message["$ref"].startswith(f"{channel}/messages/")


def test_asyncapi_examples_match_their_payload_schema() -> None:
    for key, message in ASYNCAPI["components"]["messages"].items():
        # Message payloads are AsyncAPI schema objects, a superset of JSON Schema draft-07.
        schema = {"$ref": message["payload"]["$ref"], "components": ASYNCAPI["components"]}
        validator = jsonschema.Draft7Validator(schema)
        for example in message["examples"]:
            validator.validate(example["payload"])
        assert key == f"{message['name']}.v{example['payload']['version']}"


def test_asyncapi_schemas_carry_no_openapi_discriminator() -> None:
    text = json.dumps(ASYNCAPI["components"]["schemas"])
    assert '"propertyName"' not in text


def test_markdown_documents_every_type_with_fields_and_example() -> None:
    markdown = events_markdown(CATALOG)
    assert EXPORT_COMMAND in markdown.splitlines()[2]
    for payload_type in CATALOG.payload_types():
        assert f"## `{payload_type.event_type}` v{payload_type.event_version}" in markdown
        for field in payload_type.model_fields:
            assert f"| `{field}` |" in markdown
    assert markdown.count("```json") == len(CATALOG)
    assert events_markdown(CATALOG) == markdown


def test_committed_events_md_is_up_to_date(repo_root: Path) -> None:
    committed = (repo_root / "docs" / "EVENTS.md").read_text(encoding="utf-8")
    assert committed == events_markdown(CATALOG), (
        f"docs/EVENTS.md is out of date with the models in events/: run `{EXPORT_COMMAND}` "
        "from the repository root and commit the result"
    )


def test_committed_schema_files_are_up_to_date(repo_root: Path) -> None:
    docs = repo_root / "docs"
    stale = stale_exports(CATALOG, docs, markdown_path=docs / "EVENTS.md")
    assert stale == [], f"out of date: {stale}; run `{EXPORT_COMMAND}` and commit the result"


def test_write_exports_is_byte_stable_and_removes_orphans(tmp_path: Path) -> None:
    markdown = tmp_path / "EVENTS.md"
    written = write_exports(CATALOG, tmp_path, markdown_path=markdown)
    assert len(written) == len(CATALOG) + 2
    assert (tmp_path / "asyncapi.json").read_text(encoding="utf-8") == dump_json(ASYNCAPI)
    assert write_exports(CATALOG, tmp_path, markdown_path=markdown) == []

    orphan = tmp_path / "schemas" / "inbox.message.archived.v1.json"
    orphan.write_text("{}\n", encoding="utf-8")
    (tmp_path / "asyncapi.json").write_text("{}\n", encoding="utf-8")
    assert stale_exports(CATALOG, tmp_path, markdown_path=markdown) == sorted(
        [tmp_path / "asyncapi.json", orphan]
    )
    write_exports(CATALOG, tmp_path, markdown_path=markdown)
    assert not orphan.exists()
    assert stale_exports(CATALOG, tmp_path, markdown_path=markdown) == []


def test_dump_json_is_sorted_with_a_final_newline() -> None:
    assert dump_json({"b": 1, "a": "é"}) == '{\n  "a": "é",\n  "b": 1\n}\n'


def test_command_exports_and_checks(tmp_path: Path) -> None:
    app = typer.Typer()

    @app.callback()
    def root() -> None:
        """Test root."""

    events_command.register(app)
    runner = CliRunner()
    args = ["events", "export", "--out", str(tmp_path), "--markdown", str(tmp_path / "E.md")]

    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "schemas" / "tools.call.requested.v1.json").is_file()
    assert runner.invoke(app, [*args, "--check"]).exit_code == 0

    (tmp_path / "E.md").write_text("edited by hand\n", encoding="utf-8")
    result = runner.invoke(app, [*args, "--check"])
    assert result.exit_code == 1
    assert EXPORT_COMMAND in result.output

    listed = runner.invoke(app, ["events", "list"])
    assert listed.exit_code == 0
    assert "inbox.message.received" in listed.output
