"""The attribute scorer as a registered detector, so models save and load through the ModelStore.

Why a detector: a model file is encoder identity + detector state (JSON + arrays, no pickle); the
attribute banks, projections and calibrations are just more arrays. Given only frame embeddings
(``fit(X)`` / ``decision_function(X)``, e.g. from a caller that knows nothing of motion) it is the
whole-frame k-NN attribute alone; trained from videos (``Pipeline.train`` with
``detector="attributes"``) it holds every attribute.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..detectors import register_detector
from ..detectors.base import BaseDetector
from .density import knn
from .features import VELOCITY_DIM, SourceFeatures
from .scorer import AttributeConfig, AttributeScorer, AttributeState


class AttributeDetector(BaseDetector):
    """k-NN attribute densities (velocity, appearance, geometry, whole frame), calibrated."""

    name = "attributes"
    needs_video = True

    def __init__(self, config: dict | None = None):
        self.config = dict(config or {})

    def get_params(self) -> dict[str, Any]:
        return {"config": self.config}

    @classmethod
    def from_scorer(cls, scorer: AttributeScorer, dim: int) -> AttributeDetector:
        det = cls(scorer.config.as_dict())
        det.state_ = scorer._check()
        det.n_features_in_ = int(dim)
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

    def _get_arrays(self) -> dict[str, np.ndarray]:
        return self.state_.to_state()[1]

    def _set_arrays(self, arrays: dict[str, np.ndarray]) -> None:  # pragma: no cover - from_state does it
        raise NotImplementedError

    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta, arrays = super().get_state()
        meta["attributes"] = self.state_.to_state()[0]
        return meta, arrays

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> AttributeDetector:
        det = cls._from_meta(meta)
        det.state_ = AttributeState.from_state(meta["attributes"], arrays, det.n_features_in_)
        if "frame" not in det.state_.banks:
            raise ValueError("attribute model holds no whole-frame bank")
        return det


    # -- video-detector protocol (see BaseDetector.needs_video) --------------------------------
    @classmethod
    def fit_video(cls, pipe, sources, *, progress=None, names=None):
        from .integration import fit_attribute_model

        return fit_attribute_model(pipe, sources, progress=progress, names=names)

    def score_video(self, pipe, model, source, *, progress=None, describe=True, threshold=None, interval_ms=None,
                    keep_frames=False):
        from .integration import score_attribute_model

        return score_attribute_model(pipe, model, source, progress=progress, describe=describe,
                                     threshold=threshold, interval_ms=interval_ms)

    @classmethod
    def evaluation_scorer(cls, settings):
        from .integration import evaluation_scorer

        return evaluation_scorer(settings)


register_detector(AttributeDetector)
