"""Typed reading of a Twilio webhook form; every failure names the form field."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from pydantic import JsonValue, ValidationError

from channels.inbound import PayloadInvalid
from events.types import ContactIdentity, DeliveryError

# The contract's bound on provider ids (``ProviderMessageId``).
ID_MAX_CHARS = 256
# ``whatsapp:+5511…``, ``messenger:…``: the channel Twilio carried the message on.
_CHANNEL_PREFIX = re.compile(r"^[a-z]+:")
_E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")


class TwilioForm:
    """The posted parameters by name; a repeated name keeps its first value."""

    __slots__ = ("_values",)

    def __init__(self, fields: Sequence[tuple[str, str]]) -> None:
        values: dict[str, str] = {}
        for name, value in fields:
            values.setdefault(name, value)
        self._values = values

    def get(self, name: str) -> str | None:
        """The value of ``name``, or None when absent or empty."""
        return self._values.get(name) or None

    def text(self, name: str) -> str:
        """The non-empty value of ``name``; required."""
        value = self.get(name)
        if value is None:
            raise PayloadInvalid(name, f"{name} is missing from the form")
        return value

    def ident(self, name: str) -> str:
        """The provider id in ``name``: required, within the contract's bound."""
        value = self.text(name)
        if len(value) > ID_MAX_CHARS:
            raise PayloadInvalid(name, f"{name} is longer than {ID_MAX_CHARS} characters")
        return value

    def opt_ident(self, name: str) -> str | None:
        """The provider id in ``name``, or None when absent."""
        return self.ident(name) if self.get(name) else None

    def count(self, name: str) -> int:
        """The non-negative integer in ``name``; zero when absent."""
        value = self.get(name)
        if value is None:
            return 0
        if not value.isascii() or not value.isdigit() or len(value) > 4:
            raise PayloadInvalid(name, f"{name} is {value[:32]!r}, not a small whole number")
        return int(value)

    def number(self, name: str) -> float:
        """The finite decimal number in ``name``; required."""
        value = self.text(name)
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise PayloadInvalid(name, f"{name} is {value[:32]!r}, not a finite number")
        return number

    def address(self, name: str) -> str:
        """The address in ``name`` as Twilio wrote it, channel prefix kept: ``whatsapp:+55…``.

        The prefix is the medium: the same number writes as ``+55…`` by SMS and as
        ``whatsapp:+55…`` on WhatsApp, two conversations, each answered on its own medium.
        """
        value = self.ident(name)
        if not without_medium(value):
            raise PayloadInvalid(name, f"{name} holds a channel prefix and no address")
        return value

    def opt_address(self, name: str) -> str | None:
        """Like ``address``, or None when absent."""
        return self.address(name) if self.get(name) else None

    def contact(self, address: str) -> ContactIdentity:
        """The sender: its address (medium prefix kept), phone number, WhatsApp profile name."""
        number = without_medium(address)
        try:
            return ContactIdentity(
                provider_user_id=address,
                phone=number if _E164.match(number) else None,
                display_name=self.get("ProfileName"),
            )
        except ValidationError:
            raise PayloadInvalid(
                "ProfileName", "ProfileName is longer than 256 characters"
            ) from None

    def delivery_error(self) -> DeliveryError | None:
        """The failure a status callback reports, when it reports one."""
        code = self.get("ErrorCode")
        if code is None:
            return None
        try:
            return DeliveryError(code=code, title=self.get("ErrorMessage"))
        except ValidationError as error:
            field = "ErrorCode" if error.errors()[0]["loc"] == ("code",) else "ErrorMessage"
            raise PayloadInvalid(field, f"{field} is longer than the contract allows") from None

    def raw(self) -> dict[str, JsonValue]:
        """Every parameter, to keep a message we do not model as it came."""
        return dict(self._values)


def without_medium(address: str) -> str:
    """``address`` without its channel prefix: ``whatsapp:+55…`` → ``+55…``."""
    return _CHANNEL_PREFIX.sub("", address, count=1)
