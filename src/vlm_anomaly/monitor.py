"""Live monitoring: score frames as they arrive, smooth causally, raise and record alerts.

Why here and not in a UI: the dashboard's live page, a browser-camera callback and any service
endpoint all need the same loop - one frame in, (raw score, causal smoothed score, alert) out.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .detectors import CausalSmoother
from .errors import InvalidVideoError, VlmAnomalyError
from .video import Frame, probe, sample_frames, source_kind

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

    @property
    def alerting(self) -> bool:
        return bool(self.alerts) and self.alerts[-1].end is None

    def process(self, image: np.ndarray, t: float) -> Reading:
        """Encode, score and smooth one RGB frame taken at ``t`` seconds."""
        emb = self.encoder.encode([image])
        raw = float(self.model.decision_function(emb)[0])
        desc, conf = "", 0.0
        if self.describe:
            d = self.pipeline.describe_embeddings(self.model, emb, encoder=self.encoder)[0]
            desc, conf = d.text, d.confidence
        smooth = self.smoother.update(raw)
        r = Reading(float(t), raw, smooth, smooth < self.threshold, desc, conf)
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


def _open_webcam(index: int):
    import cv2

    cap = cv2.VideoCapture(index)
    if not cap.isOpened():
        cap.release()
        raise InvalidVideoError(f"camera {index} is not available on this machine")
    return cap


def _webcam(cap, index: int, interval_ms: int, max_side: int, stop: threading.Event) -> Iterator[Frame]:
    import cv2

    from .video.thumbnails import thumbnail

    try:
        t0 = time.monotonic()
        next_t = 0.0
        n = 0
        while not stop.is_set():
            ok, bgr = cap.read()
            if not ok:
                if n == 0:
                    raise InvalidVideoError(f"camera {index} gives no picture")
                return
            t = time.monotonic() - t0
            if t + 1e-3 < next_t:
                continue
            next_t = t + interval_ms / 1000.0
            yield Frame(n, t, thumbnail(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), max_side), f"camera:{index}")
            n += 1
    finally:
        cap.release()


def open_live_source(spec: str, *, interval_ms: int = 500, realtime: bool = True, max_side: int = 1280,
                     stop: threading.Event | None = None) -> Iterator[Frame]:
    """Frames of a live source, one per interval: a webcam index (``"0"``), an RTSP/HTTP URL, or a
    video file / frame folder played as a stream (paced at real time when ``realtime``)."""
    stop = stop or threading.Event()
    spec = str(spec).strip()
    if not spec:
        raise InvalidVideoError("no source given: a camera index, a stream URL or a video file")
    kind = source_kind(spec)
    if kind == "webcam":
        return _webcam(_open_webcam(int(spec)), int(spec), max(interval_ms, 1), max_side, stop)
    if kind in ("file", "folder"):
        if not Path(spec).exists():
            raise InvalidVideoError(f"{spec}: no such file, and not a camera index or stream URL")
        probe(spec)  # a corrupt file fails here, in the caller
    frames = sample_frames(spec, interval_ms=interval_ms, max_side=max_side)
    if kind == "stream" or not realtime:
        return _until(frames, stop)
    return _paced(frames, stop)


def _until(frames: Iterator[Frame], stop: threading.Event) -> Iterator[Frame]:
    for f in frames:
        if stop.is_set():
            return
        yield f


def _paced(frames: Iterator[Frame], stop: threading.Event) -> Iterator[Frame]:
    """Yield each frame no earlier than its timestamp after the start (a file played as a stream)."""
    t0 = time.monotonic()
    for f in frames:
        delay = t0 + f.timestamp - time.monotonic()
        if delay > 0 and stop.wait(delay):
            return
        if stop.is_set():
            return
        yield f


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
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> LiveSession:
        # open now, so that a bad source fails in the caller with a clear message
        it = open_live_source(self.source, interval_ms=self.interval_ms, realtime=self.realtime,
                              stop=self._stop)
        self._thread = threading.Thread(target=self._run, args=(it,), name="vlm-live", daemon=True)
        self._thread.start()
        return self

    def _run(self, frames: Iterator[Frame]) -> None:
        try:
            for f in frames:
                self.monitor.process(f.image, f.timestamp)
                self.last_frame = f.image
                self.frames += 1
        except VlmAnomalyError as exc:
            self.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - shown to the user, the thread must not die silently
            self.error = f"live source stopped: {type(exc).__name__}: {exc}"

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the source to end; True if it did."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    def snapshot(self) -> tuple[list[Reading], list[Alert]]:
        return self.monitor.snapshot()
