"""Roles of API keys: each role can do everything the roles below it can."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    officer = "officer"  # score, rank, outcomes
    analyst = "analyst"  # + reports and model information
    admin = "admin"  # + model reload

    @property
    def level(self) -> int:
        return _LEVELS[self]

    def allows(self, needed: Role) -> bool:
        return self.level >= needed.level


_LEVELS = {Role.officer: 1, Role.analyst: 2, Role.admin: 3}


@dataclass(frozen=True)
class Principal:
    """Who is calling: the name and role of the API key used."""

    name: str
    role: Role
    key_id: str = ""
