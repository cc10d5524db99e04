"""The live engine's first stage: frames in, one score per frame (with words and why) out.

Why its own piece: every live shell (dashboard, ``watch``, the REST API, Ray) must score a stream the
same way - the model's scorer (the detector contract offline scoring uses too, so a file scores the
same live), the zero-shot description and the known-bad prompts fused into the score.
The event builder and the sinks come after it and never look at frames' pixels to score them.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from ..errors import VlmAnomalyError
from ..model import AnomalyModel
from ..pipeline import Pipeline, folder_rate
from ..video import Frame
from .bad_prompts import PromptAlarm

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scored:
    """One frame's verdict before smoothing: ``score`` is the detector's (fused with bad prompts)."""

    frame: Frame
    score: float
    text: str = ""
    confidence: float = 0.0
    explanation: dict | None = None  # detectors that explain: what fired, where, nearest normal
    prompt: tuple[str, float] | None = None  # the known-bad prompt that fired and its probability


class StreamScorer:
    """Score batches of live frames with one model, keeping the state a stream needs.

    Example:
        >>> sc = StreamScorer(pipe, pipe.load("office-day"))  # doctest: +SKIP
        >>> [s.score for s in sc.score(frames)]  # doctest: +SKIP
    """

    def __init__(self, pipeline: Pipeline, model: AnomalyModel, *, encode_lock: threading.Lock | None = None,
                 interval_ms: int | None = None):
        s = pipeline.settings
        self.pipeline = pipeline
        self.model = model
        self.interval_ms = interval_ms
        #: how often (seconds) the model's file is checked for a newer version (footage marked
        #: normal while the stream runs): the stream then scores with what the model learnt
        self.reload_every_s = 5.0
        self._checked = time.monotonic()
        self._version = self._file_version()
        self.encoder = pipeline.encoder_for(model)
        self.encode_lock = encode_lock or threading.Lock()  # one encoder shared by several sources
        # the scorer offline scoring uses, at the stream's sampling (default: the model's)
        self.detector = pipeline.scorer(model, interval_ms=interval_ms)
        self.prompts = (PromptAlarm.create(self.encoder, s.alert_prompts, normal=model.prompts or None,
                                           threshold=s.alert_prompt_threshold, weight=s.alert_prompt_weight)
                        if self.encoder is not None else None)

    @property
    def needs_previous(self) -> bool:
        """True when the source must hand over an earlier frame with each sample (motion, at some samplings)."""
        return self.detector.needs_previous

    @property
    def folder_fps(self) -> float:
        """The rate a frame folder is read at (a motion model: its training videos')."""
        return folder_rate(self.detector)

    def _file_version(self) -> tuple[int, int] | None:
        """(mtime, size) of the saved model's file; None for a model that is not in the store."""
        try:
            st = self.pipeline.store.path_for(self.model.name).stat()
        except (OSError, ValueError, VlmAnomalyError):
            return None
        return st.st_mtime_ns, st.st_size

    def reload_if_changed(self) -> bool:
        """Load the model again when its file changed (a saved model is replaced atomically);
        True when it did. The stream's motion references start afresh with the new scorer."""
        self._checked = time.monotonic()
        version = self._file_version()
        if version is None or version == self._version:
            return False
        try:
            model = self.pipeline.store.load(self.model.name)
            detector = self.pipeline.scorer(model, interval_ms=self.interval_ms)
        except VlmAnomalyError as exc:  # a broken or retrained-elsewhere file: keep scoring as before
            log.warning("model %s changed but cannot be loaded again: %s", self.model.name, exc)
            self._version = version
            return False
        self.model, self.detector, self._version = model, detector, version
        log.info("model %s changed on disk: scoring with the new version", self.model.name)
        return True

    def restart(self) -> None:
        """Score what follows as a new stream: after a gap the frames before it are no neighbours
        of those after (motion references, scene history and the frames an explanation looks back
        on start afresh, as when the watcher started)."""
        self.detector = self.pipeline.scorer(self.model, interval_ms=self.interval_ms)

    def score(self, frames: list[Frame]) -> list[Scored]:
        if not frames:
            return []
        if self.model.name and time.monotonic() - self._checked >= self.reload_every_s:
            self.reload_if_changed()
        # no lock around scoring: each stream has its own scorer state, and the shared encoder's
        # inference (torch / ONNX Runtime, no grad) is safe from several threads; flow, decoding and
        # inference release the GIL, so several cameras use every core
        res = self.detector.score_frames(frames)
        with self.encode_lock:
            descs = self.pipeline.describe_scores(self.model, res)
            hits = self.prompts.score(res.embeddings) if self.prompts and res.embeddings is not None else None
        scores = self.prompts.fuse(res.scores, hits) if self.prompts and hits else res.scores
        out = []
        for i, f in enumerate(frames):
            prompt = None
            if hits is not None and hits.probs[i] >= self.prompts.threshold:
                prompt = (hits.labels[i], float(hits.probs[i]))
            d = descs[i] if i < len(descs) else None
            why = res.explanations[i] if i < len(res.explanations) else None
            out.append(Scored(f, float(scores[i]), d.text if d else "", d.confidence if d else 0.0, why or None,
                              prompt))
        return out
