"""Risk profile and watch-list forms of the workbench: form fields → the documents ``POST``/``PUT``
``/v1/profiles`` and ``/v1/watchlists`` receive, and the store's validation problems → the form field
each is about (the handlers are in :mod:`serving.web.routes_profiles`).

Nothing is decided here: the profile or list is checked by the scoring service's
:class:`serving.profile_store.ProfileStore` as through the API. The form only says what the store
cannot name (values typed into a condition row whose field was left blank).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pandas as pd

from profiles import ProfileError, ProfileProblem
from profiles.model import MAX_CONDITIONS, Profile, WatchEntry, WatchList
from profiles.stats import RETIRE_AFTER

MIN_ROWS = 3  # condition rows on a new profile's form; "Add a condition" adds one more, up to MAX_ROWS
MAX_ROWS = 20
HARD_ROWS = MAX_CONDITIONS  # a profile written through the API may hold more than MAX_ROWS: its edit form keeps them all
PROFILE_FIELDS = ("id", "name", "criterion", "lane", "select", "alert", "valid_from", "valid_to", "status",
                  "base_version")
CONDITION_PARTS = ("field", "op", "values", "watch_list")
LIST_FIELDS = ("name", "field", "description", "lane", "select", "alert", "base_version")
ENTRY_FIELDS = ("value", "reason", "expires")
STAT_FIELDS = ("matches", "inspections", "hits", "hit_rate", "model_inspections", "model_hits", "model_hit_rate")
_LABELS = {"id": "a profile id", "name": "a name", "criterion": "the criterion officers will read",
           "valid_from": "the date it is valid from", "reason": "the reason the value is on the list",
           "value": "the value"}


def cell(row: int, part: str) -> str:
    """The form name (and element id) of one part of condition row ``row`` (1-based)."""
    return f"c{row}_{part}"


def _text(form: Mapping[str, Any], name: str) -> str:
    v = form.get(name)
    return v.strip() if isinstance(v, str) else ""


def _action(v: Mapping[str, str]) -> dict[str, Any]:
    return {"lane": v["lane"] or None, "select": v["select"] == "on", "alert": v["alert"] == "on"}


def _action_values(action: Any) -> dict[str, str]:
    if action is None:
        return {"lane": "", "select": "", "alert": ""}
    return {"lane": action.lane or "", "select": "on" if action.select else "", "alert": "on" if action.alert else ""}


def _shown_value(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


@dataclass
class ProfileForm:
    """What the profile form holds: the profile's own fields and its condition rows (blank rows ignored)."""

    values: dict[str, str]
    rows: list[dict[str, str]] = field(default_factory=list)

    @classmethod
    def blank(cls) -> ProfileForm:
        values = dict.fromkeys(PROFILE_FIELDS, "")
        values.update({"lane": "red", "select": "on", "alert": "on", "status": "active"})
        return cls(values, [_blank_row() for _ in range(MIN_ROWS)])

    @classmethod
    def of(cls, p: Profile) -> ProfileForm:
        """An existing profile on its edit form, with one blank row to add a condition."""
        values = {"id": p.id, "name": p.name, "criterion": p.criterion, **_action_values(p.action),
                  "valid_from": p.valid_from.isoformat(), "valid_to": p.valid_to.isoformat() if p.valid_to else "",
                  "status": p.status, "base_version": str(p.version)}
        rows = [{"field": c.field, "op": c.op, "values": ", ".join(_shown_value(x) for x in c.values),
                 "watch_list": c.watch_list or ""} for c in p.conditions]
        rows += [_blank_row() for _ in range(max(1 if len(rows) < MAX_ROWS else 0, MIN_ROWS - len(rows)))]
        return cls(values, rows)

    @classmethod
    def parse(cls, form: Mapping[str, Any]) -> ProfileForm:
        values = {k: _text(form, k) for k in PROFILE_FIELDS}
        try:
            n = min(max(int(_text(form, "rows")), 1), HARD_ROWS)
        except ValueError:
            n = MIN_ROWS
        rows = [{part: _text(form, cell(i, part)) for part in CONDITION_PARTS} for i in range(1, n + 1)]
        return cls(values, rows)

    def add_row(self) -> bool:
        if len(self.rows) >= MAX_ROWS:
            return False
        self.rows.append(_blank_row())
        return True

    def filled(self) -> list[int]:
        """0-based indices of the rows that hold a condition (a row with nothing typed is ignored)."""
        return [i for i, r in enumerate(self.rows) if r["field"] or r["values"] or r["watch_list"]]

    def used(self) -> list[int]:
        """The rows that go into the profile: those with a field (one without is named by ``own_errors``, and
        nothing is saved then; its other rows are still checked, so every problem is shown at once)."""
        return [i for i in self.filled() if self.rows[i]["field"]]

    def own_errors(self) -> dict[str, str]:
        """What the store cannot name: a row with values but no field."""
        return {cell(i + 1, "field"): f"Condition {i + 1}: choose the field this condition tests"
                for i in self.filled() if not self.rows[i]["field"]}

    def document(self, owner: str) -> dict[str, Any]:
        """The profile as ``POST /v1/profiles`` receives it (``PUT /v1/profiles/{id}`` for a new version)."""
        conditions = [_condition(self.rows[i]) for i in self.used()]
        return {"id": self.values["id"], "name": self.values["name"], "criterion": self.values["criterion"],
                "conditions": conditions, "action": _action(self.values),
                "valid_from": self.values["valid_from"] or None, "valid_to": self.values["valid_to"] or None,
                "status": self.values["status"] or "draft", "owner": owner}

    def errors(self, exc: ProfileError) -> dict[str, str]:
        """Each of the store's problems beside the field it is about; a condition's names its row."""
        out: dict[str, str] = {}
        rows = self.used()
        for p in exc.problems:
            if p.condition is not None and 0 <= p.condition < len(rows):
                row = rows[p.condition] + 1
                out.setdefault(cell(row, _condition_part(p)), f"Condition {row}: {p.message}")
                continue
            name = _profile_part(p)
            if name == "conditions":  # none at all
                out.setdefault(cell(1, "field"), "Condition 1: a profile needs at least one condition")
                continue
            blank = name in _LABELS and not self.values.get(name)
            out.setdefault(name, f"Enter {_LABELS[name]}" if blank else p.message)
        return out


def _blank_row() -> dict[str, str]:
    return {"field": "", "op": "in", "values": "", "watch_list": ""}


def _condition(row: Mapping[str, str]) -> dict[str, Any]:
    if row["op"] == "between":  # "low, high": a blank end stays open
        values: list[Any] = [x.strip() or None for x in row["values"].split(",")] if row["values"] else []
    else:
        values = [x.strip() for x in row["values"].split(",") if x.strip()]
    out: dict[str, Any] = {"field": row["field"], "op": row["op"], "values": values}
    if row["watch_list"] or row["op"] == "in_watch_list":
        out["watch_list"] = row["watch_list"] or None
    return out


def _condition_part(p: ProfileProblem) -> str:
    path = (p.field or "").split(".")
    if path[0] == "conditions" and len(path) >= 3 and path[2] in CONDITION_PARTS:
        return path[2]  # the model's own check: conditions.<i>.<part>
    if "unknown field" in p.message:
        return "field"
    if "operator" in p.message:
        return "op"
    if "takes no values" in p.message or "needs at least one value" in p.message:
        return "values"
    if "watch list" in p.message or "watch_list" in p.message:
        return "watch_list"
    return "values"


def _profile_part(p: ProfileProblem) -> str:
    head = (p.field or "").split(".")[0]
    if head == "action":
        return "lane"
    if head == "conditions":
        return "conditions"
    if head in PROFILE_FIELDS:
        return head
    if "valid_to" in p.message:
        return "valid_to"
    return "id"


@dataclass
class ListForm:
    """A new watch list: name, field, description and, optionally, an action of its own."""

    values: dict[str, str]

    @classmethod
    def blank(cls) -> ListForm:
        return cls(dict.fromkeys(LIST_FIELDS, ""))

    @classmethod
    def of(cls, w: WatchList) -> ListForm:
        """An existing list on its edit form (name and field stay: profiles name the list and its entries
        are values of that field)."""
        return cls({"name": w.name, "field": w.field, "description": w.description, **_action_values(w.action),
                    "base_version": str(w.version)})

    @classmethod
    def parse(cls, form: Mapping[str, Any]) -> ListForm:
        return cls({k: _text(form, k) for k in LIST_FIELDS})

    def edited(self, w: WatchList) -> dict[str, Any]:
        """``w`` with this form's description and action (``PUT /v1/watchlists/{name}``); entries unchanged."""
        return {**w.content(), "description": self.values["description"], "action": self.document()["action"]}

    def document(self) -> dict[str, Any]:
        """The list as ``POST /v1/watchlists`` receives it (no action when no box is ticked: it then only
        serves the profiles that name it)."""
        action = _action(self.values)
        acts = action["lane"] or action["select"] or action["alert"]
        return {"name": self.values["name"], "field": self.values["field"], "description": self.values["description"],
                "entries": [], "action": action if acts else None}

    def errors(self, exc: ProfileError) -> dict[str, str]:
        out: dict[str, str] = {}
        for p in exc.problems:
            head = (p.field or "").split(".")[0]
            name = {"name": "name", "description": "description", "action": "lane"}.get(head, "field")
            if head == "name" and not self.values["name"]:
                out.setdefault(name, "Enter a name for the list")
            else:
                out.setdefault(name, p.message)
        return out


def new_entry(values: Mapping[str, str], added_by: str) -> dict[str, Any]:
    return {"value": values["value"], "reason": values["reason"], "added_by": added_by,
            "expires": values["expires"] or None}


def with_entry(w: WatchList, entry: Mapping[str, Any]) -> dict[str, Any]:
    """The list's document with one more entry (``PUT /v1/watchlists/{name}``)."""
    content = w.content()
    return {**content, "entries": [*content["entries"], dict(entry)]}


def only_entry(w: WatchList, entry: Mapping[str, Any]) -> dict[str, Any]:
    """The list with just ``entry``: checking it costs one entry, not the whole list (which may hold 100,000)."""
    return {**w.model_dump(mode="json", exclude={"version", "entries"}), "entries": [dict(entry)]}


def without_entry(w: WatchList, value: str) -> dict[str, Any]:
    content = w.content()
    return {**content, "entries": [e for e in content["entries"] if e["value"] != value]}


@dataclass(frozen=True)
class EntriesPage:
    """One page of a watch list's entries (a list may hold 100,000), those whose value contains ``q``."""

    entries: list[WatchEntry]
    total: int
    page: int
    pages: int
    q: str

    @property
    def query(self) -> str:
        return urlencode({"q": self.q}) if self.q else ""


def entries_page(entries: Sequence[WatchEntry], q: str, page: str, size: int) -> EntriesPage:
    needle = q.strip().casefold()
    found = [e for e in entries if needle in e.value.casefold()] if needle else list(entries)
    pages = max(1, math.ceil(len(found) / size))
    number = min(max(1, int(page)), pages) if page.isdigit() and len(page) < 10 else 1
    return EntriesPage(found[(number - 1) * size: number * size], len(found), number, pages, q.strip())


def entry_errors(exc: ProfileError, values: Mapping[str, str]) -> dict[str, str]:
    """The new entry's problems beside its value, reason or expiry (it is the list's last entry)."""
    out: dict[str, str] = {}
    for p in exc.problems:
        path = (p.field or "").split(".")
        part = path[2] if path[0] == "entries" and len(path) >= 3 and path[2] in ENTRY_FIELDS else "value"
        blank = part in _LABELS and not values.get(part)
        message = p.message.split(": ", 1)[1] if p.message.startswith("entry ") and ": " in p.message else p.message
        out.setdefault(part, f"Enter {_LABELS[part]}" if blank else message)
    return out


def stats_of(table: pd.DataFrame, kind: str) -> dict[str, Any] | None:
    """The effectiveness figures of one profile (``kind`` ``profile``) or list (``watch_list``) as shown,
    as ``GET /v1/profiles/{id}/stats`` gives them: label → value (the 95 % Wilson intervals beside the rates)."""
    rows = table[table["kind"] == kind].to_dict(orient="records") if len(table) else []
    if not rows:
        return None
    row = rows[0]
    out: dict[str, Any] = {}
    for k in STAT_FIELDS:
        rate = k.endswith("hit_rate")
        out[k.replace("_", " ")] = _shown(row.get(k), rate)
        if rate:
            low, high = _shown(row.get(f"{k}_low"), True), _shown(row.get(f"{k}_high"), True)
            out[f"{k.replace('_', ' ')}, 95 % interval"] = "–" if "–" in (low, high) else f"{low} to {high}"
    flagged = bool(row.get("candidate_for_retirement"))
    out["candidate for retirement"] = f"yes: {RETIRE_AFTER} or more inspections, no hit" if flagged else "no"
    return out


def _shown(v: Any, rate: bool = False) -> Any:
    """A figure as shown: a rate always with three decimals (a rate of 1 was "1" beside "0.000")."""
    if isinstance(v, float):
        return "–" if not math.isfinite(v) else f"{v:.3f}" if rate or v < 1 else f"{v:g}"
    return v


def version_rows(changes: Sequence[Mapping[str, Any]], kind: str) -> list[dict[str, Any]]:
    """The change log of one profile or list (newest first): version, what was done, by whom, when."""
    return [{"version": c["version"], "action": c["action"], "actor": c["actor"],
             "at": c["created_at"].strftime("%Y-%m-%d %H:%M")} for c in reversed(changes) if c["kind"] == kind]
