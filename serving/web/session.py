"""Workbench sessions: a signed cookie holding only a session id; the key and state stay on the server.

The cookie is ``HttpOnly`` and ``SameSite=Strict`` (``Secure`` over HTTPS). Every session, signed-in or
not, carries a CSRF token that each form sends back; the API key an officer signed in with is kept
server-side and verified on every request through the API's own :class:`serving.auth.KeyVerifier`, so
a revoked key ends the session at once.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

COOKIE = "riskprof_session"
MIN_SECRET_CHARS = 32


class WebSettings(BaseSettings):
    """The workbench's own settings (prefix ``RISKPROF_``)."""

    model_config = SettingsConfigDict(env_prefix="RISKPROF_", extra="ignore")

    session_secret: str | None = Field(default=None, description="signs the session cookie; required in prod "
                                                                 "(dev: a random secret per process)")
    session_hours: float = Field(default=10.0, gt=0, description="a session ends this long after sign-in")
    max_sessions: int = Field(default=10_000, ge=1, description="sessions kept in memory (oldest dropped)")
    manifests_per_session: int = Field(default=3, ge=1, description="ranked manifests kept per session")
    page_size: int = Field(default=50, ge=5, le=500, description="declarations per page of a ranked manifest")
    mlflow_ui_url: str = Field(default="http://127.0.0.1:5000", description="the MLflow UI linked from the "
                                                                            "model page (`make mlflow-ui`)")


class WorkbenchConfigError(RuntimeError):
    """The workbench cannot run with these settings (prod without a session secret)."""


def signing_secret(web: WebSettings, env: str) -> str:
    if web.session_secret:
        if env == "prod" and len(web.session_secret) < MIN_SECRET_CHARS:
            raise WorkbenchConfigError(f"RISKPROF_SESSION_SECRET must have at least {MIN_SECRET_CHARS} characters "
                                       "in prod")
        return web.session_secret
    if env == "prod":
        raise WorkbenchConfigError("RISKPROF_ENV=prod and no RISKPROF_SESSION_SECRET: the workbench needs a "
                                   f"secret of at least {MIN_SECRET_CHARS} characters to sign its session cookies "
                                   "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)")
    return secrets.token_urlsafe(48)  # dev: sessions end when the process does


@dataclass
class Session:
    id: str
    csrf: str
    expires: float
    api_key: str | None = None
    manifests: OrderedDict[str, Any] = field(default_factory=OrderedDict)

    def check_csrf(self, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf, str(token))


class SessionStore:
    """Sessions in this process's memory (a second worker process does not see them), LRU-bounded: at most
    ``max_sessions`` signed-in ones and as many more of the sign-in page."""

    def __init__(self, secret: str, web: WebSettings):
        self._signer = URLSafeTimedSerializer(secret, salt="riskprof-workbench-session")
        self.web = web
        # signed-in sessions and those of the sign-in page (a CSRF token, no key) are bounded apart: loading
        # the sign-in page needs no key, so its sessions must not push out those of signed-in officers
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._anonymous: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def max_age(self) -> int:
        return int(self.web.session_hours * 3600)

    def new(self, api_key: str | None = None) -> Session:
        session = Session(secrets.token_urlsafe(24), secrets.token_urlsafe(32), time.time() + self.max_age, api_key)
        with self._lock:
            kept = self._sessions if api_key else self._anonymous
            kept[session.id] = session
            while len(kept) > self.web.max_sessions:
                kept.popitem(last=False)
        return session

    def drop(self, session: Session) -> None:
        with self._lock:
            self._sessions.pop(session.id, None)
            self._anonymous.pop(session.id, None)

    def cookie_value(self, session: Session) -> str:
        return self._signer.dumps(session.id)

    def from_cookie(self, value: str | None) -> Session | None:
        if not value:
            return None
        try:
            sid = self._signer.loads(value, max_age=self.max_age)
        except BadSignature:
            return None
        with self._lock:
            kept = self._sessions if str(sid) in self._sessions else self._anonymous
            session = kept.get(str(sid))
            if session is None:
                return None
            if session.expires < time.time():
                kept.pop(session.id, None)
                return None
            kept.move_to_end(session.id)
            return session

    def keep_manifest(self, session: Session, manifest_id: str, manifest: Any) -> None:
        with self._lock:
            session.manifests[manifest_id] = manifest
            while len(session.manifests) > self.web.manifests_per_session:
                session.manifests.popitem(last=False)
