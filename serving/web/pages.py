"""Plumbing of the workbench pages: templates, the signed-in officer, CSRF, error pages, the audit.

Page handlers (``serving.web.routes``) only check roles, parse forms and call the services the API
calls; what they share lives here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData

from serving.roles import Principal, Role
from serving.store import AuditEvent
from serving.web.session import COOKIE, Session, SessionStore

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")


def segment(value: object) -> str:
    """One path segment of a page's URL: every character quoted but letters, digits and ``-._~`` (a
    customs number such as 12345/2023/001, or an id with '#' or '?', stays one segment)."""
    return quote(str(value), safe="")


templates.env.filters["segment"] = segment
# the pages load nothing from elsewhere and run no inline script
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "frame-src 'self'; frame-ancestors 'self'; form-action 'self'; base-uri 'none'")


class PageError(Exception):
    """Shown as an error page with ``status`` (never a stack trace)."""

    def __init__(self, status: int, title: str, message: str):
        super().__init__(message)
        self.status, self.title, self.message = status, title, message


class SignInNeeded(Exception):
    def __init__(self, next_path: str):
        super().__init__(next_path)
        self.next_path = next_path


@dataclass
class Officer:
    """The signed-in caller of a page: the session and the key's principal (checked on this request)."""

    session: Session
    principal: Principal

    @property
    def is_analyst(self) -> bool:
        return self.principal.role.allows(Role.analyst)


def sessions(request: Request) -> SessionStore:
    store: SessionStore | None = request.app.state.web_sessions
    if store is None:  # prod without a session secret: every page says so, the API runs on
        raise PageError(503, "The workbench is disabled", request.app.state.web_refusal)
    return store


def current_session(request: Request) -> Session | None:
    return sessions(request).from_cookie(request.cookies.get(COOKIE))


def page(role: Role) -> Callable[[Request], Awaitable[Officer]]:
    """Dependency: the session's key, verified like an ``X-API-Key`` (revocation included), with ``role``."""
    async def check(request: Request) -> Officer:
        session = current_session(request)
        principal = None
        if session is not None and session.api_key:
            principal = request.app.state.keys.verify(session.api_key)
        if session is None or principal is None:
            if request.method != "GET":
                raise PageError(403, "Signed out", "Your session has ended. Sign in again.")
            raise SignInNeeded(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        if not principal.role.allows(role):
            raise PageError(403, "Not allowed", f"This page needs the {role.value} role; you are signed in as "
                                                f"{principal.name} ({principal.role.value}).")
        return Officer(session, principal)

    check.__name__ = f"page_{role.value}"
    return check


OfficerPage = Depends(page(Role.officer))
AnalystPage = Depends(page(Role.analyst))


async def checked_form(request: Request, session: Session | None) -> FormData:
    """The posted form, after its CSRF token matched the session's (403 page otherwise)."""
    form = await request.form()
    token = form.get("csrf_token")
    if session is None or not session.check_csrf(token if isinstance(token, str) else None):
        raise PageError(403, "Form refused", "This form has expired or did not come from this site "
                                             "(missing or wrong security token). Go back, reload and try again.")
    return form


def render(request: Request, name: str, context: Mapping[str, Any], status: int = 200,
           session: Session | None = None, officer: Officer | None = None) -> HTMLResponse:
    session = session or (officer.session if officer else None)
    ctx = {"officer": officer, "csrf": session.csrf if session else "", **context}
    resp = templates.TemplateResponse(request, name, ctx, status_code=status)
    secure_headers(resp)
    return resp


def secure_headers(resp: Response) -> None:
    resp.headers["Content-Security-Policy"] = CSP
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "same-origin"
    resp.headers["Cache-Control"] = "no-store"


def set_cookie(request: Request, resp: Response, session: Session) -> None:
    store = sessions(request)
    resp.set_cookie(COOKIE, store.cookie_value(session), max_age=store.max_age, path="/app",
                    httponly=True, samesite="strict", secure=request.url.scheme == "https")


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def audit(request: Request, principal: Principal, action: str, params: dict[str, Any]) -> None:
    """Every workbench action is an audit event (endpoint ``web/<action>``, what was done in ``params``).

    No audit items: those rows mean "scored with this risk and lane" (profile statistics read them)."""
    ref = request.app.state.service.model_ref or {"name": "", "version": ""}
    event = AuditEvent.of(principal, f"web/{action}", ref["name"], str(ref["version"]), [], params)
    request.app.state.store.append_audit_events([event])


def today() -> str:
    return dt.date.today().isoformat()
