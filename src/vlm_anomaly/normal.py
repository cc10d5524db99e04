""""This was normal": a model learns footage as normal without being trained again, and can forget it.

Why: when a camera's normal changes (a new bench, a van parked every morning) or an alert was
wrong, rebuilding the training set and retraining is too much to ask. Marking the footage normal
asks the model's detector (through the one detector contract, :func:`~vlm_anomaly.detectors.learner`)
to add the footage's observations to its normal data and to recompute its calibration and
threshold from what the model file keeps - the training videos are never read again (they may be
gone). The model file records each addition (id, source name, time range, when, frames, note) with
the rows it added, so :func:`undo_normal` restores exactly the previous behaviour.

The CLI (``vlm-anomaly normal``), the API (``/models/{name}/normal``), the dashboard and the Home
Assistant button are shells over these four functions.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .atomic import file_lock
from .config import Settings, load_settings
from .detectors import learner
from .detectors.contract import Progress
from .errors import AdditionNotFoundError, AlreadyLearntError, InvalidVideoError, ModelNotFoundError, VlmAnomalyError
from .pipeline import Pipeline, expected_samples, folder_rate
from .redact import redact_url
from .values import utc_stamp
from .video.sources import content_hash, is_stream_url, probe

if TYPE_CHECKING:
    from .events.store import EventStore
    from .model import AnomalyModel
    from .store.models import ModelStore

#: how much of the footage around an event is learnt with it (seconds each side, beyond the
#: smoothing window): the frames that led into it and out of it
EVENT_PAD_S = 1.0
MAX_NOTE = 500


@dataclass(frozen=True)
class NormalAddition:
    """One piece of footage a model learnt as normal after training."""

    id: str
    source: str  # what it is called: a file's name, a URL with credentials masked
    start_s: float | None  # seconds of the source (None: from its start)
    end_s: float | None  # (None: to its end)
    added_at: str  # ISO 8601, UTC
    frames: int  # sampled frames learnt
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NormalAddition:
        def opt(v: Any) -> float | None:
            return None if v is None else float(v)

        return cls(str(d["id"]), str(d.get("source", "")), opt(d.get("start_s")), opt(d.get("end_s")),
                   str(d.get("added_at", "")), int(d.get("frames", 0)), str(d.get("note", "")))


def source_name(source: str | Path) -> str:
    """What the model calls a piece of footage: a file's name (never the folders above it), a
    stream's URL with its credentials masked."""
    s = str(source)
    return redact_url(s) if is_stream_url(s) else (Path(s).name or s)


def _check_range(start_s: float | None, end_s: float | None) -> None:
    for v in (start_s, end_s):
        if v is not None and (not math.isfinite(v) or v < 0):
            raise InvalidVideoError(f"time {v} is not a time in the video (seconds from its start)")
    if start_s is not None and end_s is not None and end_s <= start_s:
        raise InvalidVideoError(f"the range ends ({end_s} s) before it starts ({start_s} s)")


def _range_text(start_s: float | None, end_s: float | None) -> str:
    if start_s is None and end_s is None:
        return "the whole video"
    return f"{start_s or 0:g}-{end_s:g} s" if end_s is not None else f"from {start_s:g} s"


def _pipeline(settings: Settings | None, pipeline: Pipeline | None) -> Pipeline:
    return pipeline or Pipeline(settings or load_settings())


def _model_lock(models: ModelStore, model: str):
    """One change of a model's normal data at a time (read, learn, save). A model that is not there
    is refused first, so a request naming one leaves no lock file behind."""
    if not models.exists(model):
        raise ModelNotFoundError(f"no model named {model!r}", folder=models.root)
    return file_lock(models.root / f".{model}.normal.lock")


def _check_new(m: AnomalyModel, source: str | Path, shown: str, start_s: float | None,
               end_s: float | None) -> str:
    """Refuse footage the model has learnt: a training clip, or the same range of the same footage
    marked normal before (an event's Normal button pressed twice). Either would join the held-out
    clips beside its twin, which explains it perfectly, and tighten the threshold as a clip given
    twice to training does (:meth:`~vlm_anomaly.pipeline.Pipeline.check_distinct`). Returns the
    footage's content hash ("" for a stream), kept with the addition: two files of one name differ."""
    sha = "" if is_stream_url(str(source)) else content_hash(source)
    twin = next((v.name for v in m.videos if sha and v.sha256 == sha), None)
    if twin is not None:
        raise InvalidVideoError(f"{shown} is training clip {twin} (identical content): "
                                "the model has learnt it already")
    for a in m.normal_additions:
        same = a.get("sha256") == sha if sha and a.get("sha256") else a.get("source") == shown
        if same and (a.get("start_s"), a.get("end_s")) == (start_s, end_s):
            raise AlreadyLearntError(f"{shown} ({_range_text(start_s, end_s)}) was learnt as normal already "
                                     f"(addition {a.get('id')}, {a.get('added_at', '')})")
    return sha


def mark_normal(models: ModelStore, model: str, source: str | Path, *, start_s: float | None = None,
                end_s: float | None = None, note: str = "", settings: Settings | None = None,
                progress: Progress | None = None, name: str | None = None,
                pipeline: Pipeline | None = None) -> NormalAddition:
    """Teach ``model`` that ``source`` (a video file or frame folder) between ``start_s`` and
    ``end_s`` seconds is normal; saves the model (atomically) and returns the addition.

    ``name``: what the model records as the footage's source (default: :func:`source_name`).
    ``pipeline``: a running shell's pipeline (its encoder is already loaded; default: a new one).
    Raises :class:`~vlm_anomaly.errors.CannotLearnError` when the model's detector cannot learn
    without retraining, :class:`~vlm_anomaly.errors.InvalidVideoError` for a bad source or range.
    """
    _check_range(start_s, end_s)
    note = str(note or "")[:MAX_NOTE]
    pipe = _pipeline(settings, pipeline)
    pipe.check_sources([source])
    key = uuid.uuid4().hex[:12]
    with _model_lock(models, model):
        m = models.load(model)
        scorer = learner(pipe.scorer(m), m.detector.name)
        shown = name or source_name(source)
        sha = _check_new(m, source, shown, start_s, end_s)
        # a frame folder's length at the rate the model reads it (a motion model: its training videos')
        info = None if is_stream_url(str(source)) else probe(source, folder_fps=folder_rate(scorer))
        length = (info.length_s or info.duration_s) if info is not None else 0.0
        if start_s is not None and length and start_s >= length:
            raise InvalidVideoError(f"{source_name(source)}: the range starts at {start_s:g} s, "
                                    f"after the video's end ({length:.1f} s)")
        total = expected_samples(info if info is not None else source, m.interval_ms,
                                 (settings or pipe.settings).max_frames)
        if end_s is not None or start_s is not None:
            span = (end_s if end_s is not None else total * m.interval_ms / 1000) - (start_s or 0)
            total = min(total, max(1, int(span * 1000 / max(1, m.interval_ms)) + 1)) if m.interval_ms else total
        report = (lambda n: progress(n, max(total, n), "learning the footage as normal")) if progress else None
        if progress:
            progress(0, total, "learning the footage as normal")
        frames = scorer.add_normal(source, start_s, end_s, key=key, name=shown, progress=report)
        addition = NormalAddition(key, shown, start_s, end_s, utc_stamp(), int(frames), note)
        _save(models, model, m, scorer.fitted(), [*m.normal_additions, {**addition.as_dict(), "sha256": sha}])
    if progress:
        progress(frames, frames, "done")
    return addition


def mark_event_normal(events: EventStore, models: ModelStore, event_id: int | str, *, note: str = "",
                      settings: Settings | None = None, progress: Progress | None = None,
                      pipeline: Pipeline | None = None) -> NormalAddition:
    """Teach the event's model that the event was normal: its source file over the event's time
    (plus the smoothing window and :data:`EVENT_PAD_S` each side) when that file is still there,
    else the event's evidence clip (a live camera's event)."""
    try:
        rec = events.get(int(event_id))
    except (TypeError, ValueError):
        raise VlmAnomalyError(f"event id {event_id!r} is not a number") from None
    if rec.end_time is None or rec.status != "closed":
        raise VlmAnomalyError(f"event {rec.id} is still open: mark it normal once it has ended")
    note = note or f"event {rec.id}"
    src = Path(rec.source)
    if not is_stream_url(rec.source) and (src.is_file() or src.is_dir()):
        m = models.load(rec.model)
        pad = EVENT_PAD_S + m.smoothing_window * m.interval_ms / 1000
        return mark_normal(models, rec.model, src, start_s=max(0.0, rec.start_time - pad),
                           end_s=rec.end_time + pad, note=note, settings=settings, progress=progress,
                           pipeline=pipeline)
    clip = events.media_path(rec.clip)
    if clip is None or not clip.is_file():
        raise VlmAnomalyError(f"event {rec.id} has no clip and its source is not a file: nothing to learn from")
    return mark_normal(models, rec.model, clip, note=note, settings=settings, progress=progress,
                       name=f"{source_name(rec.source)} event {rec.id}", pipeline=pipeline)


def normal_additions(models: ModelStore, model: str) -> list[NormalAddition]:
    """The footage ``model`` learnt as normal since training, oldest first."""
    return [NormalAddition.from_dict(a) for a in models.load(model).normal_additions]


def undo_normal(models: ModelStore, model: str, addition_id: str, *, settings: Settings | None = None,
                pipeline: Pipeline | None = None) -> None:
    """Forget one addition: its observations leave the model's normal data and calibration and
    threshold are recomputed, so the model scores as it did before (the other additions stay)."""
    with _model_lock(models, model):
        m = models.load(model)
        if not any(a.get("id") == addition_id for a in m.normal_additions):
            raise AdditionNotFoundError(f"model {model!r} has no footage marked normal with id {addition_id!r}")
        scorer = _pipeline(settings, pipeline).scorer(m)
        try:
            learner(scorer, m.detector.name).remove_normal(addition_id)
        except KeyError:
            raise AdditionNotFoundError(f"model {model!r} holds no observations of addition {addition_id!r}") from None
        _save(models, model, m, scorer.fitted(), [a for a in m.normal_additions if a.get("id") != addition_id])


def _save(models: ModelStore, name: str, m, detector, additions: list[dict]) -> None:
    m.detector = detector
    m.normal_additions = additions
    m.extra.update(detector.model_extra())
    models.save(m, name, update=True)
