"""Reads behind the appointment tools: services, the resources offering them, hours, busy times.

Every query is filtered by the caller's tenant.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from libs.postgres import PgConnection
from tool_gateway.tool import ToolArgumentsInvalid, ToolFailed
from tool_gateway.tools._appointment_slots import BusyTimes, Interval, WorkingWindow

MAX_RESOURCES = 20
"""How many resources one search considers."""
_LISTED_SERVICES = 20


@dataclass(frozen=True, slots=True)
class Service:
    """A bookable service and how long it takes."""

    service_id: str
    name: str
    duration: timedelta


@dataclass(frozen=True, slots=True)
class Resource:
    """Who or what is booked, with its time zone and weekly opening windows."""

    resource_id: str
    name: str
    zone: ZoneInfo
    windows: tuple[WorkingWindow, ...]


def resource_zone(resource_id: str, name: str) -> ZoneInfo:
    """The resource's time zone; an unknown one is a configuration error the LLM can report."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ToolFailed(
            f"resource {resource_id!r} has an unknown time zone {name!r}; the business must fix"
            " its configuration before it can be booked"
        ) from exc


async def find_service(connection: PgConnection, tenant_id: str, service: str) -> Service:
    """The active service whose id or name (any case) is ``service``; the id wins a tie."""
    row = await connection.fetchrow(
        "SELECT service_id, name, duration_minutes FROM services"
        " WHERE tenant_id = $1 AND active AND (service_id = $2 OR lower(name) = lower($2))"
        " ORDER BY service_id = $2 DESC LIMIT 1",
        tenant_id,
        service,
    )
    if row is None:
        names = await connection.fetch(
            "SELECT name FROM services WHERE tenant_id = $1 AND active ORDER BY name LIMIT $2",
            tenant_id,
            _LISTED_SERVICES,
        )
        offered = ", ".join(repr(name["name"]) for name in names) or "none"
        raise ToolArgumentsInvalid(f"unknown service {service!r}; the services are: {offered}")
    return Service(row["service_id"], row["name"], timedelta(minutes=row["duration_minutes"]))


async def find_resources(
    connection: PgConnection, tenant_id: str, service: Service, resource_id: str | None
) -> list[Resource]:
    """The active resources offering ``service`` (only ``resource_id`` when given), by name."""
    rows = await connection.fetch(
        "SELECT r.resource_id, r.name, r.time_zone FROM resources r"
        " JOIN resource_services rs"
        "   ON rs.tenant_id = r.tenant_id AND rs.resource_id = r.resource_id"
        " WHERE r.tenant_id = $1 AND r.active AND rs.service_id = $2"
        "   AND ($3::text IS NULL OR r.resource_id = $3)"
        " ORDER BY r.name, r.resource_id LIMIT $4",
        tenant_id,
        service.service_id,
        resource_id,
        MAX_RESOURCES,
    )
    if not rows and resource_id is not None:
        raise ToolArgumentsInvalid(
            f"resource {resource_id!r} does not offer {service.name!r}; call"
            " appointments.find_slots without resource_id to see who does"
        )
    if not rows:
        raise ToolFailed(f"nobody offers {service.name!r} at the moment")
    ids = [row["resource_id"] for row in rows]
    hours = await connection.fetch(
        "SELECT resource_id, weekday, opens_at, closes_at FROM working_hours"
        " WHERE tenant_id = $1 AND resource_id = ANY($2::text[])",
        tenant_id,
        ids,
    )
    return [_resource(row, hours) for row in rows]


def _resource(row: Any, hours: list[Any]) -> Resource:
    windows = tuple(
        WorkingWindow(hour["weekday"], hour["opens_at"], hour["closes_at"])
        for hour in hours
        if hour["resource_id"] == row["resource_id"]
    )
    zone = resource_zone(row["resource_id"], row["time_zone"])
    return Resource(row["resource_id"], row["name"], zone, windows)


async def busy_times(
    connection: PgConnection,
    tenant_id: str,
    resource_id: str,
    starts_at: datetime,
    ends_at: datetime,
) -> BusyTimes:
    """Booked appointments and closures of the resource (or the business) in the interval."""
    rows = await connection.fetch(
        "SELECT starts_at, ends_at FROM appointments"
        " WHERE tenant_id = $1 AND resource_id = $2 AND status = 'booked'"
        "   AND tstzrange(starts_at, ends_at) && tstzrange($3, $4)"
        " UNION ALL"
        " SELECT starts_at, ends_at FROM closures"
        " WHERE tenant_id = $1 AND (resource_id IS NULL OR resource_id = $2)"
        "   AND tstzrange(starts_at, ends_at) && tstzrange($3, $4)",
        tenant_id,
        resource_id,
        starts_at,
        ends_at,
    )
    return BusyTimes(Interval(row["starts_at"], row["ends_at"]) for row in rows)


async def closure_reason(
    connection: PgConnection,
    tenant_id: str,
    resource_id: str,
    starts_at: datetime,
    ends_at: datetime,
) -> str | None:
    """Why the resource is closed during part of the interval ('closed' without a reason)."""
    row = await connection.fetchrow(
        "SELECT coalesce(reason, 'closed') AS reason FROM closures"
        " WHERE tenant_id = $1 AND (resource_id IS NULL OR resource_id = $2)"
        "   AND tstzrange(starts_at, ends_at) && tstzrange($3, $4)"
        " ORDER BY starts_at LIMIT 1",
        tenant_id,
        resource_id,
        starts_at,
        ends_at,
    )
    return None if row is None else str(row["reason"])
