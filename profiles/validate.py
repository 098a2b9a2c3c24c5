"""Profiles and watch lists checked against the declaration contract, the same field definitions
the data is validated with (``features.contracts.DECLARATION`` plus a mapping's extra columns).

Validation is all-or-nothing: every problem of every profile is collected into one
:class:`ProfileError`, and a caller stores nothing unless the whole batch passes.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from features.contracts import DECLARATION, FieldSpec
from features.reference import country_codes
from profiles.model import Condition, Profile, WatchList

# extra (mapped) columns have no contract spec: their kind is what the mapping says they hold
EXTRA_STRING, EXTRA_NUMBER = "extra", "extra_number"

_OPS_BY_KIND: dict[str, frozenset[str]] = {
    "id": frozenset({"in", "not_in", "is_null", "in_watch_list"}),
    "str": frozenset({"in", "not_in", "contains_any", "is_null", "in_watch_list"}),
    "date": frozenset({"between", "is_null"}),
    "country": frozenset({"in", "not_in", "is_null", "in_watch_list"}),
    "countries": frozenset({"in", "not_in", "is_null", "in_watch_list"}),
    "hs": frozenset({"in", "not_in", "prefix", "is_null", "in_watch_list"}),
    "category": frozenset({"in", "not_in", "is_null", "in_watch_list"}),
    "int": frozenset({"in", "not_in", "between", "is_null"}),
    "float": frozenset({"in", "not_in", "between", "is_null"}),
    "bool": frozenset({"in", "is_null"}),
    EXTRA_STRING: frozenset({"in", "not_in", "contains_any", "is_null", "in_watch_list"}),
    EXTRA_NUMBER: frozenset({"in", "not_in", "between", "is_null"}),
}
WATCHABLE_KINDS = frozenset(k for k, ops in _OPS_BY_KIND.items() if "in_watch_list" in ops)
_WORD = re.compile(r"\w+")
_HS_PREFIX = re.compile(r"[0-9]{2,10}", re.ASCII)


@dataclass(frozen=True)
class ProfileProblem:
    """One problem: which profile (or watch list), which condition (0-based) and field, and what."""

    profile: str
    message: str
    condition: int | None = None
    field: str | None = None
    kind: str = "profile"  # or "watch list"

    def __str__(self) -> str:
        where = f"{self.kind} '{self.profile}'"
        if self.condition is not None:
            where += f", condition {self.condition}"
        if self.field is not None:
            where += f" (field '{self.field}')"
        return f"{where}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "id": self.profile, "condition": self.condition, "field": self.field,
                "problem": self.message}


class ProfileError(ValueError):
    """Profiles or watch lists that break the contract; ``problems`` lists every one."""

    def __init__(self, problems: Sequence[ProfileProblem]):
        self.problems = list(problems)
        super().__init__("; ".join(str(p) for p in self.problems))


@dataclass(frozen=True)
class FieldKinds:
    """The kind of every field a condition may name: the declaration contract plus extra columns."""

    kinds: Mapping[str, str]
    specs: Mapping[str, FieldSpec]

    def kind(self, name: str) -> str | None:
        return self.kinds.get(name)


def field_kinds(extra_columns: Mapping[str, str] | Iterable[str] = ()) -> FieldKinds:
    """Contract fields plus a mapping's extra columns (``{name: "number"|"string"}`` or just names,
    taken as strings)."""
    specs = {f.name: f for f in DECLARATION.fields}
    kinds: dict[str, str] = {f.name: f.kind for f in DECLARATION.fields}
    extras = extra_columns.items() if isinstance(extra_columns, Mapping) else ((c, "string") for c in extra_columns)
    for name, kind in extras:
        if name not in kinds:
            kinds[name] = EXTRA_NUMBER if kind in ("number", "float", "int", EXTRA_NUMBER) else EXTRA_STRING
    return FieldKinds(kinds, specs)


class _Bad(ValueError):
    pass


def _as_text(v: Any) -> str:
    if v is None or isinstance(v, bool | dict | list | tuple):
        raise _Bad(f"{v!r} is not a text value")
    s = str(v).strip()
    if not s:
        raise _Bad("an empty value")
    return s


def _as_number(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float | str):
        raise _Bad(f"{v!r} is not a number")
    try:
        x = float(v)
    except (ValueError, OverflowError) as exc:  # OverflowError: an integer past any float (10**400)
        raise _Bad(f"{_short_repr(v)} is not a number") from exc
    if not math.isfinite(x):  # a NaN bound compared false with everything: 'between' matched every row
        raise _Bad(f"{_short_repr(v)} is not a finite number")
    return x


def _short_repr(v: Any) -> str:
    r = repr(v)
    return r if len(r) <= 40 else f"{r[:20]}…({len(r)} characters)"


def _as_date(v: Any) -> dt.date:
    if isinstance(v, dt.datetime):
        return v.date()
    if isinstance(v, dt.date):
        return v
    if isinstance(v, str):
        try:
            return dt.date.fromisoformat(v.strip())
        except ValueError:
            pass
    raise _Bad(f"{v!r} is not a date (YYYY-MM-DD)")


def hs_prefix(v: Any) -> str:
    """An HS prefix: 2 to 10 ASCII digits (leading zeros are significant, so numbers are refused)."""
    if not isinstance(v, str) or not _HS_PREFIX.fullmatch(v.strip()):
        raise _Bad(f"{v!r} is not an HS prefix of 2 to 10 digits (quote it in YAML to keep leading zeros)")
    return v.strip()


def normalize_value(kind: str, spec: FieldSpec | None, v: Any) -> Any:
    """A condition or watch-list value in the canonical form the validated data uses."""
    if kind == "hs":
        s = hs_prefix(v)
        lo, hi = spec.digits if spec else (6, 10)
        if not lo <= len(s) <= hi:
            raise _Bad(f"{v!r} is not an HS code of {lo} to {hi} digits (use prefix for shorter codes)")
        return s
    if kind in ("country", "countries"):
        s = _as_text(v).upper()
        if s not in country_codes():
            raise _Bad(f"{v!r} is not an ISO 3166 alpha-2 country code")
        return s
    if kind == "category":
        s = _as_text(v).lower()
        canon = {c.lower(): c for c in (spec.vocab if spec else ())}
        if canon and s not in canon:
            raise _Bad(f"{v!r} is not one of {list(canon.values())}")
        return canon.get(s, s)
    if kind in ("int", "float", EXTRA_NUMBER):
        return _as_number(v)
    if kind == "date":
        return _as_date(v)
    if kind == "bool":
        if not isinstance(v, bool):
            raise _Bad(f"{v!r} is not true or false")
        return v
    return _as_text(v)


def _between(kind: str, spec: FieldSpec | None, values: tuple[Any, ...]) -> tuple[Any, ...]:
    if len(values) != 2:
        raise _Bad(f"between takes [low, high], got {len(values)} values")
    low, high = (None if v is None else normalize_value(kind, spec, v) for v in values)
    if low is None and high is None:
        raise _Bad("between needs at least one end")
    if low is not None and high is not None and low > high:
        raise _Bad(f"between: low {low} is above high {high}")
    return (low, high)


def _condition_values(c: Condition, kind: str, spec: FieldSpec | None,
                      watchlists: Mapping[str, WatchList], kinds: FieldKinds) -> Condition:
    if c.op not in _OPS_BY_KIND[kind]:
        allowed = ", ".join(sorted(_OPS_BY_KIND[kind]))
        raise _Bad(f"operator '{c.op}' does not fit a {kind} field (allowed: {allowed})")
    if c.op == "in_watch_list":
        wl = watchlists.get(c.watch_list or "")
        if wl is None:
            raise _Bad(f"unknown watch list {c.watch_list!r}")
        if kinds.kind(wl.field) != kind:
            raise _Bad(f"watch list '{wl.name}' is over '{wl.field}' ({kinds.kind(wl.field)}), not a {kind} field")
        if c.values:
            raise _Bad("in_watch_list takes no values")
        return c
    if c.watch_list is not None:
        raise _Bad(f"watch_list is only for in_watch_list, not {c.op}")
    if c.op == "is_null":
        if c.values:
            raise _Bad("is_null takes no values")
        return c
    if not c.values:
        raise _Bad(f"{c.op} needs at least one value")
    if c.op == "between":
        return c.model_copy(update={"values": _between(kind, spec, c.values)})
    if c.op == "prefix":
        return c.model_copy(update={"values": tuple(dict.fromkeys(hs_prefix(v) for v in c.values))})
    if c.op == "contains_any":
        words = tuple(dict.fromkeys(_as_text(v).lower() for v in c.values))
        bad = [w for w in words if not _WORD.fullmatch(w)]
        if bad:
            raise _Bad(f"contains_any takes single words (letters and digits), got {bad}")
        return c.model_copy(update={"values": words})
    return c.model_copy(update={"values": tuple(dict.fromkeys(normalize_value(kind, spec, v) for v in c.values))})


def _check_profile(p: Profile, kinds: FieldKinds, watchlists: Mapping[str, WatchList],
                   problems: list[ProfileProblem]) -> Profile:
    if p.valid_to is not None and p.valid_to < p.valid_from:
        problems.append(ProfileProblem(p.id, f"valid_to {p.valid_to} is before valid_from {p.valid_from}"))
    conditions = _check_conditions(p.id, enumerate(p.conditions), kinds, watchlists, problems)
    return p.model_copy(update={"conditions": tuple(conditions)})


def _check_conditions(ident: str, conditions: Iterable[tuple[int, Condition]], kinds: FieldKinds,
                      watchlists: Mapping[str, WatchList], problems: list[ProfileProblem]) -> list[Condition]:
    """Each condition against its field (numbered as in the profile): the ones that hold, problems for the rest."""
    out = []
    for i, c in conditions:
        kind = kinds.kind(c.field)
        if kind is None:
            problems.append(ProfileProblem(ident, "unknown field (not in the declaration contract or the "
                                                  "mapping's extra columns)", i, c.field))
            continue
        try:
            out.append(_condition_values(c, kind, kinds.specs.get(c.field), watchlists, kinds))
        except _Bad as exc:
            problems.append(ProfileProblem(ident, str(exc), i, c.field))
    return out


def _readable_conditions(doc: Any) -> list[tuple[int, Condition]]:
    """The conditions of a profile that did not parse (a date in the wrong format) that parse on their own,
    with their numbers: checked too, so that a form shows every problem at once, not the date's first."""
    conds = doc.get("conditions") if isinstance(doc, Mapping) else None
    out = []
    for i, c in enumerate(conds if isinstance(conds, Sequence) and not isinstance(conds, str | bytes) else ()):
        try:
            out.append((i, c if isinstance(c, Condition) else Condition.model_validate(c)))
        except ValidationError:
            continue  # its own problems are among the profile's
    return out


def _check_watchlist(w: WatchList, kinds: FieldKinds, problems: list[ProfileProblem]) -> WatchList:
    kind = kinds.kind(w.field)
    if kind is None or kind not in WATCHABLE_KINDS:
        what = "unknown field" if kind is None else f"a {kind} field cannot hold a watch list"
        problems.append(ProfileProblem(w.name, what, None, w.field, "watch list"))
        return w
    spec = kinds.specs.get(w.field)
    entries = []
    for i, e in enumerate(w.entries):
        try:
            # an HS watch list holds prefixes (a heading or chapter), every other list exact values
            value = hs_prefix(e.value) if kind == "hs" else normalize_value(kind, spec, e.value)
            entries.append(e if value == e.value else e.model_copy(update={"value": value}))
        except _Bad as exc:
            problems.append(ProfileProblem(w.name, f"entry {i}: {exc}", None, w.field, "watch list"))
    return w if len(entries) == len(w.entries) and all(
        a is b for a, b in zip(entries, w.entries, strict=True)) else w.model_copy(update={"entries": tuple(entries)})


def _date_message(err: Mapping[str, Any]) -> str | None:
    """A date pydantic cannot read, in the declaration contract's words (pydantic's were "Input should be a
    valid date or datetime, invalid character in year")."""
    if not str(err.get("type", "")).startswith("date_") or not isinstance(err.get("input"), str):
        return None
    return f"{err['input'][:40]!r} is not a date: expected YYYY-MM-DD"


def _parse(docs: Sequence[Any], model: type[Profile] | type[WatchList], key: str, kind: str,
           problems: list[ProfileProblem], failed: list[tuple[str, Any]] | None = None) -> list[Any]:
    """The documents as ``model``s; the problems of those that do not parse (and, in ``failed``, their
    identifier and document)."""
    out = []
    for i, d in enumerate(docs):
        if isinstance(d, model):
            out.append(d)
            continue
        try:
            out.append(model.model_validate(d))
        except ValidationError as exc:
            ident = str(d.get(key, f"#{i}")) if isinstance(d, Mapping) else f"#{i}"
            if failed is not None:
                failed.append((ident, d))
            for err in exc.errors():
                loc = err["loc"]
                cond = loc[1] if len(loc) > 1 and loc[0] == "conditions" and isinstance(loc[1], int) else None
                field = ".".join(str(x) for x in loc)
                message = _date_message(err) or str(err["msg"]).removeprefix("Value error, ")
                problems.append(ProfileProblem(ident, message, cond, field or None, kind))
    return out


def validate_profiles(profiles: Sequence[Profile | Mapping[str, Any]],
                      watchlists: Sequence[WatchList | Mapping[str, Any]] = (),
                      extra_columns: Mapping[str, str] | Iterable[str] = (),
                      stored_watchlists: Sequence[WatchList] = ()) -> tuple[list[Profile], list[WatchList]]:
    """Profiles and watch lists (models or plain dicts, e.g. from YAML or a request body) checked
    and put in canonical form (country codes upper case, categories spelled as in the contract).

    ``stored_watchlists`` are lists already stored that profiles may reference too. Raises
    :class:`ProfileError` with every problem when any profile or list is invalid, so the caller
    stores nothing.
    """
    problems: list[ProfileProblem] = []
    kinds = field_kinds(extra_columns)
    parsed_lists: list[WatchList] = _parse(watchlists, WatchList, "name", "watch list", problems)
    failed: list[tuple[str, Any]] = []
    parsed: list[Profile] = _parse(profiles, Profile, "id", "profile", problems, failed)
    lists = [_check_watchlist(w, kinds, problems) for w in parsed_lists]
    by_name: dict[str, WatchList] = {w.name: w for w in (*stored_watchlists, *lists)}
    out = [_check_profile(p, kinds, by_name, problems) for p in parsed]
    for ident, doc in failed:
        _check_conditions(ident, _readable_conditions(doc), kinds, by_name, problems)
    _check_unique([(p.id, p.version) for p in out], "profile", problems)
    _check_unique([(w.name, w.version) for w in lists], "watch list", problems)
    if problems:
        raise ProfileError(problems)
    return out, lists


def _check_unique(keys: list[tuple[str, int]], kind: str, problems: list[ProfileProblem]) -> None:
    seen: set[tuple[str, int]] = set()
    for ident, version in keys:
        if (ident, version) in seen:
            problems.append(ProfileProblem(ident, f"version {version} appears twice", kind=kind))
        seen.add((ident, version))
