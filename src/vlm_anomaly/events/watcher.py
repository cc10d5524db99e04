"""The live engine: source → stream scorer → causal smoothing → event builder → sinks.

A :class:`SourceWatcher` is the loop alone (blocking): its :class:`~.scorer.StreamScorer` turns frames
into scores, the :class:`~vlm_anomaly.incidents.EventBuilder` turns them into events (the one
definition of an incident, which offline results are replayed through too), and what comes out goes
to its sinks (:mod:`.sinks`: the event store with media, alerts, Home Assistant, a page's
:class:`~.feed.LiveFeed`, anything of a caller's own). A :class:`LiveSession` runs one watcher in a
thread; a :class:`Monitor` runs several sharing one pipeline, encoder lock and set of sinks, plus the
retention and recovery jobs. :meth:`Monitor.from_settings` is how every shell (CLI ``watch``, the
service and its worker processes, the REST API, the dashboard's Live page, Ray) builds it.
"""

from __future__ import annotations

import datetime as _dt
import itertools
import logging
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import TooManyWatchersError, VlmAnomalyError
from ..incidents import EventBuilder, HysteresisConfig, Phase
from ..model import AnomalyModel
from ..pipeline import Pipeline
from ..redact import redact_text, redact_url
from ..video import Frame, batched
from ..video.live import Gap, LiveSource, PushSource
from .alerts import AlertDispatcher
from .feed import LiveFeed, Reading
from .live_scoring import Scored, StreamScorer
from .recovery import RecoveryJob
from .retention import RetentionJob
from .sinks import AlertSink, EventSink, ListenerSink, StoreSink, WatchNotice
from .store import EventRecord, EventStore, event_kind, utcnow

log = logging.getLogger(__name__)

MAX_DESCRIPTIONS = 200
#: finished watchers a monitor keeps listed (their status rows and feeds) before forgetting the oldest
KEEP_FINISHED = 64


class WatchNotFoundError(VlmAnomalyError):
    """No watched source with that id."""

    status_code = 404


Listener = Callable[[WatchNotice], None]


@dataclass
class _Open:
    """The event being built: scores, descriptions, the worst score."""

    start_time: float
    wall_start: _dt.datetime
    scores: list[float] = field(default_factory=list)
    descriptions: list[dict] = field(default_factory=list)
    worst_score: float = float("inf")
    worst_time: float = 0.0
    worst_settled: bool = False  # over a whole smoothing window (see Step.beats)
    prompt: str | None = None
    prompt_score: float | None = None
    event_id: int | None = None  # set once it started (the store's id, else a count)


@dataclass
class WatchStats:
    frames: int = 0
    events: int = 0
    gaps: int = 0
    missed_s: float = 0.0
    last_time: float = 0.0
    last_score: float | None = None
    status: str = "starting"  # starting | running | offline | stopped | ended | dropped | failed
    reason: str = ""  # why the status is what it is (offline: the connection's failure), "" while running
    error: str | None = None
    sink_errors: Counter[str] = field(default_factory=Counter)  # calls that raised, per sink class


def tell(sinks: Iterable[EventSink], method: str, w: SourceWatcher | None, *args, errors: Counter):
    """Call ``method`` on every sink; an event's newer record (the store's) goes on to the sinks after
    it, and is returned. A sink that raises is logged and counted in ``errors``; the others still hear."""
    for sink in sinks:
        try:
            out = getattr(sink, method)(w, *args)
        except Exception as exc:  # noqa: BLE001 - one bad sink must not stop the others or the loop
            name = type(sink).__name__
            errors[name] += 1
            log.warning("%s: sink %s failed (%s): %s", w.label if w is not None else "recovery", name, method,
                        redact_text(f"{type(exc).__name__}: {exc}"))
            continue
        if isinstance(out, EventRecord):
            args = (out, *args[1:])
    return args[0] if args else None


class SourceWatcher:
    """Monitor one source with one model until it ends or :meth:`stop` is called; what happens goes
    to ``sinks`` (see :class:`~.sinks.EventSink`), in their order.

    Example:
        >>> w = SourceWatcher(pipe, "office-day", "rtsp://cam/1", sinks=[StoreSink(store)])  # doctest: +SKIP
        >>> w.run()  # doctest: +SKIP
    """

    def __init__(self, pipeline: Pipeline, model: AnomalyModel | str, source: str, *, sinks: Sequence[EventSink] = (),
                 realtime: bool = True, encode_lock: threading.Lock | None = None,
                 live: LiveSource | PushSource | None = None, interval_ms: int | None = None,
                 threshold: float | None = None, camera: str | None = None):
        s = self.settings = pipeline.settings
        self.model = pipeline.load(model)
        # the sampling interval (0 = every frame): the caller's, else one set explicitly in the
        # settings (--interval-ms, YAML, environment), else the model's own, as offline scoring does
        if interval_ms is None:
            interval_ms = s.interval_ms if "interval_ms" in s.model_fields_set else self.model.interval_ms
        self.interval_ms = int(interval_ms)
        self.scorer = StreamScorer(pipeline, self.model, encode_lock=encode_lock, interval_ms=self.interval_ms)
        self.source = str(source)
        self.label = redact_url(self.source)  # what events, alerts, logs and notices show
        self.camera = camera  # the camera's name (alert topics, Frigate); None: named by its source
        self.sinks = list(sinks)
        self.realtime = realtime
        if isinstance(live, PushSource):
            live.with_previous = self.scorer.needs_previous  # motion models want an earlier frame with each sample
        self.live = live or LiveSource.from_settings(self.source, s.sampling, interval_ms=self.interval_ms,
                                                     realtime=realtime, with_previous=self.scorer.needs_previous,
                                                     on_drop=self._on_drop, folder_fps=self.scorer.folder_fps)
        self.threshold = self.model.threshold if threshold is None else float(threshold)
        self.builder = EventBuilder.from_settings(s.events, threshold=self.threshold,
                                                  model_window=self.model.smoothing_window,
                                                  interval_ms=self.interval_ms)
        self.half_clip = max(0.0, s.clip_seconds / 2)  # seconds of frames a clip starts with
        #: scored frames further apart than this (source time) have a gap between them: as long as a
        #: stream may send nothing before it counts as stalled, and at least two sampling intervals
        self.hole_s = max(float(getattr(self.live, "stall_timeout_s", 0) or s.sampling.stream_stall_timeout_s),
                          2 * self.interval_ms / 1000)
        self.pending: _Open | None = None  # the event being built (pending, open or cooling down)
        self.stats = WatchStats()
        self.records: list[EventRecord] = []  # closed events of this run (newest last)

    @property
    def feed(self) -> LiveFeed | None:
        """The page feed among the sinks, if any."""
        return next((s for s in self.sinks if isinstance(s, LiveFeed)), None)

    def current(self) -> EventRecord | None:
        """The open event as it stands (built in memory), or None while none has started."""
        ev = self.pending
        return self._draft(ev, id=ev.event_id) if ev is not None and ev.event_id is not None else None

    def set_threshold(self, threshold: float) -> None:
        """Move the event thresholds (a dashboard slider); the running event keeps its history."""
        self.threshold = float(threshold)
        self.builder.set_config(HysteresisConfig.from_settings(self.settings.events, self.threshold))

    @property
    def hysteresis(self) -> HysteresisConfig:
        """The event thresholds in force (the dashboard shows them)."""
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
        """An event open when the watcher fails is closed now, at the time of the crash, and says
        why (else it stays open for ever and retention, which skips open events, never frees it)."""
        self.stats.error = message
        self.builder.restart()
        if self.pending is not None:
            self._end_event(max(self.stats.last_time, self.pending.start_time), f"watcher failed: {message}",
                            ended_at=utcnow())
        self._set_status("failed", message)

    def _tell(self, method: str, *args):
        return tell(self.sinks, method, self, *args, errors=self.stats.sink_errors)

    def _set_status(self, status: str, reason: str = "") -> None:
        self.stats.status, self.stats.reason = status, reason
        self._tell("status", status, reason)

    def _batches(self) -> Iterator[list[Frame] | Gap]:
        """Frames one by one in real time (low latency), in batches when running fast."""
        size = 1 if self.realtime else self.settings.batch_size
        # a gap ends the batch before it (each run is read once, by one branch)
        for is_gap, run in itertools.groupby(self._with_holes(), key=lambda item: isinstance(item, Gap)):
            yield from run if is_gap else batched(run, size)  # noqa: B031

    def _with_holes(self) -> Iterator[Frame | Gap]:
        """The source's frames and gaps, plus a gap wherever two frames in a row lie more than
        :attr:`hole_s` apart. Why: while the loop is held up (an event store locked by another
        process, a slow sink) a live source keeps only its newest frames, so the frames scored
        jump ahead with no stall the source could see; scores and events on either side of that
        jump are not neighbours, and the time missed must show as a gap like any other. A file's
        frames far apart with none dropped are its own spacing (a time-lapse), which its reader
        judges (holes are gaps it reports), as offline results do."""
        last_t, dropped = None, self.live.dropped
        for item in self.live:
            if isinstance(item, Gap):
                last_t = None
            else:
                lost = self.live.dropped - dropped
                if (last_t is not None and item.timestamp - last_t > self.hole_s
                        and (lost or not self.live.finite)):
                    why = (f"frames dropped while the watcher was held up ({lost} sample(s): a slow sink "
                           "or event store, or scoring)" if lost else f"no frame for {item.timestamp - last_t:.1f} s")
                    yield Gap(self.label, last_t, item.timestamp, why, 0)
                last_t, dropped = item.timestamp, self.live.dropped
            yield item

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
        if step.phase == Phase.IDLE and self.pending is not None and self.pending.event_id is None:
            self.pending = None  # a dip too short to be an event
        if step.in_incident:
            if self.pending is None:
                self.pending = _Open(t, self._wall(t))
            ev = self.pending
            ev.scores.append(smooth)
            if len(ev.descriptions) < MAX_DESCRIPTIONS:
                ev.descriptions.append(
                    {"time": round(t, 3), "text": sc.text, "confidence": round(sc.confidence, 4),
                     **({"kind": sc.explanation["kind"]} if sc.explanation and "kind" in sc.explanation else {})}
                )
            # the event's one worst score: the lowest *smoothed* score, the value events are built on
            if step.beats(ev.worst_score, ev.worst_settled):
                ev.worst_score, ev.worst_time, ev.worst_settled = smooth, t, step.settled
            if sc.prompt and (ev.prompt_score is None or sc.prompt[1] > ev.prompt_score):
                ev.prompt, ev.prompt_score = sc.prompt
        self._tell("frame", Reading(t, sc.score, smooth, max(smooth, fast) < self.hysteresis.enter, sc.text,
                                    sc.confidence, sc.explanation), f.image)
        for tr in step.transitions:
            if tr.kind == "start":
                self._start_event()
            elif tr.kind == "end":
                self._end_event(tr.end_time if tr.end_time is not None else t, "recovered")

    def _wall(self, t: float) -> _dt.datetime:
        """Wall-clock time of source time ``t`` (real time) or now (fast replay)."""
        now = utcnow()
        if self.realtime:
            return now - _dt.timedelta(seconds=max(0.0, self.stats.last_time - t))
        return now

    # -- events ------------------------------------------------------------------------------
    def _draft(self, ev: _Open, **extra) -> EventRecord:
        """The event as it stands, built in memory (no database read)."""
        values = {
            "id": 0, "status": "open", "end_time": None, "ended_at": None,
            "source": self.label,
            "camera": self.camera,
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
        return EventRecord(**{**values, **extra})

    def _start_event(self) -> None:
        ev = self.pending
        if ev is None:
            return
        self.stats.events += 1
        rec = self._tell("opened", self._draft(ev, id=self.stats.events))  # the store gives its own id
        ev.event_id = rec.id
        log.info("event %s started on %s at %.2f s", ev.event_id, self.label, ev.start_time)

    def _end_event(self, end_time: float, reason: str, *, ended_at: _dt.datetime | None = None) -> None:
        """Close the open event: to the sinks, the records, the log. ``ended_at``: the wall-clock
        end (default: its start plus the event's length in the source)."""
        ev, self.pending = self.pending, None
        if ev is None or ev.event_id is None:
            return
        rec = self._tell("closed", self._draft(
            ev, id=ev.event_id, end_time=end_time, status="closed", end_reason=reason[:500], last_time=end_time,
            ended_at=ended_at or ev.wall_start + _dt.timedelta(seconds=max(0.0, end_time - ev.start_time))))
        self.records.append(rec)
        log.info("event %s ended on %s: %.2f-%.2f s, worst %.3f (%s)",
                 rec.id, self.label, rec.start_time, end_time, rec.worst_score, reason)

    def _on_drop(self, t: float, reason: str) -> None:
        """The connection was lost (the source reconnects): close the open event, say "offline"."""
        self._finish(f"source dropped: {reason}")
        self._set_status("offline", reason)

    def _on_gap(self, gap: Gap) -> None:
        """Frames were missed: the event in progress ends with the last frame seen (what came
        during the gap is unknown), and scoring starts afresh after it (smoothing, references)."""
        self._finish(gap.ends_event)  # and smoothing starts afresh: scores either side are no neighbours
        self.stats.gaps += 1
        self.stats.missed_s += gap.missed_s
        self.scorer.restart()
        self._tell("gap", gap)

    def _finish(self, reason: str) -> None:
        """Close the event in progress (at the last frame's time), saying why the source went away
        (or "recovered": it was cooling down); smoothing starts afresh."""
        for tr, why in self.builder.cut(self.stats.last_time, reason):
            if tr.kind == "end":
                self._end_event(tr.end_time if tr.end_time is not None else self.stats.last_time, why)
        self.pending = None


#: the longest a wait for a source sleeps before its thread looks for pending signals
JOIN_SLICE_S = 0.25


class LiveSession:
    """One :class:`SourceWatcher` run in a background thread: what a page or a service holds on to.

    Example:
        >>> feed = LiveFeed()  # doctest: +SKIP
        >>> sess = LiveSession(SourceWatcher(pipe, "office-day", "0", sinks=[feed])).start()  # doctest: +SKIP
        >>> feed.view().state, sess.stop()  # doctest: +SKIP
    """

    def __init__(self, watcher: SourceWatcher, name: str = "watch"):
        self.watcher = watcher
        self.name = name
        self._thread: threading.Thread | None = None
        # set when the watcher's loop returned. Why not Thread.join/is_alive: on Python < 3.13 a
        # join interrupted by a signal (SIGTERM raised as KeyboardInterrupt) marks the still running
        # thread as stopped, so the stop that follows would not wait for the open event to close
        self._done = threading.Event()

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
        return self._thread is not None and not self._done.is_set()

    def start(self) -> LiveSession:
        self._thread = threading.Thread(target=self._run, name=f"vlm-{self.name}", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self.watcher.run()
        finally:
            self._done.set()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the source; the open event is closed as "stopped" before this returns."""
        self.watcher.stop()
        self.join(timeout_s)

    def join(self, timeout_s: float | None = None) -> bool:
        """Wait for the source to end; True if it did.

        Waits in slices of at most :data:`JOIN_SLICE_S`: a stop signal that the kernel delivers to
        one of the decoding threads runs its Python handler only once the main thread wakes up, and
        a wait without a timeout never does (SIGTERM was then missed and watch kept running)."""
        if self._thread is not None:
            deadline = None if timeout_s is None else time.monotonic() + timeout_s
            while not self._done.is_set():
                left = JOIN_SLICE_S if deadline is None else min(JOIN_SLICE_S, deadline - time.monotonic())
                if left <= 0:
                    break
                self._done.wait(left)
        return not self.running

    wait = join


class Monitor:
    """Several sources watched concurrently (one thread each), one shared encoder lock and one set of
    sinks; owns those sinks (``with``/:meth:`close`). Build it with :meth:`from_settings`.

    Example:
        >>> with Monitor.from_settings(settings) as mon:  # doctest: +SKIP
        ...     wid = mon.start("office-day", "rtsp://cam/1", camera="office")
        ...     mon.wait(60)
    """

    def __init__(self, pipeline: Pipeline, *, store: EventStore | None = None, alerts: AlertDispatcher | None = None,
                 listener: Listener | None = None, bridge: EventSink | None = None, sinks: Sequence[EventSink] = (),
                 retention: bool = True):
        self.pipeline = pipeline
        self.store, self.alerts, self.bridge = store, alerts, bridge
        # the store first: the others get its record (id, snapshot, clip)
        self.sinks: list[EventSink] = [
            *([StoreSink(store)] if store is not None else []),
            *([AlertSink(alerts)] if alerts is not None else []),
            *([bridge] if bridge is not None else []),
            *([ListenerSink(listener)] if listener is not None else []),
            *sinks,
        ]
        self.sink_errors: Counter[str] = Counter()  # of events recovery closed
        self._sessions: dict[str, LiveSession] = {}
        self.max_running = pipeline.settings.max_watchers  # threads and connections are finite
        self._lock = threading.Lock()
        self._encode_lock = threading.Lock()
        self._ids = itertools.count(1)
        # clean-up runs on its own timer, apart from scoring, and while no source is watched too
        self.retention = (RetentionJob.from_settings(store, pipeline.settings.events).start()
                          if store is not None and retention else None)
        # events a dead process left open are closed before anything is watched (and later, for
        # owners only a heartbeat speaks for); each is told to the sinks like any event's end
        self.recovery = RecoveryJob(store, on_closed=self._report_recovered).start() if store is not None else None

    @classmethod
    def from_settings(cls, settings, *, pipeline: Pipeline | None = None, listener: Listener | None = None,
                      sinks: Sequence[EventSink] = (), cameras: Sequence = (), instance: str = "",
                      home_assistant: bool = True) -> Monitor:
        """The live engine of ``settings``, as every shell builds it: the event store (with media,
        retention and crash recovery), the alert sinks (webhooks, MQTT, and a Frigate event per
        anomaly of ``cameras`` Frigate has, with ``frigate_events``), Home Assistant discovery
        (``mqtt_url`` + ``ha_discovery``, unless ``home_assistant=False``; ``cameras`` announced and
        stale ones cleared before recovery runs, so it hears of the events a crash left open), a
        ``listener`` of notices and ``sinks`` of the caller's own.

        ``instance`` names the Home Assistant node of a second process announcing cameras (the API's).
        """
        from .homeassistant import HomeAssistantBridge

        pipeline = pipeline or Pipeline(settings)
        store = EventStore.from_settings(settings)
        alerts = AlertDispatcher.from_settings(settings.alerts, cameras=cameras if settings.frigate_events else ())
        bridge = (HomeAssistantBridge.for_cameras(settings, cameras, store=store, instance=instance, pipeline=pipeline)
                  if home_assistant else None)
        mon = cls(pipeline, store=store, alerts=alerts, listener=listener, bridge=bridge, sinks=sinks)
        if bridge is not None:
            bridge.attach(mon)  # scores and stream availability, polled from the status rows
        return mon

    def _report_recovered(self, rec: EventRecord) -> None:
        """An event closed as "service restarted": its end goes to the sinks (no watcher)."""
        tell(self.sinks, "closed", None, rec, errors=self.sink_errors)

    def start(self, model: str | AnomalyModel, source: str, *, realtime: bool = True,
              sinks: Sequence[EventSink] = (), pipeline: Pipeline | None = None, **kwargs) -> str:
        """Start watching ``source``; returns the watch id. Bad model or source raise at once.

        One source more than ``max_watchers`` running raises too. Its sinks: this monitor's, then
        ``sinks`` (a page's :class:`~.feed.LiveFeed`); ``kwargs`` go to :class:`SourceWatcher`
        (``camera``, ``interval_ms``, ``threshold``, ``live``).
        """
        with self._lock:
            if self.running >= self.max_running:
                raise TooManyWatchersError(
                    f"already watching {self.running} source(s), the limit (max_watchers); "
                    "stop one first"
                )
            w = SourceWatcher(pipeline or self.pipeline, model, source, sinks=[*self.sinks, *sinks],
                              realtime=realtime, encode_lock=self._encode_lock, **kwargs)
            finished = [wid for wid, sess in self._sessions.items() if not sess.running]
            for wid in finished[:max(0, len(finished) - KEEP_FINISHED)]:
                del self._sessions[wid]
            wid = f"w{next(self._ids)}"
            self._sessions[wid] = LiveSession(w, f"watch-{wid}").start()
        return wid

    def session(self, wid: str) -> LiveSession:
        try:
            return self._sessions[wid]
        except KeyError:
            raise WatchNotFoundError(f"no watched source with id {wid!r}") from None

    def get(self, wid: str) -> SourceWatcher:
        return self.session(wid).watcher

    def stop(self, wid: str, timeout_s: float = 10.0) -> dict:
        self.session(wid).stop(timeout_s)
        return self.status(wid)

    def status(self, wid: str) -> dict:
        sess = self.session(wid)
        w, st, alerts = sess.watcher, sess.stats, self.alerts
        return {
            "id": wid,
            "source": w.label,
            "camera": w.camera,
            "model": w.model.name,
            "realtime": w.realtime,
            "status": st.status if sess.running or st.status != "running" else "ended",
            "frames": st.frames,  # scored
            "dropped": w.live.dropped,  # sampled but dropped: the encoder was slower than real time
            "online": bool(getattr(w.live, "online", False)),  # frames flowing (the stream watchdog)
            "alerts_sent": alerts.sent_by[w.label] if alerts is not None else 0,
            "alerts_failed": alerts.failed_by[w.label] if alerts is not None else 0,
            "sink_errors": sum(st.sink_errors.values()),  # sink calls that raised
            "events": st.events,
            "gaps": st.gaps,
            "missed_s": round(st.missed_s, 3),
            "last_time": round(st.last_time, 3),
            "last_score": None if st.last_score is None else round(st.last_score, 6),
            "error": st.error,
            "reason": st.reason,  # of the status: why a source is offline (its last connection failure), ended, ...
        }

    def list(self) -> list[dict]:
        return [self.status(wid) for wid in list(self._sessions)]

    @property
    def running(self) -> int:
        return sum(sess.running for sess in self._sessions.values())

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until every source ended (True) or ``timeout_s`` passed (False)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        for sess in list(self._sessions.values()):
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not sess.join(left):
                return False
        return True

    def stop_all(self, timeout_s: float = 10.0) -> None:
        for sess in self._sessions.values():
            sess.watcher.stop()
        deadline = time.monotonic() + timeout_s
        for sess in self._sessions.values():
            sess.join(max(0.0, deadline - time.monotonic()))
        for job in (self.retention, self.recovery):
            if job is not None:
                job.stop()

    def close(self) -> None:
        """Stop every source, then close the sinks (last alerts flushed, Home Assistant told, store closed)."""
        self.stop_all()
        for sink in reversed(self.sinks):
            try:
                sink.close()
            except Exception as exc:  # noqa: BLE001 - the others still close
                log.warning("closing sink %s failed: %s", type(sink).__name__, redact_text(exc))

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
