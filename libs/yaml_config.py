"""Loading a YAML file into a pydantic model, with errors that name the file and the place."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from libs.errors import ConfigurationError

M = TypeVar("M", bound=BaseModel)


def load_yaml_model(path: Path, model: type[M], env: Mapping[str, str]) -> M:
    """Read ``path`` into ``model``; ``env`` resolves ``{env: NAME}`` secret references.

    Every problem raises ``ConfigurationError`` naming the file, the path inside it and what
    is wrong, e.g. ``atende.yaml: tenants[0].channels[1].secrets.app_secret: environment
    variable WA_APP_SECRET is not set``.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"{path}: cannot read the config file: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1}, column {where.column + 1})" if where else ""
        raise ConfigurationError(f"{path}{line}: not valid YAML: {exc}") from exc
    try:
        return model.model_validate(data if data is not None else {}, context={"env": env})
    except ValidationError as exc:
        raise ConfigurationError(f"{path}: {describe_errors(exc)}") from exc


def describe_errors(exc: ValidationError) -> str:
    """One sentence per error: ``tenants[0].channels[1].id: <what is wrong>``."""
    return "; ".join(
        f"{_location(error['loc'])}: {error['msg'].removeprefix('Value error, ')}"
        for error in exc.errors()
    )


def _location(parts: tuple[int | str, ...]) -> str:
    location = ""
    for part in parts:
        if isinstance(part, int):
            location += f"[{part}]"
        else:
            location += f".{part}" if location else str(part)
    return location or "(top level)"
