"""Live monitoring: score frames as they arrive, smooth causally, raise and record alerts.

Why here and not in a UI: the dashboard's live page, a browser-camera callback and any service
endpoint all need the same loop - one frame in, (raw score, causal smoothed score, alert) out.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .detectors import CausalSmoother
from .errors import InvalidVideoError, VlmAnomalyError
from .video import Frame, probe, source_kind
from .video.live import Gap, LiveSource, open_reader

if TYPE_CHECKING:
    from .model import AnomalyModel
    from .pipeline import Pipeline


@dataclass(frozen=True)
class Reading:
    """The verdict on one live frame."""

    t: float  # seconds: source time for files/streams, time since start for cameras
    raw: float
    smoothed: float
    alert: bool  # smoothed score below the threshold
    description: str = ""
    confidence: float = 0.0
    explanation: dict | None = None  # attribute models: which attribute fired, where, nearest normal


@dataclass
class Alert:
    """A span during which the smoothed score stayed below the threshold."""

    start: float
    end: float | None
    worst: float
    description: str
    wall_time: str

    def as_dict(self) -> dict:
        return asdict(self)


class LiveMonitor:
    """Scores one frame at a time with a model; causal smoothing; alert when crossing the threshold.

    Example:
        >>> mon = LiveMonitor(pipe, pipe.store.load("office-day"))  # doctest: +SKIP
        >>> mon.process(rgb_frame, t=0.0).alert  # doctest: +SKIP
        False
    """

    def __init__(self, pipeline: Pipeline, model: AnomalyModel, *, threshold: float | None = None,
                 window: int | None = None, history: int = 600, describe: bool = True):
        self.pipeline = pipeline
        self.model = model
        self.encoder = pipeline.encoder_for(model)
        self.threshold = model.threshold if threshold is None else float(threshold)
        self.smoother = CausalSmoother(window or model.smoothing_window)
        self.describe = describe
        self.readings: deque[Reading] = deque(maxlen=history)
        self.alerts: list[Alert] = []
        self._lock = threading.Lock()
        # attribute models (motion + objects) score through their own scorer, one frame at a time
        self._attributes = (model.detector.scorer(encoder=self.encoder)
                            if model.detector.needs_video else None)
        self._last: np.ndarray | None = None
        self._n = 0

    @property
    def alerting(self) -> bool:
        return bool(self.alerts) and self.alerts[-1].end is None

    @property
    def needs_previous(self) -> bool:
        """Attribute models score motion: they want the source frame before each sample."""
        return self._attributes is not None

    def process(self, image: np.ndarray, t: float, *, previous: np.ndarray | None = None) -> Reading:
        """Encode, score and smooth one RGB frame taken at ``t`` seconds.

        ``previous`` is the source frame just before it (motion for attribute models); without it the
        last processed frame stands in when it has the same size.
        """
        desc, conf, why = "", 0.0, None
        if self._attributes is not None:
            if previous is None and self._last is not None and self._last.shape == image.shape:
                previous = self._last
            self._last = image
            frame = Frame(self._n, float(t), image, "live", previous=previous)
            with self._lock:
                self._n += 1
            _, raw, why = next(iter(self._attributes.score_stream([frame])))
            desc = why.get("text", "") if why else ""
        else:
            emb = self.encoder.encode([image])
            raw = float(self.model.decision_function(emb)[0])
            if self.describe:
                d = self.pipeline.describe_embeddings(self.model, emb, encoder=self.encoder)[0]
                desc, conf = d.text, d.confidence
        smooth = self.smoother.update(float(raw))
        r = Reading(float(t), float(raw), smooth, smooth < self.threshold, desc, conf, why)
        with self._lock:
            self.readings.append(r)
            self._track_alert(r)
        return r

    def _track_alert(self, r: Reading) -> None:
        if r.alert:
            if self.alerting:
                a = self.alerts[-1]
                if r.smoothed < a.worst:
                    a.worst, a.description = r.smoothed, r.description
            else:
                self.alerts.append(Alert(r.t, None, r.smoothed, r.description,
                                         time.strftime("%H:%M:%S")))
        elif self.alerting:
            self.alerts[-1].end = r.t

    def snapshot(self) -> tuple[list[Reading], list[Alert]]:
        """Copies of the readings and alerts, safe to read while another thread processes."""
        with self._lock:
            return list(self.readings), [Alert(**asdict(a)) for a in self.alerts]


def open_live_source(spec: str, *, interval_ms: int = 500, realtime: bool = True, max_side: int = 1280,
                     with_previous: bool = False, settings=None) -> LiveSource:
    """A :class:`~vlm_anomaly.video.live.LiveSource` over a webcam index (``"0"``), an RTSP/HTTP URL,
    or a video file / frame folder played as a stream (paced at real time when ``realtime``).

    Checked here, in the caller: an empty spec, a missing or corrupt file and a camera that is not
    there fail at once with a clear message; a stream that drops later is reconnected by the source.
    """
    spec = str(spec).strip()
    if not spec:
        raise InvalidVideoError("no source given: a camera index, a stream URL or a video file")
    kind = source_kind(spec)
    if kind == "webcam":
        try:
            open_reader(spec).close()
        except InvalidVideoError:
            raise InvalidVideoError(f"camera {spec} is not available on this machine") from None
    elif kind in ("file", "folder"):
        if not Path(spec).exists():
            raise InvalidVideoError(f"{spec}: no such file, and not a camera index or stream URL")
        probe(spec)  # a corrupt file fails here, in the caller
    opts = {}
    if settings is not None:
        opts = {"stall_timeout_s": settings.stream_stall_timeout_s,
                "backoff_initial_s": settings.stream_backoff_initial_s,
                "backoff_max_s": settings.stream_backoff_max_s}
    return LiveSource(spec, interval_ms=interval_ms, realtime=realtime, max_side=max_side,
                      with_previous=with_previous, **opts)


class LiveSession:
    """Runs a :class:`LiveMonitor` over a live source in a background thread.

    The UI polls :meth:`snapshot` at its own refresh rate; :meth:`stop` ends the thread promptly.
    """

    def __init__(self, monitor: LiveMonitor, source: str, *, interval_ms: int = 500, realtime: bool = True):
        self.monitor = monitor
        self.source = source
        self.interval_ms = interval_ms
        self.realtime = realtime
        self.error: str | None = None
        self.frames = 0
        self.last_frame: np.ndarray | None = None
        self.gaps: list[Gap] = []
        self._live: LiveSource | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> LiveSession:
        # open now, so that a bad source fails in the caller with a clear message
        self._live = open_live_source(self.source, interval_ms=self.interval_ms, realtime=self.realtime,
                                      with_previous=self.monitor.needs_previous,
                                      settings=self.monitor.pipeline.settings)
        self._thread = threading.Thread(target=self._run, args=(self._live,), name="vlm-live", daemon=True)
        self._thread.start()
        return self

    def _run(self, items: Iterable[Frame | Gap]) -> None:
        try:
            for f in items:
                if isinstance(f, Gap):  # the stream dropped and came back (or gave up): say so
                    self.gaps.append(f)
                    continue
                self.monitor.process(f.image, f.timestamp, previous=f.previous)
                self.last_frame = f.image
                self.frames += 1
        except VlmAnomalyError as exc:
            self.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - shown to the user, the thread must not die silently
            self.error = f"live source stopped: {type(exc).__name__}: {exc}"

    def stop(self, timeout: float = 5.0) -> None:
        if self._live is not None:
            self._live.stop()
        if self._thread is not None:
            self._thread.join(timeout)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the source to end; True if it did."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    def snapshot(self) -> tuple[list[Reading], list[Alert]]:
        return self.monitor.snapshot()
