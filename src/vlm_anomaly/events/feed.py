"""The live engine's in-memory sink: what a page showing one watched source needs, kept up to date.

Why a sink and not a second loop: the dashboard's Live page shows exactly what ``watch`` stores and
alerts - the same readings, the same events (one worst score each, from the event builder) and the same
state of the source (running, offline, stopped) - because it listens to the same engine.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, replace

import numpy as np

from ..video.live import Gap
from .sinks import EventSink, Reading
from .store import EventRecord


@dataclass(frozen=True)
class FeedView:
    """A consistent copy of the feed, safe to read while the engine keeps going."""

    readings: list[Reading]
    events: list[EventRecord]  # oldest first; an open event has ``status == "open"``
    gaps: list[Gap]
    state: str  # starting | running | offline | stopped | ended | failed
    reason: str  # why the source is offline/stopped/failed ("" while running)
    last_image: np.ndarray | None

    @property
    def open_event(self) -> EventRecord | None:
        return self.events[-1] if self.events and self.events[-1].status == "open" else None


class LiveFeed(EventSink):
    """Keeps the recent readings, this run's events, gaps and the source's state, for one source.

    A sink of one watcher: readings per frame, events as they start, grow and end, the source's state
    as it goes offline, comes back or stops; a page calls :meth:`view`.
    """

    def __init__(self, history: int = 600):
        self._lock = threading.Lock()
        self._readings: deque[Reading] = deque(maxlen=history)
        self._events: list[EventRecord] = []
        self._gaps: list[Gap] = []
        self._state, self._reason = "starting", ""
        self._image: np.ndarray | None = None

    def frame(self, w, r: Reading, image: np.ndarray | None = None) -> None:
        with self._lock:
            self._readings.append(r)
            if image is not None:
                self._image = image
        if (rec := w.current()) is not None:
            self.event(rec)

    def opened(self, w, rec: EventRecord) -> None:
        self.event(rec)

    closed = opened

    def event(self, rec: EventRecord) -> None:
        """A new event, or a newer state of one already shown (matched by id)."""
        with self._lock:
            for i, e in enumerate(self._events):
                if e.id == rec.id:
                    self._events[i] = rec
                    return
            self._events.append(rec)

    def gap(self, w, gap: Gap) -> None:
        with self._lock:
            self._gaps.append(gap)

    def status(self, w, state: str, reason: str = "") -> None:
        with self._lock:
            self._state, self._reason = state, reason

    @property
    def latest(self) -> Reading | None:
        with self._lock:
            return self._readings[-1] if self._readings else None

    def view(self) -> FeedView:
        with self._lock:
            return FeedView(list(self._readings), [replace(e) for e in self._events], list(self._gaps),
                            self._state, self._reason, self._image)
