"""The motion scorer as a registered video detector (the default): saved through the ModelStore as
arrays + JSON (no pickle), trained and scored from the videos (it needs motion, not embeddings)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import Settings, updated
from ..detectors.contract import Detector, DetectorContext, FrameProgress, Progress
from ..detectors.video import StateVideoDetector
from ..errors import InvalidVideoError
from ..values import EmbeddedVideo, FrameScores
from .appearance import CropEmbedder
from .calibration import few_clips_warning
from .scorer import MotionConfig, MotionScorer, MotionState

if TYPE_CHECKING:
    from ..encoders.base import Encoder
    from ..video.frames import Frame


def motion_config(settings) -> MotionConfig:
    """The motion detector's hyper-parameters from the settings (the rest are fixed, see docs/motion.md)."""
    fused = MotionConfig().fused
    if not settings.motion_appearance:
        fused = tuple(a for a in fused if a != "appearance")
    return MotionConfig(smoothing_window=settings.smoothing_window, target_false_alarm=settings.target_false_alarm,
                        fused=fused)


def crop_embedder(config: MotionConfig, encoder: Encoder | None) -> CropEmbedder | None:
    """The embedder of moving regions' crops when the model looks at appearance, else None."""
    if "appearance" not in config.fused:
        return None
    if encoder is None:
        raise InvalidVideoError("this motion model looks at appearance and needs its encoder")
    return CropEmbedder(encoder)


class MotionDetectorScorer:
    """The detector contract over a :class:`MotionScorer`: its scores, explanations and the mean
    embedding of each frame's moving regions (None without appearance)."""

    def __init__(self, inner: MotionScorer):
        self.inner = inner
        self.interval_ms, self.fit_interval_ms = inner.interval_ms, inner.fit_interval_ms
        self.fit_reads = 2 if inner.config.augment else 1  # each clip, then its degraded copy
        # live frames come with the source frame before them: motion is measured over about the same
        # short gap whatever the sampling (offline, a sampling interval that is itself a usable gap
        # measures between samples instead: the same scores where the two gaps agree)
        self.needs_previous = True
        self._queue: deque[Frame] = deque()
        self._live: Iterator[tuple[Frame, float, dict]] | None = None

    def fit(self, sources: Sequence[str | Path], progress: Progress | None = None, *,
            names: Sequence[str] | None = None) -> MotionDetectorScorer:
        self.inner.fit([str(s) for s in sources], progress, names=names)
        return self

    @property
    def train_videos(self) -> list[EmbeddedVideo]:
        return self.inner.train_videos

    @property
    def folder_fps(self) -> float:
        return self.inner.folder_fps

    def fitted(self) -> MotionDetector:
        det = MotionDetector(self.inner.config.as_dict())
        det.state_ = self.inner._check()
        det.n_features_in_ = self.inner.embedder.dim if self.inner.embedder is not None else 0
        det.threshold_ = 0.0
        return det

    def score(self, source: str | Path, progress: FrameProgress | None = None) -> FrameScores:
        r = self.inner.score_detailed(source, progress)
        return FrameScores(r.source, r.frame_indices, r.timestamps, np.asarray(r.scores, np.float64),
                           r.explanations, r.embeddings)

    def add_normal(self, source: str | Path, start_s: float | None = None, end_s: float | None = None, *,
                   key: str, name: str, progress: FrameProgress | None = None) -> int:
        """Learn footage marked normal: its moving objects, cells and still places join the normal
        examples, it joins the held-out clips, calibration and threshold are recomputed."""
        feats = self.inner.extract_range(source, start_s, end_s, progress)
        self.inner.add_normal(feats, key, name)
        self._live = None
        return feats.n_frames

    def remove_normal(self, key: str) -> None:
        self.inner.remove_normal(key)
        self._live = None

    def _pending(self) -> Iterator[Frame]:
        while True:  # the stream asks for one frame per result, and gets one
            yield self._queue.popleft()

    def score_frames(self, frames: Sequence[Frame]) -> FrameScores:
        if self._live is None:  # one stream for the whole source: reference frames carry over between batches
            self._live = self.inner.score_stream(self._pending())
        out = []
        for f in frames:
            self._queue.append(f)
            out.append(next(self._live))
        return FrameScores(frames[0].source if frames else "", np.array([f.index for f, _, _ in out], np.int64),
                           np.array([f.timestamp for f, _, _ in out], np.float64),
                           np.array([s for _, s, _ in out], np.float64), [w or {} for _, _, w in out])


class MotionDetector(StateVideoDetector):
    """Moving objects' speed, size and look (position-free) + per-place moving shape, k-NN, calibrated."""

    name = "motion"
    state_key = "motion"

    @classmethod
    def encoder_settings(cls, settings: Settings) -> Settings | None:
        """None without appearance (motion alone embeds nothing). Crops go through the fast offline
        backbone unless ``motion_crop_encoder`` says "configured": a frame has several regions, and
        OpenCLIP costs 50-140 ms a crop on 2 cores."""
        if "appearance" not in motion_config(settings).fused:
            return None
        if settings.motion_crop_encoder == "configured" or settings.encoder == "efficientnet":
            return settings
        return updated(settings, {"encoder": "efficientnet", "features": "frame"})

    @classmethod
    def scorer_for(cls, ctx: DetectorContext, fitted: Detector | None = None) -> MotionDetectorScorer:
        """A fresh scorer configured by ``ctx.settings``, or one holding ``fitted``'s state."""
        state = cls.fitted_state(fitted)
        s = ctx.settings
        config = state.config if state else motion_config(s)
        return MotionDetectorScorer(MotionScorer(config, state=state, interval_ms=ctx.interval_ms,
                                                 max_side=ctx.max_side, max_frames=ctx.max_frames,
                                                 max_duration_s=getattr(s, "max_duration_s", 0) or 0,
                                                 embedder=crop_embedder(config, ctx.encoder),
                                                 folder_fps=getattr(s, "folder_fps", 0) or 0))

    def model_extra(self) -> dict[str, Any]:
        """Calibration facts for the model file, and ``warning`` ("" when none): a threshold learnt
        from few clips flags new normal moments none of them shows (``few_clips_warning``)."""
        st = self.state_
        held = st.arrays.get("heldout_frames")
        clips = len(np.unique(held[:, 3])) if held is not None and len(held) else len(st.sources)
        return {"target_false_alarm": st.config.target_false_alarm, "heldout_flagged": round(st.heldout_flagged, 4),
                "calibration_clips": int(clips), "warning": few_clips_warning(clips)}

    def scorer(self, **kwargs) -> MotionScorer:
        """A :class:`MotionScorer` holding this detector's fitted state (live and offline scoring)."""
        self._check_fitted()
        embedder = crop_embedder(self.state_.config, kwargs.pop("encoder", None))
        return MotionScorer(state=self.state_, embedder=embedder, **kwargs)

    def _restore_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> MotionState:
        return MotionState.from_state(meta, arrays)
