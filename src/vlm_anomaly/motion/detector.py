"""The motion scorer as a registered video detector (the default): saved through the ModelStore as
arrays + JSON (no pickle), trained and scored from the videos (it needs motion, not embeddings)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import updated
from ..detectors.video import StateVideoDetector, VideoContext, VideoDetector
from ..encoders.null import NULL_IDENTITY
from ..errors import InvalidVideoError
from .appearance import CropEmbedder
from .scorer import MotionConfig, MotionScorer, MotionState

if TYPE_CHECKING:
    from ..encoders.base import Encoder


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
    if encoder is None or encoder.identity == NULL_IDENTITY:
        raise InvalidVideoError("this motion model looks at appearance and needs its encoder")
    return CropEmbedder(encoder)


class MotionDetector(StateVideoDetector):
    """Moving objects' speed, size and look (position-free) + per-place moving shape, k-NN, calibrated."""

    name = "motion"
    state_key = "motion"

    @classmethod
    def encoder_needed(cls, settings: Any) -> bool:
        return "appearance" in motion_config(settings).fused

    @classmethod
    def encoder_settings(cls, settings: Any) -> Any:
        """Crops go through the fast offline backbone unless ``motion_crop_encoder`` says
        "configured": a frame has several regions, and OpenCLIP costs 50-140 ms a crop on 2 cores."""
        if settings.motion_crop_encoder == "configured" or settings.encoder == "efficientnet":
            return settings
        return updated(settings, {"encoder": "efficientnet", "features": "frame"})

    @classmethod
    def video_scorer(cls, ctx: VideoContext, fitted: VideoDetector | None = None) -> MotionScorer:
        """A fresh scorer configured by ``ctx.settings``, or one holding ``fitted``'s state."""
        state = cls.fitted_state(fitted)
        s = ctx.settings
        config = state.config if state else motion_config(s)
        return MotionScorer(config, state=state, interval_ms=ctx.interval_ms,
                            max_side=ctx.max_side, max_frames=ctx.max_frames,
                            max_duration_s=getattr(s, "max_duration_s", 0) or 0,
                            embedder=crop_embedder(config, ctx.encoder))

    @classmethod
    def from_scorer(cls, scorer: MotionScorer) -> MotionDetector:
        det = cls(scorer.config.as_dict())
        det.state_ = scorer._check()
        # the model records the encoder it was fitted with: the crops' encoder, or the null one (dim 1)
        det.n_features_in_ = scorer.embedder.dim if scorer.embedder is not None else 1
        det.threshold_ = 0.0
        return det

    def model_extra(self) -> dict[str, Any]:
        st = self.state_
        return {"target_false_alarm": st.config.target_false_alarm, "heldout_flagged": round(st.heldout_flagged, 4)}

    def scorer(self, **kwargs) -> MotionScorer:
        """A :class:`MotionScorer` holding this detector's fitted state (live and offline scoring)."""
        self._check_fitted()
        embedder = crop_embedder(self.state_.config, kwargs.pop("encoder", None))
        return MotionScorer(state=self.state_, embedder=embedder, **kwargs)

    def fit(self, X: np.ndarray) -> MotionDetector:
        raise InvalidVideoError("the motion detector learns from videos, not embeddings: train it with "
                                "Pipeline.fit / vlm-anomaly train")

    def _decision(self, X: np.ndarray) -> np.ndarray:
        raise InvalidVideoError("the motion detector scores videos, not embeddings: use Pipeline.score")

    def _restore_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> MotionState:
        return MotionState.from_state(meta, arrays)
