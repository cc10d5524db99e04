"""The one detector contract: what the pipeline, the evaluation, the live engine and the API call.

A detector is *features* (how frames or a video become observations: frame embeddings, motion
attributes) plus a *density with calibration* (fit on normal observations, score, threshold at a
target false-alarm rate, explain). Every detector offers the same two objects:

* a :class:`Detector` - the fitted state the model file holds (JSON parameters + named float arrays,
  no pickle), registered under a short name;
* a :class:`Scorer` from :meth:`Detector.scorer_for` - fits on normal sources, scores a source into
  :class:`~vlm_anomaly.values.FrameScores`, and scores live frames in order with the same state.

Callers never ask what kind of detector they hold: embedding detectors
(:class:`~vlm_anomaly.detectors.base.BaseDetector`) get their features from the pipeline's cached
frame embeddings (:attr:`DetectorContext.embed`), detectors that read the video
(:class:`~vlm_anomaly.detectors.video.VideoDetector`) decode it themselves. Adding one = one module
+ one registry line (``PLUGINS`` in ``detectors/registry.py`` or :func:`register_detector`).
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from ..errors import CannotLearnError, NotFittedError
from ..values import EmbeddedVideo, FrameScores

if TYPE_CHECKING:
    from ..config import Settings
    from ..encoders.base import Encoder
    from ..video.frames import Frame

#: progress of a fit: (frames done, frames expected or 0 if unknown, stage text)
Progress = Callable[[int, int, str], None]


def no_progress(done: int, total: int, stage: str) -> None:
    """A :data:`Progress` that shows nothing."""

#: progress of scoring one source: frames done so far
FrameProgress = Callable[[int], None]
#: frame embeddings of sources, sampled as the context says, through the pipeline's cache
Embed = Callable[[Sequence[str], "Progress | None"], list[EmbeddedVideo]]


@dataclass(frozen=True)
class DetectorContext:
    """What a detector gets from the run: its encoder (None: it embeds nothing), the settings (its
    hyper-parameters), sampling and limits, and the pipeline's frame embeddings (cached)."""

    encoder: Encoder | None
    settings: Settings
    interval_ms: int = 0
    max_side: int = 0
    max_frames: int = 0
    embed: Embed | None = None


@runtime_checkable
class Scorer(Protocol):
    """Fit on normal sources, score a source, score live frames - one state for all three.

    Optional: ``fit_reads``, how many times ``fit`` reads each training source through (1 when
    absent), so that a progress bar's total covers the whole of training; ``folder_fps``, the rate
    a frame folder is read at live (the usual guess when absent), for a detector that measures
    motion per second."""

    #: the sampling it scores at (ms between samples, 0 = every frame)
    interval_ms: int
    #: the sampling it reads training sources at (a detector may train denser than it scores);
    #: progress bars estimate training from it
    fit_interval_ms: int
    #: live frames must carry an earlier source frame with each sample (``Frame.previous``) to score
    #: as a file does at this sampling
    needs_previous: bool

    def fit(self, sources: Sequence[str | Path], progress: Progress | None = None, *,
            names: Sequence[str] | None = None) -> Scorer:
        """Learn normality from videos/frame folders of normal activity; returns self. ``names``:
        what explanations call the training videos (default: their file names)."""
        ...

    @property
    def train_videos(self) -> list[EmbeddedVideo]:
        """The sampled frames of each training source, with their whole-frame embeddings (after fit)."""
        ...

    def fitted(self) -> Detector:
        """The saveable detector holding this scorer's fitted state."""
        ...

    def score(self, source: str | Path, progress: FrameProgress | None = None) -> FrameScores:
        """Scores (and explanations) of every sampled frame of one source."""
        ...

    def score_frames(self, frames: Sequence[Frame]) -> FrameScores:
        """Live: scores of the next frames of a stream, in order, keeping the stream's state."""
        ...


@runtime_checkable
class LearnsNormal(Protocol):
    """A scorer that learns footage marked normal after training - without its training videos:
    it adds the footage's observations to its normal data and recalibrates its threshold, and can
    forget them again (the model then scores exactly as before). Optional: callers go through
    :func:`learner`, which says clearly when a detector cannot."""

    def add_normal(self, source: str | Path, start_s: float | None = None, end_s: float | None = None, *,
                   key: str, name: str, progress: FrameProgress | None = None) -> int:
        """Learn the sampled frames of ``source`` between ``start_s`` and ``end_s`` (seconds; None:
        from the start / to the end) as normal, under ``key``; ``name``: what explanations call
        the footage. Returns how many sampled frames it learnt."""
        ...

    def remove_normal(self, key: str) -> None:
        """Forget the footage added under ``key`` (KeyError when there is none)."""
        ...


def cannot_learn(detector: str) -> CannotLearnError:
    """The error of a detector asked to learn footage marked normal that cannot."""
    return CannotLearnError(f"detector {detector!r} cannot learn without retraining: train the model again "
                            "with this footage among its normal videos")


def learner(scorer: Scorer, detector: str) -> LearnsNormal:
    """``scorer`` as one that learns footage marked normal, or a clear error when its detector cannot."""
    if not isinstance(scorer, LearnsNormal):
        raise cannot_learn(detector)
    return scorer


class Detector(ABC):
    """A fitted detector as the model file holds it: parameters, scalars and named arrays.

    Scores follow One-Class SVM's convention everywhere: higher = more normal, below ``threshold_``
    anomalous (0 by default; calibrated detectors put it at a target false-alarm rate).
    """

    #: short name in the registry and in saved models
    name: ClassVar[str] = ""

    threshold_: float = 0.0
    #: dimension of the encoder's embeddings it was fitted with (0: it embeds nothing)
    n_features_in_: int | None = None

    @classmethod
    def encoder_settings(cls, settings: Settings) -> Settings | None:
        """The settings its encoder is built from: the configured ones by default; another choice
        (e.g. a fast backbone for many small crops a frame), or None when it embeds nothing."""
        return settings

    @classmethod
    @abstractmethod
    def scorer_for(cls, ctx: DetectorContext, fitted: Detector | None = None) -> Scorer:
        """A scorer for ``ctx``: fresh (hyper-parameters from ``ctx.settings``) or holding ``fitted``'s state."""

    def get_params(self) -> dict[str, Any]:
        """Constructor parameters (JSON-serialisable): by the scikit-learn convention, the attributes
        named like the constructor's parameters."""
        params = inspect.signature(type(self).__init__).parameters.values()
        return {p.name: getattr(self, p.name) for p in list(params)[1:]
                if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}

    @abstractmethod
    def _get_arrays(self) -> dict[str, np.ndarray]:
        """Fitted state as named numeric arrays."""

    @abstractmethod
    def _set_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        """Restore fitted state from :meth:`_get_arrays`' output (validate shapes)."""

    def model_extra(self) -> dict[str, Any]:
        """What the model file should show about this detector (e.g. its calibration), in ``extra``."""
        return {}

    @property
    def is_fitted(self) -> bool:
        return getattr(self, "n_features_in_", None) is not None

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit() first")

    def _meta(self) -> dict[str, Any]:
        """The JSON part every saved detector has: name, parameters, fitted scalars."""
        return {
            "name": self.name,
            "params": self.get_params(),
            "n_features_in": int(self.n_features_in_ or 0),
            "threshold": float(self.threshold_),
        }

    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(JSON-safe metadata, arrays) describing the fitted detector."""
        self._check_fitted()
        return self._meta(), {k: np.asarray(v) for k, v in self._get_arrays().items()}

    @classmethod
    def _from_meta(cls, meta: dict[str, Any]) -> Detector:
        """A detector with the saved parameters and fitted scalars; subclasses then restore arrays."""
        det = cls(**meta.get("params", {}))
        det.n_features_in_ = int(meta["n_features_in"])
        det.threshold_ = float(meta.get("threshold", 0.0))
        return det

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Detector:
        det = cls._from_meta(meta)
        det._set_arrays(arrays)
        return det
