"""The targeting workbench: server-rendered pages for officers under ``/app/`` (no OpenAPI entries).

:func:`install_workbench` adds the pages, their static files (vendored htmx and the CSS; nothing from
a CDN) and their error pages to the API's app. The pages call the API's own services.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from serving.errors import ServiceError
from serving.settings import ServingSettings
from serving.web.pages import Officer, PageError, SignInNeeded, redirect, render
from serving.web.routes import router
from serving.web.routes_profiles import router as profiles_router
from serving.web.session import SessionStore, WebSettings, WorkbenchConfigError, signing_secret

__all__ = ["WebSettings", "WorkbenchConfigError", "install_workbench", "router"]

log = logging.getLogger("riskprof.serving")
STATIC = Path(__file__).parent / "static"


def install_workbench(app: FastAPI, settings: ServingSettings, web: WebSettings | None = None) -> None:
    """Pages, static files, sessions and error pages. In prod without ``RISKPROF_SESSION_SECRET`` the
    pages answer 503 saying what to set; the API is unaffected."""
    web = web or WebSettings()
    app.state.web_settings = web
    try:
        app.state.web_sessions = SessionStore(signing_secret(web, settings.env), web)
        app.state.web_refusal = None
    except WorkbenchConfigError as exc:
        log.error("workbench disabled: %s", exc)
        app.state.web_sessions = None
        app.state.web_refusal = str(exc)
    app.mount("/app/static", StaticFiles(directory=STATIC), name="workbench-static")
    app.include_router(router)
    app.include_router(profiles_router)

    def error_page(request: Request, status: int, title: str, message: str) -> Response:
        """An error page, with the signed-in officer's navigation when there is one."""
        from serving.web.pages import current_session

        session = current_session(request) if app.state.web_sessions is not None else None
        principal = app.state.keys.verify(session.api_key) if session is not None and session.api_key else None
        officer = Officer(session, principal) if session is not None and principal is not None else None
        return render(request, "error.html", {"title": title, "message": message}, status=status,
                      session=session, officer=officer)

    # the API's request errors (a query or path value of the wrong type, a body over the limit) met by a
    # page: shown as a page, not as the API's JSON body
    app.state.request_error_page = error_page

    @app.exception_handler(PageError)
    async def page_error(request: Request, exc: PageError) -> Response:
        return error_page(request, exc.status, exc.title, exc.message)

    _TITLES = {503: "Service unavailable", 404: "Not found", 409: "Conflict"}

    def service_error_page(request: Request, exc: ServiceError) -> Response:
        """An API error met by a page (the store down, …), as a page: no session look-up (that may be
        what failed)."""
        problems = getattr(exc, "problems", None)
        message = "; ".join(p.message for p in problems) if problems else exc.message
        return render(request, "error.html", {"title": _TITLES.get(exc.status_code, "Request refused"),
                                              "message": message}, status=exc.status_code, session=None,
                      officer=None)

    app.state.service_error_page = service_error_page

    @app.exception_handler(SignInNeeded)
    async def sign_in_needed(request: Request, exc: SignInNeeded) -> Response:
        from urllib.parse import quote

        return redirect(f"/app/sign-in?next={quote(exc.next_path, safe='/')}")
