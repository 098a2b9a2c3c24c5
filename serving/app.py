"""The FastAPI application: ``create_app()`` wires settings, store, services, routes and errors.

The model loads once, in ``lifespan``, from ``models:/<name>@<alias>`` (default ``champion``).
``riskprof serve`` runs ``uvicorn serving.app:create_app --factory``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from pydantic.json_schema import models_json_schema
from starlette.concurrency import run_in_threadpool
from starlette.routing import Match
from starlette.types import Receive, Scope, Send

from serving import schemas
from serving.auth import KeyVerifier
from serving.handlers import BodyLimitMiddleware, install_error_handlers
from serving.routes import pages, v1
from serving.routes_profiles import router as profiles_router
from serving.service import Loader, Resolver, ScoringService
from serving.settings import ServingSettings, get_serving_settings
from serving.store import Store
from serving.trends import TrendService
from serving.web import install_workbench

log = logging.getLogger("riskprof.serving")

SWAGGER_ASSETS = Path(__file__).parent / "static" / "swagger"  # vendored: /docs renders without internet
# a SQLite store's WAL is checkpointed this often by a thread, not by whichever request's commit fills it
WAL_CHECKPOINT_SECONDS = 0.5

DESCRIPTION = """Customs risk profiling: score declarations, rank manifests for inspection, record outcomes.

Every endpoint but `/health` and `/ready` needs an API key in the `X-API-Key` header
(`riskprof keys create --role R --name N`). Roles: **officer** (score, rank, outcomes) <
**analyst** (+ model information, trend reports) < **admin** (+ model reload).
Every scoring call is written to an append-only audit log.
"""


class StartupError(RuntimeError):
    """The service refuses to start (e.g. production settings without any API key)."""


def check_startup(settings: ServingSettings, store: Store) -> None:
    if settings.env == "prod" and store.count_active_keys() == 0:
        raise StartupError("RISKPROF_ENV=prod and the store holds no API key: create one with "
                           "`riskprof keys create --role admin --name NAME` (no default key is accepted)")


def create_app(settings: ServingSettings | None = None, *, store: Store | None = None,
               loader: Loader | None = None, resolver: Resolver | None = None) -> FastAPI:
    """The app. Arguments replace the configured parts (tests); by default all come from the environment."""
    settings = settings or get_serving_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own_store = store is None
        the_store = store or Store.from_url(settings.resolved_database_url, checkpoint_seconds=WAL_CHECKPOINT_SECONDS,
                                            timeout_seconds=settings.db_timeout_seconds)
        try:
            check_startup(settings, the_store)
            kwargs: dict[str, Any] = {}
            if loader is not None:
                kwargs["loader"] = loader
            if resolver is not None:
                kwargs["resolver"] = resolver
            service = ScoringService(settings, the_store, **kwargs)
            await run_in_threadpool(service.load_initial)
            service.start_polling()
            app.state.store = the_store
            app.state.service = service
            app.state.keys = KeyVerifier(the_store, settings.key_cache_seconds)
            app.state.trends = TrendService(settings.resolved_seizures_path)
            try:
                yield
            finally:
                await run_in_threadpool(service.close)
        finally:
            if own_store:
                the_store.dispose()

    app = FastAPI(title="riskprof scoring service", version="1", description=DESCRIPTION, lifespan=lifespan,
                  docs_url=None, redoc_url=None,  # FastAPI's pages load their scripts from CDNs; see _add_docs
                  openapi_tags=[
                      {"name": "scoring", "description": "risk scores, lanes, reasons and manifest ranking"},
                      {"name": "outcomes", "description": "inspection results (feed features and retraining)"},
                      {"name": "model", "description": "what is served; reload the champion"},
                      {"name": "reports", "description": "seizure trend reports"},
                      {"name": "profiles", "description": "risk profiles and watch lists (analysts write, "
                                                          "officers read)"},
                      {"name": "alerts", "description": "alerts raised by profiles; officers acknowledge them"},
                      {"name": "health", "description": "liveness and readiness (no key needed)"}])
    app.state.settings = settings
    app.include_router(v1)
    app.include_router(profiles_router)
    app.include_router(pages)
    install_workbench(app, settings)  # the officers' pages under /app/ (not in the OpenAPI schema)
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    _extend_openapi(app)
    _add_docs(app)
    _answer_other_slash(app)
    return app


PAGES_PREFIX = "/app"  # the officers' pages (serving.web): a browser follows a redirect


def _answer_other_slash(app: FastAPI) -> None:
    """A path that exists only with (or without) a trailing slash: an API path is a 404 naming the path
    that exists, a page's a 307 with a relative ``Location``.

    Starlette's ``redirect_slashes`` answered ``POST /v1/score/`` with a 307 to an absolute URL built from
    the request: ``http://…`` behind a TLS proxy that is not in ``FORWARDED_ALLOW_IPS``, which a client
    follows by sending its key and body again in clear text (or fails on). An API client's path is
    fixed in its code, so it is told once which path exists; a redirect would also send every body twice.
    A browser at ``/app`` or ``/app/manifests/`` is sent on, relative to the address it used (https kept).
    """
    router = app.router
    router.redirect_slashes = False
    not_found = router.default

    async def other_slash(scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        route_path = path.removeprefix(scope.get("root_path", ""))
        if scope["type"] != "http" or route_path in ("", "/"):
            await not_found(scope, receive, send)
            return
        other = {**scope, "path": path.rstrip("/") if path.endswith("/") else path + "/"}
        if not any(route.matches(other)[0] is not Match.NONE for route in router.routes):
            await not_found(scope, receive, send)
            return
        if route_path == PAGES_PREFIX or route_path.startswith(PAGES_PREFIX + "/"):
            query = scope.get("query_string", b"").decode("latin-1")  # as sent: still percent-encoded
            location = quote(other["path"], safe="/:@!$&'()*+,;=") + (f"?{query}" if query else "")
            await RedirectResponse(location, status_code=307)(scope, receive, send)
            return
        shown, meant = (p if len(p) <= 200 else p[:200] + "…" for p in (path, other["path"]))
        await JSONResponse({"detail": f"no such path {shown!r}: did you mean {meant!r}? (API paths are exact; "
                                      "a trailing slash is not redirected)"}, status_code=404)(scope, receive, send)

    router.default = other_slash


def _add_docs(app: FastAPI) -> None:
    """Swagger UI at ``/docs`` from the vendored assets under ``/static/swagger`` (no CDN, no validator call)."""
    app.mount("/static/swagger", StaticFiles(directory=SWAGGER_ASSETS), name="swagger-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(openapi_url=f"{root}{app.openapi_url}", title=f"{app.title} - API docs",
                                   swagger_js_url=f"{root}/static/swagger/swagger-ui-bundle.js",
                                   swagger_css_url=f"{root}/static/swagger/swagger-ui.css",
                                   swagger_favicon_url=f"{root}/static/swagger/favicon-32x32.png",
                                   swagger_ui_parameters={"validatorUrl": None})


def _extend_openapi(app: FastAPI) -> None:
    """Bodies are read by the routes' dependencies (counted before they are validated), so FastAPI does not
    see their models: add the request models' schemas (and the models they use) as components."""
    base = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        doc = base()
        _, defs = models_json_schema([(m, "validation") for m in schemas.REQUEST_MODELS],
                                     ref_template="#/components/schemas/{model}")
        doc.setdefault("components", {}).setdefault("schemas", {}).update(defs.get("$defs", {}))
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]
