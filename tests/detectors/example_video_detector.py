"""A small detector that needs neighbouring frames, written against the public contract only.

It shows what adding a detector takes: this one module (a :class:`VideoDetector` and its scorer)
and one registry line at the bottom. Nothing in the pipeline, the live loops, the store or the
evaluation is touched, yet it trains, saves, loads, scores files and scores live streams.

Motion energy = mean absolute difference between a sampled frame and the source frame just
before it; normality = median and spread of that energy on the normal videos.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vlm_anomaly.detectors import register_detector
from vlm_anomaly.detectors.base import require
from vlm_anomaly.detectors.video import VideoContext, VideoDetector
from vlm_anomaly.errors import InvalidVideoError, NotFittedError
from vlm_anomaly.values import EmbeddedVideo
from vlm_anomaly.video import Frame, content_hash, sample_frames

#: robust z above which a frame is anomalous (score 0)
Z_HIGH = 3.0


def motion_energy(f: Frame) -> float:
    """Mean absolute grey-level change from the previous source frame (0 without one)."""
    if f.previous is None or f.previous.shape != f.image.shape:
        return 0.0
    return float(np.abs(f.image.astype(np.int16) - f.previous.astype(np.int16)).mean())


@dataclass
class DiffScores:
    source: str
    frame_indices: np.ndarray
    timestamps: np.ndarray
    scores: np.ndarray
    explanations: list[dict]
    frame_embeddings: np.ndarray


class FrameDiffScorer:
    """Fit / score a video / score a stream, with one state: (median, spread) of normal motion energy."""

    def __init__(self, ctx: VideoContext, state: np.ndarray | None = None):
        self.ctx = ctx
        self.interval_ms = ctx.interval_ms
        self.state = state
        self._train: list[EmbeddedVideo] = []

    def _frames(self, source: str | Path) -> list[Frame]:
        c = self.ctx
        frames = list(sample_frames(source, interval_ms=c.interval_ms, max_side=c.max_side,
                                    max_frames=c.max_frames, with_previous=True))
        if not frames:
            raise InvalidVideoError(f"{source}: no decodable frame")
        return frames

    def fit(self, sources: Sequence[str | Path], progress: Callable[[int, int, str], None] | None = None, *,
            names: Sequence[str] | None = None) -> FrameDiffScorer:
        energies, done = [], 0
        for src in sources:
            frames = self._frames(src)
            energies += [motion_energy(f) for f in frames if f.previous is not None]
            emb = self.ctx.encoder.encode([f.image for f in frames])
            self._train.append(EmbeddedVideo(str(src), content_hash(src), np.array([f.index for f in frames]),
                                             np.array([f.timestamp for f in frames]), emb))
            done += len(frames)
            if progress:
                progress(done, 0, "measuring motion")
        if len(energies) < 2:
            raise InvalidVideoError("training needs at least 2 frames with a previous frame")
        e = np.asarray(energies)
        med = float(np.median(e))
        spread = float(np.median(np.abs(e - med)) * 1.4826) or 1e-3
        self.state = np.array([med, spread])
        return self

    @property
    def train_videos(self) -> list[EmbeddedVideo]:
        return self._train

    def _score(self, frames: list[Frame]) -> list[tuple[float, dict]]:
        if self.state is None:
            raise NotFittedError("FrameDiffScorer is not fitted")
        med, spread = self.state
        out = []
        for f in frames:
            e = motion_energy(f)
            z = (e - med) / spread if f.previous is not None else 0.0
            out.append((Z_HIGH - z, {"text": f"motion energy {e:.2f} vs normal {med:.2f}", "energy": e}))
        return out

    def score_detailed(self, source: str | Path, progress: Callable[[int], None] | None = None) -> DiffScores:
        frames = self._frames(source)
        scored = self._score(frames)
        if progress:
            progress(len(frames))
        return DiffScores(str(source), np.array([f.index for f in frames]), np.array([f.timestamp for f in frames]),
                          np.array([s for s, _ in scored]), [w for _, w in scored],
                          self.ctx.encoder.encode([f.image for f in frames]))

    def score_stream(self, frames: Iterable[Frame]) -> Iterator[tuple[Frame, float, dict | None]]:
        for f in frames:
            [(score, why)] = self._score([f])
            yield f, score, why


class FrameDiffDetector(VideoDetector):
    """What the model file holds: the normal motion energy (2 numbers), no pickle."""

    name = "frame-diff"

    def get_params(self) -> dict[str, Any]:
        return {}

    @classmethod
    def video_scorer(cls, ctx: VideoContext, fitted: VideoDetector | None = None) -> FrameDiffScorer:
        return FrameDiffScorer(ctx, None if fitted is None else fitted.state_)

    @classmethod
    def from_scorer(cls, scorer: FrameDiffScorer) -> FrameDiffDetector:
        det = cls()
        det.state_ = scorer.state
        det.n_features_in_ = scorer.ctx.encoder.dim
        return det

    def fit(self, X: np.ndarray) -> FrameDiffDetector:
        raise NotImplementedError("frame-diff reads the video: train it on videos, not embeddings")

    def _decision(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError("frame-diff reads the video: score videos, not embeddings")

    def _get_arrays(self) -> dict[str, np.ndarray]:
        return {"energy": self.state_}

    def _set_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.state_ = require(arrays, "energy", (2,))


register_detector(FrameDiffDetector)
