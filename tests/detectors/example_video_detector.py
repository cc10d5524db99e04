"""A small detector that needs neighbouring frames, written against the public contract only.

It shows what adding a detector takes: this one module (a :class:`VideoDetector` and its
:class:`~vlm_anomaly.detectors.Scorer`) and one registry line at the bottom. Nothing in the
pipeline, the live loops, the store or the evaluation is touched, yet it trains, saves, loads,
scores files and scores live streams.

Motion energy = mean absolute difference between a sampled frame and the source frame just
before it; normality = median and spread of that energy on the normal videos.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vlm_anomaly.detectors import register_detector
from vlm_anomaly.detectors.base import require
from vlm_anomaly.detectors.contract import Detector, DetectorContext
from vlm_anomaly.detectors.video import VideoDetector
from vlm_anomaly.errors import InvalidVideoError, NotFittedError
from vlm_anomaly.values import EmbeddedVideo, FrameScores
from vlm_anomaly.video import Frame, content_hash, sample_frames

#: robust z above which a frame is anomalous (score 0)
Z_HIGH = 3.0


def motion_energy(f: Frame) -> float:
    """Mean absolute grey-level change from the earlier source frame handed over with the sample
    (``Frame.previous``: the newest at least 0.09 s back; 0 without one)."""
    if f.previous is None or f.previous.shape != f.image.shape:
        return 0.0
    return float(np.abs(f.image.astype(np.int16) - f.previous.astype(np.int16)).mean())


class FrameDiffScorer:
    """Fit / score a video / score a stream, with one state: (median, spread) of normal motion energy."""

    def __init__(self, ctx: DetectorContext, state: np.ndarray | None = None):
        self.ctx = ctx
        self.interval_ms = self.fit_interval_ms = ctx.interval_ms
        self.needs_previous = True  # motion energy is measured against an earlier source frame
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
            emb = self._embed(frames)
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

    def _embed(self, frames: list[Frame]) -> np.ndarray | None:
        """Whole-frame embeddings (descriptions, nearest normal frame), when there is an encoder."""
        return self.ctx.encoder.encode([f.image for f in frames]) if self.ctx.encoder is not None else None

    @property
    def train_videos(self) -> list[EmbeddedVideo]:
        return self._train

    def fitted(self) -> FrameDiffDetector:
        if self.state is None:
            raise NotFittedError("FrameDiffScorer is not fitted")
        det = FrameDiffDetector()
        det.state_ = self.state
        det.n_features_in_ = self.ctx.encoder.dim if self.ctx.encoder is not None else 0
        return det

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

    def score(self, source: str | Path, progress: Callable[[int], None] | None = None) -> FrameScores:
        frames = self._frames(source)
        if progress:
            progress(len(frames))
        return self.score_frames(frames)

    def score_frames(self, frames: Sequence[Frame]) -> FrameScores:
        scored = self._score(list(frames))
        return FrameScores(frames[0].source if frames else "", np.array([f.index for f in frames]),
                           np.array([f.timestamp for f in frames]), np.array([s for s, _ in scored]),
                           [w for _, w in scored], self._embed(list(frames)))


class FrameDiffDetector(VideoDetector):
    """What the model file holds: the normal motion energy (2 numbers), no pickle."""

    name = "frame-diff"

    def get_params(self) -> dict[str, Any]:
        return {}

    @classmethod
    def scorer_for(cls, ctx: DetectorContext, fitted: Detector | None = None) -> FrameDiffScorer:
        return FrameDiffScorer(ctx, None if fitted is None else fitted.state_)

    def _get_arrays(self) -> dict[str, np.ndarray]:
        return {"energy": self.state_}

    def _set_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.state_ = require(arrays, "energy", (2,))


register_detector(FrameDiffDetector)
