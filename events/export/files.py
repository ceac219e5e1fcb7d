"""Write the exported contract to disk, byte-stable, and tell which files are out of date."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from events.export.asyncapi import asyncapi_document
from events.export.markdown import events_markdown
from events.export.schemas import json_schemas
from events.registry import EventRegistry

SCHEMAS_DIR = "schemas"
ASYNCAPI_FILE = "asyncapi.json"


def dump_json(document: Any) -> str:
    """Return ``document`` as stable JSON text: sorted keys, two-space indent, final newline."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render_exports(
    registry: EventRegistry, out_dir: Path, *, markdown_path: Path | None = None
) -> dict[Path, str]:
    """Return the content of every export file, by path; writes nothing."""
    files = {
        out_dir / SCHEMAS_DIR / f"{key}.json": dump_json(schema)
        for key, schema in json_schemas(registry).items()
    }
    files[out_dir / ASYNCAPI_FILE] = dump_json(asyncapi_document(registry))
    if markdown_path is not None:
        href = Path(os.path.relpath(out_dir / SCHEMAS_DIR, markdown_path.parent)).as_posix()
        files[markdown_path] = events_markdown(registry, schemas_href=href)
    return files


def stale_exports(
    registry: EventRegistry, out_dir: Path, *, markdown_path: Path | None = None
) -> list[Path]:
    """Return the export files that are missing, differ, or describe a type no longer there."""
    files = render_exports(registry, out_dir, markdown_path=markdown_path)
    stale = [path for path, text in files.items() if _read(path) != text]
    return sorted(stale + _orphans(out_dir, files))


def write_exports(
    registry: EventRegistry, out_dir: Path, *, markdown_path: Path | None = None
) -> list[Path]:
    """Write the schemas, the AsyncAPI document and the Markdown; return the files changed.

    Unchanged files are left untouched, and schema files of types no longer in the catalog
    are deleted, so the folder always equals a fresh export.
    """
    files = render_exports(registry, out_dir, markdown_path=markdown_path)
    changed: list[Path] = []
    for path, text in files.items():
        if _read(path) != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8", newline="\n")
            changed.append(path)
    for orphan in _orphans(out_dir, files):
        orphan.unlink()
        changed.append(orphan)
    return sorted(changed)


def _orphans(out_dir: Path, files: dict[Path, str]) -> list[Path]:
    schema_dir = out_dir / SCHEMAS_DIR
    if not schema_dir.is_dir():
        return []
    return sorted(path for path in schema_dir.glob("*.v*.json") if path not in files)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
