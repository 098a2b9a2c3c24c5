"""Routes: thin wrappers that check the caller's role, parse the body and call the services."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from serving import schemas
from serving.auth import Admin, Analyst, Officer
from serving.errors import FieldProblem, InputError
from serving.monitoring import DATE_PATTERN, monitoring_from_store, parse_since
from serving.parsing import parse_json, validate_object, validate_records
from serving.service import ScoringService
from serving.trends import YEARS_PATTERN, TrendService, parse_years

_THREAD_BYTES = 64 * 1024  # bodies larger than this are validated off the event loop
_INLINE_ITEMS = 32  # requests this small are scored on the event loop (a thread hop costs more than they do)


async def get_service(request: Request) -> ScoringService:
    return request.app.state.service


async def get_trends(request: Request) -> TrendService:
    return request.app.state.trends


ServiceDep = Annotated[ScoringService, Depends(get_service)]
TrendsDep = Annotated[TrendService, Depends(get_trends)]
ModelQuery = Annotated[str | None, Query(
    description="only score if this model is the one served: NAME, NAME/VERSION or NAME@ALIAS",
    examples=["riskprof@champion"])]
# the pattern is documented here and checked by parse_years, whose message says what a year list looks like
YearsQuery = Annotated[str | None, Query(description="years to include: 2022,2023 or 2021-2023 (default: all)",
                                         examples=["2022,2023"], json_schema_extra={"pattern": YEARS_PATTERN})]


@dataclass
class RankBody:
    records: list[dict[str, Any]]
    params: schemas.RankParams


async def _off_loop(size: int, fn: Any, *args: Any) -> Any:
    return await run_in_threadpool(fn, *args) if size > _THREAD_BYTES else fn(*args)


async def _scored(n_items: int, fn: Any, *args: Any) -> Any:
    return fn(*args) if n_items <= _INLINE_ITEMS else await run_in_threadpool(fn, *args)


def _declarations(body: bytes, max_items: int) -> list[dict[str, Any]]:
    return validate_records(parse_json(body), "declaration", max_items)[0]


def _outcomes(body: bytes, max_items: int) -> list[dict[str, Any]]:
    return validate_records(parse_json(body), "outcome", max_items)[0]


def _rank_body(body: bytes, max_items: int) -> RankBody:
    data = parse_json(body)
    problems: list[FieldProblem] = []
    params = records = None
    try:
        params = validate_object(data, schemas.RankParams, exclude=("declarations",))
    except InputError as exc:
        problems += exc.problems
    if isinstance(data, dict):
        if "declarations" not in data:
            problems.append(FieldProblem("declarations", "field required"))
        else:
            try:
                records = validate_records(data["declarations"], "declaration", max_items,
                                           prefix=("declarations",), allow_single=False)[0]
            except InputError as exc:
                if not problems:
                    raise
                problems += exc.problems
    if problems or params is None or records is None:
        raise InputError(problems)
    return RankBody(records, params)  # type: ignore[arg-type]


# the settings are read from the app, not through a dependency: one dependency fewer on every call
async def declarations_body(request: Request) -> list[dict[str, Any]]:
    body = await request.body()
    return await _off_loop(len(body), _declarations, body, request.app.state.settings.max_items)


async def outcomes_body(request: Request) -> list[dict[str, Any]]:
    body = await request.body()
    return await _off_loop(len(body), _outcomes, body, request.app.state.settings.max_items)


async def rank_body(request: Request) -> RankBody:
    body = await request.body()
    return await _off_loop(len(body), _rank_body, body, request.app.state.settings.max_items)


Declarations = Annotated[list[dict[str, Any]], Depends(declarations_body)]
Outcomes = Annotated[list[dict[str, Any]], Depends(outcomes_body)]
Manifest = Annotated[RankBody, Depends(rank_body)]


def _body(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI request body of ``model`` (one of ``schemas.REQUEST_MODELS``, whose JSON schemas the app
    adds to the components). Bodies are read by the dependencies above, not by FastAPI, so that a list
    is counted before it is validated; the schema shown is still the model that validates them."""
    extra: Any = model.model_config.get("json_schema_extra") or {}
    examples: list[Any] = extra.get("examples", [])
    return {"requestBody": {"required": True, "description": (model.__doc__ or "").strip(), "content": {
        "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"},
                             "examples": {f"example {i}": {"value": ex} for i, ex in enumerate(examples, 1)}}}}}


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": schemas.ValidationErrorBody, "description": "malformed JSON, or an object giving a key twice"},
    401: {"model": schemas.ErrorBody, "description": "missing or invalid API key"},
    403: {"model": schemas.ErrorBody, "description": "the key's role is not enough"},
    413: {"model": schemas.ValidationErrorBody, "description": "too many items or body too large"},
    415: {"model": schemas.ValidationErrorBody, "description": "a compressed body (Content-Encoding other than "
                                                               "identity): send the JSON uncompressed"},
    422: {"model": schemas.ValidationErrorBody, "description": "bad fields, each named with its item index"},
}
_AUTH_ERRORS: dict[int | str, dict[str, Any]] = {k: v for k, v in _ERRORS.items() if k in (401, 403)}


def _json_errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """Errors of an HTML page: still JSON bodies (FastAPI would document them as the page's text/html)."""
    return {c: {"description": _ERRORS[c]["description"], "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{_ERRORS[c]['model'].__name__}"}}}} for c in codes}

_NO_MODEL: dict[int | str, dict[str, Any]] = {503: {"model": schemas.ErrorBody, "description": "no model loaded"}}

v1 = APIRouter(prefix="/v1")


@v1.post("/score", response_model=schemas.ScoreResponse, tags=["scoring"], summary="Score declarations",
         responses={**_ERRORS, 404: {"model": schemas.ValidationErrorBody, "description": "unknown model"},
                    **_NO_MODEL},
         openapi_extra=_body(schemas.ScoreRequest))
async def score(who: Officer, records: Declarations, service: ServiceDep,
                model: ModelQuery = None) -> dict[str, Any]:
    """Risk score, percentile, lane and plain-language reasons for each declaration.

    Unknown values (a new trader, a new route) are scored, and listed in ``unseen_values``.
    """
    return await _scored(len(records), service.score, records, who, model)


@v1.post("/manifests/rank", response_model=schemas.RankResponse, tags=["scoring"],
         summary="Rank a manifest and select for inspection",
         responses={**_ERRORS, 404: {"model": schemas.ValidationErrorBody, "description": "unknown model"},
                    **_NO_MODEL},
         openapi_extra=_body(schemas.RankRequest))
async def rank(who: Officer, body: Manifest, service: ServiceDep, model: ModelQuery = None) -> dict[str, Any]:
    """Ranked list: the top of the capacity goes to the model, ``random_share`` of it to a random draw."""
    p = body.params
    return await _scored(len(body.records), service.rank, body.records, p.capacity, p.random_share, p.seed,
                         p.reasons, who, model)


@v1.post("/outcomes", response_model=schemas.OutcomesResponse, tags=["outcomes"],
         summary="Record inspection outcomes",
         responses={**_ERRORS, 409: {"model": schemas.ValidationErrorBody,
                                     "description": "a declaration already has a different outcome"}},
         openapi_extra=_body(schemas.OutcomesRequest))
def outcomes(who: Officer, records: Outcomes, service: ServiceDep) -> dict[str, Any]:
    """Idempotent per declaration: sending the same outcome again changes nothing."""
    return service.record_outcomes(records, who)


@v1.get("/model", response_model=schemas.ModelInfo, tags=["model"], summary="The model being served",
        responses={**_AUTH_ERRORS, **_NO_MODEL})
async def model_info(_who: Analyst, service: ServiceDep) -> dict[str, Any]:
    return service.describe()


@v1.post("/model/reload", response_model=schemas.ReloadResponse, tags=["model"],
         summary="Load the version the alias points at now",
         responses={**_AUTH_ERRORS,
                    404: {"model": schemas.ErrorBody, "description": "no such model or alias in the registry"},
                    409: {"model": schemas.ErrorBody,
                          "description": "the version failed to load or to score the smoke sample; the running "
                                         "model stays"}})
def reload_model(_who: Admin, service: ServiceDep) -> dict[str, Any]:
    return service.reload()


@v1.get("/reports/trends", response_model=schemas.TrendsResponse, tags=["reports"],
        summary="Seizure trend tables", responses={**_AUTH_ERRORS, 422: _ERRORS[422],
                                                   503: {"model": schemas.ErrorBody,
                                                         "description": "seizure records unavailable"}})
def trends(_who: Analyst, trend_service: TrendsDep, years: YearsQuery = None) -> dict[str, Any]:
    """The report's tables (totals, by region, by country, weapon types, routes, ...) for the years asked."""
    return trend_service.trends_json(parse_years(years))


SinceQuery = Annotated[str | None, Query(description="first day reported, YYYY-MM-DD (default: all recorded)",
                                         examples=["2024-03-01"], json_schema_extra={"pattern": DATE_PATTERN})]


@v1.get("/monitoring", tags=["monitoring"], summary="Weekly hit rates, IPW estimate, precision, calibration, lanes",
        responses={**_AUTH_ERRORS, 422: _ERRORS[422], 200: {"model": schemas.Monitoring, "description": "the figures"}})
def monitoring(_who: Analyst, service: ServiceDep, since: SinceQuery = None) -> dict[str, Any]:
    """From the recorded selections (audit log) joined to the recorded outcomes, week by week: hit rate
    of model-, rule-, random- and officer-selected items with 95 % intervals, the random stratum's
    inverse-propensity-weighted overall hit rate, precision at the inspection rate, calibration (ECE)
    and lane volumes; ``warnings`` lists what crossed its band. The same figures as ``riskprof monitor``."""
    return monitoring_from_store(service.store, parse_since(since))


pages = APIRouter()


@pages.get("/reports/trends", response_class=HTMLResponse, tags=["reports"], summary="Seizure trend report (HTML)",
           responses={**_json_errors(401, 403, 422), 503: {"description": "seizure records unavailable", "content": {
               "application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}}})
def trends_page(_who: Analyst, trend_service: TrendsDep, years: YearsQuery = None) -> HTMLResponse:
    return HTMLResponse(trend_service.trends_html(parse_years(years)))


@pages.get("/health", response_model=schemas.Health, tags=["health"], summary="Liveness")
async def health() -> dict[str, Any]:
    return {"status": "ok"}


@pages.get("/ready", response_model=schemas.Ready, tags=["health"], summary="Readiness: model loaded, store reachable",
           responses={503: {"model": schemas.Ready, "description": "not ready"}})
def ready(service: ServiceDep) -> Any:
    state = service.readiness()
    return state if state["ready"] else JSONResponse(state, status_code=503)


# HEAD too, the same statuses without a body: load balancers probe with it (it was a 405)
@pages.head("/health", include_in_schema=False)
async def health_head() -> Response:
    return Response(status_code=200)


@pages.head("/ready", include_in_schema=False)
def ready_head(service: ServiceDep) -> Response:
    return Response(status_code=200 if service.readiness()["ready"] else 503)
