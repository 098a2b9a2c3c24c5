"""The workbench pages under ``/app/``: thin handlers over the API's own services (no OpenAPI entries)."""

from __future__ import annotations

import math
import secrets
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from serving.case_store import STATUSES, CaseProblem, CaseStore
from serving.errors import ConflictError, InputError, ServiceError
from serving.parsing import validate_object, validate_records
from serving.schemas import RankParams
from serving.store import outcomes
from serving.web.case_history import served_case_history
from serving.web.manifests import (
    ENCODINGS,
    ManifestProblem,
    RankedManifest,
    mapping_choices,
    open_batch_output,
    opened_batch_output,
    read_manifest,
    recent_batch_outputs,
    selection_csv,
    top_reasons,
)
from serving.web.model_view import outcome_figures, registry_aliases
from serving.web.pages import (
    AnalystPage,
    Officer,
    OfficerPage,
    PageError,
    audit,
    checked_form,
    current_session,
    redirect,
    render,
    secure_headers,
    segment,
    sessions,
    set_cookie,
    today,
)

router = APIRouter(prefix="/app", include_in_schema=False)
FILTERS = ("lane", "office", "conveyance", "profile", "selected")


@router.get("/")
def home(request: Request) -> Response:
    return redirect("/app/manifests")


# ---- sign-in -------------------------------------------------------------------------------------
@router.get("/sign-in")
def sign_in_page(request: Request, next: str = "/app/manifests") -> Response:
    session = current_session(request) or sessions(request).new()
    resp = render(request, "sign_in.html", {"next": _local(next), "errors": {}}, session=session)
    set_cookie(request, resp, session)
    return resp


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    session = current_session(request)
    form = await checked_form(request, session)
    assert session is not None
    key = str(form.get("api_key") or "").strip()
    principal = request.app.state.keys.verify(key) if key else None
    if principal is None:
        message = "Enter your API key" if not key else "This API key is not valid or has been revoked"
        return render(request, "sign_in.html", {"next": _local(str(form.get("next") or "")),
                                                "errors": {"api_key": message}}, status=401, session=session)
    store = sessions(request)
    store.drop(session)  # a new id at sign-in: a session id seen before it is worth nothing after
    fresh = store.new(api_key=key)
    audit(request, principal, "sign-in", {})
    resp = redirect(_local(str(form.get("next") or "")))
    set_cookie(request, resp, fresh)
    return resp


@router.post("/sign-out")
async def sign_out(request: Request, who: Officer = OfficerPage) -> Response:
    await checked_form(request, who.session)
    sessions(request).drop(who.session)
    audit(request, who.principal, "sign-out", {})
    resp = redirect("/app/sign-in")
    resp.delete_cookie("riskprof_session", path="/app")
    return resp


def _local(path: str) -> str:
    """Only paths of this workbench are followed after sign-in (no open redirect)."""
    return path if path.startswith("/app/") and not path.startswith("//") else "/app/manifests"


# ---- manifests ----------------------------------------------------------------------------------
@router.get("/manifests")
def manifests_page(request: Request, who: Officer = OfficerPage) -> Response:
    return _upload_form(request, who, {}, {"capacity": "5%", "random_share": "0.1"})


def _upload_form(request: Request, who: Officer, errors: dict[str, str], values: dict[str, Any],
                 problem: ManifestProblem | None = None, status: int = 200) -> Response:
    recent = list(reversed(who.session.manifests.values()))
    folder = request.app.state.settings.batch_output_path
    return render(request, "manifests.html", {"errors": errors, "values": values, "problem": problem,
                                              "mappings": sorted(mapping_choices()), "encodings": ENCODINGS,
                                              "recent": recent,
                                              "batch_outputs": recent_batch_outputs(folder), "batch_folder": folder},
                  status=status, officer=who)


@router.post("/manifests")
async def upload_manifest(request: Request, who: Officer = OfficerPage) -> Response:
    form = await checked_form(request, who.session)
    values = {k: str(form.get(k) or "").strip() for k in ("capacity", "random_share", "mapping", "encoding")}
    upload = form.get("manifest")
    errors: dict[str, str] = {}
    params = None
    try:
        params = validate_object({"capacity": _number_or_text(values["capacity"]),
                                  "random_share": values["random_share"] or 0, "reasons": "all"}, RankParams)
    except InputError as exc:
        errors.update({p.field: p.message for p in exc.problems})
    if not isinstance(upload, UploadFile) or not upload.filename:
        errors["manifest"] = "Choose a manifest file (.csv or .parquet)"
    if errors or params is None or not isinstance(upload, UploadFile):
        return _upload_form(request, who, errors, values, status=422)
    data = await upload.read()
    filename = upload.filename or "manifest"
    settings = request.app.state.settings
    try:
        records = await run_in_threadpool(read_manifest, data, filename, values["mapping"] or None,
                                          settings.max_items, values["encoding"] or None, settings.max_body_bytes)
        ranked = await run_in_threadpool(request.app.state.service.rank, records, params.capacity,  # type: ignore[attr-defined]
                                         params.random_share, 0, "all", who.principal)  # type: ignore[attr-defined]
    except ManifestProblem as exc:
        return _upload_form(request, who, {}, values, problem=exc, status=exc.status)
    except InputError as exc:  # e.g. a capacity larger than the manifest
        return _upload_form(request, who, {p.field: p.message for p in exc.problems}, values, status=422)
    except ServiceError as exc:
        raise PageError(exc.status_code, "Cannot rank this manifest", exc.message) from None
    manifest_id = secrets.token_urlsafe(8)
    manifest = RankedManifest.build(manifest_id, filename, records, ranked)
    sessions(request).keep_manifest(who.session, manifest_id, manifest)
    return redirect(f"/app/manifests/{manifest_id}")


@router.get("/batch-outputs/open")
async def open_batch(request: Request, file: str = "", who: Officer = OfficerPage) -> Response:
    """A nightly batch output of the configured folder on the ranked manifest page, as written (not re-scored)."""
    settings = request.app.state.settings
    folder = settings.batch_output_path
    found = opened_batch_output(who.session.manifests.values(), folder, file)
    if found is not None:
        return redirect(f"/app/manifests/{found.id}")
    manifest_id = secrets.token_urlsafe(8)
    try:
        manifest = await run_in_threadpool(open_batch_output, folder, file, manifest_id, settings.max_items)
    except ManifestProblem as exc:
        return _upload_form(request, who, {}, {"capacity": "5%", "random_share": "0.1"}, problem=exc,
                            status=exc.status)
    sessions(request).keep_manifest(who.session, manifest_id, manifest)
    audit(request, who.principal, "batch-output-open", {"file": file[:200], "model": manifest.summary["model"]})
    return redirect(f"/app/manifests/{manifest_id}")


def _number_or_text(v: str) -> Any:
    try:
        return float(v) if v and not v.endswith("%") else v
    except ValueError:
        return v


def _manifest(who: Officer, manifest_id: str) -> RankedManifest:
    found = who.session.manifests.get(manifest_id)
    if found is None:
        raise PageError(404, "Manifest not found", "This ranked manifest is no longer kept (only the last few "
                                                   "of a session are). Upload it again.")
    return found


def _filters(request: Request) -> dict[str, str]:
    return {k: request.query_params.get(k, "")[:200] for k in FILTERS}


@router.get("/manifests/{manifest_id}")
def manifest_page(request: Request, manifest_id: str, page: int = 1, who: Officer = OfficerPage) -> Response:
    manifest = _manifest(who, manifest_id)
    filters = _filters(request)
    rows = manifest.select(**filters)
    size = request.app.state.web_settings.page_size
    pages = max(1, math.ceil(len(rows) / size))
    page = min(max(1, page), pages)
    shown = rows[(page - 1) * size: page * size]
    query = urlencode({k: v for k, v in filters.items() if v})
    options = {"lane": ["red", "yellow", "green"], "office": manifest.options("office_id"),
               "conveyance": manifest.options("conveyance"), "profile": manifest.options("profiles"), "selected": ["yes"]}
    return render(request, "manifest.html", {
        "m": manifest, "rows": shown, "total": len(rows), "page": page, "pages": pages, "filters": filters,
        "options": options, "query": query, "top_reasons": top_reasons}, officer=who)


@router.get("/manifests/{manifest_id}/selection.csv")
def manifest_csv(request: Request, manifest_id: str, who: Officer = OfficerPage) -> Response:
    manifest = _manifest(who, manifest_id)
    body = selection_csv(manifest.select(**_filters(request)))
    resp = Response(body, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="ranked-{manifest_id}.csv"'})
    secure_headers(resp)
    return resp


# ---- declaration (case file) --------------------------------------------------------------------
@router.get("/manifests/{manifest_id}/declarations/{declaration_id:path}")
def declaration_page(request: Request, manifest_id: str, declaration_id: str, who: Officer = OfficerPage,
                     recorded: bool = False) -> Response:
    return _case_file(request, who, manifest_id, declaration_id, {}, {"inspected_date": today()},
                      notice="The outcome is recorded." if recorded else "")


def _case_file(request: Request, who: Officer, manifest_id: str, declaration_id: str, errors: dict[str, str],
               values: dict[str, Any], notice: str = "", status: int = 200) -> Response:
    manifest = _manifest(who, manifest_id)
    row = manifest.by_id.get(declaration_id)
    if row is None:
        raise PageError(404, "Declaration not found", f"{declaration_id!r} is not in this manifest.")
    reasons = row.get("reasons") or []
    scale = max((abs(r["contribution"]) for r in reasons), default=0.0) or 1.0
    bars = [{**r, "width": round(100 * abs(r["contribution"]) / scale, 1)} for r in reasons]
    return render(request, "declaration.html", {
        "m": manifest, "row": row, "decl": row["declaration"], "bars": bars, "errors": errors, "values": values,
        "outcome": _stored_outcome(request, declaration_id), "notice": notice, "statuses": STATUSES,
        "case": CaseStore(request.app.state.store.engine).case(declaration_id),
        "history": served_case_history(request.app.state.service, row["declaration"])}, status=status, officer=who)


def _stored_outcome(request: Request, declaration_id: str) -> dict[str, Any] | None:
    """The outcome recorded for this declaration, if any (one indexed read)."""
    q = sa.select(outcomes).where(outcomes.c.declaration_id == declaration_id)
    with request.app.state.store.engine.connect() as conn:
        row = conn.execute(q).mappings().first()
    return dict(row) if row is not None else None


FOUND_CHARS = 2_000  # "what was found", kept with the outcome in the audit log


@router.post("/manifests/{manifest_id}/declarations/{declaration_id:path}/outcome")
async def record_outcome(request: Request, manifest_id: str, declaration_id: str,
                         who: Officer = OfficerPage) -> Response:
    form = await checked_form(request, who.session)
    row = _manifest(who, manifest_id).by_id.get(declaration_id)
    if row is None:
        raise PageError(404, "Declaration not found", f"{declaration_id!r} is not in this manifest.")
    values = {k: str(form.get(k) or "").strip() for k in ("result", "inspected_date", "found", "case_id")}
    errors: dict[str, str] = {}
    if values["result"] not in ("hit", "no-hit"):
        errors["result"] = "Choose whether the inspection found something (hit) or not (no hit)"
    if len(values["found"]) > FOUND_CHARS:  # it was cut to 2,000 characters in the audit log, silently
        errors["found"] = f"Describe what was found in at most {FOUND_CHARS:,} characters (this is {len(values['found']):,})"
    elif "\x00" in values["found"]:
        errors["found"] = "The description holds a NUL character: type it again"
    selection = row.get("selection")
    record = {"declaration_id": declaration_id, "inspected_date": values["inspected_date"], "inspected": True,
              "hit": values["result"] == "hit", "case_id": values["case_id"] or None,
              "selection_source": selection if selection in ("model", "random", "rule") else "officer",
              "selection_probability": row.get("selection_probability") if selection != "none" else 1.0}
    if not errors:
        try:
            records = validate_records([record], "outcome", 1)[0]  # the checks of POST /v1/outcomes
            request.app.state.service.record_outcomes(records, who.principal)
        except ConflictError as exc:
            errors["result"] = exc.problems[0].message if exc.problems else exc.message
        except InputError as exc:
            errors.update({p.field if p.field in values else "inspected_date": p.message for p in exc.problems})
    if errors:
        return _case_file(request, who, manifest_id, declaration_id, errors, values, status=422)
    audit(request, who.principal, "outcome", {"declaration_id": declaration_id, "hit": record["hit"],
                                              "found": values["found"], "case_id": record["case_id"]})
    return redirect(f"/app/manifests/{manifest_id}/declarations/{segment(declaration_id)}?recorded=true")


@router.post("/manifests/{manifest_id}/declarations/{declaration_id:path}/workflow")
async def update_case(request: Request, manifest_id: str, declaration_id: str,
                      who: Officer = OfficerPage) -> Response:
    """Assign to me, change the status, or add a note (one form each; every change audited)."""
    form = await checked_form(request, who.session)
    if declaration_id not in _manifest(who, manifest_id).by_id:
        raise PageError(404, "Declaration not found", f"{declaration_id!r} is not in this manifest.")
    cases, name = CaseStore(request.app.state.store.engine), who.principal.name
    action = str(form.get("action") or "")
    value = str(form.get("status") or form.get("note") or "")
    try:
        if action == "assign":
            cases.update(declaration_id, name, assignee=name)
        elif action == "status":
            cases.update(declaration_id, name, status=value)
        elif action == "note":
            cases.add_note(declaration_id, name, value)
        else:
            raise PageError(400, "Unknown action", "This form asked for an action the workbench does not know.")
    except CaseProblem as exc:  # the note typed is kept; a refused status is not put in the note's box
        return _case_file(request, who, manifest_id, declaration_id, {exc.field: exc.message},
                          {"inspected_date": today(), "note": value if action == "note" else ""}, status=422)
    audit(request, who.principal, f"case-{action}", {"declaration_id": declaration_id,
                                                     **({"value": value[:4000]} if action != "assign" else {})})
    return redirect(f"/app/manifests/{manifest_id}/declarations/{segment(declaration_id)}#workflow")


# ---- alerts -------------------------------------------------------------------------------------
@router.get("/alerts")
def alerts_page(request: Request, who: Officer = OfficerPage, status: str = "") -> Response:
    if status not in ("", "open", "acked"):  # as GET /v1/alerts?status= takes it (any other listed all)
        raise PageError(400, "Unknown alert status", f"{status[:40]!r} is not an alert status: open or acked.")
    alerts = request.app.state.service.profiles.list_alerts(status=status or None, limit=200)
    return render(request, "alerts.html", {"alerts": alerts, "status": status}, officer=who)


@router.post("/alerts/{alert_id}/ack")
async def ack_alert(request: Request, alert_id: int, who: Officer = OfficerPage) -> Response:
    from serving.profile_store import Actor, NotFound

    form = await checked_form(request, who.session)
    try:
        request.app.state.service.profiles.ack_alert(alert_id, Actor(who.principal.name, who.principal.role.value))
    except NotFound:
        raise PageError(404, "Alert not found", f"There is no alert {alert_id}.") from None
    audit(request, who.principal, "alert-ack", {"alert_id": alert_id})
    status = form.get("status")  # back to the list as it was filtered (it showed every alert again)
    return redirect("/app/alerts" + (f"?status={status}" if status in ("open", "acked") else ""))


# ---- analysts -----------------------------------------------------------------------------------
@router.get("/model")
async def model_page(request: Request, who: Officer = AnalystPage) -> Response:
    try:
        info = request.app.state.service.describe()
    except ServiceError as exc:
        raise PageError(exc.status_code, "No model", exc.message) from None
    mlflow_ui = request.app.state.web_settings.mlflow_ui_url
    versions, registry = await run_in_threadpool(registry_aliases, request.app.state.settings.model_name)
    outcomes_seen = await run_in_threadpool(outcome_figures, request.app.state.store)
    return render(request, "model.html", {"info": info, "mlflow_ui": mlflow_ui, "versions": versions,
                                          "registry": registry, "outcomes_seen": outcomes_seen}, officer=who)


@router.get("/trends")
def trends_page(request: Request, who: Officer = AnalystPage, years: str = "") -> Response:
    from serving.trends import parse_years

    try:  # the report's own check, here so that the form says it beside its field (not inside the frame)
        parse_years(years or None)
    except InputError as exc:
        return render(request, "trends.html", {"years": years[:40], "src": "",
                                               "errors": {"years": "; ".join(p.message for p in exc.problems)}},
                      status=422, officer=who)
    return render(request, "trends.html", {"years": years[:40], "errors": {},
                                           "src": "/app/trends/report" + (f"?{urlencode({'years': years})}"
                                                                          if years else "")}, officer=who)


@router.get("/trends/report")
def trends_report(request: Request, who: Officer = AnalystPage, years: str = "") -> Response:
    from serving.trends import parse_years

    try:
        html = request.app.state.trends.trends_html(parse_years(years or None))
    except InputError as exc:
        raise PageError(422, "Years not understood", "; ".join(p.message for p in exc.problems)) from None
    except ServiceError as exc:
        raise PageError(exc.status_code, "Trend report unavailable", exc.message) from None
    return HTMLResponse(html, headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"})
