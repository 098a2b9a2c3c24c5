"""HTTP side of errors: JSON bodies for every failure (never a stack trace) and the body-size limit."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.errors import ServiceError

log = logging.getLogger("riskprof.serving")


class BodyTooLarge(Exception):
    def __init__(self, limit: int):
        super().__init__(f"request body larger than {limit} bytes")
        self.limit = limit


def _too_large_body(limit: int) -> dict[str, Any]:
    return {"detail": [{"field": "body", "message": f"request body larger than the limit of {limit} bytes"}]}


class BodyLimitMiddleware:
    """Refuses bodies over ``max_bytes``: at once from Content-Length, else while they stream in; and,
    before that, a path holding a NUL (404), an API query parameter given twice (422) and a compressed
    body (415)."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope["path"]:  # no id or name holds one; PostgreSQL refused it in a look-up (a 500)
            await _nul_in_path(scope)(scope, receive, send)
            return
        query = scope.get("query_string")
        if query and b"&" in query:  # ?years=2022&years=2023: one value was read, the other dropped
            repeated = _repeated_parameter(query)
            if repeated is not None and not _is_page(scope):
                await _repeated_response(*repeated)(scope, receive, send)
                return
        limit = self.max_bytes
        declared = 0
        for name, value in scope.get("headers", ()):  # one pass: this runs before every request
            if name == b"content-encoding" and value.strip().lower() not in (b"", b"identity"):
                await _unsupported_encoding(value)(scope, receive, send)
                return
            if name == b"content-length" and not declared:
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
        if declared > limit:
            await _too_large_response(scope, limit)(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, limited, send)


def _unsupported_encoding(value: bytes) -> Response:
    """A compressed body is refused by name: read as JSON it was a 'malformed JSON' at column 1."""
    shown = value.decode("latin-1")[:40]
    return JSONResponse({"detail": [{"field": "Content-Encoding", "value": shown,
                                     "message": f"request bodies are not decoded: send the JSON uncompressed "
                                                f"(Content-Encoding {shown!r} is not supported)"}]},
                        status_code=415)


def _nul_in_path(scope: Scope) -> Response:
    message = "no such path: it holds a NUL character (U+0000), which no id or name does"
    request = Request(scope)
    page = _page(request) if "app" in scope else None
    if page is not None:
        return page(request, 404, "Not found", message[:1].upper() + message[1:] + ".")
    return JSONResponse({"detail": message}, status_code=404)


def _repeated_parameter(query: bytes) -> tuple[str, list[str]] | None:
    """The first query parameter given more than once, with its values (as Starlette reads them)."""
    pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    counts = Counter(name for name, _ in pairs)
    name = next((n for n, c in counts.items() if c > 1), None)
    return None if name is None else (name, [v for n, v in pairs if n == name])


def _repeated_response(name: str, values: list[str]) -> Response:
    """Each parameter of the API takes one value: the others were dropped without a word (the last was read)."""
    shown = name if len(name) <= 100 else name[:100] + "…"
    return JSONResponse({"detail": [{"field": shown, "value": [v[:100] for v in values[:10]],
                                     "message": f"given {len(values)} times: give it once (it takes one value; "
                                                f"a list such as years is written 2022,2023)"}]}, status_code=422)


def _is_page(scope: Scope) -> bool:
    """A request to the workbench's pages (``/app/``), whose own forms and links build their queries."""
    path: str = scope.get("path", "")
    path = path.removeprefix(scope.get("root_path", ""))
    return path == "/app" or path.startswith("/app/")


def _page(request: Request) -> Any:
    """The workbench's error page for a request to one of its pages (``None`` for the API)."""
    page = getattr(request.app.state, "request_error_page", None)
    return page if page is not None and request.url.path.startswith("/app/") else None


def _too_large_response(scope: Scope, limit: int) -> Response:
    request = Request(scope)
    page = _page(request) if "app" in scope else None
    if page is not None:
        return page(request, 413, "Too large", f"The upload is larger than the limit of {limit:,} bytes: score a "
                                               "manifest this large with `riskprof score`.")
    return JSONResponse(_too_large_body(limit), status_code=413)


def _problem_from_loc(err: dict[str, Any]) -> dict[str, Any]:
    loc = [p for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
    out: dict[str, Any] = {"field": ".".join(str(p) for p in loc) or "body",
                           "message": str(err.get("msg", "invalid")).removeprefix("Value error, ")}
    if err.get("type") != "missing" and "input" in err:
        out["value"] = err["input"] if isinstance(err["input"], str | int | float | bool | None) else str(err["input"])
    return out


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> Response:
        page = getattr(request.app.state, "service_error_page", None)  # the workbench's, for its pages
        if page is not None and request.url.path.startswith("/app/"):
            return page(request, exc)  # a browser got the API's JSON (e.g. the store down: a raw 503 body)
        return JSONResponse(exc.body(), status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def request_validation(request: Request, exc: RequestValidationError) -> Response:
        problems = [_problem_from_loc(e) for e in exc.errors()]
        page = _page(request)
        if page is not None:  # e.g. /app/manifests/{id}?page=two, typed in the address bar
            return page(request, 422, "Request refused", "; ".join(f"{p['field']}: {p['message']}" for p in problems))
        return JSONResponse({"detail": problems}, status_code=422)

    @app.exception_handler(BodyTooLarge)
    async def body_too_large(request: Request, exc: BodyTooLarge) -> Response:
        return _too_large_response(request.scope, exc.limit)

    @app.exception_handler(ClientDisconnect)
    async def client_gone(request: Request, exc: ClientDisconnect) -> Response:
        """The client closed the connection while sending its body (a timeout, a cancelled upload): nothing
        failed here. It was logged as an unexpected error with two tracebacks and answered 500."""
        log.info("client closed the connection before its body was read: %s %s", request.method, request.url.path)
        return JSONResponse({"detail": [{"field": "body", "message": "the connection was closed before the body "
                                                                      "was read"}]}, status_code=400)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": "internal error (logged on the server)"}, status_code=500)


__all__ = ["BodyLimitMiddleware", "BodyTooLarge", "install_error_handlers"]
