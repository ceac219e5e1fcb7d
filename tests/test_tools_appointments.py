"""Appointment tools against a real Postgres, and the slot computation on daylight-saving days."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
import redis.asyncio as aioredis
from pydantic import ValidationError

from libs.keys import KeySpace
from libs.postgres import open_pool
from tests.business_seed import (
    future_day,
    local,
    openai_function_problems,
    seed_schedule,
    seed_second_contact,
)
from tests.tool_support import SeededConversation, seed_conversation, tool_context, tool_services
from tool_gateway.tool import ToolArgumentsInvalid, ToolContext, ToolFailed
from tool_gateway.tools._appointment_slots import BusyTimes, Interval, WorkingWindow, free_slots
from tool_gateway.tools.appointments import (
    BOOK,
    CANCEL,
    FIND_SLOTS,
    LIST,
    Appointment,
    BookInput,
    CancelInput,
    FindSlotsInput,
    FindSlotsOutput,
    ListInput,
)

NEW_YORK = ZoneInfo("America/New_York")
DAY = future_day(7)


# --- slots, without a database ---------------------------------------------------------------


def _every_day(opens: time, closes: time) -> list[WorkingWindow]:
    return [WorkingWindow(weekday, opens, closes) for weekday in range(1, 8)]


def _slots(day: date, windows: list[WorkingWindow], **overrides: Any) -> list[Interval]:
    arguments: dict[str, Any] = {
        "zone": NEW_YORK,
        "first_day": day,
        "last_day": day,
        "windows": windows,
        "busy": BusyTimes([]),
        "duration": timedelta(hours=1),
        "step": timedelta(hours=1),
        "not_before": datetime(2000, 1, 1, tzinfo=UTC),
        "limit": 50,
    } | overrides
    return free_slots(**arguments)


def _length(starts_at: datetime, ends_at: datetime) -> timedelta:
    # Python subtracts two datetimes of one zone by wall clock: compare instants instead.
    return ends_at.astimezone(UTC) - starts_at.astimezone(UTC)


def _labels(slots: list[Interval]) -> list[str]:
    return [slot.starts_at.strftime("%H:%M%z") for slot in slots]


def test_a_spring_forward_night_has_one_hour_less() -> None:
    # 2027-03-14, New York: 02:00 EST jumps to 03:00 EDT.
    slots = _slots(date(2027, 3, 14), _every_day(time(0), time(4)))
    assert _labels(slots) == ["00:00-0500", "01:00-0500", "03:00-0400"]
    assert all(_length(slot.starts_at, slot.ends_at) == timedelta(hours=1) for slot in slots)


def test_a_fall_back_night_has_one_hour_more() -> None:
    # 2027-11-07, New York: 02:00 EDT falls back to 01:00 EST; 01:00 happens twice.
    slots = _slots(date(2027, 11, 7), _every_day(time(0), time(4)))
    assert _labels(slots) == [
        "00:00-0400", "01:00-0400", "01:00-0500", "02:00-0500", "03:00-0500",
    ]  # fmt: skip


def test_office_hours_keep_their_wall_clock_across_the_change() -> None:
    windows = _every_day(time(9), time(11))
    before = _slots(date(2027, 3, 13), windows)
    after = _slots(date(2027, 3, 14), windows)
    assert _labels(before) == ["09:00-0500", "10:00-0500"]
    assert _labels(after) == ["09:00-0400", "10:00-0400"]
    assert before[0].starts_at.astimezone(UTC).hour == 14
    assert after[0].starts_at.astimezone(UTC).hour == 13


def test_slots_skip_breaks_busy_times_and_the_past() -> None:
    day = date(2027, 5, 3)  # a Monday
    windows = [WorkingWindow(1, time(9), time(12)), WorkingWindow(1, time(13), time(15))]
    booked = Interval(
        datetime.combine(day, time(10), NEW_YORK), datetime.combine(day, time(11), NEW_YORK)
    )
    slots = _slots(
        day,
        windows,
        busy=BusyTimes([booked]),
        step=timedelta(minutes=30),
        not_before=datetime.combine(day, time(9, 15), NEW_YORK),
    )
    # 09:00 is past; 09:30 and 10:30 overlap the booking; 11:30 would run into lunch.
    assert _labels(slots) == ["11:00-0400", "13:00-0400", "13:30-0400", "14:00-0400"]
    assert _labels(_slots(day, windows, limit=2)) == ["09:00-0400", "10:00-0400"]
    assert _slots(day + timedelta(days=1), windows) == []  # no hours on Tuesday


def test_busy_times_overlap_only_when_they_share_time() -> None:
    start = datetime(2027, 1, 1, 10, tzinfo=UTC)
    busy = BusyTimes(
        [Interval(start, start + timedelta(hours=3)), Interval(start, start + timedelta(hours=1))]
    )
    assert busy.overlaps(start + timedelta(hours=2), start + timedelta(hours=4))
    assert not busy.overlaps(start + timedelta(hours=3), start + timedelta(hours=4))
    assert not busy.overlaps(start - timedelta(hours=1), start)


def test_a_bad_range_is_refused() -> None:
    with pytest.raises(ValueError, match="at most"):
        _slots(date(2027, 1, 1), [], last_day=date(2027, 6, 1))
    with pytest.raises(ValueError, match="positive"):
        _slots(date(2027, 1, 1), [], step=timedelta(0))


# --- the tools -------------------------------------------------------------------------------


@pytest.fixture
async def seeded(pg_pool: asyncpg.Pool) -> SeededConversation:
    seeded = await seed_conversation(pg_pool)
    await seed_schedule(pg_pool, seeded.tenant_id)
    return seeded


@pytest.fixture
async def context(
    seeded: SeededConversation, pg_pool: asyncpg.Pool, redis: aioredis.Redis, keys: KeySpace
) -> ToolContext:
    return tool_context(seeded, tool_services(redis, keys, pg_pool))


async def _find(context: ToolContext, **arguments: Any) -> FindSlotsOutput:
    return await FIND_SLOTS.run(context, FindSlotsInput.model_validate(arguments))


async def _book(context: ToolContext, at: time, service: str = "haircut") -> Appointment:
    data = BookInput(service=service, resource_id="ana", starts_at=local(DAY, at))
    if context.dry_run:
        assert BOOK.simulate is not None
        return await BOOK.simulate(context, data)
    return await BOOK.run(context, data)


async def _cancel(context: ToolContext, appointment_id: str | None) -> Appointment:
    assert appointment_id is not None
    data = CancelInput(appointment_id=appointment_id)
    if context.dry_run:
        assert CANCEL.simulate is not None
        return await CANCEL.simulate(context, data)
    return await CANCEL.run(context, data)


def _starts(output: FindSlotsOutput) -> list[str]:
    return [slot.starts_at.strftime("%H:%M") for slot in output.slots]


async def _table(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    rows = await pool.fetch("SELECT * FROM appointments ORDER BY tenant_id, appointment_id")
    return [dict(row) for row in rows]


def test_the_input_schemas_are_valid_openai_functions() -> None:
    for tool in (FIND_SLOTS, BOOK, CANCEL, LIST):
        assert openai_function_problems(tool) == [], tool.name
    assert (BOOK.writes, CANCEL.writes, FIND_SLOTS.writes, LIST.writes) == (
        True, True, False, False,
    )  # fmt: skip
    assert BOOK.sensitive_fields() == {"notes"}


async def test_free_slots_follow_hours_breaks_and_bookings(context: ToolContext) -> None:
    free = await _find(context, service="Haircut", from_date=DAY.isoformat(), limit=20)
    assert (free.service_id, free.duration_minutes) == ("haircut", 60)
    assert _starts(free)[:9] == [
        "09:00", "09:30", "10:00", "10:30", "11:00", "13:00", "13:30", "14:00", "14:30",
    ]  # fmt: skip
    assert free.slots[0].starts_at == local(DAY, time(9))
    assert free.slots[0].starts_at.utcoffset() == timedelta(hours=-3)
    assert free.slots[0].resource == "Ana"

    await _book(context, time(10))
    after = await _find(context, service="haircut", from_date=DAY.isoformat(), limit=4)
    assert _starts(after) == ["09:00", "11:00", "13:00", "13:30"]
    beard = await _find(context, service="beard trim", from_date=DAY.isoformat(), limit=4)
    assert _starts(beard) == ["09:00", "09:30", "11:00", "11:30"]


async def test_a_range_of_days_and_a_closed_day(
    context: ToolContext, pg_pool: asyncpg.Pool
) -> None:
    await pg_pool.execute(
        "INSERT INTO closures (tenant_id, resource_id, starts_at, ends_at, reason)"
        " VALUES ('acme', NULL, $1, $2, 'holiday')",
        local(DAY, time(0)),
        local(DAY + timedelta(days=1), time(0)),
    )
    free = await _find(
        context,
        service="haircut",
        from_date=DAY.isoformat(),
        to_date=(DAY + timedelta(days=1)).isoformat(),
        limit=50,
    )
    assert {slot.starts_at.date() for slot in free.slots} == {DAY + timedelta(days=1)}
    with pytest.raises(ToolFailed, match="holiday"):
        await _book(context, time(9))


async def test_slots_on_a_daylight_saving_day_keep_the_wall_clock(
    seeded: SeededConversation, pg_pool: asyncpg.Pool, redis: aioredis.Redis, keys: KeySpace
) -> None:
    await seed_schedule(
        pg_pool, "acme", time_zone="America/New_York", resource_id="nyc", resource_name="NYC"
    )
    change = _next_offset_change(NEW_YORK)
    context = tool_context(seeded, tool_services(redis, keys, pg_pool))
    free = await _find(
        context,
        service="haircut",
        resource_id="nyc",
        from_date=(change - timedelta(days=1)).isoformat(),
        to_date=change.isoformat(),
        limit=50,
    )
    first_of: dict[date, datetime] = {}
    for slot in free.slots:
        first_of.setdefault(slot.starts_at.date(), slot.starts_at)
    before, after = first_of[change - timedelta(days=1)], first_of[change]
    assert before.time() == after.time() == time(9)
    assert before.utcoffset() != after.utcoffset()
    assert all(_length(slot.starts_at, slot.ends_at) == timedelta(hours=1) for slot in free.slots)


def _next_offset_change(zone: ZoneInfo) -> date:
    """The next day whose noon has another UTC offset than the day before's."""
    day = datetime.now(UTC).date() + timedelta(days=2)
    for _ in range(400):
        noon = datetime.combine(day, time(12), zone).utcoffset()
        if noon != datetime.combine(day - timedelta(days=1), time(12), zone).utcoffset():
            return day
        day += timedelta(days=1)
    raise AssertionError(f"{zone} changes no offset within 400 days")


async def test_find_slots_refuses_what_makes_no_sense(context: ToolContext) -> None:
    with pytest.raises(ToolArgumentsInvalid, match=r"unknown service 'massage'.*'Haircut'"):
        await _find(context, service="massage", from_date=DAY.isoformat())
    with pytest.raises(ToolArgumentsInvalid, match="'bob' does not offer"):
        await _find(context, service="haircut", resource_id="bob", from_date=DAY.isoformat())
    with pytest.raises(ToolArgumentsInvalid, match="in the past"):
        await _find(context, service="haircut", from_date="2020-01-01")
    with pytest.raises(ValidationError, match="at most 14 days"):
        FindSlotsInput(service="haircut", from_date=DAY, to_date=DAY + timedelta(days=30))
    with pytest.raises(ValidationError, match="before from_date"):
        FindSlotsInput(service="haircut", from_date=DAY, to_date=DAY - timedelta(days=1))


async def test_booking_creates_the_contacts_appointment_and_lists_it(
    context: ToolContext, pg_pool: asyncpg.Pool
) -> None:
    booked = await _book(context, time(15))
    assert booked.status == "booked"
    assert not booked.simulated
    assert booked.starts_at == local(DAY, time(15))
    assert booked.ends_at == local(DAY, time(16))
    row = await pg_pool.fetchrow(
        "SELECT contact_id, conversation_id, service_id, status FROM appointments"
        " WHERE tenant_id = 'acme' AND appointment_id = $1",
        booked.appointment_id,
    )
    assert dict(row or {}) == {
        "contact_id": "acme-contact-1", "conversation_id": "acme-conversation-1",
        "service_id": "haircut", "status": "booked",
    }  # fmt: skip
    await _book(context, time(9), service="Beard trim")
    listed = await LIST.run(context, ListInput())
    assert [(a.service, a.starts_at.hour) for a in listed.appointments] == [
        ("Beard trim", 9), ("Haircut", 15),
    ]  # fmt: skip


async def test_book_refuses_what_makes_no_sense(context: ToolContext) -> None:
    with pytest.raises(ToolArgumentsInvalid, match="does not work at"):
        await _book(context, time(11, 30))  # would run into the lunch break
    with pytest.raises(ToolArgumentsInvalid, match="does not work at"):
        await _book(context, time(20))
    past = BookInput(
        service="haircut", resource_id="ana", starts_at=local(date(2020, 1, 6), time(9))
    )
    with pytest.raises(ToolArgumentsInvalid, match="in the past"):
        await BOOK.run(context, past)
    with pytest.raises(ValidationError, match="timezone"):
        BookInput.model_validate(
            {"service": "haircut", "resource_id": "ana", "starts_at": "2030-01-01T09:00:00"}
        )


async def test_an_overlapping_booking_is_refused(context: ToolContext) -> None:
    await _book(context, time(10))
    with pytest.raises(ToolFailed, match="that slot was just taken"):
        await _book(context, time(10, 30), service="beard")
    with pytest.raises(ToolFailed, match="that slot was just taken"):
        await _book(context, time(10))
    # Back to back is fine.
    await _book(context, time(11), service="beard")


async def test_the_database_itself_refuses_overlapping_bookings(
    context: ToolContext, pg_pool: asyncpg.Pool
) -> None:
    booked = await _book(context, time(10))
    insert = (
        "INSERT INTO appointments (tenant_id, resource_id, service_id, contact_id, starts_at,"
        " ends_at, status, cancelled_at) VALUES ('acme', 'ana', 'beard', 'acme-contact-1', $1,"
        " $2, $3, $4)"
    )
    overlapping = (local(DAY, time(10, 59)), local(DAY, time(11, 29)))
    with pytest.raises(asyncpg.ExclusionViolationError):
        await pg_pool.execute(insert, *overlapping, "booked", None)
    # A cancelled appointment holds no time.
    await pg_pool.execute(insert, *overlapping, "cancelled", datetime.now(UTC))
    await _cancel(context, booked.appointment_id)
    await pg_pool.execute(insert, *overlapping, "booked", None)


@pytest.mark.parametrize("mixed", [False, True], ids=["same-slot", "overlapping-slots"])
async def test_concurrent_bookings_of_one_slot_let_exactly_one_win(
    seeded: SeededConversation,
    pg_dsn: str,
    pg_pool: asyncpg.Pool,
    redis: aioredis.Redis,
    keys: KeySpace,
    mixed: bool,
) -> None:
    contenders = 12
    async with open_pool(pg_dsn, min_size=contenders, max_size=contenders) as pool:
        context = tool_context(seeded, tool_services(redis, keys, pool))
        attempts = [
            _book(context, time(10, 30), "beard") if mixed and i % 2 else _book(context, time(10))
            for i in range(contenders)
        ]
        results = await asyncio.gather(*attempts, return_exceptions=True)
    won = [result for result in results if isinstance(result, Appointment)]
    lost = [result for result in results if isinstance(result, ToolFailed)]
    assert len(won) == 1, results
    assert len(lost) == contenders - 1, results
    assert all("that slot was just taken" in str(error) for error in lost)
    booked = await pg_pool.fetchval(
        "SELECT count(*) FROM appointments WHERE tenant_id = 'acme' AND status = 'booked'"
    )
    assert booked == 1


async def test_a_cancelled_slot_can_be_booked_again(
    seeded: SeededConversation,
    context: ToolContext,
    pg_pool: asyncpg.Pool,
    redis: aioredis.Redis,
    keys: KeySpace,
) -> None:
    first = await _book(context, time(10))
    cancelled = await _cancel(context, first.appointment_id)
    assert cancelled.status == "cancelled"
    assert (await LIST.run(context, ListInput())).appointments == []
    with pytest.raises(ToolFailed, match="already cancelled"):
        await _cancel(context, first.appointment_id)

    other = await seed_second_contact(pg_pool, seeded)
    again = await _book(tool_context(other, tool_services(redis, keys, pg_pool)), time(10))
    assert again.appointment_id != first.appointment_id


async def test_dry_runs_change_nothing(context: ToolContext, pg_pool: asyncpg.Pool) -> None:
    dry = replace(context, dry_run=True)
    preview = await _book(dry, time(10))
    assert (preview.appointment_id, preview.simulated, preview.status) == (None, True, "booked")
    assert await _table(pg_pool) == []

    booked = await _book(context, time(10))
    before = await _table(pg_pool)
    with pytest.raises(ToolFailed, match="taken"):
        await _book(dry, time(10, 30), service="beard")
    preview_cancel = await _cancel(dry, booked.appointment_id)
    assert (preview_cancel.status, preview_cancel.simulated) == ("cancelled", True)
    assert await _table(pg_pool) == before


async def test_a_contact_cannot_see_or_cancel_anothers_appointment(
    seeded: SeededConversation,
    context: ToolContext,
    pg_pool: asyncpg.Pool,
    redis: aioredis.Redis,
    keys: KeySpace,
) -> None:
    mine = await _book(context, time(10))
    other = tool_context(
        await seed_second_contact(pg_pool, seeded), tool_services(redis, keys, pg_pool)
    )
    assert (await LIST.run(other, ListInput())).appointments == []
    with pytest.raises(ToolArgumentsInvalid, match="no appointment"):
        await _cancel(other, mine.appointment_id)
    with pytest.raises(ToolArgumentsInvalid, match="no appointment"):
        await _cancel(replace(other, dry_run=True), mine.appointment_id)
    assert [a.appointment_id for a in (await LIST.run(context, ListInput())).appointments] == [
        mine.appointment_id
    ]


async def test_another_tenant_is_invisible_and_untouchable(
    context: ToolContext, pg_pool: asyncpg.Pool, redis: aioredis.Redis, keys: KeySpace
) -> None:
    # globex has the same resource and service ids, and a booking at 10:00.
    globex = await seed_conversation(pg_pool, "globex", phone="+5511999990009")
    await seed_schedule(pg_pool, "globex")
    await pg_pool.execute(
        "INSERT INTO services (tenant_id, service_id, name, duration_minutes)"
        " VALUES ('globex', 'massage', 'Massage', 50)"
    )
    globex_context = tool_context(globex, tool_services(redis, keys, pg_pool))
    theirs = await _book(globex_context, time(10))

    free = await _find(context, service="haircut", from_date=DAY.isoformat(), limit=3)
    assert _starts(free) == ["09:00", "09:30", "10:00"]
    with pytest.raises(ToolArgumentsInvalid, match="unknown service 'massage'"):
        await _find(context, service="massage", from_date=DAY.isoformat())
    ours = await _book(context, time(10))  # the same slot, in another tenant
    assert (await LIST.run(context, ListInput())).appointments == [ours]
    with pytest.raises(ToolArgumentsInvalid, match="no appointment"):
        await _cancel(context, theirs.appointment_id)
    assert [
        a.appointment_id for a in (await LIST.run(globex_context, ListInput())).appointments
    ] == [theirs.appointment_id]
