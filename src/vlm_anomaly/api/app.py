"""The FastAPI application: builds the services, limits and error handlers, and includes the routers.

The routes live in :mod:`vlm_anomaly.api.routes` (health, models and jobs, events, sources), each a few
lines over the library; errors the user caused come back as ``{"error": "..."}`` with the error's
HTTP status, credentials masked.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..config import Settings
from ..errors import VlmAnomalyError
from ..events import Monitor
from ..pipeline import Pipeline
from ..redact import redact_text
from ..source_policy import SourcePolicy
from .deps import BearerGate, Services, caller
from .jobs import JobManager
from .limits import BodySizeLimit
from .prometheus import ServiceMetrics
from .routes import events, health, models, normal, sources
from .schemas import ErrorOut


def create_app(settings: Settings, *, pipeline: Pipeline | None = None) -> FastAPI:
    """Build the app. Tokens come from ``settings.api_tokens`` (env ``VLM_ANOMALY_API_TOKENS``).

    Example:
        >>> import uvicorn  # doctest: +SKIP
        >>> uvicorn.run(create_app(load_settings()), port=8000)  # doctest: +SKIP
    """
    pipe = pipeline or Pipeline(settings)
    metrics = ServiceMetrics()
    # sources started here are announced to Home Assistant like the cameras `watch` watches
    monitor = Monitor.from_settings(settings, pipeline=pipe, listener=metrics.on_notice, instance="api")
    jobs = JobManager(Path(settings.home) / "uploads", on_finish=lambda j: metrics.jobs.labels(j.kind, j.status).inc())
    section = settings.api  # tokens, allow-lists and limits: the api section
    per_video = int(section.max_upload_mb * 1024 * 1024)
    services = Services(settings, pipe, monitor, metrics, jobs, SourcePolicy.from_settings(section),
                        tokens=[t for t in section.api_tokens if t], max_video_bytes=per_video)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        services.close()

    app = FastAPI(
        title="vlm-anomaly",
        version=__version__,
        lifespan=lifespan,
        description="Video anomaly detection: train models on normal videos, score "
        "videos, watch live sources, review events. Bearer token on every "
        "endpoint but /health.",
    )
    app.state.services = services
    app.add_middleware(BodySizeLimit, per_video=per_video)
    app.middleware("http")(_timing)
    public = {"/health", app.openapi_url, app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url}
    app.add_middleware(BearerGate, tokens=services.tokens, public={p for p in public if p})  # outermost
    app.add_exception_handler(VlmAnomalyError, _domain_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)

    app.include_router(health.public)
    refusals = {"4XX": {"model": ErrorOut, "description": "refused: the error's message"}}
    for module in (health, models, events, sources, normal):
        app.include_router(module.router, dependencies=[Depends(caller)], responses=refusals)
    return app


# -- errors as JSON {"error": ...}, credentials masked ---------------------------------------------
async def _domain_error(request: Request, exc: VlmAnomalyError) -> JSONResponse:
    return JSONResponse({"error": str(exc)}, status_code=exc.status_code)


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    return JSONResponse({"error": redact_text(exc.detail)}, status_code=exc.status_code,
                        headers=getattr(exc, "headers", None))


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errs = exc.errors()
    first = errs[0] if errs else {}
    where = ".".join(str(p) for p in first.get("loc", ()))
    detail = [{"loc": list(map(str, e.get("loc", ()))), "msg": redact_text(e.get("msg"))} for e in errs]
    return JSONResponse({"error": redact_text(f"invalid request: {where}: {first.get('msg', '')}"), "detail": detail},
                        status_code=422)


#: request methods with a metrics series of their own; any other is counted as "other", so that a
#: client inventing method names cannot grow the metrics without bound
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


async def _timing(request: Request, call_next):
    t0 = time.perf_counter()
    response = await call_next(request)
    route = request.scope.get("route")
    method = request.method if request.method in METHODS else "other"
    request.app.state.services.metrics.latency.labels(method, getattr(route, "path", "other")).observe(
        time.perf_counter() - t0
    )
    return response
