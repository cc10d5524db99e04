"""The FastAPI application: models, jobs (train/score), events, watched sources, health, metrics.

Every route is a few lines over :class:`~vlm_anomaly.pipeline.Pipeline`, the model store, the
:class:`~vlm_anomaly.events.EventStore` and the :class:`~vlm_anomaly.events.Monitor`; errors the
user caused come back as ``{"error": "..."}`` with the error's HTTP status.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import time
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, File, Form, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..cameras import camera_id
from ..config import Settings, updated
from ..errors import InvalidVideoError, VlmAnomalyError
from ..events import AlertDispatcher, EventNotFoundError, EventStore, Monitor
from ..events.homeassistant import HomeAssistantBridge, fan_out
from ..events.normal_button import NormalButton
from ..pipeline import Pipeline
from ..redact import redact_text, redact_url, source_slug
from ..source_policy import SourcePolicy
from .auth import bearer_auth
from .jobs import JobManager
from .limits import BodySizeLimit
from .metrics import ServiceMetrics
from .normal import router as normal_router

log = logging.getLogger(__name__)

EventId = Annotated[int, PathParam(ge=1, le=2**53, description="event id")]
ModelName = Annotated[str, PathParam(max_length=64, description="model name")]
SourceQuery = Annotated[str | None, Query(
    max_length=2048,
    description="the source as the API shows it (credentials masked, e.g. rtsp://***@cam/live) or "
    "its camera name (cam_live); a client never needs to send a password",
)]
CHUNK = 1 << 20
#: videos one training request may upload (each up to ``max_upload_mb``)
MAX_VIDEOS_PER_REQUEST = 32
#: room in a request body for the multipart headers and the form fields besides the videos
FORM_OVERHEAD = 1 << 20


class UploadTooLargeError(VlmAnomalyError):
    status_code = 413


class WatchRequest(BaseModel):
    model: str = Field(max_length=64, description="model name")
    source: str = Field(
        min_length=1,
        max_length=2048,
        description="webcam index, stream URL, video file or frame folder; only what the "
        "settings allow (allowed_media_dirs, allowed_url_schemes/hosts, allowed_cameras)",
    )
    realtime: bool = Field(
        True, description="play files at their own rate (else as fast as possible)"
    )
    camera: str | None = Field(
        None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$",
        description="the camera's name: its alert topic and Home Assistant device (default: made "
        "from the source without its credentials)",
    )


def _safe_filename(name: str | None, i: int) -> str:
    base = Path(name or "").name
    base = re.sub(r"[^A-Za-z0-9_.-]", "_", base)[-80:].lstrip(".") or "upload"
    return f"{i:03d}-{base}"


def _save_uploads(files: list[UploadFile], folder: Path, max_bytes: int) -> list[str]:
    """Copy the uploaded videos into the job's folder, each at most ``max_bytes``.

    Blocking file I/O: called from the sync handlers, which FastAPI runs in its thread pool."""
    if len(files) > MAX_VIDEOS_PER_REQUEST:
        raise UploadTooLargeError(
            f"{len(files)} videos in one request; at most {MAX_VIDEOS_PER_REQUEST} are accepted"
        )
    paths = []
    for i, f in enumerate(files):
        p = folder / _safe_filename(f.filename, i)
        size = 0
        with open(p, "wb") as out:
            while chunk := f.file.read(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise UploadTooLargeError(
                        f"uploaded file {f.filename!r} is larger than the upload limit of "
                        f"{max_bytes / 2**20:g} MB per video (max_upload_mb)"
                    )
                out.write(chunk)
        if size == 0:
            raise InvalidVideoError(f"uploaded file {f.filename!r} is empty")
        paths.append(str(p))
    return paths


@contextlib.contextmanager
def _upload_folder(jobs: JobManager):
    """A new job folder, removed again if saving the uploads (or anything before the job) fails."""
    jid, folder = jobs.new_dir()
    try:
        yield jid, folder
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _job_settings(settings: Settings, **overrides) -> Settings:
    return updated(settings, overrides)


def create_app(settings: Settings, *, pipeline: Pipeline | None = None) -> FastAPI:
    """Build the app. Tokens come from ``settings.api_tokens`` (env ``VLM_ANOMALY_API_TOKENS``).

    Example:
        >>> import uvicorn  # doctest: +SKIP
        >>> uvicorn.run(create_app(load_settings()), port=8000)  # doctest: +SKIP
    """
    pipe = pipeline or Pipeline(settings)
    store = EventStore.from_settings(settings)
    alerts = AlertDispatcher.from_settings(settings.alerts)
    metrics = ServiceMetrics()
    # sources started here are announced to Home Assistant like the cameras `watch` watches
    bridge = (HomeAssistantBridge.from_settings(settings.alerts, store=store, instance="api")
              if settings.mqtt_url and settings.ha_discovery else None)
    monitor = Monitor(pipe, store=store, alerts=alerts,
                      listener=fan_out(metrics.on_notice, bridge.on_notice if bridge else None))
    if bridge is not None:
        bridge.attach(monitor)
        NormalButton(bridge, store, settings, pipeline=pipe)  # Home Assistant's "last anomaly was normal"
    jobs = JobManager(
        Path(settings.home) / "uploads",
        on_finish=lambda j: metrics.jobs.labels(j.kind, j.status).inc(),
    )
    section = settings.api  # tokens, allow-lists and limits: the api section
    auth = bearer_auth(section.api_tokens)
    policy = SourcePolicy.from_settings(section)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        monitor.stop_all()
        alerts.close()
        if bridge is not None:
            bridge.close()
        jobs.shutdown()
        store.close()

    app = FastAPI(
        title="vlm-anomaly",
        version=__version__,
        lifespan=lifespan,
        description="Video anomaly detection: train models on normal videos, score "
        "videos, watch live sources, review events. Bearer token on every "
        "endpoint but /health.",
    )
    app.state.pipeline, app.state.store, app.state.monitor = pipe, store, monitor
    app.state.jobs, app.state.metrics, app.state.alerts = jobs, metrics, alerts
    per_video = int(section.max_upload_mb * 1024 * 1024)

    def body_limit(scope) -> int:
        """The limit is per video (max_upload_mb); a whole body is capped at what its route may
        carry, so that an oversized request is refused before it is spooled to disk."""
        videos = MAX_VIDEOS_PER_REQUEST if scope["path"].endswith("/train") else 1
        return per_video * videos + FORM_OVERHEAD

    app.add_middleware(BodySizeLimit, max_bytes=body_limit)

    # -- errors as JSON {"error": ...} ------------------------------------------------------
    @app.exception_handler(VlmAnomalyError)
    async def _domain_error(request: Request, exc: VlmAnomalyError):
        return JSONResponse({"error": str(exc)}, status_code=exc.status_code)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        return JSONResponse(
            {"error": redact_text(exc.detail)},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        errs = exc.errors()
        first = errs[0] if errs else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return JSONResponse(
            {
                "error": redact_text(f"invalid request: {where}: {first.get('msg', '')}"),
                "detail": [
                    {"loc": list(map(str, e.get("loc", ()))), "msg": redact_text(e.get("msg"))}
                    for e in errs
                ],
            },
            status_code=422,
        )

    @app.middleware("http")
    async def _timing(request: Request, call_next):
        t0 = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        metrics.latency.labels(request.method, getattr(route, "path", "other")).observe(
            time.perf_counter() - t0
        )
        return response

    # -- open endpoints ------------------------------------------------------------------------
    @app.get("/health", tags=["service"])
    def health() -> dict:
        """Liveness (no authentication)."""
        return {"status": "ok", "version": __version__, "watched_sources": monitor.running}

    api = APIRouter(dependencies=[Depends(auth)])

    @api.get("/metrics", tags=["service"], response_class=Response)
    def prometheus_metrics() -> Response:
        """Prometheus metrics (text exposition format)."""
        metrics.watched.set(monitor.running)
        metrics.sync(monitor.list(), alerts)
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    # -- models ----------------------------------------------------------------------------------
    @api.get("/models", tags=["models"])
    def list_models() -> list[dict]:
        return [m.__dict__ for m in pipe.store.list()]

    @api.get("/models/{name}", tags=["models"])
    def show_model(name: ModelName) -> dict:
        return pipe.store.show(name)

    @api.delete("/models/{name}", tags=["models"])
    def delete_model(name: ModelName) -> dict:
        pipe.store.delete(name)
        return {"deleted": name}

    # the upload handlers are plain ``def``: FastAPI runs them in its thread pool, so copying the
    # uploads and loading a model never block the event loop (and with it every other request)
    @api.post("/models/{name}/train", tags=["models"], status_code=202)
    def train_model(
        name: ModelName,
        files: Annotated[list[UploadFile], File(description="normal videos")],
        interval_ms: Annotated[int | None, Form()] = None,
        expected_objects: Annotated[str | None, Form(max_length=1000)] = None,
    ) -> dict:
        """Train (or retrain) a model from uploaded normal videos; returns a job to poll."""
        pipe.store.path_for(name)
        job_settings = _job_settings(
            settings, interval_ms=interval_ms, expected_objects=expected_objects
        )
        with _upload_folder(jobs) as (jid, folder):
            paths = _save_uploads(files, folder, per_video)

        def work(progress):
            job_pipe = Pipeline(job_settings, encoder=pipe.encoder)
            model = job_pipe.train(name, paths, progress=progress)
            return {
                "model": name,
                "frames": model.n_frames,
                "videos": len(model.videos),
                "encoder": model.encoder_label,
            }

        job = jobs.submit(jid, "train", work, {"model": name, "files": len(paths)})
        return job.view()

    @api.post("/models/{name}/score", tags=["models"], status_code=202)
    def score_video(
        name: ModelName,
        file: Annotated[UploadFile, File(description="video to score")],
        threshold: Annotated[float | None, Form()] = None,
        interval_ms: Annotated[int | None, Form()] = None,
    ) -> dict:
        """Score an uploaded video with a model; the job's result holds the per-frame scores."""
        model = pipe.store.load(name)
        _job_settings(settings, interval_ms=interval_ms)  # checks an override before the upload
        with _upload_folder(jobs) as (jid, folder):
            [path] = _save_uploads([file], folder, per_video)

        def work(progress):
            r = pipe.score(model, path, progress=progress, threshold=threshold, interval_ms=interval_ms)
            summary = r.summary()
            summary["source"] = file.filename
            return {"summary": summary, "frames": r.rows()}

        job = jobs.submit(jid, "score", work, {"model": name, "file": file.filename})
        return job.view()

    # -- jobs ------------------------------------------------------------------------------------
    @api.get("/jobs", tags=["jobs"])
    def list_jobs() -> list[dict]:
        return [j.view(with_result=False) for j in jobs.list()]

    @api.get("/jobs/{job_id}", tags=["jobs"])
    def get_job(job_id: Annotated[str, PathParam(max_length=64)]) -> dict:
        return jobs.get(job_id).view()

    # -- events ----------------------------------------------------------------------------------
    def source_filter(source: str | None) -> str | None:
        """The stored source a ``?source=`` names: the masked URL the API shows, a camera name
        (``cam1.lan_live``), a path, or (still accepted) the URL with its credentials."""
        if source is None:
            return None
        shown = redact_url(source)
        known = store.sources()
        if shown in known:
            return shown
        by_slug = [s for s in known if source_slug(s) == source]
        return by_slug[0] if by_slug else shown

    @api.get("/events", tags=["events"])
    def list_events(
        source: SourceQuery = None,
        acknowledged: bool | None = None,
        status: Annotated[str | None, Query(pattern="^(open|closed)$")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
    ) -> list[dict]:
        return [
            e.as_dict()
            for e in store.list(
                source=source_filter(source),  # stored masked
                acknowledged=acknowledged,
                status=status,
                limit=limit,
                offset=offset,
            )
        ]

    @api.get("/events/{event_id}", tags=["events"])
    def get_event(event_id: EventId) -> dict:
        return store.get(event_id).as_dict()

    @api.post("/events/{event_id}/ack", tags=["events"])
    def ack_event(event_id: EventId, who: str = Depends(auth)) -> dict:
        return store.acknowledge(event_id, by=who).as_dict()

    @api.delete("/events/{event_id}", tags=["events"])
    def delete_event(event_id: EventId) -> dict:
        store.delete(event_id)
        return {"deleted": event_id}

    def _media(event_id: int, kind: str, media_type: str) -> FileResponse:
        rec = store.get(event_id)
        p = store.media_path(getattr(rec, kind))
        if p is None or not p.is_file():
            raise EventNotFoundError(f"event {event_id} has no {kind}")
        return FileResponse(p, media_type=media_type)

    @api.get("/events/{event_id}/snapshot", tags=["events"], response_class=FileResponse)
    def event_snapshot(event_id: EventId):
        """JPEG of the event's worst frame."""
        return _media(event_id, "snapshot", "image/jpeg")

    @api.get("/events/{event_id}/clip", tags=["events"], response_class=FileResponse)
    def event_clip(event_id: EventId):
        """MP4 clip around the worst frame."""
        return _media(event_id, "clip", "video/mp4")

    @api.get("/gaps", tags=["events"])
    def list_gaps(
        source: SourceQuery = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[dict]:
        """Stream stalls/drops and the time they cost."""
        return [
            {
                k: (v.isoformat() if hasattr(v, "isoformat") else redact_text(v) if k in (
                    "source", "reason") else v)
                for k, v in g.items()
            }
            for g in store.gaps(source_filter(source), limit)
        ]

    # -- watched sources -------------------------------------------------------------------------
    @api.get("/sources", tags=["sources"])
    def list_sources() -> list[dict]:
        return monitor.list()

    @api.post("/sources", tags=["sources"], status_code=201)
    def start_source(req: WatchRequest) -> dict:
        """Start watching a source with a model; events go to the store and the alerts.

        Only sources the settings allow: 403 for anything else, 429 over ``max_watchers``."""
        model = pipe.load(req.model)  # 404 first: no model, nothing to check
        source = policy.check(req.source)
        camera = req.camera or camera_id(source)
        if bridge is not None:
            bridge.add_camera(camera, source)
        try:
            wid = monitor.start(model, source, realtime=req.realtime, camera=camera)
        except BaseException:
            if bridge is not None:
                bridge.remove_camera(camera)
            raise
        return {**monitor.status(wid), "camera": camera}

    @api.get("/sources/{watch_id}", tags=["sources"])
    def get_source(watch_id: Annotated[str, PathParam(max_length=32)]) -> dict:
        monitor.get(watch_id)
        return monitor.status(watch_id)

    @api.delete("/sources/{watch_id}", tags=["sources"])
    def stop_source(watch_id: Annotated[str, PathParam(max_length=32)]) -> dict:
        """Stop watching; its Home Assistant device is removed (no longer watched)."""
        status = monitor.stop(watch_id)
        if bridge is not None and status.get("camera"):
            bridge.remove_camera(status["camera"])
        return status

    app.include_router(api)
    app.include_router(normal_router, dependencies=[Depends(auth)])
    return app
