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
from .store import EventRecord


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


class LiveFeed:
    """Keeps the recent readings, this run's events, gaps and the source's state, for one source.

    The engine calls :meth:`reading` per frame, :meth:`event` when an event starts, grows or ends and
    :meth:`set_state` when the source goes offline, comes back or stops; a page calls :meth:`view`.
    """

    def __init__(self, history: int = 600):
        self._lock = threading.Lock()
        self._readings: deque[Reading] = deque(maxlen=history)
        self._events: list[EventRecord] = []
        self._gaps: list[Gap] = []
        self._state, self._reason = "starting", ""
        self._image: np.ndarray | None = None

    def reading(self, r: Reading, image: np.ndarray | None = None) -> None:
        with self._lock:
            self._readings.append(r)
            if image is not None:
                self._image = image

    def event(self, rec: EventRecord) -> None:
        """A new event, or a newer state of one already shown (matched by id)."""
        with self._lock:
            for i, e in enumerate(self._events):
                if e.id == rec.id:
                    self._events[i] = rec
                    return
            self._events.append(rec)

    def gap(self, gap: Gap) -> None:
        with self._lock:
            self._gaps.append(gap)

    def set_state(self, state: str, reason: str = "") -> None:
        with self._lock:
            self._state, self._reason = state, reason

    @property
    def state(self) -> str:
        return self._state

    @property
    def latest(self) -> Reading | None:
        with self._lock:
            return self._readings[-1] if self._readings else None

    def view(self) -> FeedView:
        with self._lock:
            return FeedView(list(self._readings), [replace(e) for e in self._events], list(self._gaps),
                            self._state, self._reason, self._image)
