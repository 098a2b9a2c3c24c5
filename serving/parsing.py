"""Request bodies → validated plain records, with every bad field named (and its item index).

Bodies are parsed here rather than by FastAPI so that a list is counted before it is validated
(too many items is refused cheaply), and so that errors come out as
``{"item": 3, "field": "hs_code", "message": ..., "value": ...}`` instead of pydantic's union
locations. Validation uses the item models of the request models in :mod:`serving.schemas` (what the
OpenAPI document shows), which are the contract's models (:func:`features.contracts.pydantic_model`,
the same specs as the file validator). An object giving a key twice is a 400 naming where it is
(``from_json`` keeps the last value without a word). No FastAPI here.
"""

from __future__ import annotations

import difflib
import json
import re
from collections import Counter
from collections.abc import Mapping
from functools import cache
from typing import Any

import numpy as np
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
    """A request body → JSON values; malformed JSON, or an object holding a key twice, is a 400."""
    if not body.strip():
        raise MalformedBody([FieldProblem("body", "the request body is empty; send JSON")])
    try:
        data = pydantic_core.from_json(body, allow_inf_nan=False)
    except ValueError as exc:
        if not body.startswith(_UTF8_BOM):
            raise MalformedBody([FieldProblem("body", f"malformed JSON: {exc}{_encoding_hint(body)}")]) from None
        # a UTF-8 byte order mark (PowerShell 5 writes one): RFC 8259 lets a parser ignore it, so it is
        body = body[len(_UTF8_BOM):]
        try:
            data = pydantic_core.from_json(body, allow_inf_nan=False)
        except ValueError as exc2:
            raise MalformedBody([FieldProblem("body", f"malformed JSON (after its byte order mark): {exc2}")]) from None
    if _may_repeat_a_key(body, data):
        repeated = _repeated_keys(body)
        if repeated:
            raise MalformedBody(repeated)
    return data


_UTF8_BOM = b"\xef\xbb\xbf"


def _encoding_hint(body: bytes) -> str:
    """What to do about a body in UTF-16 or UTF-32 (a NUL among its first bytes, or their byte order mark),
    which JSON over HTTP never is; told on the error path only."""
    if body[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in body[:4]:
        return " (the body looks like UTF-16 or UTF-32: send it as UTF-8)"
    return ""


_COUNT_WITH_NUMPY = 4096  # bytes from which numpy counts faster (450 kB: 40 µs against bytes.count's 220 µs)
_WALK_BEFORE_COUNTING = 256  # values a level's objects hold, from which counting key colons costs less than a walk
_KEY_COLON = re.compile(rb'"[ \t\n\r]*:')  # a key's closing quote, then its colon
_WHITESPACE = np.zeros(256, dtype=bool)
_WHITESPACE[list(b" \t\n\r")] = True


def _may_repeat_a_key(body: bytes, data: Any) -> bool:
    """False when no object of ``body`` can hold a key twice, told from counts (one declaration: < 0.5 µs).

    ``from_json`` keeps the last of a repeated key, so the parsed objects hold fewer keys than the text
    gives. Each key of the text is followed by a colon: the text's colons are counted (strings may hold
    more), and once the parsed objects' keys are as many, none is missing, so none was repeated. The
    objects are summed breadth first and only as deep as keys are still missing (a list of declarations:
    one level). When a string holds colons (a time, "note: ..."), only the colons after a closing quote
    are counted (:func:`_key_colons`); keys still missing then are decided by :func:`_repeated_keys`."""
    codes = np.frombuffer(body, dtype=np.uint8) if len(body) >= _COUNT_WITH_NUMPY else None
    colons = body.count(b":") if codes is None else int(np.count_nonzero(codes == ord(":")))
    if type(data) is dict and len(data) == colons:  # one object holding no other: a declaration
        return False
    keys, bound, counted = 0, colons, False
    level = [data]
    while level:
        objects = [node for node in level if type(node) is dict]  # from_json gives plain dicts and lists
        found = sum(map(len, objects))
        keys += found
        if keys >= bound:
            return False
        if found >= _WALK_BEFORE_COUNTING and not counted:
            bound, counted = _key_colons(body, codes), True
            if keys >= bound:
                return False
        level = [v for node in level for v in (node.values() if type(node) is dict else node)
                 if type(v) is dict or type(v) is list]
    return keys < (bound if counted else _key_colons(body, codes))


def _key_colons(body: bytes, codes: Any) -> int:
    """At least the number of keys in ``body``: its colons after a quote and any whitespace (a string holds
    such a colon only after an escaped quote). numpy looks back over at most four whitespace bytes and
    counts the colons still behind whitespace then (so a long run of spaces costs no more time)."""
    if codes is None:
        return len(_KEY_COLON.findall(body))
    before = np.flatnonzero(codes == ord(":")) - 1
    before = before[before >= 0]
    n = 0
    for _ in range(4):
        seen = codes[before]
        n += int(np.count_nonzero(seen == ord('"')))
        before = before[_WHITESPACE[seen]] - 1
        before = before[before >= 0]
        if not before.size:
            break
    return n + before.size


def _repeated_keys(body: bytes) -> list[FieldProblem]:
    """Every key an object of ``body`` holds more than once, named by its place (item index and key path).

    The exact check: the body read again keeping each object's pairs (values are not needed: numbers are
    not even converted, so digits past Python's int limit are no error here)."""
    repeats: dict[int, list[str]] = {}  # id of an object holding a key twice → those keys

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(items)
        if len(obj) < len(items):
            counts = Counter(k for k, _ in items)
            repeats[id(obj)] = [k for k, n in counts.items() if n > 1]
        return obj

    try:
        tree = json.loads(body, object_pairs_hook=pairs, parse_int=_nothing, parse_float=_nothing,
                          parse_constant=_nothing)
    except (ValueError, RecursionError):  # from_json read it: never expected
        return []
    if not repeats:
        return []
    out: list[FieldProblem] = []
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(tree, ())]
    while stack:  # the objects are alive in ``tree``, so their ids are still theirs
        node, path = stack.pop()
        if isinstance(node, dict):
            for key in repeats.get(id(node), ()):
                out.append(_repeated_key_problem((*path, key)))
            stack.extend((v, (*path, k)) for k, v in reversed(node.items()) if isinstance(v, dict | list))
        elif isinstance(node, list):
            stack.extend((v, (*path, i)) for i, v in reversed(list(enumerate(node))) if isinstance(v, dict | list))
    return out


def _nothing(_text: str) -> None:
    return None


def _repeated_key_problem(path: tuple[str | int, ...]) -> FieldProblem:
    """``(3, "customs_value")`` → item 3, field ``customs_value``; ``("declarations", 3, "hs_code")`` → item 3,
    field ``declarations.hs_code`` (the first list index is the item, as in the other problems)."""
    first = next((j for j, p in enumerate(path) if isinstance(p, int)), None)
    item = path[first] if first is not None else None
    field = ".".join(_short(p) for j, p in enumerate(path) if j != first)
    return FieldProblem(field, f"duplicate key {_short(path[-1])!r}: the object holds it more than once; send it "
                               "once (which value was meant is unknown)",
                        item=item if isinstance(item, int) else None)


def _short(part: str | int) -> str:
    text = str(part)
    return text if len(text) <= _VALUE_CHARS else text[:_VALUE_CHARS] + "…"


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


def _misspelt_fields(records: list[dict[str, Any]], contract: str, prefix: tuple[str, ...],
                     indexed: bool) -> list[FieldProblem]:
    """Fields no contract column is called, that are most likely one misspelt (``customs_valeu``) while that
    column is absent: kept as an extra column, the item was scored without the value and nobody told. A field
    far from every column name (a mapped extra column, a client's own) is kept as before."""
    fields = _contract_fields(contract)
    problems = []
    for i, r in enumerate(records):
        if r.keys() <= fields:  # the usual item: one set comparison
            continue
        absent = [f for f in fields if r.get(f) is None]  # left out (the dump gives it as None)
        for key in r.keys() - fields:
            near = difflib.get_close_matches(str(key).lower(), absent, n=1, cutoff=_NEAR)
            if near:
                problems.append(FieldProblem(".".join([*prefix, str(key)]), f"unknown field {_short(key)!r}: did you "
                                             f"mean {near[0]!r}? (as it is, the item would be scored without "
                                             f"{near[0]})", item=i if indexed else None))
    return problems


_NEAR = 0.85  # difflib's ratio: customs_valeu ~ customs_value 0.92, hs_codes ~ hs_code 0.93; seller_id ~ importer_id 0.5


@cache
def _contract_fields(contract: str) -> frozenset[str]:
    return frozenset(CONTRACTS[contract].columns)


def _checked_rules(records: list[dict[str, Any]], contract: str, prefix: tuple[str, ...],
                   indexed: bool) -> list[dict[str, Any]]:
    """The contract's rules across fields (a hit needs an inspection, ...), as the file validator checks them;
    and no field that is a contract column's name misspelt (:func:`_misspelt_fields`)."""
    misspelt = _misspelt_fields(records, contract, prefix, indexed)
    if misspelt:
        raise InputError(misspelt)
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
