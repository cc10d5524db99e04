"""Routes of "this was normal": mark a time range of a video, or an event, normal; list; undo.

A shell over :mod:`vlm_anomaly.normal`: the app's pipeline (settings, model store, its loaded
encoder) and event store; a video path must be one the settings allow (the same
:class:`~vlm_anomaly.source_policy.SourcePolicy` as ``POST /sources``). Marking runs in the request
(a few seconds for a 30-s clip: the model learns the footage alone, never its training videos).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

from ...normal import NormalAddition, mark_event_normal, mark_normal, normal_additions, undo_normal
from ..deps import Svc
from ..schemas import EventId, ModelName, Request

AdditionId = Annotated[str, PathParam(max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description="addition id")]

router = APIRouter(tags=["normal"])


class MarkNormalRequest(Request):
    source: str = Field(min_length=1, max_length=2048,
                        description="video file or frame folder on the server, inside allowed_media_dirs")
    start_s: float | None = Field(None, ge=0, description="seconds of the video (default: its start)")
    end_s: float | None = Field(None, gt=0, description="seconds of the video (default: its end)")
    note: str = Field("", max_length=500, description="why this footage is normal")


class MarkEventRequest(Request):
    note: str = Field("", max_length=500, description="why the event was normal")


class NormalAdditionOut(BaseModel):
    """Footage a model learnt as normal after training."""

    model: str
    id: str
    source: str = Field(description="the footage's name (a file's name, a URL without credentials)")
    start_s: float | None
    end_s: float | None
    added_at: str = Field(description="ISO 8601, UTC")
    frames: int = Field(description="sampled frames learnt")
    note: str


class UndoneOut(BaseModel):
    model: str
    undone: str


def _out(model: str, a: NormalAddition) -> NormalAdditionOut:
    return NormalAdditionOut(model=model, **a.as_dict())


@router.post("/models/{name}/normal", status_code=201, response_model=NormalAdditionOut)
def mark_video_normal(svc: Svc, name: ModelName, req: MarkNormalRequest) -> NormalAdditionOut:
    """Teach the model that this video (or a time range of it) is normal, without retraining:
    the same footage then raises no alert. 403 for a path the settings do not allow."""
    pipe = svc.pipeline
    source = svc.policy.check(req.source)
    a = mark_normal(pipe.store, name, source, start_s=req.start_s, end_s=req.end_s, note=req.note, pipeline=pipe)
    return _out(name, a)


@router.post("/events/{event_id}/normal", status_code=201, response_model=NormalAdditionOut)
def mark_event_as_normal(svc: Svc, event_id: EventId, req: MarkEventRequest | None = None) -> NormalAdditionOut:
    """Teach the model that raised this event that the event was normal (its source's footage over
    the event's time, or the event's clip for a camera)."""
    pipe, store = svc.pipeline, svc.monitor.store
    a = mark_event_normal(store, pipe.store, event_id, note=req.note if req else "", pipeline=pipe)
    return _out(store.get(event_id).model, a)


@router.get("/models/{name}/normal", response_model=list[NormalAdditionOut])
def list_normal(svc: Svc, name: ModelName) -> list[NormalAdditionOut]:
    """What the model learnt as normal since training, oldest first."""
    return [_out(name, a) for a in normal_additions(svc.pipeline.store, name)]


@router.delete("/models/{name}/normal/{addition_id}", response_model=UndoneOut)
def undo(svc: Svc, name: ModelName, addition_id: AdditionId) -> UndoneOut:
    """Forget footage learnt as normal: the model scores as it did before it was added."""
    undo_normal(svc.pipeline.store, name, addition_id, pipeline=svc.pipeline)
    return UndoneOut(model=name, undone=addition_id)
