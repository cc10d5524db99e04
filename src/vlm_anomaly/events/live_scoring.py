"""The live engine's first stage: frames in, one score per frame (with words and why) out.

Why its own piece: every live shell (dashboard, ``watch``, the REST API, Ray) must score a stream the
same way - the model's scorer (the detector contract offline scoring uses too, so a file scores the
same live), the zero-shot description and the known-bad prompts fused into the score.
The event builder and the sinks come after it and never look at frames' pixels to score them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from ..model import AnomalyModel
from ..pipeline import Pipeline
from ..video import Frame
from .bad_prompts import PromptAlarm


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
                 describe: bool = True, interval_ms: int | None = None):
        s = pipeline.settings
        self.pipeline = pipeline
        self.model = model
        self.describe = describe
        self.encoder = pipeline.encoder_for(model)
        self.encode_lock = encode_lock or threading.Lock()  # one encoder shared by several sources
        # the scorer offline scoring uses, at the stream's sampling (default: the model's)
        self.detector = pipeline.scorer(model, interval_ms=interval_ms)
        self.prompts = (PromptAlarm.create(self.encoder, s.alert_prompts, normal=model.prompts or None,
                                           threshold=s.alert_prompt_threshold, weight=s.alert_prompt_weight)
                        if self.encoder is not None else None)

    @property
    def needs_previous(self) -> bool:
        """True when the source must hand over the frame before each sample (motion, at some samplings)."""
        return self.detector.needs_previous

    def score(self, frames: list[Frame]) -> list[Scored]:
        if not frames:
            return []
        # no lock around scoring: each stream has its own scorer state, and the shared encoder's
        # inference (torch / ONNX Runtime, no grad) is safe from several threads; flow, decoding and
        # inference release the GIL, so several cameras use every core
        res = self.detector.score_frames(frames)
        with self.encode_lock:
            descs = self.pipeline.describe_scores(self.model, res) if self.describe else []
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
