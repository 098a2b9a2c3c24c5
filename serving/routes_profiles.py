"""Routes of risk profiles, watch lists and alerts: analysts write, officers read and acknowledge alerts.

Thin: each checks the role, reads the JSON body and calls :class:`serving.profile_store.ProfileStore`
(the scoring service's), whose validation names the profile, the condition and the problem (422);
nothing is stored unless every profile and list of the request is valid.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from profiles import Profile, ProfileError, ProfileProblem, WatchList
from profiles.stats import STATS_COLUMNS
from serving import schemas
from serving.auth import Analyst, Officer
from serving.errors import FieldProblem, InputError, ServiceError
from serving.parsing import parse_json
from serving.profile_store import (
    MAX_ALERT_ID,
    Actor,
    NotFound,
    ProfileStore,
    Saved,
    StaleVersion,
    VersionConflict,
)
from serving.roles import Principal
from serving.service import ScoringService


class ProfileInvalid(ServiceError):
    """Profiles or watch lists that break the contract: one entry per problem."""

    status_code = 422

    def __init__(self, exc: ProfileError):
        super().__init__(str(exc))
        self.problems = exc.problems

    def body(self) -> dict[str, Any]:
        # the app's 422 shape (field, message) plus which profile or list, condition and problem
        return {"detail": [{**p.as_dict(), "field": p.field or "body", "message": str(p)} for p in self.problems]}


class Missing(ServiceError):
    status_code = 404


class Conflict(ServiceError):
    status_code = 409


class PreconditionFailed(ServiceError):
    """``If-Match`` names a version that is not the latest (another change came first) or no version."""

    status_code = 412


async def get_profile_store(request: Request) -> ProfileStore:
    service: ScoringService = request.app.state.service
    return service.profiles


ProfilesDep = Annotated[ProfileStore, Depends(get_profile_store)]
ProfileId = Annotated[str, Path(description="the profile id", max_length=64)]
ListName = Annotated[str, Path(description="the watch list's name", max_length=64)]
DateQuery = Annotated[dt.date | None, Query(description="declarations scored on or after/before this day (ISO)")]
IfMatch = Annotated[str | None, Header(
    description='the version the change was made on, as GET returned it in its ETag (`"3"`): the change is '
                'refused with 412 if another version is the latest now, instead of silently undoing it '
                '(`*` or no header: no check)', examples=['"3"'])]

Responses = dict[int | str, dict[str, Any]]
_AUTH: Responses = {401: {"model": schemas.ErrorBody, "description": "missing or invalid API key"},
                    403: {"model": schemas.ErrorBody, "description": "the key's role is not enough"},
                    422: {"model": schemas.ValidationErrorBody, "description": "bad query or path parameters"}}
_WRITE: Responses = {**_AUTH, 400: {"model": schemas.ValidationErrorBody, "description": "malformed JSON, or an object giving a key twice"},
                     413: {"model": schemas.ValidationErrorBody, "description": "body too large"},
                     415: {"model": schemas.ValidationErrorBody,
                           "description": "a compressed body (Content-Encoding other than identity)"},
                     422: {"model": schemas.ValidationErrorBody,
                           "description": "invalid profiles or lists: one entry per problem, naming the profile "
                                          "(or watch list) in ``id``, the ``condition`` (0-based), the field and "
                                          "the ``problem``; nothing stored"}}
_404: Responses = {404: {"model": schemas.ErrorBody, "description": "no such profile, watch list or alert"}}
_409: Responses = {409: {"model": schemas.ErrorBody, "description": "it exists already (use PUT) or changed meanwhile"}}
_412: Responses = {412: {"model": schemas.PreconditionFailedBody,
                         "description": "If-Match names a version that is no longer the latest: nothing stored "
                                        "(``current_version`` says which is)"}}

router = APIRouter(prefix="/v1", tags=["profiles"])


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """A model's JSON schema with its ``$defs`` written in place (the body is read by the route, so the
    app's components do not hold these models)."""
    if isinstance(node, dict):
        ref = node.get("$ref", "")
        if ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inline(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


def _body(model: type[Profile] | type[WatchList], many: bool, description: str,
          from_path: str | None = None) -> dict[str, Any]:
    """``from_path``: the field the path gives (a single-item PUT), optional in the body (it listed it as required)."""
    own = model.model_json_schema()
    one = _inline(own, own.get("$defs", {}))
    if from_path is not None:
        one["required"] = [f for f in one.get("required", []) if f != from_path]
    schema = {"anyOf": [one, {"type": "array", "items": one, "minItems": 1}]} if many else one
    return {"requestBody": {"required": True, "description": description,
                            "content": {"application/json": {"schema": schema}}}}


_PROFILES_BODY = _body(Profile, True, "one profile or a list of them (a ``{profiles: [...]}`` document too)")
_PROFILE_BODY = _body(Profile, False, "the profile's new content (the id is the path's; the version is assigned)",
                      from_path="id")
_LISTS_BODY = _body(WatchList, True, "one watch list or a list of them (a ``{watch_lists: [...]}`` document too)")
_LIST_BODY = _body(WatchList, False, "the list's new content (the name is the path's; the version is assigned)",
                   from_path="name")


def _actor(who: Principal) -> Actor:
    return Actor(who.name, who.role.value)


def _items(data: Any, what: str) -> list[Any]:
    """One object or a list of them (a ``{"profiles": [...]}``/``{"watch_lists": [...]}`` document too)."""
    if isinstance(data, dict) and set(data) == {what}:
        data = data[what]
    if isinstance(data, dict):
        return [data]
    if isinstance(data, list) and data:
        return data
    raise ProfileInvalid(ProfileError([ProfileProblem("<body>", f"expected an object or a non-empty list of "
                                                                f"{what.replace('_', ' ')}", kind="body")]))


def _saving(fn: Any, *args: Any) -> dict[str, Any]:
    try:
        saved: Saved = fn(*args)
    except ProfileError as exc:
        raise ProfileInvalid(exc) from None
    except NotFound as exc:
        raise Missing(str(exc)) from None
    except StaleVersion as exc:
        raise PreconditionFailed(str(exc), current_version=exc.current) from None
    except VersionConflict as exc:
        raise Conflict(str(exc)) from None
    return saved.as_dict()


def _base_version(if_match: str | None, what: str) -> int | None:
    """The version an ``If-Match`` header names (``"3"``, ``W/"3"`` or ``3``); None for ``*`` or none."""
    if if_match is None or if_match.strip() == "*":
        return None
    tag = if_match.strip().removeprefix("W/").strip('"')
    if not (tag.isascii() and tag.isdigit()) or int(tag) < 1:
        raise PreconditionFailed(f"If-Match {if_match[:100]!r} names no version of the {what}: send the ETag its "
                                 'GET returned (e.g. "3"), or leave the header out', current_version=None)
    return int(tag)


def _etag(response: Response, version: int) -> None:
    response.headers["ETag"] = f'"{version}"'


def _found(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except NotFound as exc:
        raise Missing(str(exc)) from None


def _json(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if hasattr(v, "item"):
        return _json(v.item())
    return v


# ---- profiles ------------------------------------------------------------------------------------
@router.get("/profiles", summary="Risk profiles (latest versions)",
            responses={**_AUTH, 200: {"model": schemas.ProfileList, "description": "the latest version of each"}})
def list_profiles(_who: Officer, store: ProfilesDep,
                  status: Annotated[str | None, Query(pattern="^(draft|active|retired)$")] = None) -> dict[str, Any]:
    found = [p for p in store.profiles() if status is None or p.status == status]
    return {"count": len(found), "profiles": [p.model_dump(mode="json") for p in found]}


@router.post("/profiles", status_code=201, summary="Create risk profiles", responses={**_WRITE, **_409},
             openapi_extra=_PROFILES_BODY)
async def create_profiles(who: Analyst, request: Request, store: ProfilesDep) -> dict[str, Any]:
    """One profile or a list; each new id starts at version 1 (an existing id is a 409: change it with PUT)."""
    items = _items(parse_json(await request.body()), "profiles")
    numbered = [ProfileProblem(str(p.get("id")), f"a new profile starts at version 1, got {p['version']!r}: leave "
                               "'version' out (PUT /v1/profiles imports an export with its versions)", field="version")
                for p in items if isinstance(p, dict) and p.get("version", 1) != 1]
    if numbered:  # it was stored as given: a new id at version 99
        raise ProfileInvalid(ProfileError(numbered))
    known = {p.id for p in store.profiles()}
    taken = sorted({p["id"] for p in items if isinstance(p, dict) and isinstance(p.get("id"), str) and p["id"] in known})
    if taken:
        raise Conflict(f"profiles {taken} exist already: change them with PUT /v1/profiles/{{id}}")
    return _saving(store.save, items, [], _actor(who))


@router.put("/profiles", summary="Create or change risk profiles (import)", responses={**_WRITE, **_409},
            openapi_extra=_PROFILES_BODY)
async def put_profiles(who: Analyst, request: Request, store: ProfilesDep) -> dict[str, Any]:
    """A list of profiles as exported: new ids are created, changed ones get a new version, unchanged
    ones add nothing."""
    items = _items(parse_json(await request.body()), "profiles")
    return _saving(store.save, items, [], _actor(who))


@router.get("/profiles/{profile_id}", summary="One risk profile, its versions and its change log",
            responses={**_AUTH, **_404, 200: {"model": schemas.ProfileDetail, "description": "the profile"}})
def get_profile(_who: Officer, profile_id: ProfileId, store: ProfilesDep, response: Response,
                version: Annotated[int | None, Query(ge=1)] = None) -> dict[str, Any]:
    """The ``ETag`` header is the version returned: send it back as ``If-Match`` with a change."""
    p = _found(store.profile, profile_id, version)
    _etag(response, p.version)
    history = store.profile_history(profile_id)
    return {**p.model_dump(mode="json"), "versions": [h.version for h in history],
            "changes": [{**c, "created_at": _iso(c["created_at"])} for c in store.changes(profile_id)
                        if c["kind"] == "profile"]}


@router.put("/profiles/{profile_id}", summary="Change a risk profile (a new version)",
            responses={**_WRITE, **_404, **_409, **_412}, openapi_extra=_PROFILE_BODY)
async def put_profile(who: Analyst, profile_id: ProfileId, request: Request, store: ProfilesDep, response: Response,
                      if_match: IfMatch = None) -> dict[str, Any]:
    """With ``If-Match`` (the ETag of ``GET``), refused with 412 unless that version is still the latest. The
    answer's ``ETag`` is the version now latest (the one saved, or the current one when nothing changed)."""
    base = _base_version(if_match, "profile")
    body = parse_json(await request.body())
    if not isinstance(body, dict):
        raise ProfileInvalid(ProfileError([ProfileProblem(profile_id, "expected a profile object")]))
    if "id" in body and body["id"] != profile_id:  # the body's id was ignored: a copy edited by mistake
        raise ProfileInvalid(ProfileError([ProfileProblem(profile_id, f"the body is profile {body['id']!r}, the path "
                                                                      f"{profile_id!r}: leave 'id' out or make them "
                                                                      "the same", field="id")]))
    saved = _saving(store.update_profile, profile_id, body, _actor(who), base)
    _etag(response, saved["profiles"][0]["version"] if saved["profiles"] else store.profile(profile_id).version)
    return saved


@router.get("/profiles/{profile_id}/stats", summary="Does the profile find anything?", responses={**_AUTH, **_404},
            response_model=schemas.ProfileStats)
def profile_stats(_who: Officer, profile_id: ProfileId, store: ProfilesDep, since: DateQuery = None,
                  until: DateQuery = None) -> dict[str, Any]:
    """Matches, inspections, hits and hit rate (95 % Wilson interval) of every version, beside the
    model-selected hit rate over the same days, from recorded selections and outcomes."""
    p = _found(store.profile, profile_id, None)
    if since is not None and until is not None and since > until:  # it answered zeros, as if nothing matched
        raise InputError([FieldProblem("until", f"until {until} is before since {since}", value=str(until),
                                       has_value=True)])
    table = store.stats(since, until, rule_id=profile_id)
    rows: list[dict[str, Any]] = [{str(k): v for k, v in r.items()}
                                  for r in table[table["kind"] == "profile"].to_dict(orient="records")]
    # no recorded match: the same fields as a row of the table (the figures of nothing inspected are null)
    none: dict[str, Any] = {**dict.fromkeys(STATS_COLUMNS), "kind": "profile", "rule_id": profile_id, "versions": [],
                            "matches": 0, "inspections": 0, "hits": 0, "candidate_for_retirement": False}
    row = rows[0] if rows else none
    return {**{k: _json(v) for k, v in row.items() if k != "versions"}, "versions": list(row["versions"]),
            "status": p.status, "since": since, "until": until}


# ---- watch lists ---------------------------------------------------------------------------------
@router.get("/watchlists", summary="Watch lists (latest versions)",
            responses={**_AUTH, 200: {"model": schemas.WatchListList, "description": "the latest version of each"}})
def list_watchlists(_who: Officer, store: ProfilesDep) -> dict[str, Any]:
    found = store.watchlists()
    return {"count": len(found), "watch_lists": [w.model_dump(mode="json") for w in found]}


@router.post("/watchlists", status_code=201, summary="Create watch lists", responses={**_WRITE, **_409},
             openapi_extra=_LISTS_BODY)
async def create_watchlists(who: Analyst, request: Request, store: ProfilesDep) -> dict[str, Any]:
    items = _items(parse_json(await request.body()), "watch_lists")
    known = {w.name for w in store.watchlists()}
    taken = sorted({w["name"] for w in items
                    if isinstance(w, dict) and isinstance(w.get("name"), str) and w["name"] in known})
    if taken:
        raise Conflict(f"watch lists {taken} exist already: change them with PUT /v1/watchlists/{{name}}")
    return _saving(store.save, [], items, _actor(who))


@router.put("/watchlists", summary="Create or change watch lists (import)", responses={**_WRITE, **_409},
            openapi_extra=_LISTS_BODY)
async def put_watchlists(who: Analyst, request: Request, store: ProfilesDep) -> dict[str, Any]:
    items = _items(parse_json(await request.body()), "watch_lists")
    return _saving(store.save, [], items, _actor(who))


@router.get("/watchlists/{name}", summary="One watch list",
            responses={**_AUTH, **_404, 200: {"model": schemas.WatchListDetail, "description": "the list"}})
def get_watchlist(_who: Officer, name: ListName, store: ProfilesDep, response: Response) -> dict[str, Any]:
    """The ``ETag`` header is the version returned: send it back as ``If-Match`` with a change."""
    w = _found(store.watchlist, name)
    _etag(response, w.version)
    return {**w.model_dump(mode="json"), "versions": [h.version for h in store.watchlist_history(name)]}


@router.put("/watchlists/{name}", summary="Change a watch list (a new version)",
            responses={**_WRITE, **_404, **_409, **_412}, openapi_extra=_LIST_BODY)
async def put_watchlist(who: Analyst, name: ListName, request: Request, store: ProfilesDep, response: Response,
                        if_match: IfMatch = None) -> dict[str, Any]:
    """With ``If-Match`` (the ETag of ``GET``), refused with 412 unless that version is still the latest. The
    answer's ``ETag`` is the version now latest (the one saved, or the current one when nothing changed)."""
    base = _base_version(if_match, "watch list")
    body = parse_json(await request.body())
    if not isinstance(body, dict):
        raise ProfileInvalid(ProfileError([ProfileProblem(name, "expected a watch list object", kind="watch list")]))
    if "name" in body and body["name"] != name:
        raise ProfileInvalid(ProfileError([ProfileProblem(name, f"the body is watch list {body['name']!r}, the path "
                                                                f"{name!r}: leave 'name' out or make them the same",
                                                          field="name", kind="watch list")]))
    saved = _saving(store.update_watchlist, name, body, _actor(who), base)
    _etag(response, saved["watch_lists"][0]["version"] if saved["watch_lists"] else store.watchlist(name).version)
    return saved


# ---- alerts --------------------------------------------------------------------------------------
def _iso(v: dt.datetime) -> str:
    """A stored time as ISO 8601 with its offset: the store writes UTC, and SQLite gives it back naive."""
    return (v if v.tzinfo is not None else v.replace(tzinfo=dt.UTC)).isoformat()


def _alert_json(a: dict[str, Any]) -> dict[str, Any]:
    return {k: (_iso(v) if isinstance(v, dt.datetime) else v) for k, v in a.items()}


@router.get("/alerts", tags=["alerts"], summary="Alerts raised by profiles and watch lists (newest first)",
            responses={**_AUTH, 200: {"model": schemas.AlertList, "description": "newest first"}})
def list_alerts(_who: Officer, store: ProfilesDep,
                status: Annotated[str | None, Query(pattern="^(open|acked)$")] = "open",
                limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    found = store.list_alerts(status, limit)
    return {"count": len(found), "alerts": [_alert_json(a) for a in found]}


@router.post("/alerts/{alert_id}/ack", tags=["alerts"], summary="Acknowledge an alert",
             responses={**_AUTH, **_404, 200: {"model": schemas.Alert, "description": "the alert, acknowledged"}})
def ack_alert(who: Officer, alert_id: Annotated[int, Path(ge=1, le=MAX_ALERT_ID)],
              store: ProfilesDep) -> JSONResponse:
    return JSONResponse(_alert_json(_found(store.ack_alert, alert_id, _actor(who))))
