"""The motion scorer as a registered video detector (the default): saved through the ModelStore as
arrays + JSON (no pickle), trained and scored from videos (it needs motion, not embeddings)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..detectors import register_detector
from ..detectors.base import BaseDetector
from ..errors import InvalidVideoError
from .scorer import MotionConfig, MotionScorer, MotionState

#: what a motion model records as its "encoder": it embeds nothing (no network, no weights)
MOTION_IDENTITY = {"backend": "motion", "model": "dis-cells", "pretrained": "", "dim": 1}


class MotionDetector(BaseDetector):
    """Per-location k-NN densities of motion and moving shape, calibrated to a false-alarm rate."""

    name = "motion"
    #: trained and scored from the videos themselves (see :mod:`vlm_anomaly.detectors.video`)
    needs_video = True

    def __init__(self, config: dict | None = None):
        self.config = dict(config or {})

    def get_params(self) -> dict[str, Any]:
        return {"config": self.config}

    @classmethod
    def from_scorer(cls, scorer: MotionScorer) -> MotionDetector:
        det = cls(scorer.config.as_dict())
        det.state_ = scorer._check()
        det.n_features_in_ = 1
        det.threshold_ = 0.0
        return det

    def scorer(self, **kwargs) -> MotionScorer:
        """A :class:`MotionScorer` holding this detector's fitted state (live and offline scoring)."""
        self._check_fitted()
        kwargs.pop("encoder", None)
        return MotionScorer(state=self.state_, **kwargs)

    def fit(self, X: np.ndarray) -> MotionDetector:
        raise InvalidVideoError("the motion detector learns from videos, not embeddings: train it with "
                                "Pipeline.fit / vlm-anomaly train")

    def _decision(self, X: np.ndarray) -> np.ndarray:
        raise InvalidVideoError("the motion detector scores videos, not embeddings: use Pipeline.score")

    def _get_arrays(self) -> dict[str, np.ndarray]:
        return self.state_.to_state()[1]

    def _set_arrays(self, arrays: dict[str, np.ndarray]) -> None:  # pragma: no cover - from_state does it
        raise NotImplementedError

    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta, arrays = super().get_state()
        meta["motion"] = self.state_.to_state()[0]
        return meta, arrays

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> MotionDetector:
        det = cls._from_meta(meta)
        if "motion" not in meta:
            raise ValueError("motion model holds no motion state")
        det.state_ = MotionState.from_state(meta["motion"], arrays)
        return det

    # -- video-detector protocol -----------------------------------------------------------------
    @classmethod
    def fit_video(cls, pipe, sources: Sequence[str | Path], *, progress=None, names: Sequence[str] | None = None):
        """Measure the motion of normal videos, fit, wrap as an :class:`~vlm_anomaly.model.AnomalyModel`."""
        from ..encoders.identity import EncoderIdentity
        from ..model import AnomalyModel, TrainingVideo
        from ..video import content_hash

        if not sources:
            raise InvalidVideoError("training needs at least one normal video or frame folder")
        s = pipe.settings
        scorer = _scorer(pipe, config=motion_config(s))
        srcs = [str(x) for x in sources]
        cb = _progress(progress, srcs, s.interval_ms, s.max_frames, "measuring motion")
        cols = scorer._cols_for(srcs[0])
        feats, done = [], 0
        for src in srcs:
            feats.append(scorer.extract(src, lambda n, base=done: cb(base + n), cols))
            done += feats[-1].n_frames
        scorer.fit_cells(feats)
        names = [str(n) for n in names] if names is not None and len(names) == len(feats) else \
            [Path(f.source).name for f in feats]
        scorer.state.sources = names
        if progress:
            progress(done, done, "done")
        st = scorer.state
        return AnomalyModel(
            encoder=EncoderIdentity.from_dict(MOTION_IDENTITY),
            detector=cls.from_scorer(scorer),
            videos=[TrainingVideo(n, content_hash(f.source), f.n_frames,
                                  float(f.timestamps[-1]) if f.n_frames else 0.0) for n, f in zip(names, feats)],
            interval_ms=s.interval_ms,
            smoothing_window=st.config.smoothing_window,
            threshold=0.0,
            extra={"target_false_alarm": st.config.target_false_alarm,
                   "heldout_flagged": round(st.heldout_flagged, 4)},
        )

    def score_video(self, pipe, model, source: str | Path, *, progress=None, describe: bool = True,
                    threshold: float | None = None, interval_ms: int | None = None, keep_frames: bool = False):
        """Score one video: per-frame scores and explanations (what moved where, how fast)."""
        from ..detectors import moving_average
        from ..results import ScoreResult

        scorer = _scorer(pipe, state=self.state_, interval_ms=model.interval_ms if interval_ms is None
                         else interval_ms)
        t0 = time.perf_counter()
        cb = _progress(progress, [str(source)], scorer.interval_ms, scorer.max_frames, "measuring motion")
        res = scorer.score_detailed(source, cb)
        t1 = time.perf_counter()
        raw = np.asarray(res.scores, np.float64)
        n = len(raw)
        texts = [e.get("text", "") for e in res.explanations] if describe else []
        return ScoreResult(
            source=str(source), model=model.name, frame_indices=res.frame_indices, timestamps=res.timestamps,
            raw_scores=raw, smoothed_scores=moving_average(raw, model.smoothing_window),
            threshold=model.threshold if threshold is None else threshold, smoothing_window=model.smoothing_window,
            descriptions=texts, confidences=[1.0] * len(texts), embeddings=None,
            timing={"extract_and_score_s": round(t1 - t0, 4), "frames": n,
                    "seconds_per_frame": round((t1 - t0) / max(1, n), 5),
                    **{k: round(v, 4) if isinstance(v, float) else v for k, v in scorer.timing.items()}},
            explanations=res.explanations,
        )

    @classmethod
    def evaluation_scorer(cls, settings) -> MotionScorer:
        """``vlm-anomaly evaluate``: the scorer built from the settings (it has fit/score_frames)."""
        return MotionScorer(motion_config(settings), interval_ms=settings.interval_ms, max_side=settings.max_side,
                            max_frames=settings.max_frames)


def motion_config(settings) -> MotionConfig:
    """The motion detector's hyper-parameters from the settings."""
    return MotionConfig(smoothing_window=settings.smoothing_window,
                        target_false_alarm=settings.target_false_alarm)


def _scorer(pipe, *, config: MotionConfig | None = None, state: MotionState | None = None,
            interval_ms: int | None = None) -> MotionScorer:
    s = pipe.settings
    return MotionScorer(config, state=state, interval_ms=s.interval_ms if interval_ms is None else interval_ms,
                        max_side=s.max_side, max_frames=s.max_frames, max_duration_s=s.max_duration_s)


def _progress(progress, sources: Sequence[str], interval_ms: int, max_frames: int, stage: str):
    from ..pipeline import expected_samples

    total = sum(expected_samples(src, interval_ms, max_frames) for src in sources)
    if progress:
        progress(0, total, stage)

    def cb(done: int) -> None:
        if progress:
            progress(done, max(total, done), stage)

    return cb


register_detector(MotionDetector)
