"""The live engine: source → stream scorer → causal smoothing → event builder → sinks.

A :class:`SourceWatcher` runs one source (blocking): its :class:`~.scorer.StreamScorer` turns frames
into scores, the :class:`~vlm_anomaly.incidents.EventBuilder` turns them into events (the one
definition of an incident, which offline results are replayed through too), and
the sinks get them - the event store with snapshot and clip (on disk from the moment an event
opens, see :mod:`.evidence`), the alert dispatcher (MQTT, webhooks), a
listener and an in-memory :class:`~.feed.LiveFeed`. A :class:`LiveSession` runs one watcher in a
thread; a :class:`Monitor` runs several sharing one pipeline and encoder, plus the retention job. The
dashboard's Live page, the CLI ``watch``, the REST API and the Ray actors all run this one engine.
"""

from __future__ import annotations

import datetime as _dt
import itertools
import logging
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from ..errors import TooManyWatchersError, VlmAnomalyError
from ..incidents import EventBuilder, HysteresisConfig, Phase
from ..model import AnomalyModel
from ..pipeline import Pipeline
from ..redact import redact_text, redact_url
from ..video import Frame
from ..video.live import Gap, LiveSource, PushSource
from .alerts import AlertDispatcher, event_payload
from .evidence import EventEvidence, evidence_base
from .feed import LiveFeed, Reading
from .recovery import RecoveryJob
from .retention import RetentionJob
from .scorer import Scored, StreamScorer
from .store import EventRecord, EventStore, event_kind, utcnow

log = logging.getLogger(__name__)

MAX_DESCRIPTIONS = 200
#: an open event's row is brought up to date this often (seconds of wall time): what a later
#: start closes it with if this process dies
PROGRESS_EVERY_S = 2.0


class WatchNotFoundError(VlmAnomalyError):
    """No watched source with that id."""

    status_code = 404


@dataclass
class WatchNotice:
    """What a watcher tells its listeners: an event started or ended, or a gap in the stream."""

    kind: str  # "start" | "end" | "gap" | "offline" | "error"
    source: str
    record: EventRecord | None = None
    gap: Gap | None = None
    message: str = ""


Listener = Callable[[WatchNotice], None]


@dataclass
class _Open:
    """The event being built: scores, descriptions, the worst score and its evidence files."""

    start_time: float
    wall_start: _dt.datetime
    scores: list[float] = field(default_factory=list)
    descriptions: list[dict] = field(default_factory=list)
    worst_score: float = float("inf")
    worst_time: float = 0.0
    prompt: str | None = None
    prompt_score: float | None = None
    event_id: int | None = None
    evidence: EventEvidence | None = None  # None without a store
    saved_at: float = 0.0  # monotonic time the row was last brought up to date


@dataclass
class WatchStats:
    frames: int = 0
    events: int = 0
    gaps: int = 0
    missed_s: float = 0.0
    last_time: float = 0.0
    last_score: float | None = None
    status: str = "starting"  # starting | running | offline | stopped | ended | dropped | failed
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
        live: LiveSource | PushSource | None = None,
        feed: LiveFeed | None = None,
        interval_ms: int | None = None,
        threshold: float | None = None,
        camera: str | None = None,
    ):
        self.pipeline = pipeline
        s = self.settings = pipeline.settings
        self.model = pipeline.load(model)
        # the sampling interval (0 = every frame): the caller's, else one set explicitly in the
        # settings (--interval-ms, YAML, environment), else the model's own, as offline scoring does
        if interval_ms is None:
            interval_ms = s.interval_ms if "interval_ms" in s.model_fields_set else self.model.interval_ms
        self.interval_ms = int(interval_ms)
        self.scorer = StreamScorer(pipeline, self.model, encode_lock=encode_lock, interval_ms=self.interval_ms)
        self.encoder = self.scorer.encoder
        self.source = str(source)
        self.label = redact_url(self.source)  # what events, alerts, logs and notices show
        self.camera = camera  # the camera's name (alert topics, Frigate); None: named by its source
        self.store = store
        self.alerts = alerts
        self.listener = listener
        self.feed = feed
        self.realtime = realtime
        self.live = live or LiveSource.from_settings(
            self.source,
            s.sampling,
            interval_ms=self.interval_ms,
            realtime=realtime,
            with_previous=self.scorer.needs_previous,
            on_drop=self._on_drop,
        )
        self.threshold = self.model.threshold if threshold is None else float(threshold)
        self.builder = EventBuilder.from_settings(s.events, threshold=self.threshold,
                                                  model_window=self.model.smoothing_window,
                                                  interval_ms=self.interval_ms)
        self.half_clip = max(0.0, s.clip_seconds / 2)
        self._ring: deque[tuple[float, np.ndarray]] = deque()
        self._open: _Open | None = None
        self._alerted: EventRecord | None = None
        self.stats = WatchStats()
        self.records: list[EventRecord] = []  # closed events of this run (newest last)

    def set_threshold(self, threshold: float) -> None:
        """Move the event thresholds (a dashboard slider); the running event keeps its history."""
        self.threshold = float(threshold)
        self.builder.set_config(HysteresisConfig.from_settings(self.settings.events, self.threshold))

    @property
    def hysteresis(self) -> HysteresisConfig:
        """The event thresholds in force."""
        return self.builder.config

    # -- control ---------------------------------------------------------------------------
    def stop(self) -> None:
        self.live.stop()

    def run(self) -> WatchStats:
        """Blocking loop; returns when the source ends, gives up, or :meth:`stop` is called."""
        self._set_status("running")
        try:
            for item in self._batches():
                if isinstance(item, Gap):
                    self._on_gap(item)
                else:
                    self._on_frames(item)
            stopped = self.live.stopped
            reason = "stopped" if stopped else self._ended_reason()
            self._finish(reason)
            if stopped:
                self._set_status("stopped")
            else:
                self._set_status("dropped" if reason.startswith("source dropped") else "ended", reason)
        except VlmAnomalyError as exc:
            self._fail(str(exc))
        except Exception as exc:
            log.error("watcher %s failed: %s", self.label,
                      redact_text("".join(traceback.format_exception(exc))))
            self._fail(redact_text(f"{type(exc).__name__}: {exc}"))
        self._ring.clear()  # a finished watcher stays listed; its frames need not stay in memory
        return self.stats

    def _ended_reason(self) -> str:
        """Why the source ended by itself: the end of a file, or a source that dropped for good."""
        why = getattr(self.live, "end_reason", "")
        gaps = getattr(self.live, "gaps", [])
        if why:
            return f"source {why}"
        if gaps and gaps[-1].reason.endswith("gave up"):
            return f"source dropped: {gaps[-1].reason}"
        return "source ended"

    def _fail(self, message: str) -> None:
        self.stats.error = message
        self._close_on_crash()
        self._set_status("failed", message)
        self._notify(WatchNotice("error", self.label, message=message))

    def _close_on_crash(self) -> None:
        """An event open when the watcher fails is closed now, at the time of the crash, and says
        why (else it stays open for ever and retention, which skips open events, never frees it)."""
        ev = self._open
        self.builder.restart()
        if ev is None or ev.event_id is None:
            self._open = None
            return
        try:
            self._end_event(max(self.stats.last_time, ev.start_time), f"watcher failed: {self.stats.error}",
                            ended_at=utcnow())
        except Exception as exc:  # noqa: BLE001 - the store itself may be what failed
            log.error("watcher %s: cannot close event %s after the failure: %s",
                      self.label, ev.event_id, redact_text(exc))

    def _set_status(self, status: str, reason: str = "") -> None:
        self.stats.status = status
        if self.feed is not None:
            self.feed.set_state(status, reason)

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
        for sc in self.scorer.score(frames):
            self._step(sc)

    def _step(self, sc: Scored) -> None:
        f = sc.frame
        t = f.timestamp
        step = self.builder.update(t, sc.score)
        smooth, fast = step.smooth, step.fast
        self.stats.frames += 1
        self.stats.last_time, self.stats.last_score = t, smooth
        if self.stats.status == "offline":  # frames again after a drop
            self._set_status("running")
        self._ring.append((t, f.image))
        while self._ring and self._ring[0][0] < t - self.half_clip:
            self._ring.popleft()
        if self._open is not None and self._open.evidence is not None:
            self._open.evidence.add(f.image)  # every frame while pending, open or cooling down
        transitions, phase = step.transitions, step.phase
        if phase == Phase.IDLE and self._open is not None and self._open.event_id is None:
            self._open = None  # a dip too short to be an event
        if step.in_incident:
            if self._open is None:
                self._open = self._new_open(t)
            ev = self._open
            ev.scores.append(smooth)
            if len(ev.descriptions) < MAX_DESCRIPTIONS:
                ev.descriptions.append(
                    {"time": round(t, 3), "text": sc.text, "confidence": round(sc.confidence, 4),
                     **({"kind": sc.explanation["kind"]} if sc.explanation and "kind" in sc.explanation else {})}
                )
            # the event's one worst score: the lowest *smoothed* score, the value events are built on
            if smooth < ev.worst_score:
                ev.worst_score, ev.worst_time = smooth, t
                if ev.evidence is not None:
                    ev.evidence.worst(f.image)
            if sc.prompt and (ev.prompt_score is None or sc.prompt[1] > ev.prompt_score):
                ev.prompt, ev.prompt_score = sc.prompt
        for tr in transitions:
            if tr.kind == "start":
                self._start_event()
            elif tr.kind == "end":
                self._end_event(tr.end_time if tr.end_time is not None else t, "recovered")
        self._save_progress(t)
        if self.feed is not None:
            self.feed.reading(Reading(t, sc.score, smooth, max(smooth, fast) < self.hysteresis.enter, sc.text,
                                      sc.confidence, sc.explanation), f.image)
            if self._open is not None and self._open.event_id is not None:
                self.feed.event(self._draft(self._open))

    def _new_open(self, t: float) -> _Open:
        """A pending event; its clip starts with the frames of the last ``clip_seconds / 2``."""
        ev = _Open(t, self._wall(t))
        if self.store is not None:
            fps = 1000.0 / self.interval_ms if self.interval_ms else 10.0
            ev.evidence = EventEvidence(self.store.media_root, fps=fps, pre_roll=[img for _, img in self._ring])
        return ev

    def _save_progress(self, t: float) -> None:
        """Bring the open event's row up to date now and then (scores, descriptions, the source
        time reached): if this process dies, that is what the next start closes it with."""
        ev = self._open
        if self.store is None or ev is None or ev.event_id is None:
            return
        now = time.monotonic()
        if now - ev.saved_at < PROGRESS_EVERY_S:
            return
        ev.saved_at = now
        try:
            self.store.update(ev.event_id, **self._values(ev), last_time=t)
        except Exception as exc:  # noqa: BLE001 - a busy database must not stop monitoring
            log.warning("event %s: cannot save its progress: %s", ev.event_id, redact_text(exc))

    def _wall(self, t: float) -> _dt.datetime:
        """Wall-clock time of source time ``t`` (real time) or now (fast replay)."""
        now = utcnow()
        if self.realtime:
            return now - _dt.timedelta(seconds=max(0.0, self.stats.last_time - t))
        return now

    # -- events ------------------------------------------------------------------------------
    def _values(self, ev: _Open) -> dict:
        return {
            "source": self.label,
            "model": self.model.name or "model",
            "start_time": ev.start_time,
            "started_at": ev.wall_start,
            "worst_score": ev.worst_score,
            "worst_time": ev.worst_time,
            "mean_score": float(np.mean(ev.scores)) if ev.scores else ev.worst_score,
            "frames": len(ev.scores),
            "descriptions": ev.descriptions,
            "kind": event_kind(ev.descriptions),
            "prompt": ev.prompt,
            "prompt_score": ev.prompt_score,
        }

    def _record(self, ev: _Open, **extra) -> EventRecord:
        if self.store is not None and ev.event_id is not None:
            return self.store.get(ev.event_id)
        return self._draft(ev, **extra)

    def _draft(self, ev: _Open, **extra) -> EventRecord:
        """The event as it stands, built in memory (no database read): what the feed shows."""
        values = {**self._values(ev), **extra}
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
            ev.event_id = self.store.create(**self._values(ev), status="open", last_time=self.stats.last_time)
            ev.saved_at = time.monotonic()
            if ev.evidence is not None:  # the snapshot now, the clip from now on
                self.store.update(ev.event_id, **ev.evidence.open(evidence_base(self.label, ev.wall_start,
                                                                                ev.event_id)))
        else:
            ev.event_id = self.stats.events
        rec = self._record(ev)
        log.info("event %s started on %s at %.2f s", ev.event_id, self.label, ev.start_time)
        self._alert("new", rec)
        self._notify(WatchNotice("start", self.label, record=rec))
        if self.feed is not None:
            self.feed.event(rec)

    def _end_event(self, end_time: float, reason: str, *, ended_at: _dt.datetime | None = None) -> None:
        """Close the open event: store (with its media), records, log, alert, notices and feed.
        ``ended_at``: the wall-clock end (default: its start plus the event's length in the source)."""
        ev, self._open = self._open, None
        if ev is None or ev.event_id is None:
            return
        values = {
            **self._values(ev),
            "end_time": end_time,
            "status": "closed",
            "ended_at": ended_at or ev.wall_start + _dt.timedelta(seconds=max(0.0, end_time - ev.start_time)),
            "end_reason": reason[:500],
            "last_time": end_time,
        }
        if self.store is not None:
            if ev.evidence is not None:
                values.update(ev.evidence.close())
            self.store.update(ev.event_id, **values)
            rec = self.store.get(ev.event_id)
        else:
            rec = self._record(ev, **values)
        self.records.append(rec)
        log.info(
            "event %s ended on %s: %.2f-%.2f s, worst %.3f (%s)",
            rec.id,
            self.label,
            rec.start_time,
            end_time,
            rec.worst_score,
            reason,
        )
        self._alert("end", rec)
        self._notify(WatchNotice("end", self.label, record=rec))
        if self.feed is not None:
            self.feed.event(rec)

    def _on_drop(self, t: float, reason: str) -> None:
        """The connection was lost (the source reconnects): close the open event, say "offline"."""
        self._finish(f"source dropped: {reason}")
        self._reset_smoothing()
        self._set_status("offline", reason)
        self._notify(WatchNotice("offline", self.label, message=f"offline at {t:.1f} s: {reason}"))

    def _reset_smoothing(self) -> None:
        self.builder.reset_smoothing()

    def _on_gap(self, gap: Gap) -> None:
        self.stats.gaps += 1
        self.stats.missed_s += gap.missed_s
        self._reset_smoothing()  # scores before and after a gap are not neighbours
        if self.store is not None:
            self.store.add_gap(gap)
        if self.feed is not None:
            self.feed.gap(gap)
        self._notify(
            WatchNotice(
                "gap",
                self.label,
                gap=gap,
                message=f"missed {gap.missed_s:.1f} s "
                f"(~{gap.missed_samples(self.interval_ms)} samples): "
                f"{gap.reason}",
            )
        )

    def _finish(self, reason: str) -> None:
        """Close the event in progress (at the last frame's time), saying why the source went away."""
        # cooling down = the scores were already back to normal: it recovered before the source went
        why = "recovered" if self.builder.phase == Phase.CLOSING else reason
        for tr in self.builder.finish(self.stats.last_time):
            if tr.kind == "end":
                self._end_event(tr.end_time if tr.end_time is not None else self.stats.last_time, why)
        self._open = None

    def _alert(self, kind: str, rec: EventRecord) -> None:
        """Publish new/end; ``before`` is the state last published for this event (Frigate's way)."""
        before = self._alerted if kind != "new" else None
        self._alerted = None if kind == "end" else rec
        if self.alerts is not None:
            self.alerts.publish(event_payload(kind, rec, before, camera=self.camera))

    def _notify(self, notice: WatchNotice) -> None:
        if self.listener is not None:
            try:
                self.listener(notice)
            except Exception:  # noqa: BLE001 - a listener bug must not stop monitoring
                log.exception("watch listener failed")


class LiveSession:
    """One :class:`SourceWatcher` run in a background thread: what a page or a service holds on to.

    Example:
        >>> feed = LiveFeed()  # doctest: +SKIP
        >>> sess = LiveSession(SourceWatcher(pipe, "office-day", "0", feed=feed)).start()  # doctest: +SKIP
        >>> feed.view().state, sess.stop()  # doctest: +SKIP
    """

    def __init__(self, watcher: SourceWatcher, name: str = "watch"):
        self.watcher = watcher
        self.name = name
        self._thread: threading.Thread | None = None

    @property
    def source(self) -> str:
        """The source as shown (credentials masked)."""
        return self.watcher.label

    @property
    def feed(self) -> LiveFeed | None:
        return self.watcher.feed

    @property
    def stats(self) -> WatchStats:
        return self.watcher.stats

    @property
    def frames(self) -> int:
        """Frames scored so far."""
        return self.watcher.stats.frames

    @property
    def dropped(self) -> int:
        """Sampled frames the source dropped because scoring was slower than real time."""
        return self.watcher.live.dropped

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> LiveSession:
        self._thread = threading.Thread(target=self.watcher.run, name=f"vlm-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the source; the open event is closed as "stopped" before this returns."""
        self.watcher.stop()
        self.join(timeout_s)

    def join(self, timeout_s: float | None = None) -> bool:
        """Wait for the source to end; True if it did."""
        if self._thread is not None:
            self._thread.join(timeout_s)
        return not self.running

    wait = join


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
        retention: bool = True,
        recover: bool = True,
    ):
        self.pipeline = pipeline
        self.store = store
        self.alerts = alerts
        self.listener = listener
        self._watchers: dict[str, tuple[SourceWatcher, LiveSession, str]] = {}
        self.max_running = pipeline.settings.max_watchers  # threads and connections are finite
        self._lock = threading.Lock()
        self._encode_lock = threading.Lock()
        self._ids = itertools.count(1)
        # clean-up runs on its own timer, apart from scoring, and while no source is watched too
        self.retention = (RetentionJob.from_settings(store, pipeline.settings.events).start()
                          if store is not None and retention else None)
        # events a dead process left open are closed before anything is watched (and later, for
        # owners only a heartbeat speaks for); each is told like any event's end
        self.recovery: RecoveryJob | None = None
        if recover:
            self.start_recovery()

    def start_recovery(self) -> None:
        """Close the events dead processes left open (now, then on a timer); each is reported to
        the alert sinks and the listener. Once per monitor; nothing without a store. A caller that
        must hear of them (Home Assistant's cameras announced first) passes ``recover=False`` and
        calls this itself before starting sources."""
        if self.store is not None and self.recovery is None:
            self.recovery = RecoveryJob(self.store, on_closed=self._report_recovered).start()

    def _report_recovered(self, rec: EventRecord) -> None:
        """An event closed as "service restarted": its end goes to the alert sinks and listeners."""
        if self.alerts is not None:
            self.alerts.publish(event_payload("end", rec))  # (named by its source: the camera name died with it)
        if self.listener is not None:
            try:
                self.listener(WatchNotice("end", rec.source, record=rec, message=rec.end_reason or ""))
            except Exception:  # noqa: BLE001 - a listener bug must not stop monitoring
                log.exception("watch listener failed")

    def watcher(self, model: str | AnomalyModel, source: str, *, realtime: bool = True, **kwargs) -> SourceWatcher:
        """A watcher wired to this monitor's sinks and shared encoder lock (not started)."""
        return SourceWatcher(self.pipeline, model, source, store=self.store, alerts=self.alerts,
                             realtime=realtime, listener=self.listener, encode_lock=self._encode_lock,
                             **kwargs)

    def start(self, model: str | AnomalyModel, source: str, *, realtime: bool = True, **kwargs) -> str:
        """Start watching ``source``; returns the watch id. Bad model or source raise at once.

        One source more than ``max_watchers`` running raises too. ``kwargs`` go to
        :class:`SourceWatcher` (``feed``, ``interval_ms``, ``threshold``, ``live``).
        """
        with self._lock:
            if self.running >= self.max_running:
                raise TooManyWatchersError(
                    f"already watching {self.running} source(s), the limit (max_watchers); "
                    "stop one first"
                )
            w = self.watcher(model, source, realtime=realtime, **kwargs)
            wid = f"w{next(self._ids)}"
            self._watchers[wid] = (w, LiveSession(w, f"watch-{wid}").start(), w.model.name)
        return wid

    def get(self, wid: str) -> SourceWatcher:
        try:
            return self._watchers[wid][0]
        except KeyError:
            raise WatchNotFoundError(f"no watched source with id {wid!r}") from None

    def session(self, wid: str) -> LiveSession:
        self.get(wid)
        return self._watchers[wid][1]

    def stop(self, wid: str, timeout_s: float = 10.0) -> dict:
        self.session(wid).stop(timeout_s)
        return self.status(wid)

    def status(self, wid: str) -> dict:
        w, sess, model = self._watchers[wid]
        st = w.stats
        alerts = w.alerts
        return {
            "id": wid,
            "source": w.label,
            "camera": w.camera,
            "model": model,
            "realtime": w.realtime,
            "status": st.status if sess.running or st.status != "running" else "ended",
            "frames": st.frames,  # scored
            "dropped": w.live.dropped,  # sampled but dropped: the encoder was slower than real time
            "online": bool(getattr(w.live, "online", False)),  # frames flowing (the stream watchdog)
            "alerts_sent": alerts.sent_by[w.label] if alerts is not None else 0,
            "alerts_failed": alerts.failed_by[w.label] if alerts is not None else 0,
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
        return sum(sess.running for _, sess, _ in self._watchers.values())

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until every source ended (True) or ``timeout_s`` passed (False)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        for _, sess, _ in list(self._watchers.values()):
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not sess.join(left):
                return False
        return True

    def stop_all(self, timeout_s: float = 10.0) -> None:
        for w, _, _ in self._watchers.values():
            w.stop()
        deadline = time.monotonic() + timeout_s
        for _, sess, _ in self._watchers.values():
            sess.join(max(0.0, deadline - time.monotonic()))
        if self.retention is not None:
            self.retention.stop()
        if self.recovery is not None:
            self.recovery.stop()
