"""Where a watcher's output goes: one small protocol, and the sinks the settings ask for.

Why one protocol: the loop (:class:`~.watcher.SourceWatcher`) only scores frames and builds events;
the event store with its media, the alert dispatcher, Home Assistant, a page's live feed and any
sink of a caller's own all hear the same five things, in the order the watcher lists them. A sink
that raises is counted (``WatchStats.sink_errors``, the status rows) and skipped; the others and the
loop go on.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ..cameras import shown_name
from ..video.live import Gap
from .alerts import AlertDispatcher, event_payload
from .evidence import EventEvidence, evidence_base
from .store import EventRecord, EventStore

log = logging.getLogger(__name__)

#: an open event's row is brought up to date this often (seconds of wall time): what a later
#: start closes it with if this process dies
PROGRESS_EVERY_S = 2.0
#: the event's values a row holds (the rest - id, media, acknowledgement - are the store's)
ROW_FIELDS = ("source", "model", "start_time", "started_at", "worst_score", "worst_time", "mean_score",
              "frames", "descriptions", "kind", "prompt", "prompt_score", "camera")
END_FIELDS = ("end_time", "status", "ended_at", "end_reason", "last_time")
#: the states a watcher ends in
FINAL = ("stopped", "ended", "dropped", "failed")


@dataclass(frozen=True)
class Reading:
    """The verdict on one live frame."""

    t: float  # seconds: source time for files/streams, time since start for cameras
    raw: float  # the detector's score (fused with known-bad prompts)
    smoothed: float  # causal moving average: what events are built from
    alert: bool  # below the event enter threshold: the smoothed score and the one events end on
    description: str = ""
    confidence: float = 0.0
    explanation: dict | None = None  # attribute models: which attribute fired, where, nearest normal


@dataclass
class WatchNotice:
    """What a watcher tells its listeners: an event started or ended, or a gap in the stream."""

    kind: str  # "start" | "end" | "gap" | "offline" | "error"
    source: str
    record: EventRecord | None = None
    gap: Gap | None = None
    message: str = ""
    camera: str | None = None  # the camera's name (what lines show a user: ``cameras.shown_name``)


class Watch(Protocol):
    """What a sink may read of the watcher calling it (a :class:`~.watcher.SourceWatcher`)."""

    label: str  # the source, credentials masked
    camera: str | None
    interval_ms: int
    half_clip: float  # seconds of frames before an event its clip starts with
    stats: Any  # WatchStats
    pending: Any  # the event being built (``worst_score``, ``worst_time``), or None

    def current(self) -> EventRecord | None: ...


class EventSink:
    """What a watcher tells its sinks; subclass and override what you need (all do nothing here).

    Lifetime: whoever builds a sink owns it (``with sink:``, or :meth:`close`); one sink may serve
    several watchers, each call says which (``w``). ``opened``/``closed`` may return a newer record
    (the store's, with its id and media) that the sinks after it get.
    """

    def __enter__(self) -> EventSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release what the sink holds (connections, threads)."""

    def opened(self, w: Watch, rec: EventRecord) -> EventRecord | None:
        """An event started (long enough to count)."""

    def closed(self, w: Watch | None, rec: EventRecord) -> EventRecord | None:
        """An event ended; ``w`` is None for one a dead process left open, closed at start-up."""

    def frame(self, w: Watch, reading: Reading, image: np.ndarray) -> None:
        """One scored frame (before the event transitions it causes)."""

    def gap(self, w: Watch, gap: Gap) -> None:
        """Frames were missed (a stall or a reconnection)."""

    def status(self, w: Watch, state: str, reason: str = "") -> None:
        """The source's state changed: running, offline, stopped, ended, dropped, failed."""


@dataclass
class _Media:
    """One watcher's frames for the store: the pre-roll, the evidence of the event being built."""

    ring: deque
    pending: Any = None  # the watcher's pending event the evidence belongs to
    evidence: EventEvidence | None = None
    event_id: int | None = None
    saved_at: float = 0.0


class StoreSink(EventSink):
    """Events into the SQL store with their snapshot and clip (on disk from the moment an event
    opens, see :mod:`.evidence`); an open event's row is kept up to date for crash recovery."""

    def __init__(self, store: EventStore):
        self.store = store
        self._media: dict[int, _Media] = {}

    def close(self) -> None:
        self.store.close()

    def _of(self, w: Watch) -> _Media:
        return self._media.setdefault(id(w), _Media(deque()))

    def frame(self, w: Watch, reading: Reading, image: np.ndarray) -> None:
        m, t, ev = self._of(w), reading.t, w.pending
        m.ring.append((t, image))
        while m.ring and m.ring[0][0] < t - w.half_clip:
            m.ring.popleft()
        if ev is None:
            m.pending = m.evidence = None
        elif m.pending is not ev:  # a new pending event: its clip starts with the last clip_seconds / 2
            fps = 1000.0 / w.interval_ms if w.interval_ms else 10.0
            m.pending, m.event_id = ev, None
            m.evidence = EventEvidence(self.store.media_root, fps=fps, pre_roll=[img for _, img in m.ring])
        elif m.evidence is not None:
            m.evidence.add(image)  # every frame while pending, open or cooling down
        if ev is not None and m.evidence is not None and ev.worst_time == t and ev.worst_score == reading.smoothed:
            m.evidence.worst(image)
        now = time.monotonic()
        if m.event_id is not None and now - m.saved_at >= PROGRESS_EVERY_S and (rec := w.current()):
            m.saved_at = now
            self.store.update(m.event_id, **_row(rec), last_time=t)

    def opened(self, w: Watch, rec: EventRecord) -> EventRecord:
        m = self._of(w)
        m.event_id = self.store.create(**_row(rec), status="open", last_time=w.stats.last_time)
        m.saved_at = time.monotonic()
        if m.evidence is not None:  # the snapshot now, the clip from now on
            base = evidence_base(shown_name(w.camera, w.label), rec.started_at, m.event_id)  # under the camera's name
            self.store.update(m.event_id, **m.evidence.open(base))
        return self.store.get(m.event_id)

    def closed(self, w: Watch | None, rec: EventRecord) -> EventRecord | None:
        m = self._media.get(id(w)) if w is not None else None
        if m is None or m.event_id is None:
            return None
        values = {**_row(rec), **{k: getattr(rec, k) for k in END_FIELDS}}
        if m.evidence is not None:
            values.update(m.evidence.close())
        event_id, m.event_id, m.pending, m.evidence = m.event_id, None, None, None
        self.store.update(event_id, **values)
        return self.store.get(event_id)

    def gap(self, w: Watch, gap: Gap) -> None:
        self.store.add_gap(gap, camera=w.camera)

    def status(self, w: Watch, state: str, reason: str = "") -> None:
        if state in FINAL:  # a finished watcher stays listed; its frames need not stay in memory
            self._media.pop(id(w), None)


def _row(rec: EventRecord) -> dict[str, Any]:
    return {k: getattr(rec, k) for k in ROW_FIELDS}


class AlertSink(EventSink):
    """Events as Frigate-like ``new``/``end`` messages to the dispatcher's webhooks, MQTT and Frigate."""

    def __init__(self, alerts: AlertDispatcher):
        self.alerts = alerts
        self._last: dict[int, EventRecord] = {}  # per watcher: the state last published (Frigate's "before")

    def close(self) -> None:
        self.alerts.close()

    def opened(self, w: Watch, rec: EventRecord) -> None:
        self._last[id(w)] = rec
        self.alerts.publish(event_payload("new", rec, camera=w.camera))

    def closed(self, w: Watch | None, rec: EventRecord) -> None:
        before = self._last.pop(id(w), None) if w is not None else None
        # (an event closed at start-up is named by its source: the camera name died with its process)
        self.alerts.publish(event_payload("end", rec, before, camera=w.camera if w is not None else None))


class ListenerSink(EventSink):
    """Events, gaps and trouble as :class:`~.watcher.WatchNotice` to a callback (CLI lines, metrics,
    a worker's pipe to its parent)."""

    def __init__(self, listener):
        self.listener = listener

    def _tell(self, kind: str, w: Watch | None, source: str = "", **kw: Any) -> None:
        self.listener(WatchNotice(kind, w.label if w is not None else source, camera=getattr(w, "camera", None),
                                  **kw))

    def opened(self, w: Watch, rec: EventRecord) -> None:
        self._tell("start", w, record=rec)

    def closed(self, w: Watch | None, rec: EventRecord) -> None:
        if w is None:
            self._tell("end", None, rec.source, record=rec, message=rec.end_reason or "")
        else:
            self._tell("end", w, record=rec)

    def gap(self, w: Watch, gap: Gap) -> None:
        self._tell("gap", w, gap=gap, message=f"missed {gap.missed_s:.1f} s "
                   f"(~{gap.missed_samples(w.interval_ms)} samples): {gap.reason}")

    def status(self, w: Watch, state: str, reason: str = "") -> None:
        if state == "offline":
            self._tell("offline", w, message=f"offline at {w.stats.last_time:.1f} s: {reason}")
        elif state == "failed":
            self._tell("error", w, message=reason)

