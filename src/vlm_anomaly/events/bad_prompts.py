"""Open-vocabulary alerts: known-bad situations written as text ("fire", "a fight"), scored by CLIP.

Why fuse instead of replace: the one-class score flags anything unlike the training videos, the
prompts name what is known to be bad even when it looks a bit like normal. Each frame's
probability of the bad prompts (softmax against the model's normal description prompts, so the
bad prompts compete with ordinary activity) lowers the score: ``fused = score - weight * p_bad``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..encoders import Encoder, build_prompts

log = logging.getLogger(__name__)


@dataclass
class PromptHits:
    """Per frame: the most likely bad prompt and its probability."""

    labels: list[str]
    probs: np.ndarray


class PromptAlarm:
    """Scores embeddings against bad prompts; ``None`` from :meth:`create` when not applicable."""

    def __init__(self, encoder: Encoder, bad: list[str], normal: list[str], *, threshold: float = 0.5,
                 weight: float = 1.0):
        self.encoder = encoder
        self.bad = list(dict.fromkeys(p.strip() for p in bad if p.strip()))
        self.normal = [p for p in dict.fromkeys(normal) if p not in self.bad]
        self.labels = self.bad + self.normal
        self.threshold = threshold
        self.weight = weight

    @classmethod
    def create(cls, encoder: Encoder, prompts: list[str], *, normal: list[str] | None = None, threshold: float = 0.5,
               weight: float = 1.0) -> PromptAlarm | None:
        """An alarm, or ``None`` (with a notice) without prompts or without a text tower."""
        if not prompts:
            return None
        if not encoder.supports_text:
            log.warning(
                "alert prompts ignored: encoder %s is image-only (no text tower); use an "
                "OpenCLIP model for open-vocabulary alerts",
                encoder.identity.label,
            )
            return None
        return cls(encoder, prompts, normal or build_prompts(None), threshold=threshold, weight=weight)

    def score(self, embeddings: np.ndarray) -> PromptHits:
        probs = self.encoder.text_similarity(embeddings, self.labels)[:, : len(self.bad)]
        best = probs.argmax(axis=1)
        return PromptHits([self.bad[i] for i in best], probs[np.arange(len(best)), best])

    def fuse(self, scores: np.ndarray, hits: PromptHits) -> np.ndarray:
        return np.asarray(scores, np.float64) - self.weight * hits.probs
