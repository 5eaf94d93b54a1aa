"""The one place where outside numbers become Decimal.

Floats are refused rather than converted: 0.1 as a float is not 0.1, and a
gateway that guesses which decimal the caller meant will one day guess wrong
with real money. Callers pass Decimal, int or a decimal string.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from livegate.model.errors import InvalidOrderError

ZERO = Decimal(0)


def to_decimal(value: object, field: str) -> Decimal:
    if isinstance(value, bool | float):
        raise InvalidOrderError(
            f"{field}={value!r}: pass a Decimal, int or decimal string, not {type(value).__name__}"
        )
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int | str):
        try:
            result = Decimal(value)
        except (InvalidOperation, ValueError):
            raise InvalidOrderError(f"{field}={value!r} is not a number") from None
    else:
        raise InvalidOrderError(f"{field}={value!r}: expected a Decimal, int or decimal string")
    if not result.is_finite():
        shown = value if isinstance(value, Decimal) else repr(value)
        raise InvalidOrderError(f"{field}={shown} is not a finite number")
    return result


def is_multiple(value: Decimal, step: Decimal) -> bool:
    """Exact test, no rounding: 10.015 is not on a 0.01 tick."""
    return step > 0 and value % step == 0
