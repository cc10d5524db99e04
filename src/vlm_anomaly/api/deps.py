"""What the routes share: the services one app was built with, and who is calling (bearer token).

Why on ``app.state`` and reached through dependencies: the routers are plain modules, so several apps
(with their own settings, stores and tokens) can live in one process, as the tests run them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..config import Settings
from ..credentials import token_matches  # one constant-time compare, shared with the dashboard
from ..events import Monitor
from ..pipeline import Pipeline
from ..source_policy import SourcePolicy
from .jobs import JobManager
from .prometheus import ServiceMetrics


@dataclass
class Services:
    """The library objects behind the routes, built once per app by ``create_app``."""

    settings: Settings
    pipeline: Pipeline
    monitor: Monitor  # the live engine, with the event store, alerts and Home Assistant bridge it owns
    metrics: ServiceMetrics
    jobs: JobManager
    policy: SourcePolicy  # which sources POST /sources may open
    tokens: list[str]
    max_video_bytes: int  # per uploaded video (max_upload_mb)

    def close(self) -> None:
        self.monitor.close()  # its sinks too: last alerts out, Home Assistant told, store closed
        self.jobs.shutdown()


def services(request: Request) -> Services:
    return request.app.state.services


_bearer = HTTPBearer(auto_error=False, description="a token from the api_tokens setting")


def refusal(token: str | None, tokens: list[str]) -> str | None:
    """Why a bearer token is refused (``None``: it is one of ``tokens``, compared in constant time)."""
    if not token:
        return "missing bearer token"
    return None if token_matches(token, tokens) else "invalid token"


def caller(request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> str:
    """Accept only ``Authorization: Bearer <one of api_tokens>``, compared in constant time.

    Returns a short fingerprint of the token (who acknowledged an event), never the token."""
    why = refusal(creds.credentials if creds else None, services(request).tokens)
    if why:
        raise HTTPException(status_code=401, detail=why, headers={"WWW-Authenticate": "Bearer"})
    return "token-" + hashlib.sha256(creds.credentials.encode()).hexdigest()[:8]


class BearerGate:
    """Refuse a request without a valid bearer token before its body is read.

    Why an ASGI middleware besides the :func:`caller` dependency: FastAPI reads and parses a body
    (spools a multipart upload to disk, parses JSON in memory) before it runs any dependency, so
    without this anyone could make the server take gigabytes before being told 401. ``public``
    paths (``/health``, the OpenAPI document and its pages) pass; the dependency still checks each
    route and names the caller."""

    def __init__(self, app, tokens: list[str], public: Collection[str]):
        self.app, self.tokens, self.public = app, tokens, frozenset(public)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] in self.public:
            return await self.app(scope, receive, send)
        header = next((v for k, v in scope.get("headers", []) if k == b"authorization"), b"")
        scheme, _, token = header.decode("latin-1").partition(" ")
        why = refusal(token.strip() if scheme.lower() == "bearer" else None, self.tokens)
        if why is None:
            return await self.app(scope, receive, send)
        body = json.dumps({"error": why}).encode()
        await send({"type": "http.response.start", "status": 401, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"www-authenticate", b"Bearer"), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


Svc = Annotated[Services, Depends(services)]
Caller = Annotated[str, Depends(caller)]
