"""A writing tool with a personal field, and a read-only one: notes kept in Redis per tenant."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from tool_gateway.tool import SENSITIVE, Tool, ToolArgumentsInvalid, ToolContext


def runs_key(context: ToolContext, tool: str) -> str:
    """Where the runs of ``tool`` are counted."""
    return f"{context.services.keys.namespace}:gateway-test:runs:{tool}"


def notes_key(context: ToolContext) -> str:
    """The tenant's notes (the tenant comes from the context, never from arguments)."""
    return f"{context.services.keys.namespace}:gateway-test:notes:{context.tenant_id}"


class AddNote(BaseModel):
    """A note about the customer."""

    text: str = Field(min_length=1, max_length=200, description="What to remember.")
    email: Annotated[str, SENSITIVE] = Field(description="The customer's email address.")


class NoteAdded(BaseModel):
    """How many notes the tenant has now."""

    notes: int
    text: str


async def add_note(context: ToolContext, data: AddNote) -> NoteAdded:
    """Append the note; refuse the word 'nonsense' as a tool would refuse an unknown product."""
    if "nonsense" in data.text:
        raise ToolArgumentsInvalid("a note cannot be nonsense")
    await context.services.redis.incr(runs_key(context, "notes.add"))
    count = await context.services.redis.rpush(notes_key(context), data.text)
    return NoteAdded(notes=int(count), text=data.text)


async def simulate_note(context: ToolContext, data: AddNote) -> NoteAdded:
    """What adding would answer, changing nothing."""
    count = await context.services.redis.llen(notes_key(context))
    return NoteAdded(notes=int(count) + 1, text=data.text)


add = Tool(
    name="notes.add",
    description="Remember a note about the customer.",
    input_model=AddNote,
    output_model=NoteAdded,
    run=add_note,
    writes=True,
    simulate=simulate_note,
)


class CountNotes(BaseModel):
    """No arguments."""


class NoteCount(BaseModel):
    """How many notes the tenant has."""

    notes: int


async def count_notes(context: ToolContext, data: CountNotes) -> NoteCount:
    """Count the tenant's notes."""
    await context.services.redis.incr(runs_key(context, "notes.count"))
    return NoteCount(notes=int(await context.services.redis.llen(notes_key(context))))


count = Tool(
    name="notes.count",
    description="How many notes the customer has.",
    input_model=CountNotes,
    output_model=NoteCount,
    run=count_notes,
    writes=False,
)
