"""Live sources: start watching one with a model (only what the settings allow), list, stop."""

from __future__ import annotations

from fastapi import APIRouter

from ...cameras import camera_id
from ..deps import Svc
from ..schemas import WatchId, WatchRequest, WatchStatus

router = APIRouter(tags=["sources"])


@router.get("/sources", response_model=list[WatchStatus])
def list_sources(svc: Svc) -> list[dict]:
    return svc.monitor.list()


@router.post("/sources", status_code=201, response_model=WatchStatus)
def start_source(svc: Svc, req: WatchRequest) -> dict:
    """Start watching a source with a model; events go to the store and the alerts.

    Only sources the settings allow: 403 for anything else, 429 over ``max_watchers``."""
    model = svc.pipeline.load(req.model)  # 404 first: no model, nothing to check
    source = svc.policy.check(req.source)
    camera = req.camera or camera_id(source)
    bridge = svc.monitor.bridge  # sources started here are announced to Home Assistant like `watch`'s cameras
    if bridge is not None:
        bridge.add_camera(camera, source)
    try:
        wid = svc.monitor.start(model, source, realtime=req.realtime, camera=camera)
    except BaseException:
        if bridge is not None:
            bridge.remove_camera(camera)
        raise
    return svc.monitor.status(wid)


@router.get("/sources/{watch_id}", response_model=WatchStatus)
def get_source(svc: Svc, watch_id: WatchId) -> dict:
    return svc.monitor.status(watch_id)  # 404 for an unknown id


@router.delete("/sources/{watch_id}", response_model=WatchStatus)
def stop_source(svc: Svc, watch_id: WatchId) -> dict:
    """Stop watching; its Home Assistant device is removed (no longer watched)."""
    status = svc.monitor.stop(watch_id)
    if svc.monitor.bridge is not None and status.get("camera"):
        svc.monitor.bridge.remove_camera(status["camera"])
    return status
