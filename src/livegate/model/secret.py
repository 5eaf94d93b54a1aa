"""A secret value that does not leak by accident.

Its repr and str are masked, it refuses to be pickled, and msgspec cannot
encode it (it is not a struct or a builtin), so a Secret that strays into
a log line, an exception message, the journal or a config snapshot shows
as `***` or fails loudly instead of printing the key. The value comes out
only through `reveal()`, at the one place that sends it to the broker.
"""

from __future__ import annotations

from typing import NoReturn


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not value:
            raise ValueError("a secret cannot be empty")
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret cannot be pickled")
