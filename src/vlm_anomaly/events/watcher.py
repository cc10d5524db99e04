"""Watch live sources: sample → encode → score → smooth causally → events → store and alerts.

A :class:`SourceWatcher` runs one source (blocking); a :class:`Monitor` runs several at once in
threads sharing one pipeline and encoder, and is what the CLI ``watch`` command, the REST API and
the Ray actors drive.
"""

from __future__ import annotations

import datetime as _dt
import itertools
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from ..attributes.scorer import explanation_text
from ..detectors import CausalSmoother
from ..errors import VlmAnomalyError
from ..model import AnomalyModel
from ..pipeline import Pipeline
from ..video import Frame
from ..video.live import Gap, LiveSource
from .alerts import AlertDispatcher, event_payload, source_slug
from .hysteresis import EventTracker, HysteresisConfig, Phase
from .media import write_clip, write_snapshot
from .prompts import PromptAlarm
from .store import EventRecord, EventStore, utcnow

log = logging.getLogger(__name__)

MAX_DESCRIPTIONS = 200


class WatchNotFoundError(VlmAnomalyError):
    """No watched source with that id."""

    status_code = 404


@dataclass
class WatchNotice:
    """What a watcher tells its listeners: an event started or ended, or a gap in the stream."""

    kind: str  # "start" | "end" | "gap" | "error"
    source: str
    record: EventRecord | None = None
    gap: Gap | None = None
    message: str = ""


Listener = Callable[[WatchNotice], None]


@dataclass
class _Open:
    """The event being built: scores, descriptions, the worst frame and the clip frames."""

    start_time: float
    wall_start: _dt.datetime
    scores: list[float] = field(default_factory=list)
    descriptions: list[dict] = field(default_factory=list)
    worst_score: float = float("inf")
    worst_time: float = 0.0
    worst_image: np.ndarray | None = None
    clip_pre: list[np.ndarray] = field(default_factory=list)
    clip_post: list[np.ndarray] = field(default_factory=list)
    prompt: str | None = None
    prompt_score: float | None = None
    event_id: int | None = None


@dataclass
class WatchStats:
    frames: int = 0
    events: int = 0
    gaps: int = 0
    missed_s: float = 0.0
    last_time: float = 0.0
    last_score: float | None = None
    status: str = "starting"
    error: str | None = None


class SourceWatcher:
    """Monitor one source with one model until it ends or :meth:`stop` is called.

    Example:
        >>> w = SourceWatcher(pipe, "office-day", "rtsp://cam/1", store=store)  # doctest: +SKIP
        >>> w.run()  # doctest: +SKIP
    """

    def __init__(
        self,
        pipeline: Pipeline,
        model: AnomalyModel | str,
        source: str,
        *,
        store: EventStore | None = None,
        alerts: AlertDispatcher | None = None,
        realtime: bool = True,
        listener: Listener | None = None,
        encode_lock: threading.Lock | None = None,
        live: LiveSource | None = None,
    ):
        self.pipeline = pipeline
        s = self.settings = pipeline.settings
        self.model = pipeline.load(model)
        self.encoder = pipeline.encoder_for(self.model)
        self.source = str(source)
        self.store = store
        self.alerts = alerts
        self.listener = listener
        self.encode_lock = encode_lock or threading.Lock()
        self.realtime = realtime
        self.interval_ms = s.interval_ms  # the configured interval (0 = every frame)
        self.live = live or LiveSource(
            self.source,
            interval_ms=self.interval_ms,
            realtime=realtime,
            stall_timeout_s=s.stream_stall_timeout_s,
            backoff_initial_s=s.stream_backoff_initial_s,
            backoff_max_s=s.stream_backoff_max_s,
            max_side=s.max_side,
            with_previous=self.model.detector.needs_video,
        )
        # attribute models (issue 8) score motion and objects, so they need the frames, not embeddings
        self.attributes = (self.model.detector.scorer(encoder=self.encoder)
                           if self.model.detector.needs_video else None)
        self.hysteresis = HysteresisConfig.from_settings(s, self.model.threshold)
        self.tracker = EventTracker(self.hysteresis)
        self.smoother = CausalSmoother(s.event_smoothing_window or self.model.smoothing_window)
        self.prompts = PromptAlarm.create(
            self.encoder,
            s.alert_prompts,
            normal=self.model.prompts or None,
            threshold=s.alert_prompt_threshold,
            weight=s.alert_prompt_weight,
        )
        self.half_clip = max(0.0, s.clip_seconds / 2)
        self._ring: deque[tuple[float, np.ndarray]] = deque()
        self._open: _Open | None = None
        self._post_until: float | None = None
        self._alerted: EventRecord | None = None
        self.stats = WatchStats()
        self.records: list[EventRecord] = []  # closed events of this run (newest last)

    # -- control ---------------------------------------------------------------------------
    def stop(self) -> None:
        self.live.stop()

    def run(self) -> WatchStats:
        """Blocking loop; returns when the source ends, gives up, or :meth:`stop` is called."""
        self.stats.status = "running"
        try:
            for item in self._batches():
                if isinstance(item, Gap):
                    self._on_gap(item)
                else:
                    self._on_frames(item)
            self._finish()
            self.stats.status = "stopped" if self.live.stopped else "ended"
        except VlmAnomalyError as exc:
            self.stats.status, self.stats.error = "failed", str(exc)
            self._notify(WatchNotice("error", self.source, message=str(exc)))
        except Exception as exc:
            self.stats.status, self.stats.error = "failed", f"{type(exc).__name__}: {exc}"
            log.exception("watcher %s failed", self.source)
            self._notify(WatchNotice("error", self.source, message=self.stats.error))
        return self.stats

    def _batches(self) -> Iterator[list[Frame] | Gap]:
        """Frames one by one in real time (low latency), in batches when running fast."""
        size = 1 if self.realtime else self.settings.batch_size
        batch: list[Frame] = []
        for item in self.live:
            if isinstance(item, Gap):
                if batch:
                    yield batch
                    batch = []
                yield item
                continue
            batch.append(item)
            if len(batch) >= size:
                yield batch
                batch = []
        if batch:
            yield batch

    # -- scoring -----------------------------------------------------------------------------
    def _on_frames(self, frames: list[Frame]) -> None:
        if self.attributes is not None:
            with self.encode_lock:
                scored = list(self.attributes.score_stream(frames))
            for f, score, why in scored:
                self._step(f, score, (why.get("text") or explanation_text(why)) if why else "", 0.0, None)
            return
        with self.encode_lock:
            emb = self.encoder.encode([f.image for f in frames])
            raw = self.model.decision_function(emb)
            descs = self.pipeline.describe_embeddings(self.model, emb, encoder=self.encoder)
            hits = self.prompts.score(emb) if self.prompts else None
        scores = self.prompts.fuse(raw, hits) if self.prompts and hits else raw
        for i, f in enumerate(frames):
            prompt = None
            if hits is not None and hits.probs[i] >= self.prompts.threshold:
                prompt = (hits.labels[i], float(hits.probs[i]))
            d = descs[i] if i < len(descs) else None
            self._step(f, float(scores[i]), d.text if d else "", d.confidence if d else 0.0, prompt)

    def _step(
        self, f: Frame, score: float, text: str, conf: float, prompt: tuple[str, float] | None
    ) -> None:
        t = f.timestamp
        smooth = self.smoother.update(score)
        self.stats.frames += 1
        self.stats.last_time, self.stats.last_score = t, smooth
        self._ring.append((t, f.image))
        while self._ring and self._ring[0][0] < t - self.half_clip:
            self._ring.popleft()
        if self._open is not None and self._post_until is not None and t <= self._post_until:
            self._open.clip_post.append(f.image)
        transitions = self.tracker.update(t, smooth)
        phase = self.tracker.phase
        if phase == Phase.IDLE and self._open is not None and self._open.event_id is None:
            self._open = None  # a dip too short to be an event
        if phase in (Phase.PENDING, Phase.ACTIVE):
            if self._open is None:
                self._open = _Open(t, self._wall(t))
            ev = self._open
            ev.scores.append(smooth)
            if len(ev.descriptions) < MAX_DESCRIPTIONS:
                ev.descriptions.append(
                    {"time": round(t, 3), "text": text, "confidence": round(conf, 4)}
                )
            if smooth < ev.worst_score:
                ev.worst_score, ev.worst_time, ev.worst_image = smooth, t, f.image
                ev.clip_pre = [img for _, img in self._ring]
                ev.clip_post = []
                self._post_until = t + self.half_clip
            if prompt and (ev.prompt_score is None or prompt[1] > ev.prompt_score):
                ev.prompt, ev.prompt_score = prompt
        for tr in transitions:
            if tr.kind == "start":
                self._start_event()
            elif tr.kind == "end":
                self._end_event(tr.end_time if tr.end_time is not None else t)

    def _wall(self, t: float) -> _dt.datetime:
        """Wall-clock time of source time ``t`` (real time) or now (fast replay)."""
        now = utcnow()
        if self.realtime:
            return now - _dt.timedelta(seconds=max(0.0, self.stats.last_time - t))
        return now

    # -- events ------------------------------------------------------------------------------
    def _values(self, ev: _Open) -> dict:
        return {
            "source": self.source,
            "model": self.model.name or "model",
            "start_time": ev.start_time,
            "started_at": ev.wall_start,
            "worst_score": ev.worst_score,
            "worst_time": ev.worst_time,
            "mean_score": float(np.mean(ev.scores)) if ev.scores else ev.worst_score,
            "frames": len(ev.scores),
            "descriptions": ev.descriptions,
            "prompt": ev.prompt,
            "prompt_score": ev.prompt_score,
        }

    def _record(self, ev: _Open, **extra) -> EventRecord:
        values = {**self._values(ev), **extra}
        if self.store is not None and ev.event_id is not None:
            return self.store.get(ev.event_id)
        defaults = {
            "id": ev.event_id or 0,
            "status": "open",
            "end_time": None,
            "ended_at": None,
            "snapshot": None,
            "clip": None,
            "media_bytes": 0,
            "acknowledged": False,
            "acknowledged_at": None,
            "acknowledged_by": None,
        }
        return EventRecord(**{**defaults, **values})

    def _start_event(self) -> None:
        ev = self._open
        if ev is None:
            return
        self.stats.events += 1
        if self.store is not None:
            ev.event_id = self.store.create(**self._values(ev), status="open")
        else:
            ev.event_id = self.stats.events
        rec = self._record(ev)
        log.info("event %s started on %s at %.2f s", ev.event_id, self.source, ev.start_time)
        self._alert("new", rec)
        self._notify(WatchNotice("start", self.source, record=rec))

    def _end_event(self, end_time: float) -> None:
        ev, self._open, self._post_until = self._open, None, None
        if ev is None or ev.event_id is None:
            return
        values = {
            **self._values(ev),
            "end_time": end_time,
            "status": "closed",
            "ended_at": ev.wall_start + _dt.timedelta(seconds=max(0.0, end_time - ev.start_time)),
        }
        if self.store is not None:
            values.update(self._write_media(ev))
            self.store.update(ev.event_id, **values)
            rec = self.store.get(ev.event_id)
            s = self.settings
            self.store.apply_retention(
                max_age_days=s.retention_days, max_bytes=int(s.retention_max_mb * 1024 * 1024)
            )
        else:
            rec = self._record(ev, **values)
        self.records.append(rec)
        log.info(
            "event %s ended on %s: %.2f-%.2f s, worst %.3f",
            rec.id,
            self.source,
            rec.start_time,
            end_time,
            rec.worst_score,
        )
        self._alert("end", rec)
        self._notify(WatchNotice("end", self.source, record=rec))

    def _write_media(self, ev: _Open) -> dict:
        if ev.worst_image is None or self.store is None:
            return {}
        day = ev.wall_start.strftime("%Y%m%d")
        base = f"{source_slug(self.source)}/{day}/event-{ev.event_id}-{uuid.uuid4().hex[:6]}"
        out: dict = {"media_bytes": 0}
        try:
            out["media_bytes"] += write_snapshot(
                self.store.media_root / f"{base}.jpg", ev.worst_image
            )
            out["snapshot"] = f"{base}.jpg"
            frames = ev.clip_pre + ev.clip_post
            if frames:
                fps = 1000.0 / self.interval_ms if self.interval_ms else 10.0
                out["media_bytes"] += write_clip(self.store.media_root / f"{base}.mp4", frames, fps)
                out["clip"] = f"{base}.mp4"
        except (OSError, ValueError) as exc:
            log.warning("event %s: cannot write snapshot/clip: %s", ev.event_id, exc)
        return out

    def _on_gap(self, gap: Gap) -> None:
        self.stats.gaps += 1
        self.stats.missed_s += gap.missed_s
        self.smoother.reset()  # scores before and after a gap are not neighbours
        if self.store is not None:
            self.store.add_gap(gap)
        self._notify(
            WatchNotice(
                "gap",
                self.source,
                gap=gap,
                message=f"missed {gap.missed_s:.1f} s "
                f"(~{gap.missed_samples(self.interval_ms)} samples): "
                f"{gap.reason}",
            )
        )

    def _finish(self) -> None:
        for tr in self.tracker.finish(self.stats.last_time):
            if tr.kind == "end":
                self._end_event(tr.end_time if tr.end_time is not None else self.stats.last_time)

    def _alert(self, kind: str, rec: EventRecord) -> None:
        """Publish new/end; ``before`` is the state last published for this event (Frigate's way)."""
        before = self._alerted if kind != "new" else None
        self._alerted = None if kind == "end" else rec
        if self.alerts is not None:
            self.alerts.publish(event_payload(kind, rec, before))

    def _notify(self, notice: WatchNotice) -> None:
        if self.listener is not None:
            try:
                self.listener(notice)
            except Exception:  # noqa: BLE001 - a listener bug must not stop monitoring
                log.exception("watch listener failed")


class Monitor:
    """Several sources watched concurrently (one thread each), one shared encoder per model.

    Example:
        >>> mon = Monitor(pipe, store=EventStore.from_settings(settings))  # doctest: +SKIP
        >>> wid = mon.start("office-day", "rtsp://cam/1")  # doctest: +SKIP
        >>> mon.wait(60); mon.stop_all()  # doctest: +SKIP
    """

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        store: EventStore | None = None,
        alerts: AlertDispatcher | None = None,
        listener: Listener | None = None,
    ):
        self.pipeline = pipeline
        self.store = store
        self.alerts = alerts
        self.listener = listener
        self._watchers: dict[str, tuple[SourceWatcher, threading.Thread, str]] = {}
        self._lock = threading.Lock()
        self._encode_lock = threading.Lock()
        self._ids = itertools.count(1)

    def start(self, model: str | AnomalyModel, source: str, *, realtime: bool = True) -> str:
        """Start watching ``source``; returns the watch id. Bad model or source raise at once."""
        with self._lock:
            w = SourceWatcher(
                self.pipeline,
                model,
                source,
                store=self.store,
                alerts=self.alerts,
                realtime=realtime,
                listener=self.listener,
                encode_lock=self._encode_lock,
            )
            wid = f"w{next(self._ids)}"
            th = threading.Thread(target=w.run, name=f"watch-{wid}", daemon=True)
            self._watchers[wid] = (w, th, w.model.name)
            th.start()
        return wid

    def get(self, wid: str) -> SourceWatcher:
        try:
            return self._watchers[wid][0]
        except KeyError:
            raise WatchNotFoundError(f"no watched source with id {wid!r}") from None

    def stop(self, wid: str, timeout_s: float = 10.0) -> dict:
        w = self.get(wid)
        w.stop()
        self._watchers[wid][1].join(timeout_s)
        return self.status(wid)

    def status(self, wid: str) -> dict:
        w, th, model = self._watchers[wid]
        st = w.stats
        return {
            "id": wid,
            "source": w.source,
            "model": model,
            "realtime": w.realtime,
            "status": st.status if th.is_alive() or st.status != "running" else "ended",
            "frames": st.frames,
            "events": st.events,
            "gaps": st.gaps,
            "missed_s": round(st.missed_s, 3),
            "last_time": round(st.last_time, 3),
            "last_score": None if st.last_score is None else round(st.last_score, 6),
            "error": st.error,
        }

    def list(self) -> list[dict]:
        return [self.status(wid) for wid in list(self._watchers)]

    @property
    def running(self) -> int:
        return sum(th.is_alive() for _, th, _ in self._watchers.values())

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until every source ended (True) or ``timeout_s`` passed (False)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        for _, th, _ in list(self._watchers.values()):
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            th.join(left)
            if th.is_alive():
                return False
        return True

    def stop_all(self, timeout_s: float = 10.0) -> None:
        for w, _, _ in self._watchers.values():
            w.stop()
        deadline = time.monotonic() + timeout_s
        for _, th, _ in self._watchers.values():
            th.join(max(0.0, deadline - time.monotonic()))
