"""Stored events (list, show, acknowledge, delete), their snapshot and clip, and stream gaps."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse

from ...events import EventNotFoundError
from ..deps import Caller, Svc
from ..schemas import DeletedEvent, Event, EventId, Gap, Limit, SourceQuery

router = APIRouter(tags=["events"])


@router.get("/events", response_model=list[Event])
def list_events(
    svc: Svc,
    source: SourceQuery = None,
    acknowledged: bool | None = None,
    status: Annotated[str | None, Query(pattern="^(open|closed)$")] = None,
    limit: Limit = 100,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> list[dict]:
    """Events, newest first; ``source`` as shown (masked) or its camera name."""
    store = svc.monitor.store
    found = store.list(source=source, acknowledged=acknowledged, status=status, limit=limit,
                       offset=offset)
    return [e.as_dict() for e in found]


@router.get("/events/{event_id}", response_model=Event)
def get_event(svc: Svc, event_id: EventId) -> dict:
    return svc.monitor.store.get(event_id).as_dict()


@router.post("/events/{event_id}/ack", response_model=Event)
def ack_event(svc: Svc, event_id: EventId, who: Caller) -> dict:
    """Acknowledge an event; ``acknowledged_by`` is a fingerprint of the caller's token."""
    return svc.monitor.store.acknowledge(event_id, by=who).as_dict()


@router.delete("/events/{event_id}")
def delete_event(svc: Svc, event_id: EventId) -> DeletedEvent:
    svc.monitor.store.delete(event_id)
    return DeletedEvent(deleted=event_id)


def _media(svc: Svc, event_id: int, kind: str, media_type: str) -> FileResponse:
    store = svc.monitor.store
    p = store.media_path(getattr(store.get(event_id), kind))
    if p is None or not p.is_file():
        raise EventNotFoundError(f"event {event_id} has no {kind}")
    return FileResponse(p, media_type=media_type)


@router.get("/events/{event_id}/snapshot", response_class=FileResponse,
            responses={200: {"content": {"image/jpeg": {}}, "description": "JPEG"}})
def event_snapshot(svc: Svc, event_id: EventId) -> FileResponse:
    """JPEG of the event's worst frame."""
    return _media(svc, event_id, "snapshot", "image/jpeg")


@router.get("/events/{event_id}/clip", response_class=FileResponse,
            responses={200: {"content": {"video/mp4": {}}, "description": "MP4"}})
def event_clip(svc: Svc, event_id: EventId) -> FileResponse:
    """MP4 clip around the worst frame."""
    return _media(svc, event_id, "clip", "video/mp4")


@router.get("/gaps", response_model=list[Gap])
def list_gaps(svc: Svc, source: SourceQuery = None, limit: Limit = 100) -> list[dict]:
    """Stream stalls/drops and the time they cost, newest first."""
    store = svc.monitor.store
    return store.gaps(source, limit)
