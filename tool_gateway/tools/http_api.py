"""An external HTTP API declared in the config, and how a call to it becomes a request.

The LLM picks an API by name and fills its declared parameters; it never writes a URL. Path
parameters are percent-encoded into their own path segment, so no value can change the
scheme, the host or the path above it.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Self
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator
from yarl import URL

from libs.env_secret import EnvSecret
from libs.yaml_config import describe_errors
from tool_gateway.tool import ToolArgumentsInvalid
from tool_gateway.tools.ssrf import DestinationPolicy, normalize_host

Slug = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")]

# Placeholders may only sit in the path; scheme, authority, query and fragment are literal.
_AUTHORITY = r"(?:[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?"
_TEMPLATE = re.compile(
    r"^(?P<origin>https?://" + _AUTHORITY + ")"
    r"(?P<path>/[A-Za-z0-9\-._~!$&'()*+,;=:@%/{}]*)?"
    r"(?P<query>\?[A-Za-z0-9\-._~!$&'()*+,;=:@%/?{}]*)?$"
)
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
_RESERVED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_PYTHON_TYPES: dict[str, type] = {"string": str, "integer": int, "number": float, "boolean": bool}


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NoAuth(_Config):
    """The API needs no credentials."""

    kind: Literal["none"] = "none"

    def headers(self) -> dict[str, str]:
        """Headers that authenticate a request."""
        return {}


class BearerAuth(_Config):
    """``Authorization: Bearer <token>``."""

    kind: Literal["bearer"]
    token: EnvSecret

    def headers(self) -> dict[str, str]:
        """Headers that authenticate a request."""
        return {"Authorization": f"Bearer {self.token.reveal()}"}


class BasicAuth(_Config):
    """HTTP basic authentication."""

    kind: Literal["basic"]
    username: str = Field(min_length=1, pattern=r"^[^:\r\n]+$")
    password: EnvSecret

    def headers(self) -> dict[str, str]:
        """Headers that authenticate a request."""
        pair = f"{self.username}:{self.password.reveal()}".encode()
        return {"Authorization": f"Basic {base64.b64encode(pair).decode('ascii')}"}


class HeaderAuth(_Config):
    """A key in a header of the API's choosing, e.g. ``X-Api-Key``."""

    kind: Literal["header"]
    header: str = Field(pattern=_HEADER_NAME.pattern)
    value: EnvSecret

    @model_validator(mode="after")
    def _not_reserved(self) -> Self:
        if self.header.lower() in _RESERVED_HEADERS:
            raise ValueError(f"header {self.header!r} cannot carry a key")
        return self

    def headers(self) -> dict[str, str]:
        """Headers that authenticate a request."""
        return {self.header: self.value.reveal()}


HttpAuth = Annotated[NoAuth | BearerAuth | BasicAuth | HeaderAuth, Field(discriminator="kind")]


class ApiParameter(_Config):
    """One parameter the LLM fills; its description is what the LLM reads."""

    name: Slug
    type: Literal["string", "integer", "number", "boolean"] = "string"
    description: str = Field(min_length=1, max_length=500)
    required: bool = True
    enum: list[str] | None = Field(default=None, min_length=1, max_length=100)
    max_length: int = Field(default=256, ge=1, le=4_096, description="For strings.")
    location: Literal["path", "query", "body"] | None = Field(
        default=None,
        description="Where it goes; by default path if the URL names it, else the JSON body "
        "for POST/PUT/PATCH and the query for other methods.",
    )


@dataclass(frozen=True, slots=True)
class PreparedRequest:
    """What one call sends: method, URL (no secrets in it) and JSON body."""

    method: str
    url: URL
    json_body: dict[str, Any] | None


class HttpApiConfig(_Config):
    """One external API the agent may call, declared under ``tools.http_apis``."""

    name: Slug
    description: str = Field(min_length=1, max_length=1_000)
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    url: str = Field(
        max_length=2_048,
        description="http(s) URL; `{name}` placeholders in the path take parameters.",
    )
    parameters: list[ApiParameter] = Field(default_factory=list, max_length=32)
    auth: HttpAuth = Field(default_factory=NoAuth)
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts requests (and redirects) may go to; empty means the URL's host.",
    )
    allow_private_networks: bool = False
    tenants: list[str] | None = Field(
        default=None, description="Tenants that may call it; none means every tenant."
    )
    timeout_s: float = Field(default=10.0, gt=0, le=30)
    max_response_bytes: int = Field(default=65_536, ge=1, le=1_048_576)
    max_redirects: int = Field(default=3, ge=0, le=5)
    response_fields: list[str] = Field(
        default_factory=list,
        description="Dotted paths of the JSON answer returned (`order.status`, `items.0.sku`); "
        "empty returns the whole answer.",
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        match = _TEMPLATE.match(self.url)
        if match is None:
            raise ValueError(
                f"url {self.url!r} must be http(s)://host[:port]/path with `{{name}}` "
                "placeholders only in the path (no user info, no fragment)"
            )
        if "{" in (match["query"] or ""):
            raise ValueError("url: placeholders belong in the path; declare query parameters")
        names = [parameter.name for parameter in self.parameters]
        if len(set(names)) != len(names):
            raise ValueError("parameters: each name may appear once")
        self._check_placeholders(_PLACEHOLDER.findall(match["path"] or ""))
        host = normalize_host(URL(match["origin"]).raw_host or "")
        if self.allowed_hosts and host not in {normalize_host(h) for h in self.allowed_hosts}:
            raise ValueError(f"allowed_hosts must include the url's host {host!r}")
        return self

    def _check_placeholders(self, placeholders: list[str]) -> None:
        declared = {parameter.name: parameter for parameter in self.parameters}
        for placeholder in placeholders:
            parameter = declared.get(placeholder)
            if parameter is None:
                raise ValueError(f"url placeholder {{{placeholder}}} is not a declared parameter")
            if parameter.location not in (None, "path") or not parameter.required:
                raise ValueError(f"parameter {placeholder!r} fills the path, so it is required")
        for parameter in self.parameters:
            if parameter.location == "path" and parameter.name not in placeholders:
                raise ValueError(
                    f"parameter {parameter.name!r} is in the path, yet the url lacks it"
                )
            if parameter.location == "body" and self.method not in _BODY_METHODS:
                raise ValueError(f"parameter {parameter.name!r}: a {self.method} has no body")
            if parameter.enum is not None and parameter.type != "string":
                raise ValueError(f"parameter {parameter.name!r}: enum is for strings only")

    def location_of(self, parameter: ApiParameter) -> Literal["path", "query", "body"]:
        """Where ``parameter`` goes in the request."""
        if parameter.location is not None:
            return parameter.location
        if "{" + parameter.name + "}" in self.url:
            return "path"
        return "body" if self.method in _BODY_METHODS else "query"

    def destination_policy(self) -> DestinationPolicy:
        """Where requests of this API may go."""
        hosts = self.allowed_hosts or [URL(self.url.split("{", 1)[0]).raw_host or ""]
        return DestinationPolicy(
            allowed_hosts=frozenset(normalize_host(host) for host in hosts),
            allow_private_networks=self.allow_private_networks,
        )

    def allows_tenant(self, tenant_id: str) -> bool:
        """Whether ``tenant_id`` may call this API."""
        return self.tenants is None or tenant_id in self.tenants

    def parameters_model(self) -> type[BaseModel]:
        """A pydantic model of the parameters (its JSON Schema describes them to an LLM)."""
        fields: dict[str, Any] = {}
        for parameter in self.parameters:
            annotation: Any = _PYTHON_TYPES[parameter.type]
            constraints: dict[str, Any] = {"description": parameter.description}
            if parameter.enum is not None:
                annotation = Literal[tuple(parameter.enum)]
            elif parameter.type == "string":
                constraints["max_length"] = parameter.max_length
            if parameter.required:
                fields[parameter.name] = (annotation, Field(**constraints))
            else:
                fields[parameter.name] = (annotation | None, Field(default=None, **constraints))
        config = ConfigDict(extra="forbid", strict=False)
        return create_model(f"{self.name}_parameters", __config__=config, **fields)

    def prepare(self, arguments: dict[str, Any]) -> PreparedRequest:
        """The request for ``arguments``; ``ToolArgumentsInvalid`` names what is wrong."""
        try:
            values = self.parameters_model().model_validate(arguments).model_dump()
        except ValidationError as exc:
            raise ToolArgumentsInvalid(f"API '{self.name}': {describe_errors(exc)}") from exc
        path_values: dict[str, str] = {}
        query: list[tuple[str, str]] = []
        body: dict[str, Any] = {}
        for parameter in self.parameters:
            value = values[parameter.name]
            if value is None:
                continue
            location = self.location_of(parameter)
            if location == "path":
                path_values[parameter.name] = _path_segment(parameter.name, value)
            elif location == "query":
                query.append((parameter.name, _text(value)))
            else:
                body[parameter.name] = value
        filled = _PLACEHOLDER.sub(lambda m: path_values[m.group(1)], self.url)
        url = URL(filled, encoded=True)
        if query:
            url = url.extend_query(query)
        template_origin = URL(self.url.split("{", 1)[0], encoded=True).origin()
        if url.origin() != template_origin:  # cannot happen with encoded segments; stay sure
            raise ToolArgumentsInvalid(f"API '{self.name}': parameters changed the host")
        json_body = body if self.method in _BODY_METHODS else None
        return PreparedRequest(method=self.method, url=url, json_body=json_body)


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _path_segment(name: str, value: object) -> str:
    text = _text(value)
    if text in {"", ".", ".."}:
        raise ToolArgumentsInvalid(f"parameter {name!r}: {text!r} is not a valid path value")
    return quote(text, safe="")
