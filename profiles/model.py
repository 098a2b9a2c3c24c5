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

from pydantic import BaseModel, ConfigDict, Field, model_validator

from features.contracts import NO_NUL_PATTERN

Operator = Literal["in", "not_in", "prefix", "between", "contains_any", "is_null", "in_watch_list"]
OPERATORS: tuple[str, ...] = ("in", "not_in", "prefix", "between", "contains_any", "is_null", "in_watch_list")
Status = Literal["draft", "active", "retired"]
STATUSES: tuple[str, ...] = ("draft", "active", "retired")
Lane = Literal["red", "yellow"]

_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
# free text: bounded (a 1 MB name or criterion was stored, and the criterion is copied into the rule hits
# of every item it matches) and without NUL (declarations refuse it; a value with one could never match)
_NAME = 500
_TEXT = 5_000


def _text(limit: int, min_length: int = 1) -> Any:
    return Field(min_length=min_length, max_length=limit, pattern=NO_NUL_PATTERN)


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
    name: str = _text(_NAME)
    criterion: str = _text(_TEXT)
    conditions: tuple[Condition, ...] = Field(min_length=1, max_length=200)
    action: Action
    valid_from: dt.date
    valid_to: dt.date | None = None  # open-ended when missing
    status: Status = "draft"
    owner: str = _text(_NAME)
    version: int = Field(default=1, ge=1)

    def content(self) -> dict[str, Any]:
        """Everything a new version is about (all but the version number)."""
        return self.model_dump(mode="json", exclude={"version"})


class WatchEntry(_Frozen):
    """A value on a watch list; it stops matching after ``expires`` (inclusive; none = never)."""

    value: str = _text(_NAME)
    reason: str = _text(_TEXT)
    added_by: str = _text(_NAME)
    expires: dt.date | None = None


class WatchList(_Frozen):
    """A named list of values of one field (on an HS field the values are prefixes)."""

    name: str = Field(pattern=_ID)
    field: str = Field(min_length=1)
    description: str = Field(default="", max_length=_TEXT, pattern=NO_NUL_PATTERN)
    entries: tuple[WatchEntry, ...] = ()
    action: Action | None = None  # set: the list acts on its own, like a one-condition profile
    version: int = Field(default=1, ge=1)

    def content(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"version"})
