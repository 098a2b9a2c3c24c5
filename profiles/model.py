"""Risk profiles and watch lists: officer-authored targeting criteria, as data (never code).

A profile is a conjunction of conditions over declaration fields, each one of a small set of
operators; there are no expression strings and nothing is evaluated. A watch list is a named list
of values over one field; profiles reference it with ``in_watch_list``, and a list with its own
``action`` also acts alone. :func:`profiles.validate.validate_profiles` checks both against the
declaration contract; these models only check their own shape.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from features.contracts import NO_NUL_EXPECTED

Operator = Literal["in", "not_in", "prefix", "between", "contains_any", "is_null", "in_watch_list"]
OPERATORS: tuple[str, ...] = ("in", "not_in", "prefix", "between", "contains_any", "is_null", "in_watch_list")
Status = Literal["draft", "active", "retired"]
STATUSES: tuple[str, ...] = ("draft", "active", "retired")
Lane = Literal["red", "yellow"]

_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
# free text: bounded (a 1 MB name or criterion was stored, and the criterion is copied into the rule hits
# of every item it matches) and without NUL (declarations refuse it; a value with one could never match).
# Checked on what comes in, not on definitions read back from the store (``context={"stored": True}``):
# a definition stored before these bounds stays readable.
_LIMITS = {"name": 500, "owner": 500, "added_by": 500, "value": 500, "criterion": 5_000, "reason": 5_000,
           "description": 5_000}
MAX_CONDITIONS = 200


def _bounded(v: Any, info: ValidationInfo) -> Any:
    if (info.context or {}).get("stored") or not isinstance(v, str):
        return v
    limit = _LIMITS[str(info.field_name)]
    if len(v) > limit:
        raise ValueError(f"at most {limit:,} characters (got {len(v):,})")
    if "\x00" in v:
        raise ValueError(f"expected {NO_NUL_EXPECTED}")
    return v


#: the largest version number a store keeps (a PostgreSQL integer column; larger ones were a 500 there)
MAX_VERSION = 2**31 - 1


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class Condition(_Frozen):
    """One test on one field; a profile fires when all its conditions hold.

    ``values`` by operator: ``in``/``not_in`` the values; ``prefix`` HS prefixes of 2-10 digits;
    ``between`` ``[low, high]`` inclusive (numbers or ISO dates; ``null`` leaves an end open);
    ``contains_any`` single words (case-insensitive, whole words of ``goods_description``);
    ``is_null`` and ``in_watch_list`` none (the latter names its list in ``watch_list``).
    A missing value satisfies ``is_null`` only (``not_in`` does not hold for a missing value).
    """

    field: str = Field(min_length=1)
    op: Operator
    values: tuple[Any, ...] = ()
    watch_list: str | None = None


class Action(_Frozen):
    """What a match does: a lane at least as severe as ``lane``, selection, an alert (combinable)."""

    lane: Lane | None = None
    select: bool = False
    alert: bool = False

    @model_validator(mode="after")
    def _at_least_one(self) -> Action:
        if self.lane is None and not self.select and not self.alert:
            raise ValueError("an action needs at least one of lane, select, alert")
        return self


class Profile(_Frozen):
    """One version of a risk profile; ``criterion`` is the reason shown to officers."""

    id: str = Field(pattern=_ID)
    name: str = Field(min_length=1)
    criterion: str = Field(min_length=1)
    conditions: tuple[Condition, ...] = Field(min_length=1)
    action: Action
    valid_from: dt.date
    valid_to: dt.date | None = None  # open-ended when missing
    status: Status = "draft"
    owner: str = Field(min_length=1)
    version: int = Field(default=1, ge=1, le=MAX_VERSION)

    @field_validator("name", "criterion", "owner")
    @classmethod
    def _text(cls, v: Any, info: ValidationInfo) -> Any:
        return _bounded(v, info)

    @field_validator("conditions")
    @classmethod
    def _not_too_many(cls, v: tuple[Condition, ...], info: ValidationInfo) -> tuple[Condition, ...]:
        if not (info.context or {}).get("stored") and len(v) > MAX_CONDITIONS:
            raise ValueError(f"at most {MAX_CONDITIONS} conditions (got {len(v):,})")
        return v

    def content(self) -> dict[str, Any]:
        """Everything a new version is about (all but the version number)."""
        return self.model_dump(mode="json", exclude={"version"})


class WatchEntry(_Frozen):
    """A value on a watch list; it stops matching after ``expires`` (inclusive; none = never)."""

    value: str = Field(min_length=1)
    reason: str = Field(min_length=1)
    added_by: str = Field(min_length=1)
    expires: dt.date | None = None

    @field_validator("value", "reason", "added_by")
    @classmethod
    def _text(cls, v: Any, info: ValidationInfo) -> Any:
        return _bounded(v, info)


class WatchList(_Frozen):
    """A named list of values of one field (on an HS field the values are prefixes)."""

    name: str = Field(pattern=_ID)
    field: str = Field(min_length=1)
    description: str = ""
    entries: tuple[WatchEntry, ...] = ()
    action: Action | None = None  # set: the list acts on its own, like a one-condition profile
    version: int = Field(default=1, ge=1, le=MAX_VERSION)

    @field_validator("description")
    @classmethod
    def _text(cls, v: Any, info: ValidationInfo) -> Any:
        return _bounded(v, info)

    def content(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"version"})
