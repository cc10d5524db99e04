"""The attribute scorer as a registered video detector, so models save and load through the ModelStore.

Why a detector: a model file is encoder identity + detector state (JSON + arrays, no pickle); the
attribute banks, projections and calibrations are just more arrays. Given only frame embeddings
(``fit(X)`` / ``decision_function(X)``, e.g. from a caller that knows nothing of motion) it is the
whole-frame k-NN attribute alone; trained from videos (through :meth:`video_scorer`, which is
how the pipeline, the live loops and the evaluation use it) it holds every attribute.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..detectors.video import StateVideoDetector, VideoContext, VideoDetector
from ..errors import ConfigError
from .density import knn
from .features import VELOCITY_DIM, MotionConfig, SourceFeatures
from .scorer import AttributeConfig, AttributeScorer, AttributeState


def attribute_config(settings) -> AttributeConfig:
    """The attribute hyper-parameters from the settings (``attr_*`` fields)."""
    motion = MotionConfig(flow_method=settings.attr_flow_method, crop_size=settings.attr_crop_size)
    return AttributeConfig(motion=motion, fused=tuple(settings.attr_fused), k=settings.attr_k)


class AttributeDetector(StateVideoDetector):
    """k-NN attribute densities (velocity, appearance, geometry, whole frame), calibrated."""

    name = "attributes"
    state_key = "attributes"

    @classmethod
    def video_scorer(cls, ctx: VideoContext, fitted: VideoDetector | None = None) -> AttributeScorer:
        """A fresh scorer configured by ``ctx.settings``, or one holding ``fitted``'s state."""
        state = cls.fitted_state(fitted)
        if state is None and ctx.encoder.groups != 1:
            raise ConfigError("the attributes detector embeds whole frames and object crops: use features "
                              f"'frame' (not {ctx.settings.features!r})")
        return AttributeScorer(ctx.encoder, None if state else attribute_config(ctx.settings), state=state,
                               interval_ms=ctx.interval_ms, max_side=ctx.max_side, max_frames=ctx.max_frames,
                               cache_dir=ctx.cache_dir)

    @classmethod
    def from_scorer(cls, scorer: AttributeScorer, dim: int | None = None) -> AttributeDetector:
        det = cls(scorer.config.as_dict())
        det.state_ = scorer._check()
        det.n_features_in_ = int(scorer.encoder.dim if dim is None else dim)
        det.threshold_ = 0.0
        return det

    def scorer(self, **kwargs) -> AttributeScorer:
        """An :class:`AttributeScorer` holding this detector's fitted state."""
        self._check_fitted()
        return AttributeScorer(state=self.state_, **kwargs)

    def fit(self, X: np.ndarray) -> AttributeDetector:
        """Whole-frame attribute only, from embeddings of normal frames."""
        X = self._check_fit_X(X).astype(np.float32)
        cfg = AttributeConfig.from_dict({**self.config, "fused": ["frame"]})
        n = len(X)
        feats = SourceFeatures(
            source="embeddings", size=np.array([1, 1]), frame_indices=np.arange(n),
            timestamps=np.arange(n, dtype=np.float64), has_motion=np.ones(n, bool), frame_emb=X,
            obj_frame=np.zeros(0, np.int64), obj_boxes=np.zeros((0, 4), np.int32),
            obj_velocity=np.zeros((0, VELOCITY_DIM), np.float32), obj_appearance=np.zeros((0, X.shape[1]), np.float32),
        )
        self.config = cfg.as_dict()
        self.state_ = AttributeScorer(config=cfg).fit_features([feats]).state
        self.n_features_in_ = X.shape[1]
        self.threshold_ = 0.0
        return self

    def _decision(self, X: np.ndarray) -> np.ndarray:
        """Whole-frame attribute score of embeddings (higher = more normal, < 0 anomalous)."""
        st = self.state_
        d, _ = knn(st.banks["frame"], st.projections["frame"](X), st.config.k)
        c = st.calib["frame"]
        return c.high - c(d.mean(1))

    def _restore_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> AttributeState:
        state = AttributeState.from_state(meta, arrays, self.n_features_in_)
        if "frame" not in state.banks:
            raise ValueError("attribute model holds no whole-frame bank")
        return state

