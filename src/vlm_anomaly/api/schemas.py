"""What the API accepts and answers, as pydantic models: the OpenAPI schema documents each response.

Models the library already defines (a model listing, an event) come from its own types. Why
``extra="allow"`` on the other views of library records (watchers, a model's metadata): the library
owns their fields; a field it adds still reaches clients, and the fields listed here are the promise.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import fields
from typing import Annotated, Any, get_type_hints

from fastapi import Path as PathParam
from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field, create_model

from ..events import EventRecord


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class Request(BaseModel):
    """A JSON request body: a field it does not know is refused (422 naming it). Why: ignored, a
    typo passed silently - ``{"start": 3, "end": 5}`` for ``start_s``/``end_s`` taught a model a
    whole video, its anomaly included, as normal."""

    model_config = ConfigDict(extra="forbid")


class ErrorOut(BaseModel):
    """Every refusal: the error's message (credentials masked); ``detail`` lists invalid fields."""

    error: str
    detail: list[dict[str, Any]] | None = None


class Health(BaseModel):
    status: str = Field(description='"ok" while the service answers')
    version: str
    watched_sources: int = Field(description="sources being watched now")


class ModelDetail(_Open):
    """A model's metadata (``models show``): its encoder, detector, training videos, threshold."""

    name: str
    created: str
    encoder: dict[str, Any] | None
    detector: dict[str, Any]
    training: dict[str, Any] = Field(description="videos, frames and interval_ms it was trained on")
    threshold: float | None = None
    file: str = Field(description="the model's file name in the server's model store")
    size_bytes: int


class Deleted(BaseModel):
    deleted: str = Field(description="the name of what was deleted")


class DeletedEvent(BaseModel):
    deleted: int = Field(description="the id of the event deleted")


class WatchRequest(Request):
    model: str = Field(max_length=64, description="model name")
    source: str = Field(
        min_length=1,
        max_length=2048,
        description="webcam index, stream URL, video file or frame folder; only what the "
        "settings allow (allowed_media_dirs, allowed_url_schemes/hosts, allowed_cameras)",
    )
    realtime: bool = Field(True, description="play files at their own rate (else as fast as possible)")
    camera: str | None = Field(
        None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$",
        description="the camera's name: its alert topic and Home Assistant device (default: made "
        "from the source without its credentials)",
    )


class WatchStatus(_Open):
    """A watched source and its counters."""

    id: str
    source: str = Field(description="as shown: credentials masked")
    camera: str | None
    model: str
    realtime: bool
    status: str = Field(description="starting | running | offline | ended | dropped | stopped | failed")
    frames: int = Field(description="frames scored")
    dropped: int = Field(description="frames sampled but dropped: scoring was slower than real time")
    online: bool = Field(description="frames are flowing")
    alerts_sent: int
    alerts_failed: int
    sink_errors: int = Field(description="calls to the event sinks (store, alerts, Home Assistant) that raised")
    events: int
    gaps: int
    missed_s: float = Field(description="seconds lost in stream gaps")
    last_time: float
    last_score: float | None
    error: str | None
    reason: str = Field("", description="why the status is what it is: offline, the last connection failure "
                        "(credentials masked); ended or dropped, how; failed, the error")


def _event_model() -> type[BaseModel]:
    """The fields of a stored event as ``EventRecord.as_dict`` shows them: one definition, the store's."""
    hints = get_type_hints(EventRecord)
    as_text = {_dt.datetime: str, _dt.datetime | None: str | None}  # as_dict writes times in ISO 8601
    shown = {f.name: (as_text.get(hints[f.name], hints[f.name]), ...)
             for f in fields(EventRecord) if f.name != "owner"}  # (the lease holder stays in the store)
    return create_model("Event", __doc__="A stored anomaly event: times in seconds of source time, ``*_at`` "
                        "wall-clock UTC (ISO 8601), the source as shown (credentials masked).", **shown)


Event = _event_model()


class Gap(BaseModel):
    """A stream stall or drop the watcher reconnected after, and the source time it cost."""

    id: int
    source: str
    start_time: float
    end_time: float
    missed_s: float
    reason: str
    reconnects: int
    recorded_at: str


# -- path and query parameters several routes take ----------------------------------------------
EventId = Annotated[int, PathParam(ge=1, le=2**53, description="event id")]
ModelName = Annotated[str, PathParam(max_length=64, description="model name")]
WatchId = Annotated[str, PathParam(max_length=32, description="watch id (w1, w2...)")]
SourceQuery = Annotated[str | None, Query(
    max_length=2048,
    description="the source as the API shows it (credentials masked, e.g. rtsp://***@cam/live) or "
    "its camera name (cam_live); a client never needs to send a password",
)]
Limit = Annotated[int, Query(ge=1, le=1000)]
