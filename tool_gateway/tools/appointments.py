"""Appointments: ``find_slots``, ``book``, ``cancel`` and ``list`` for the conversation's contact.

Double booking is impossible whatever the race: the ``appointments_no_overlap`` exclusion
constraint (migration 0003) refuses a second booked appointment overlapping the first on the
same resource, and ``book`` turns that refusal into "that slot was just taken".
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from libs.postgres import PgConnection
from tool_gateway.tool import Tool, ToolArgumentsInvalid, ToolContext, ToolFailed
from tool_gateway.tools._appointment_models import (
    MAX_RANGE_DAYS,
    Appointment,
    AppointmentList,
    BookInput,
    CancelInput,
    FindSlotsInput,
    FindSlotsOutput,
    ListInput,
    Slot,
)
from tool_gateway.tools._appointment_slots import free_slots, within_working_hours
from tool_gateway.tools._appointment_store import (
    Resource,
    Service,
    busy_times,
    closure_reason,
    find_resources,
    find_service,
    resource_zone,
)
from tool_gateway.tools._business_db import conversation_contact_id, postgres_pool

__all__ = [
    "BOOK",
    "CANCEL",
    "FIND_SLOTS",
    "LIST",
    "MAX_RANGE_DAYS",
    "Appointment",
    "AppointmentList",
    "BookInput",
    "CancelInput",
    "FindSlotsInput",
    "FindSlotsOutput",
    "ListInput",
    "Slot",
]

_SLOT_STEP = timedelta(minutes=30)


async def find_appointment_slots(context: ToolContext, data: FindSlotsInput) -> FindSlotsOutput:
    """Run ``appointments.find_slots``."""
    now = datetime.now(UTC)
    last_day = data.to_date or data.from_date
    async with postgres_pool(context).acquire() as connection:
        service = await find_service(connection, context.tenant_id, data.service)
        resources = await find_resources(connection, context.tenant_id, service, data.resource_id)
        if all(last_day < now.astimezone(resource.zone).date() for resource in resources):
            raise ToolArgumentsInvalid(f"{last_day} is in the past; search from today on")
        # Wide enough for any UTC offset (-12h to +14h) of the local dates.
        window_start = datetime.combine(data.from_date, datetime.min.time(), UTC) - timedelta(1)
        window_end = datetime.combine(last_day, datetime.min.time(), UTC) + timedelta(2)
        slots: list[Slot] = []
        for resource in resources:
            busy = await busy_times(
                connection, context.tenant_id, resource.resource_id, window_start, window_end
            )
            found = free_slots(
                zone=resource.zone,
                first_day=data.from_date,
                last_day=last_day,
                windows=resource.windows,
                busy=busy,
                duration=service.duration,
                step=min(service.duration, _SLOT_STEP),
                not_before=now,
                limit=data.limit,
            )
            slots += [
                Slot(
                    resource_id=resource.resource_id,
                    resource=resource.name,
                    starts_at=slot.starts_at,
                    ends_at=slot.ends_at,
                )
                for slot in found
            ]
    slots.sort(key=lambda slot: (slot.starts_at, slot.resource))
    return FindSlotsOutput(
        service_id=service.service_id,
        service=service.name,
        duration_minutes=int(service.duration.total_seconds() // 60),
        slots=slots[: data.limit],
    )


async def book_appointment(context: ToolContext, data: BookInput) -> Appointment:
    """Run ``appointments.book``."""
    async with postgres_pool(context).acquire() as connection, connection.transaction():
        contact_id, service, resource = await _checked_booking(connection, context, data)
        # The exclusion constraint alone decides, but concurrent inserts of overlapping rows
        # wait on each other's index entries and can deadlock; taking turns per resource
        # turns every loser into a plain, immediate exclusion violation.
        await connection.execute(
            "SELECT 1 FROM resources WHERE tenant_id = $1 AND resource_id = $2 FOR NO KEY UPDATE",
            context.tenant_id,
            resource.resource_id,
        )
        try:
            appointment_id = await connection.fetchval(
                "INSERT INTO appointments (tenant_id, resource_id, service_id, contact_id,"
                " conversation_id, starts_at, ends_at, notes)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING appointment_id",
                context.tenant_id,
                resource.resource_id,
                service.service_id,
                contact_id,
                context.conversation_id,
                data.starts_at,
                data.starts_at + service.duration,
                data.notes,
            )
        except asyncpg.ExclusionViolationError as exc:
            raise _slot_taken(resource) from exc
    return _booked(appointment_id, service, resource, data.starts_at)


async def simulate_book_appointment(context: ToolContext, data: BookInput) -> Appointment:
    """What ``appointments.book`` would book, booking nothing."""
    async with postgres_pool(context).acquire() as connection:
        _, service, resource = await _checked_booking(connection, context, data)
        ends_at = data.starts_at + service.duration
        busy = await busy_times(
            connection, context.tenant_id, resource.resource_id, data.starts_at, ends_at
        )
        if busy.overlaps(data.starts_at, ends_at):
            raise _slot_taken(resource)
    return _booked(None, service, resource, data.starts_at)


async def _checked_booking(
    connection: PgConnection, context: ToolContext, data: BookInput
) -> tuple[str, Service, Resource]:
    """The contact, service and resource of a booking that fits the resource's hours."""
    contact_id = await conversation_contact_id(connection, context)
    service = await find_service(connection, context.tenant_id, data.service)
    (resource,) = await find_resources(connection, context.tenant_id, service, data.resource_id)
    ends_at = data.starts_at + service.duration
    if data.starts_at <= datetime.now(UTC):
        raise ToolArgumentsInvalid(f"{data.starts_at.isoformat()} is in the past")
    if not within_working_hours(data.starts_at, ends_at, resource.windows, resource.zone):
        local = data.starts_at.astimezone(resource.zone)
        raise ToolArgumentsInvalid(
            f"{resource.name} does not work at {local.isoformat()} for {service.name!r};"
            " call appointments.find_slots for free times"
        )
    reason = await closure_reason(
        connection, context.tenant_id, resource.resource_id, data.starts_at, ends_at
    )
    if reason is not None:
        raise ToolFailed(f"{resource.name} is not available then ({reason}); pick another time")
    return contact_id, service, resource


def _slot_taken(resource: Resource) -> ToolFailed:
    return ToolFailed(
        f"that slot was just taken at {resource.name}; call appointments.find_slots again and"
        " offer the customer another time"
    )


def _booked(
    appointment_id: str | None, service: Service, resource: Resource, starts_at: datetime
) -> Appointment:
    return Appointment(
        appointment_id=appointment_id,
        service_id=service.service_id,
        service=service.name,
        resource_id=resource.resource_id,
        resource=resource.name,
        starts_at=starts_at.astimezone(resource.zone),
        ends_at=(starts_at + service.duration).astimezone(resource.zone),
        status="booked",
        simulated=appointment_id is None,
    )


_APPOINTMENT_QUERY = """
SELECT a.appointment_id, a.service_id, s.name AS service, a.resource_id, r.name AS resource,
    r.time_zone, a.starts_at, a.ends_at, a.status
FROM appointments a
JOIN services s ON s.tenant_id = a.tenant_id AND s.service_id = a.service_id
JOIN resources r ON r.tenant_id = a.tenant_id AND r.resource_id = a.resource_id
WHERE a.tenant_id = $1 AND a.contact_id = $2
"""


async def cancel_appointment(context: ToolContext, data: CancelInput) -> Appointment:
    """Run ``appointments.cancel``."""
    async with postgres_pool(context).acquire() as connection, connection.transaction():
        row = await _cancellable(connection, context, data.appointment_id, lock=True)
        await connection.execute(
            "UPDATE appointments SET status = 'cancelled', cancelled_at = now()"
            " WHERE tenant_id = $1 AND appointment_id = $2",
            context.tenant_id,
            data.appointment_id,
        )
    return _appointment(row).model_copy(update={"status": "cancelled"})


async def simulate_cancel_appointment(context: ToolContext, data: CancelInput) -> Appointment:
    """What ``appointments.cancel`` would cancel, cancelling nothing."""
    async with postgres_pool(context).acquire() as connection:
        row = await _cancellable(connection, context, data.appointment_id, lock=False)
    return _appointment(row).model_copy(update={"status": "cancelled", "simulated": True})


async def _cancellable(
    connection: PgConnection, context: ToolContext, appointment_id: str, *, lock: bool
) -> Any:
    contact_id = await conversation_contact_id(connection, context)
    row = await connection.fetchrow(
        _APPOINTMENT_QUERY + " AND a.appointment_id = $3" + (" FOR UPDATE OF a" if lock else ""),
        context.tenant_id,
        contact_id,
        appointment_id,
    )
    if row is None:
        raise ToolArgumentsInvalid(
            f"the customer has no appointment {appointment_id!r}; appointments.list shows theirs"
        )
    if row["status"] == "cancelled":
        raise ToolFailed(f"appointment {appointment_id!r} is already cancelled")
    if row["starts_at"] <= datetime.now(UTC):
        raise ToolFailed(f"appointment {appointment_id!r} has already started or taken place")
    return row


async def list_appointments(context: ToolContext, data: ListInput) -> AppointmentList:
    """Run ``appointments.list``."""
    async with postgres_pool(context).acquire() as connection:
        contact_id = await conversation_contact_id(connection, context)
        rows = await connection.fetch(
            _APPOINTMENT_QUERY
            + " AND a.status = 'booked' AND a.ends_at > now()"
            + " ORDER BY a.starts_at, a.appointment_id LIMIT $3",
            context.tenant_id,
            contact_id,
            data.limit,
        )
    return AppointmentList(appointments=[_appointment(row) for row in rows])


def _appointment(row: Any) -> Appointment:
    zone = resource_zone(row["resource_id"], row["time_zone"])
    return Appointment(
        appointment_id=row["appointment_id"],
        service_id=row["service_id"],
        service=row["service"],
        resource_id=row["resource_id"],
        resource=row["resource"],
        starts_at=row["starts_at"].astimezone(zone),
        ends_at=row["ends_at"].astimezone(zone),
        status=row["status"],
    )


FIND_SLOTS = Tool(
    name="appointments.find_slots",
    description=(
        "Find free times to book a service between two dates, with any resource offering it"
        " or one chosen resource. Times are in the business's time zone."
    ),
    input_model=FindSlotsInput,
    output_model=FindSlotsOutput,
    run=find_appointment_slots,
    writes=False,
)

BOOK = Tool(
    name="appointments.book",
    description=(
        "Book a service for the customer of this conversation at a slot that"
        " appointments.find_slots returned. Confirm the time with the customer first."
    ),
    input_model=BookInput,
    output_model=Appointment,
    run=book_appointment,
    writes=True,
    simulate=simulate_book_appointment,
)

CANCEL = Tool(
    name="appointments.cancel",
    description="Cancel one of the customer's upcoming appointments, freeing its time.",
    input_model=CancelInput,
    output_model=Appointment,
    run=cancel_appointment,
    writes=True,
    simulate=simulate_cancel_appointment,
)

LIST = Tool(
    name="appointments.list",
    description="List the customer's upcoming appointments with their ids, times and places.",
    input_model=ListInput,
    output_model=AppointmentList,
    run=list_appointments,
    writes=False,
)
