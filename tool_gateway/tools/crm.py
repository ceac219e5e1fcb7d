"""``crm.get_contact`` and ``crm.update_contact``: the customer of the current conversation.

The contact is always the conversation's, never one named in the arguments. Name, email,
locale and the tenant's custom fields are editable; the provider identity (provider, provider
contact id, phone) is what the channel told us and stays as it is.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, JsonValue, StringConstraints, model_validator

from libs.postgres import PgConnection
from tool_gateway.tool import SENSITIVE, Tool, ToolContext, ToolFailed
from tool_gateway.tools._business_db import conversation_contact_id, postgres_pool

# What the column's check allows (0003_business_data.sql), as JSON text.
MAX_CUSTOM_FIELDS_BYTES = 16_384
MAX_CUSTOM_FIELDS = 50
"""How many custom fields one contact may carry."""

FieldKey = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
FieldValue = Annotated[str, StringConstraints(max_length=500)] | bool | int | float

_SELECT_CONTACT = (
    "SELECT contact_id, provider, display_name, phone, email, locale, custom_fields, created_at"
    " FROM contacts WHERE tenant_id = $1 AND contact_id = $2"
)


class GetContactInput(BaseModel):
    """Read the profile of the customer in this conversation (no arguments needed)."""

    model_config = ConfigDict(extra="forbid")


class Contact(BaseModel):
    """The customer's profile as the business knows it."""

    contact_id: str
    channel: str = Field(description="Messaging provider the customer writes from.")
    name: str | None
    phone: str | None
    email: str | None
    locale: str | None = Field(description="Preferred language, e.g. 'pt-BR'.")
    # Any JSON: other systems (an import, an operator) may store more than this tool writes.
    custom_fields: dict[str, JsonValue] = Field(description="The business's own fields.")
    customer_since: datetime


class UpdateContactInput(BaseModel):
    """Change the customer's name, email, language or custom fields; only what is given."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Annotated[str | None, SENSITIVE] = Field(
        default=None, min_length=1, max_length=256, description="The customer's name."
    )
    email: Annotated[str | None, SENSITIVE] = Field(
        default=None,
        max_length=254,
        pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
        description="The customer's email address, as they wrote it.",
    )
    locale: str | None = Field(
        default=None,
        pattern=r"^[a-z]{2,3}(-[A-Z]{2})?$",
        description="Preferred language as a BCP 47 tag, e.g. 'pt-BR', 'es', 'en-US'.",
    )
    custom_fields: Annotated[dict[FieldKey, FieldValue | None], SENSITIVE] = Field(
        default_factory=dict,
        max_length=20,
        description="Custom fields to set, keys in lower_snake_case (e.g. 'preferred_store');"
        " a null value removes the field. Fields not named here are kept.",
    )

    @model_validator(mode="after")
    def _changes_something(self) -> Self:
        given = (self.name, self.email, self.locale)
        if all(value is None for value in given) and not self.custom_fields:
            raise ValueError("give at least one of name, email, locale or custom_fields")
        return self


class UpdateContactOutput(BaseModel):
    """The profile after the update, and which fields it changed."""

    contact: Contact
    changed: list[str] = Field(description="Fields whose value changed, e.g. 'email'.")
    simulated: bool = Field(description="True when this was a dry run and nothing was saved.")


async def get_contact(context: ToolContext, data: GetContactInput) -> Contact:
    """Run ``crm.get_contact``."""
    async with postgres_pool(context).acquire() as connection:
        return _contact(await _load(connection, context, for_update=False))


async def update_contact(context: ToolContext, data: UpdateContactInput) -> UpdateContactOutput:
    """Run ``crm.update_contact``: merge the changes in one transaction."""
    async with postgres_pool(context).acquire() as connection, connection.transaction():
        before = _contact(await _load(connection, context, for_update=True))
        after = _merged(before, data)
        changed = _changed(before, after)
        if changed:
            await connection.execute(
                "UPDATE contacts SET display_name = $3, email = $4, locale = $5,"
                " custom_fields = $6::jsonb, updated_at = now()"
                " WHERE tenant_id = $1 AND contact_id = $2",
                context.tenant_id,
                before.contact_id,
                after.name,
                after.email,
                after.locale,
                json.dumps(after.custom_fields),
            )
    return UpdateContactOutput(contact=after, changed=changed, simulated=False)


async def simulate_update_contact(
    context: ToolContext, data: UpdateContactInput
) -> UpdateContactOutput:
    """What ``crm.update_contact`` would make of the contact, saving nothing."""
    async with postgres_pool(context).acquire() as connection:
        before = _contact(await _load(connection, context, for_update=False))
    after = _merged(before, data)
    return UpdateContactOutput(contact=after, changed=_changed(before, after), simulated=True)


async def _load(connection: PgConnection, context: ToolContext, *, for_update: bool) -> Any:
    contact_id = await conversation_contact_id(connection, context)
    row = await connection.fetchrow(
        _SELECT_CONTACT + (" FOR UPDATE" if for_update else ""),
        context.tenant_id,
        contact_id,
    )
    if row is None:  # the foreign key from conversations makes this a deleted-meanwhile race
        raise ToolFailed("the customer's contact was just deleted")
    return row


def _contact(row: Any) -> Contact:
    return Contact(
        contact_id=row["contact_id"],
        channel=row["provider"],
        name=row["display_name"],
        phone=row["phone"],
        email=row["email"],
        locale=row["locale"],
        custom_fields=json.loads(row["custom_fields"]),
        customer_since=row["created_at"],
    )


def _merged(contact: Contact, data: UpdateContactInput) -> Contact:
    fields = dict(contact.custom_fields)
    for key, value in data.custom_fields.items():
        if value is None:
            fields.pop(key, None)
        else:
            fields[key] = value
    if len(fields) > MAX_CUSTOM_FIELDS:
        raise ToolFailed(
            f"the contact would have {len(fields)} custom fields, more than the"
            f" {MAX_CUSTOM_FIELDS} allowed; remove some (set them to null) first"
        )
    size = len(json.dumps(fields, ensure_ascii=False).encode())
    if size > MAX_CUSTOM_FIELDS_BYTES:
        raise ToolFailed(
            f"the contact's custom fields would take {size} bytes, more than the"
            f" {MAX_CUSTOM_FIELDS_BYTES} allowed; shorten or remove some first"
        )
    return contact.model_copy(
        update={
            "name": data.name if data.name is not None else contact.name,
            "email": data.email if data.email is not None else contact.email,
            "locale": data.locale if data.locale is not None else contact.locale,
            "custom_fields": fields,
        }
    )


def _changed(before: Contact, after: Contact) -> list[str]:
    changed = [
        name
        for name in ("name", "email", "locale")
        if getattr(before, name) != getattr(after, name)
    ]
    keys = sorted(before.custom_fields.keys() | after.custom_fields.keys())
    changed += [
        f"custom_fields.{key}"
        for key in keys
        if not _same(before.custom_fields.get(key), after.custom_fields.get(key))
    ]
    return changed


def _same(first: JsonValue, second: JsonValue) -> bool:
    # True == 1 in Python, but not in the JSON the business reads.
    return type(first) is type(second) and first == second


GET_CONTACT = Tool(
    name="crm.get_contact",
    description=(
        "Read the profile of the customer in this conversation: name, phone, email, preferred"
        " language and the business's custom fields."
    ),
    input_model=GetContactInput,
    output_model=Contact,
    run=get_contact,
    writes=False,
)

UPDATE_CONTACT = Tool(
    name="crm.update_contact",
    description=(
        "Save what the customer told you about themselves: name, email, preferred language or"
        " custom fields. Only the fields given change; a custom field set to null is removed."
        " The phone number and messaging account cannot be changed."
    ),
    input_model=UpdateContactInput,
    output_model=UpdateContactOutput,
    run=update_contact,
    writes=True,
    simulate=simulate_update_contact,
)
