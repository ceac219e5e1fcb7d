"""``orders.get_status``: one of the customer's orders, as the ERP sees it.

An order is found by its number only among the orders of the conversation's contact, so a
customer who types someone else's order number learns nothing, not even that it exists.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tool_gateway.tool import Tool, ToolArgumentsInvalid, ToolContext
from tool_gateway.tools._business_db import conversation_contact_id, postgres_pool

OrderStatus = Literal[
    "pending", "paid", "processing", "shipped", "delivered", "cancelled", "returned"
]

_STATUS_MEANING: dict[str, str] = {
    "pending": "placed, waiting for payment",
    "paid": "paid, waiting to be prepared",
    "processing": "being prepared for shipping",
    "shipped": "on its way with the carrier",
    "delivered": "delivered",
    "cancelled": "cancelled",
    "returned": "returned to the store",
}
# More lines than this is a wholesale order; the chat shows the first ones.
_MAX_ITEMS = 100


class OrderStatusInput(BaseModel):
    """Look up one of the customer's orders by its number."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    order_number: str = Field(
        min_length=1,
        max_length=65,
        pattern=r"^#?[A-Za-z0-9][A-Za-z0-9_-]{0,63}$",
        description="The order number as the customer gives it, e.g. '10482' or '#10482'.",
    )

    @field_validator("order_number")
    @classmethod
    def _without_hash(cls, order_number: str) -> str:
        return order_number.removeprefix("#")


class OrderItem(BaseModel):
    """One line of the order."""

    sku: str | None
    name: str
    quantity: int
    unit_price: Decimal
    line_total: Decimal


class Tracking(BaseModel):
    """Where the parcel is followed."""

    carrier: str | None
    code: str | None
    url: str | None


class OrderStatusOutput(BaseModel):
    """The order's status, items, totals and tracking."""

    order_number: str
    status: OrderStatus
    status_meaning: str = Field(description="The status in plain words.")
    placed_at: datetime
    updated_at: datetime
    items: list[OrderItem]
    currency: str
    subtotal: Decimal
    shipping: Decimal
    discount: Decimal
    total: Decimal
    tracking: Tracking | None = Field(description="Null until the order has shipped.")
    estimated_delivery: date | None


async def get_order_status(context: ToolContext, data: OrderStatusInput) -> OrderStatusOutput:
    """Run ``orders.get_status``."""
    async with postgres_pool(context).acquire() as connection:
        contact_id = await conversation_contact_id(connection, context)
        order = await connection.fetchrow(
            "SELECT order_id, order_number, status, currency, subtotal, shipping_total,"
            " discount_total, total, carrier, tracking_code, tracking_url, estimated_delivery,"
            " placed_at, updated_at FROM orders"
            " WHERE tenant_id = $1 AND contact_id = $2 AND order_number = $3",
            context.tenant_id,
            contact_id,
            data.order_number,
        )
        if order is None:
            raise ToolArgumentsInvalid(
                f"the customer has no order number {data.order_number!r}; ask them to check"
                " the number on their receipt or confirmation email"
            )
        items = await connection.fetch(
            "SELECT sku, name, quantity, unit_price FROM order_items"
            " WHERE tenant_id = $1 AND order_id = $2 ORDER BY line_no LIMIT $3",
            context.tenant_id,
            order["order_id"],
            _MAX_ITEMS,
        )
    return _status(order, items)


def _status(order: Any, items: list[Any]) -> OrderStatusOutput:
    has_tracking = any(order[column] for column in ("carrier", "tracking_code", "tracking_url"))
    return OrderStatusOutput(
        order_number=order["order_number"],
        status=order["status"],
        status_meaning=_STATUS_MEANING[order["status"]],
        placed_at=order["placed_at"],
        updated_at=order["updated_at"],
        items=[
            OrderItem(
                sku=item["sku"],
                name=item["name"],
                quantity=item["quantity"],
                unit_price=item["unit_price"],
                line_total=item["unit_price"] * item["quantity"],
            )
            for item in items
        ],
        currency=order["currency"],
        subtotal=order["subtotal"],
        shipping=order["shipping_total"],
        discount=order["discount_total"],
        total=order["total"],
        tracking=Tracking(
            carrier=order["carrier"], code=order["tracking_code"], url=order["tracking_url"]
        )
        if has_tracking
        else None,
        estimated_delivery=order["estimated_delivery"],
    )


GET_STATUS = Tool(
    name="orders.get_status",
    description=(
        "Look up one of the customer's orders by its number: status, items, totals, carrier"
        " and tracking code, estimated delivery."
    ),
    input_model=OrderStatusInput,
    output_model=OrderStatusOutput,
    run=get_order_status,
    writes=False,
)
