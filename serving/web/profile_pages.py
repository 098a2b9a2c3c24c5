"""Risk profile pages: officers read (list, a profile, its effectiveness); analysts create and retire.

Profiles are saved through the scoring service's :class:`serving.profile_store.ProfileStore`, as by
``POST /v1/profiles``: the same validation, whose problems are shown beside the form's fields.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from profiles import ProfileError
from profiles.model import OPERATORS, STATUSES
from serving.profile_store import Actor, NotFound, ProfileStore
from serving.web.pages import (
    AnalystPage,
    Officer,
    OfficerPage,
    PageError,
    audit,
    checked_form,
    redirect,
    render,
)

router = APIRouter(prefix="/app/profiles", include_in_schema=False)
FORM_FIELDS = ("id", "name", "criterion", "field", "op", "values", "lane", "select", "alert", "valid_from",
               "status")
STAT_FIELDS = ("matches", "inspections", "hits", "hit_rate", "model_inspections", "model_hits", "model_hit_rate")


def _store(request: Request) -> ProfileStore:
    return request.app.state.service.profiles


@router.get("")
def profiles_page(request: Request, who: Officer = OfficerPage) -> Response:
    return render(request, "profiles.html", {"profiles": _store(request).profiles()}, officer=who)


@router.get("/new")
def new_profile_page(request: Request, who: Officer = AnalystPage) -> Response:
    values = {"op": "prefix", "lane": "red", "select": "on", "alert": "on", "status": "active"}
    return _form(request, who, {}, values)


def _form(request: Request, who: Officer, errors: dict[str, str], values: dict[str, str],
          status: int = 200) -> Response:
    return render(request, "profile_form.html", {"errors": errors, "values": values, "operators": OPERATORS,
                                                 "statuses": STATUSES}, status=status, officer=who)


@router.post("")
async def create_profile(request: Request, who: Officer = AnalystPage) -> Response:
    form = await checked_form(request, who.session)
    values = {k: str(form.get(k) or "").strip() for k in FORM_FIELDS}
    store = _store(request)
    if values["id"] and values["id"] in {p.id for p in store.profiles()}:
        return _form(request, who, {"id": f"A profile {values['id']} exists already: choose another id"}, values,
                     status=422)
    try:
        store.save([_profile_doc(values, who.principal.name)], [], Actor(who.principal.name,
                                                                        who.principal.role.value))
    except ProfileError as exc:
        return _form(request, who, _field_errors(exc), values, status=422)
    audit(request, who.principal, "profile-create", {"profile_id": values["id"]})
    return redirect(f"/app/profiles/{values['id']}")


def _profile_doc(v: dict[str, str], owner: str) -> dict[str, Any]:
    """The form → a profile document as ``POST /v1/profiles`` receives it (one condition)."""
    items = [x.strip() for x in v["values"].split(",") if x.strip()]
    condition: dict[str, Any] = {"field": v["field"], "op": v["op"], "values": items}
    if v["op"] == "in_watch_list":
        condition = {"field": v["field"], "op": v["op"], "watch_list": v["values"]}
    action = {"lane": v["lane"] or None, "select": v["select"] == "on", "alert": v["alert"] == "on"}
    return {"id": v["id"], "name": v["name"], "criterion": v["criterion"], "conditions": [condition],
            "action": action, "valid_from": v["valid_from"] or None, "status": v["status"] or "draft",
            "owner": owner}


def _field_errors(exc: ProfileError) -> dict[str, str]:
    """Each problem beside the form field it is about (the profile's own fields, or the condition's)."""
    out: dict[str, str] = {}
    for p in exc.problems:
        field = (p.field or "").split(".")
        if field[0] in FORM_FIELDS:
            name = field[0]
        elif field[0] == "action":
            name = "lane"
        elif "operator" in p.message:
            name = "op"
        elif field[-1] in ("field", "conditions") or "unknown field" in p.message:
            name = "field"
        elif p.condition is not None:
            name = "values"
        else:
            name = "id"
        out.setdefault(name, p.message)
    return out


@router.get("/{profile_id}")
def profile_page(request: Request, profile_id: str, who: Officer = OfficerPage) -> Response:
    store = _store(request)
    try:
        profile = store.profile(profile_id)
    except NotFound:
        raise PageError(404, "Profile not found", f"There is no profile {profile_id!r}.") from None
    table = store.stats(rule_id=profile_id)
    rows = table[table["kind"] == "profile"].to_dict(orient="records") if len(table) else []
    stats = {k: _shown(rows[0].get(k)) for k in STAT_FIELDS} if rows else None
    return render(request, "profile.html", {"p": profile, "stats": stats,
                                            "versions": [h.version for h in store.profile_history(profile_id)]},
                  officer=who)


def _shown(v: Any) -> Any:
    if isinstance(v, float):
        return "–" if not math.isfinite(v) else f"{v:.3f}" if v < 1 else f"{v:g}"
    return v


@router.post("/{profile_id}/retire")
async def retire_profile(request: Request, profile_id: str, who: Officer = AnalystPage) -> Response:
    await checked_form(request, who.session)
    try:
        _store(request).retire(profile_id, Actor(who.principal.name, who.principal.role.value))
    except NotFound:
        raise PageError(404, "Profile not found", f"There is no profile {profile_id!r}.") from None
    except ProfileError as exc:
        raise PageError(422, "Cannot retire this profile", "; ".join(str(p) for p in exc.problems)) from None
    audit(request, who.principal, "profile-retire", {"profile_id": profile_id})
    return redirect(f"/app/profiles/{profile_id}")
