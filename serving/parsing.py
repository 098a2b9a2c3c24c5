"""Request bodies → validated plain records, with every bad field named (and its item index).

Bodies are parsed here rather than by FastAPI so that a list is counted before it is validated
(too many items is refused cheaply), and so that errors come out as
``{"item": 3, "field": "hs_code", "message": ..., "value": ...}`` instead of pydantic's union
locations. Validation uses the item models of the request models in :mod:`serving.schemas` (what the
OpenAPI document shows), which are the contract's models (:func:`features.contracts.pydantic_model`,
the same specs as the file validator). No FastAPI here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from typing import Any

import pydantic_core
from pydantic import BaseModel, TypeAdapter, ValidationError

from features.contracts import CONTRACTS, NO_NUL_EXPECTED, NO_NUL_PATTERN, rule_violations
from serving import schemas
from serving.errors import FieldProblem, InputError, MalformedBody, TooManyItems

# contract → (one item, a list of items) as the request models declare them
_ITEM_TYPES: dict[str, tuple[type[BaseModel], Any]] = {
    "declaration": (schemas.Declaration, schemas.DeclarationList),
    "outcome": (schemas.Outcome, schemas.OutcomeList),
}

_VALUE_CHARS = 200
# the location pydantic gives a branch of a union of plain types (``capacity.float`` of ``str | float``)
_BRANCH_TAGS = frozenset({"str", "float", "int", "bool", "list", "dict", "none", "date", "datetime"})


def parse_json(body: bytes) -> Any:
    if not body.strip():
        raise MalformedBody([FieldProblem("body", "the request body is empty; send JSON")])
    try:
        return pydantic_core.from_json(body, allow_inf_nan=False)
    except ValueError as exc:
        raise MalformedBody([FieldProblem("body", f"malformed JSON: {exc}")]) from None


@cache
def _adapters(contract: str) -> tuple[type[BaseModel], TypeAdapter]:
    model, many = _ITEM_TYPES[contract]
    return model, TypeAdapter(many)


def _json_value(v: Any) -> Any:
    """The bad value as an error body can quote it: short, and never a non-finite number (1e400 → inf)."""
    if isinstance(v, str) and len(v) > _VALUE_CHARS:
        return v[:_VALUE_CHARS] + "…"
    try:
        text = json.dumps(v, allow_nan=False)
    except (TypeError, ValueError):
        return str(v)[:_VALUE_CHARS]
    return v if len(text) <= _VALUE_CHARS else text[:_VALUE_CHARS] + "…"


def problems_from(exc: ValidationError, prefix: tuple[str | int, ...] = (), indexed: bool = False,
                  item_name: str = "item") -> list[FieldProblem]:
    """pydantic errors → field problems; with ``indexed`` the first location is the item index."""
    out: list[FieldProblem] = []
    branches: set[tuple[int | None, str]] = set()  # (item, field) of problems of a union's branches
    for err in exc.errors(include_url=False):
        loc = list(err["loc"])
        item: int | None = None
        if indexed and loc and isinstance(loc[0], int):
            item = int(loc.pop(0))
        # drop union branch tags such as 'list[str]', 'function-before[...]' or the 'float' of str | float
        # (never the first part: that one is a field of the request)
        parts = [str(p) for j, p in enumerate(loc)
                 if isinstance(p, int) or not (j and ("[" in str(p) or str(p) in _BRANCH_TAGS))]
        tagged = len(parts) < len(loc)
        field = ".".join([*map(str, prefix), *parts]) or (item_name if indexed else "body")
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "string_pattern_mismatch" and (err.get("ctx") or {}).get("pattern") == NO_NUL_PATTERN:
            msg = f"expected {NO_NUL_EXPECTED}"
        missing = err["type"] == "missing"
        if missing:
            msg = "field required"
        if tagged and (item, field) in branches:  # the value fits no branch: one problem, each branch's words
            same = next(p for p in out if (p.item, p.field) == (item, field))
            if msg not in same.message:
                same.message = f"{same.message}, or {msg[:1].lower()}{msg[1:]}"
            continue
        if tagged:
            branches.add((item, field))
        out.append(FieldProblem(field, msg, item=item, value=None if missing else _json_value(err.get("input")),
                                has_value=not missing))
    return out


def _type_problems(items: list[Any], contract: str, prefix: tuple[str, ...], indexed: bool) -> list[FieldProblem]:
    """Fields of a type a contract validator cannot even look at (dates that are not strings, ...)."""
    out = []
    spec_kinds = {f.name: f.kind for f in CONTRACTS[contract].fields}
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            continue
        for name, kind in spec_kinds.items():
            v = item.get(name)
            if v is None:
                continue
            bad = ((kind == "date" and not isinstance(v, str))
                   or (kind == "countries" and not (isinstance(v, str)
                                                    or (isinstance(v, list) and all(isinstance(x, str) for x in v)))))
            if bad:
                expected = "a date string (YYYY-MM-DD)" if kind == "date" else "a list of ISO alpha-2 codes"
                out.append(FieldProblem(".".join([*prefix, name]), f"expected {expected}",
                                        item=i if indexed else None, value=_json_value(v), has_value=True))
    return out


def _all_problems(data: list[Any], contract: str, prefix: tuple[str, ...],
                  list_adapter: TypeAdapter) -> list[FieldProblem]:
    """Type problems first, then the other items validated on their own (their indices kept)."""
    problems = _type_problems(data, contract, prefix, True)
    skip = {p.item for p in problems}
    rest = [i for i in range(len(data)) if i not in skip]
    try:
        list_adapter.validate_python([data[i] for i in rest])
    except ValidationError as exc:
        for p in problems_from(exc, prefix, indexed=True, item_name=contract):
            p.item = rest[p.item] if p.item is not None else None
            problems.append(p)
    except TypeError:
        problems.append(FieldProblem(".".join(prefix) or "body", f"items that are not {contract} objects"))
    problems.sort(key=lambda p: (p.item if p.item is not None else -1))
    return problems


def _checked_rules(records: list[dict[str, Any]], contract: str, prefix: tuple[str, ...],
                   indexed: bool) -> list[dict[str, Any]]:
    """The contract's rules across fields (a hit needs an inspection, ...), as the file validator checks them."""
    broken = rule_violations(CONTRACTS[contract], records)
    if broken:
        raise InputError([FieldProblem(".".join([*prefix, rule.field]), f"expected {rule.expected}",
                                       item=i if indexed else None, value=_json_value(records[i].get(rule.field)),
                                       has_value=True) for i, rule in broken])
    return records


def _unique_ids(records: list[dict[str, Any]], prefix: tuple[str, ...]) -> None:
    """Declarations of one request have distinct ids, as in a file (row problem "expected a unique key"):
    the same id twice came back twice, once selected and once not, and the audit log kept both."""
    key = CONTRACTS["declaration"].key
    first: dict[Any, int] = {}
    problems = []
    for i, r in enumerate(records):
        j = first.setdefault(r[key], i)
        if j != i:
            problems.append(FieldProblem(".".join([*prefix, key]), f"expected a unique key (the same as item {j})",
                                         item=i, value=_json_value(r[key]), has_value=True))
    if problems:
        raise InputError(problems)


def validate_records(data: Any, contract: str, max_items: int, prefix: tuple[str, ...] = (),
                     allow_single: bool = True) -> tuple[list[dict[str, Any]], bool]:
    """One object or a list of objects in ``contract`` → (plain records, was a list)."""
    model, list_adapter = _adapters(contract)
    where = ".".join(prefix) or "body"
    if isinstance(data, list):
        if len(data) > max_items:
            raise TooManyItems([FieldProblem(where, f"{len(data)} items; at most {max_items} per request")],
                               "too many items")
        if not data:
            raise InputError([FieldProblem(where, f"an empty list; send at least one {contract}")])
        try:
            validated = list_adapter.validate_python(data)
        except ValidationError as exc:
            raise InputError(problems_from(exc, prefix, indexed=True, item_name=contract)) from None
        except TypeError:
            raise InputError(_all_problems(data, contract, prefix, list_adapter)) from None
        records = _checked_rules(list_adapter.dump_python(validated), contract, prefix, True)
        if contract == "declaration":
            _unique_ids(records, prefix)
        return records, True
    if isinstance(data, Mapping) and allow_single:
        try:
            one = model.model_validate(data)
        except ValidationError as exc:
            raise InputError(problems_from(exc, prefix)) from None
        except TypeError:
            raise InputError(_type_problems([data], contract, prefix, False)
                             or [FieldProblem(where, f"not a {contract} object")]) from None
        return _checked_rules([one.model_dump()], contract, prefix, False), False
    expected = f"a {contract} object or a list of them" if allow_single else f"a list of {contract} objects"
    raise InputError([FieldProblem(where, f"expected {expected}", value=_json_value(data), has_value=True)])


def validate_object(data: Any, model: type[BaseModel], exclude: tuple[str, ...] = ()) -> BaseModel:
    """A JSON object of request parameters (``exclude`` keys are validated elsewhere)."""
    if not isinstance(data, Mapping):
        raise InputError([FieldProblem("body", "expected a JSON object", value=_json_value(data), has_value=True)])
    try:
        return model.model_validate({k: v for k, v in data.items() if k not in exclude})
    except ValidationError as exc:
        raise InputError(problems_from(exc)) from None
