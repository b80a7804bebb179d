"""A str-valued enum that prints as its value (in f-strings too), like Python 3.11's enum.StrEnum, for
Python 3.10. The lowest room has it so every room can use it."""

from __future__ import annotations

import enum


class StrEnum(str, enum.Enum):
    def __str__(self) -> str:
        return str(self.value)
