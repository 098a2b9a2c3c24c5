"""Risk profile and watch-list pages: officers read (lists, one profile or list, its versions and
effectiveness); analysts create, edit (a new version), retire, and add or remove watch-list entries.

Every change goes through the scoring service's :class:`serving.profile_store.ProfileStore`, as
``POST``/``PUT /v1/profiles`` and ``/v1/watchlists`` do: the same validation (its problems shown beside
the form's fields), the same versions and change log; each change is also a ``web/<action>`` audit event.
"""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from profiles import ProfileError, field_kinds
from profiles.model import OPERATORS, STATUSES, Profile, WatchList
from profiles.validate import WATCHABLE_KINDS
from serving.profile_store import Actor, NotFound, ProfileStore, Saved, VersionConflict
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
from serving.web.profile_pages import (
    ENTRY_FIELDS,
    MAX_ROWS,
    ListForm,
    ProfileForm,
    cell,
    entries_page,
    entry_errors,
    new_entry,
    only_entry,
    stats_of,
    version_rows,
    with_entry,
    without_entry,
)

router = APIRouter(prefix="/app", include_in_schema=False)
FORM_STATUSES = ("draft", "active")  # retiring has its own button


def _store(request: Request) -> ProfileStore:
    return request.app.state.service.profiles


def _actor(who: Officer) -> Actor:
    return Actor(who.principal.name, who.principal.role.value)


def _profile(store: ProfileStore, profile_id: str, version: int | None = None) -> Profile:
    try:
        return store.profile(profile_id, version)
    except NotFound:
        what = f"{profile_id!r}" + (f" version {version}" if version else "")
        raise PageError(404, "Profile not found", f"There is no profile {what}.") from None


def _watchlist(store: ProfileStore, name: str) -> WatchList:
    try:
        return store.watchlist(name)
    except NotFound:
        raise PageError(404, "Watch list not found", f"There is no watch list {name!r}.") from None


def _stale(base_version: str, current: int, what: str) -> dict[str, str]:
    """A form filled in on an older version would silently undo the change made since: refused. An edit
    form always names the version it was filled in on: an empty one (a hand-made post) is refused too,
    or it saved over whatever the latest version was."""
    if base_version != str(current):
        return {"base_version": f"This {what} changed while you edited it (now version {current}): "
                                "reload the page to see the change, then edit again"}
    return {}


# ---- profiles ------------------------------------------------------------------------------------
@router.get("/profiles")
def profiles_page(request: Request, who: Officer = OfficerPage, status: str = "") -> Response:
    """The latest version of every profile, or of those with ``status`` (as ``GET /v1/profiles?status=``)."""
    if status and status not in STATUSES:  # the API refuses it (it listed none, as if there were none)
        raise PageError(400, "Unknown profile status",
                        f"{status[:40]!r} is not a profile status: {', '.join(STATUSES[:-1])} or {STATUSES[-1]}.")
    found = [p for p in _store(request).profiles() if not status or p.status == status]
    return render(request, "profiles.html", {"profiles": found, "status": status, "statuses": STATUSES},
                  officer=who)


@router.get("/profiles/new")
def new_profile_page(request: Request, who: Officer = AnalystPage) -> Response:
    return _profile_form(request, who, ProfileForm.blank(), {})


def _profile_form(request: Request, who: Officer, form: ProfileForm, errors: dict[str, str],
                  editing: Profile | None = None, notice: str = "", status: int = 200) -> Response:
    store = _store(request)
    return render(request, "profile_form.html", {
        "form": form, "values": form.values, "errors": errors, "editing": editing, "notice": notice,
        "cell": cell, "max_rows": MAX_ROWS, "operators": OPERATORS, "statuses": FORM_STATUSES,
        "fields": sorted(field_kinds(store.extra_columns).kinds.items()),
        "watch_lists": [w.name for w in store.watchlists()]}, status=status, officer=who)


async def _posted_profile(request: Request, who: Officer) -> tuple[FormData, ProfileForm]:
    raw = await checked_form(request, who.session)
    return raw, ProfileForm.parse(raw)


@router.post("/profiles")
async def create_profile(request: Request, who: Officer = AnalystPage) -> Response:
    raw, form = await _posted_profile(request, who)
    if raw.get("add_condition"):
        return _more_rows(request, who, form)
    store = _store(request)
    errors = form.own_errors()
    if form.values["id"] and form.values["id"] in {p.id for p in store.profiles()}:
        errors["id"] = f"A profile {form.values['id']} exists already: choose another id (or edit that one)"
    try:
        if errors:  # not saved, but every problem is shown at once
            store.validate([form.document(who.principal.name)])
        else:
            store.save([form.document(who.principal.name)], [], _actor(who))
    except ProfileError as exc:
        errors = {**form.errors(exc), **errors}
    except VersionConflict as exc:
        errors = {"id": str(exc)}
    if errors:
        return _profile_form(request, who, form, errors, status=422)
    audit(request, who.principal, "profile-create", {"profile_id": form.values["id"]})
    return redirect(f"/app/profiles/{form.values['id']}")


def _more_rows(request: Request, who: Officer, form: ProfileForm, editing: Profile | None = None) -> Response:
    """"Add a condition" without JavaScript: the same form back with one more row, nothing saved."""
    added = form.add_row()
    notice = (f"Condition {len(form.rows)} added below: nothing is saved until you press the button at the end."
              if added else f"A profile holds at most {MAX_ROWS} conditions on this form.")
    return _profile_form(request, who, form, {}, editing=editing, notice=notice)


@router.get("/profiles/{profile_id}")
def profile_page(request: Request, profile_id: str, who: Officer = OfficerPage, version: str = "",
                 saved: str = "") -> Response:
    store = _store(request)
    latest = _profile(store, profile_id)
    if version and not (version.isdigit() and len(version) < 10):
        raise PageError(404, "Profile version not found", f"{version[:20]!r} is not a version number.")
    number = int(version) if version else latest.version
    shown = _profile(store, profile_id, number) if number != latest.version else latest
    notice = {"unchanged": "Nothing changed, so no new version was saved.",
              "new": f"Saved as version {latest.version}."}.get(saved, "")
    return render(request, "profile.html", {
        "p": shown, "latest": latest, "notice": notice,
        "stats": stats_of(store.stats(rule_id=profile_id), "profile"),
        "versions": version_rows(store.changes(profile_id), "profile")}, officer=who)


@router.get("/profiles/{profile_id}/edit")
def edit_profile_page(request: Request, profile_id: str, who: Officer = AnalystPage) -> Response:
    current = _profile(_store(request), profile_id)
    return _profile_form(request, who, ProfileForm.of(current), {}, editing=current)


@router.post("/profiles/{profile_id}/edit")
async def edit_profile(request: Request, profile_id: str, who: Officer = AnalystPage) -> Response:
    """A new version, as ``PUT /v1/profiles/{id}`` (unchanged content adds none)."""
    raw, form = await _posted_profile(request, who)
    store = _store(request)
    current = _profile(store, profile_id)
    form.values["id"] = profile_id  # the path's, as the API's PUT
    if raw.get("add_condition"):
        return _more_rows(request, who, form, current)
    errors = {**_stale(form.values["base_version"], current.version, "profile"), **form.own_errors()}
    saved = Saved([], [])
    try:
        if errors:  # not saved, but every problem is shown at once
            store.validate([form.document(current.owner)])
        else:
            saved = store.update_profile(profile_id, form.document(current.owner), _actor(who), current.version)
    except ProfileError as exc:
        errors = {**form.errors(exc), **errors}
    except VersionConflict as exc:
        errors = {"base_version": str(exc)}
    if errors:
        return _profile_form(request, who, form, errors, editing=current, status=422)
    if not saved.profiles:
        return redirect(f"/app/profiles/{profile_id}?saved=unchanged")
    audit(request, who.principal, "profile-edit", {"profile_id": profile_id, "version": saved.profiles[0].version})
    return redirect(f"/app/profiles/{profile_id}?saved=new")


@router.post("/profiles/{profile_id}/retire")
async def retire_profile(request: Request, profile_id: str, who: Officer = AnalystPage) -> Response:
    await checked_form(request, who.session)
    try:
        saved = _store(request).retire(profile_id, _actor(who))
    except NotFound:
        raise PageError(404, "Profile not found", f"There is no profile {profile_id!r}.") from None
    except ProfileError as exc:
        raise PageError(422, "Cannot retire this profile", "; ".join(str(p) for p in exc.problems)) from None
    if saved.profiles:  # retired by this press, not already (a second press changes nothing, records nothing)
        audit(request, who.principal, "profile-retire", {"profile_id": profile_id})
    return redirect(f"/app/profiles/{profile_id}")


# ---- watch lists ---------------------------------------------------------------------------------
@router.get("/watchlists")
def watchlists_page(request: Request, who: Officer = OfficerPage) -> Response:
    return render(request, "watchlists.html", {"lists": _store(request).watchlists()}, officer=who)


@router.get("/watchlists/new")
def new_watchlist_page(request: Request, who: Officer = AnalystPage) -> Response:
    return _list_form(request, who, ListForm.blank(), {})


def _list_form(request: Request, who: Officer, form: ListForm, errors: dict[str, str],
               editing: WatchList | None = None, status: int = 200) -> Response:
    kinds = field_kinds(_store(request).extra_columns).kinds
    fields = sorted((name, kind) for name, kind in kinds.items() if kind in WATCHABLE_KINDS)
    return render(request, "watchlist_form.html", {"values": form.values, "errors": errors, "fields": fields,
                                                   "editing": editing}, status=status, officer=who)


@router.post("/watchlists")
async def create_watchlist(request: Request, who: Officer = AnalystPage) -> Response:
    form = ListForm.parse(await checked_form(request, who.session))
    store = _store(request)
    name = form.values["name"]
    errors: dict[str, str] = {}
    if name and name in {w.name for w in store.watchlists()}:
        errors["name"] = f"A watch list {name} exists already: choose another name"
    if not form.values["field"]:
        errors["field"] = "Choose the field whose values the list holds"
    if not errors:
        try:
            store.save([], [form.document()], _actor(who))
        except ProfileError as exc:
            errors = form.errors(exc)
        except VersionConflict as exc:
            errors = {"name": str(exc)}
    if errors:
        return _list_form(request, who, form, errors, status=422)
    audit(request, who.principal, "watchlist-create", {"name": name})
    return redirect(f"/app/watchlists/{name}")


@router.get("/watchlists/{name}")
def watchlist_page(request: Request, name: str, who: Officer = OfficerPage, saved: str = "", q: str = "",
                   page: str = "1") -> Response:
    notice = {"added": "The entry is added (a new version of the list).",
              "removed": "The entry is removed (a new version of the list).",
              "new": "Saved as a new version of the list.",
              "unchanged": "Nothing changed, so no new version was saved."}.get(saved, "")
    return _list_page(request, who, name, {}, {}, notice=notice, q=q, page=page)


def _list_page(request: Request, who: Officer, name: str, errors: dict[str, str], values: dict[str, str],
               notice: str = "", status: int = 200, q: str = "", page: str = "1") -> Response:
    store = _store(request)
    w = _watchlist(store, name)
    used_by = [p for p in store.profiles()
               if p.status != "retired" and any(c.watch_list == name for c in p.conditions)]
    shown = entries_page(w.entries, q[:200], page, request.app.state.web_settings.page_size)
    return render(request, "watchlist.html", {
        "w": w, "shown": shown, "errors": errors, "values": {**values, "base_version": str(w.version)},
        "notice": notice,
        "used_by": used_by, "today": dt.date.today(), "stats": stats_of(store.stats(rule_id=name), "watch_list") if w.action else None,
        "versions": version_rows(store.changes(name), "watch_list")}, status=status, officer=who)


@router.get("/watchlists/{name}/edit")
def edit_watchlist_page(request: Request, name: str, who: Officer = AnalystPage) -> Response:
    w = _watchlist(_store(request), name)
    return _list_form(request, who, ListForm.of(w), {}, editing=w)


@router.post("/watchlists/{name}/edit")
async def edit_watchlist(request: Request, name: str, who: Officer = AnalystPage) -> Response:
    """The description and the action of its own: a new version, as ``PUT /v1/watchlists/{name}``."""
    form = ListForm.parse(await checked_form(request, who.session))
    store = _store(request)
    w = _watchlist(store, name)
    form.values.update(name=w.name, field=w.field)
    errors = _stale(form.values["base_version"], w.version, "list")
    saved = Saved([], [])
    if not errors:
        try:
            saved = store.update_watchlist(name, form.edited(w), _actor(who), w.version)
        except ProfileError as exc:
            errors = form.errors(exc)
        except VersionConflict as exc:
            errors = {"base_version": str(exc)}
    if errors:
        return _list_form(request, who, form, errors, editing=w, status=422)
    if not saved.watchlists:
        return redirect(f"/app/watchlists/{name}?saved=unchanged")
    audit(request, who.principal, "watchlist-edit", {"name": name, "version": saved.watchlists[0].version})
    return redirect(f"/app/watchlists/{name}?saved=new")


@router.post("/watchlists/{name}/entries")
async def add_entry(request: Request, name: str, who: Officer = AnalystPage) -> Response:
    """One more entry: a new version of the list, as ``PUT /v1/watchlists/{name}``."""
    raw = await checked_form(request, who.session)
    values = {k: str(raw.get(k) or "").strip() for k in (*ENTRY_FIELDS, "base_version")}
    store = _store(request)
    w = _watchlist(store, name)
    errors = _stale(values["base_version"], w.version, "list")
    entry = new_entry(values, who.principal.name)
    if not errors:
        try:  # the entry alone first, so that a value already on the list is named once written canonically
            value = store.validate([], [only_entry(w, entry)])[1][0].entries[0].value
            if value in {e.value for e in w.entries}:
                errors = {"value": f"{value} is on this list already"}
            else:
                store.update_watchlist(name, with_entry(w, entry), _actor(who), w.version)
        except ProfileError as exc:
            errors = entry_errors(exc, values)
        except VersionConflict as exc:
            errors = {"base_version": str(exc)}
    if errors:
        return _list_page(request, who, name, errors, values, status=422)
    audit(request, who.principal, "watchlist-add", {"name": name, "value": values["value"][:200],
                                                    "reason": values["reason"][:2000]})
    return redirect(f"/app/watchlists/{name}?saved=added#entries")


@router.post("/watchlists/{name}/entries/remove")
async def remove_entry(request: Request, name: str, who: Officer = AnalystPage) -> Response:
    raw = await checked_form(request, who.session)
    value, base = str(raw.get("value") or ""), str(raw.get("base_version") or "")
    store = _store(request)
    w = _watchlist(store, name)
    errors = _stale(base, w.version, "list")
    if not errors and value not in {e.value for e in w.entries}:
        errors = {"base_version": f"{value!r} is not on this list (any more)"}
    if not errors:
        try:
            store.update_watchlist(name, without_entry(w, value), _actor(who), w.version)
        except (ProfileError, VersionConflict) as exc:
            errors = {"base_version": str(exc)}
    if errors:
        return _list_page(request, who, name, errors, {}, status=409)
    audit(request, who.principal, "watchlist-remove", {"name": name, "value": value[:200]})
    return redirect(f"/app/watchlists/{name}?saved=removed#entries")
