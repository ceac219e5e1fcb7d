"""Arguments and answers of the appointment tools (their JSON Schemas are what the LLM sees)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from tool_gateway.tool import SENSITIVE

MAX_RANGE_DAYS = 14

ServiceRef = Annotated[
    str,
    Field(
        min_length=1,
        max_length=256,
        description="The service's id or its name as the business lists it, e.g. 'Haircut'.",
    ),
]


class FindSlotsInput(BaseModel):
    """Find free times to book a service, optionally with one resource (professional, room)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    service: ServiceRef
    resource_id: str | None = Field(
        default=None, min_length=1, max_length=128, description="Only this resource's times."
    )
    from_date: date = Field(description="First day to search (YYYY-MM-DD), local to the business.")
    to_date: date | None = Field(
        default=None,
        description=f"Last day to search (YYYY-MM-DD), at most {MAX_RANGE_DAYS} days after"
        " from_date; defaults to from_date.",
    )
    limit: int = Field(default=10, ge=1, le=50, description="How many slots to return.")

    @model_validator(mode="after")
    def _range_is_short_and_forwards(self) -> Self:
        last = self.to_date or self.from_date
        if last < self.from_date:
            raise ValueError(f"to_date {last} is before from_date {self.from_date}")
        if (last - self.from_date).days >= MAX_RANGE_DAYS:
            raise ValueError(f"search at most {MAX_RANGE_DAYS} days at a time")
        return self


class Slot(BaseModel):
    """A free time: book it by passing starts_at and resource_id to appointments.book."""

    resource_id: str
    resource: str
    starts_at: datetime
    ends_at: datetime


class FindSlotsOutput(BaseModel):
    """Free slots, earliest first."""

    service_id: str
    service: str
    duration_minutes: int
    slots: list[Slot]


class BookInput(BaseModel):
    """Book a service for the customer of this conversation at a free slot."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    service: ServiceRef
    resource_id: str = Field(
        min_length=1, max_length=128, description="The resource_id of the chosen slot."
    )
    starts_at: AwareDatetime = Field(
        description="The starts_at of the chosen slot, ISO 8601 with its UTC offset."
    )
    notes: Annotated[str | None, SENSITIVE] = Field(
        default=None, max_length=1000, description="What the customer wants the business to know."
    )


class Appointment(BaseModel):
    """An appointment of the customer, times in the resource's time zone."""

    appointment_id: str | None = Field(description="Null in a dry run: nothing was booked.")
    service_id: str
    service: str
    resource_id: str
    resource: str
    starts_at: datetime
    ends_at: datetime
    status: Literal["booked", "cancelled"]
    simulated: bool = Field(default=False, description="True when this was a dry run.")


class CancelInput(BaseModel):
    """Cancel one of the customer's upcoming appointments."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    appointment_id: str = Field(
        min_length=1, max_length=128, description="Id from appointments.list or the booking."
    )


class ListInput(BaseModel):
    """List the customer's upcoming booked appointments."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=10, ge=1, le=20, description="How many appointments to return.")


class AppointmentList(BaseModel):
    """Upcoming appointments, earliest first."""

    appointments: list[Appointment]
