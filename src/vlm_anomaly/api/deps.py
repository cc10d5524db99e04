"""What the routes share: the services one app was built with, and who is calling (bearer token).

Why on ``app.state`` and reached through dependencies: the routers are plain modules, so several apps
(with their own settings, stores and tokens) can live in one process, as the tests run them.
"""

from __future__ import annotations

import hashlib
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


def caller(request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> str:
    """Accept only ``Authorization: Bearer <one of api_tokens>``, compared in constant time.

    Returns a short fingerprint of the token (who acknowledged an event), never the token."""
    if creds is None or not creds.credentials:
        raise _unauthorized("missing bearer token")
    if not token_matches(creds.credentials, services(request).tokens):
        raise _unauthorized("invalid token")
    return "token-" + hashlib.sha256(creds.credentials.encode()).hexdigest()[:8]


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(status_code=401, detail=message, headers={"WWW-Authenticate": "Bearer"})


Svc = Annotated[Services, Depends(services)]
Caller = Annotated[str, Depends(caller)]
