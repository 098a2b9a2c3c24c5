"""API keys: the ``X-API-Key`` header, checked against hashed keys in the store, and roles.

``officer`` < ``analyst`` < ``admin``; each route asks for the least role it needs through one of
the ``Annotated`` aliases below. The salted-hash check of a key is remembered for
``key_cache_seconds``; whether the key is revoked is looked up on every request (one indexed
read), so a key revoked through any process or ``riskprof keys revoke`` is refused at once by all.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader

from serving.roles import Principal, Role
from serving.store import Store

API_KEY_HEADER = "X-API-Key"

api_key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, scheme_name="APIKey",
                              description="an API key from `riskprof keys create --role R --name N`")


class KeyVerifier:
    """Checks keys against the store: the hash check is cached, the revocation is not."""

    def __init__(self, store: Store, ttl_seconds: float = 30.0, max_entries: int = 10_000):
        self.store = store
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self._cache: dict[str, tuple[Principal, float]] = {}
        self._lock = threading.Lock()

    def verify(self, key: str) -> Principal | None:
        digest = hashlib.sha256(key.encode()).hexdigest()
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit is not None and hit[1] > now:
            if self.store.key_active(hit[0].key_id):
                return hit[0]
            with self._lock:
                self._cache.pop(digest, None)
            return None
        principal = self.store.verify_api_key(key)
        with self._lock:
            if principal is None:
                self._cache.pop(digest, None)
            elif self.ttl > 0:
                if len(self._cache) >= self.max_entries:
                    self._cache.clear()
                self._cache[digest] = (principal, now + self.ttl)
        return principal

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()


def get_key_verifier(request: Request) -> KeyVerifier:
    return request.app.state.keys


def get_principal(request: Request, key: str | None) -> Principal:
    """The caller of ``request`` by its ``X-API-Key`` header (401 if missing, unknown or revoked)."""
    if not key:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, f"missing API key: send it in the {API_KEY_HEADER} header",
                            headers={"WWW-Authenticate": "APIKey"})
    principal = get_key_verifier(request).verify(key)
    if principal is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid or revoked API key",
                            headers={"WWW-Authenticate": "APIKey"})
    return principal


def require(role: Role) -> Callable[..., Awaitable[Principal]]:
    # one dependency (with the header's as its only sub-dependency) rather than a chain of three: FastAPI's
    # per-request cost grows with the number of dependencies, and this one runs on every call
    async def check(request: Request, key: Annotated[str | None, Security(api_key_header)]) -> Principal:
        principal = get_principal(request, key)
        if not principal.role.allows(role):
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                f"this needs the {role.value} role; key {principal.name!r} has {principal.role.value}")
        return principal

    check.__name__ = f"require_{role.value}"
    return check


Officer = Annotated[Principal, Depends(require(Role.officer))]
Analyst = Annotated[Principal, Depends(require(Role.analyst))]
Admin = Annotated[Principal, Depends(require(Role.admin))]
