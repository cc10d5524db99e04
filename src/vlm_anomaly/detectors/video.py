"""The contract of detectors that read the video itself (motion, objects, neighbouring frames).

Two kinds of detector share the registry and the model file:

* **frame-embedding detectors** (:class:`~vlm_anomaly.detectors.base.BaseDetector`: OCSVM, the
  tile detector ``patch-knn``) see one embedding per sampled frame; the pipeline samples and
  encodes for them (with the embedding cache), so they only implement ``fit(X)`` and
  ``decision_function(X)``;
* **video detectors** (:class:`VideoDetector`) need more than one embedding per frame - optical
  flow against the previous frame, object crops, a window of neighbouring frames. The saved
  detector (arrays + JSON, no pickle) hands out a :class:`VideoScorer` that does the whole job:
  fit on normal videos, score a video into per-frame scores with explanations, and score a live
  stream frame by frame with the same state.

The pipeline, the live loops and the evaluation ask a detector ``reads_video`` and go through
these methods; none of them names a detector. Adding one = one module (a ``VideoDetector`` and
its scorer) + one line in the registry (``PLUGINS`` in ``detectors/registry.py``).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from .base import BaseDetector

if TYPE_CHECKING:
    from ..config import Settings
    from ..encoders.base import Encoder
    from ..values import EmbeddedVideo
    from ..video.frames import Frame

#: progress of a video scorer: frames done so far in the current job
FrameProgress = Callable[[int], None]


@dataclass(frozen=True)
class VideoContext:
    """What a video detector gets from the run: encoder, sampling, limits, settings.

    ``settings`` carries the detector's hyper-parameters (a new scorer reads its own fields there).
    """

    encoder: Encoder
    settings: Settings
    interval_ms: int = 0
    max_side: int = 0
    max_frames: int = 0


@runtime_checkable
class VideoScores(Protocol):
    """Per-frame results of one source (higher score = more normal, below 0 anomalous)."""

    source: str
    frame_indices: np.ndarray
    timestamps: np.ndarray
    scores: np.ndarray
    #: one dict per frame (``"text"`` is what a person reads); empty when the detector explains nothing
    explanations: list[dict]
    #: one whole-frame embedding per frame (descriptions, nearest normal frame)
    frame_embeddings: np.ndarray


@runtime_checkable
class VideoScorer(Protocol):
    """Fit on normal videos, score a video, score a live stream - one state for all three."""

    interval_ms: int

    def fit(self, sources: Sequence[str | Path], progress: Callable[[int, int, str], None] | None = None,
            *, names: Sequence[str] | None = None) -> VideoScorer:
        """Learn normality from videos/frame folders of normal activity; returns self.

        ``names`` are what explanations call the training videos (default: their file names).
        Afterwards :attr:`train_videos` lists what was seen, one entry per source.
        """
        ...

    @property
    def train_videos(self) -> list[EmbeddedVideo]:
        """Sampled frames of each training source with their whole-frame embeddings (after fit)."""
        ...

    def score_detailed(self, source: str | Path, progress: FrameProgress | None = None) -> VideoScores:
        """Scores and explanations of every sampled frame of one source."""
        ...

    def score_stream(self, frames: Iterable[Frame]) -> Iterator[tuple[Frame, float, dict | None]]:
        """Live use: (frame, score, explanation) per frame, in order, with the state of :meth:`fit`."""
        ...


class VideoDetector(BaseDetector):
    """A detector that reads the video itself; the model file holds it like any other detector.

    Given only embeddings (``fit(X)`` / ``decision_function(X)``) it should still do something
    sensible (e.g. its whole-frame part), so generic tools keep working.
    """

    reads_video: ClassVar[bool] = True
    #: live sources hand each frame its predecessor (``Frame.previous``) for motion
    needs_previous: ClassVar[bool] = True

    @classmethod
    @abstractmethod
    def video_scorer(cls, ctx: VideoContext, fitted: VideoDetector | None = None) -> VideoScorer:
        """A scorer for ``ctx``: fresh (hyper-parameters from ``ctx.settings``) or holding ``fitted``'s state."""

    @classmethod
    @abstractmethod
    def from_scorer(cls, scorer: Any) -> VideoDetector:
        """The saveable detector of a fitted scorer."""



class StateVideoDetector(VideoDetector):
    """A video detector whose fitted ``state_`` is one object saving itself as ``to_state()`` ->
    (JSON, arrays): the JSON goes under ``meta[state_key]`` beside the detector's own metadata, the
    arrays are the detector's arrays. Subclasses say how to rebuild it (:meth:`_restore_state`)."""

    #: where the state's JSON part sits in the saved detector metadata
    state_key: ClassVar[str] = ""

    def __init__(self, config: dict | None = None):
        self.config = dict(config or {})

    @staticmethod
    def fitted_state(fitted: VideoDetector | None) -> Any:
        """The state a scorer should hold: ``fitted``'s (checked), or None for a fresh scorer."""
        if fitted is None:
            return None
        fitted._check_fitted()
        return fitted.state_

    def get_params(self) -> dict[str, Any]:
        return {"config": self.config}

    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        self._check_fitted()
        state_meta, arrays = self.state_.to_state()  # once: building the arrays is the costly part
        return {**self._meta(), self.state_key: state_meta}, {k: np.asarray(v) for k, v in arrays.items()}

    def _get_arrays(self) -> dict[str, np.ndarray]:
        return self.state_.to_state()[1]

    def _set_arrays(self, arrays: dict[str, np.ndarray]) -> None:  # pragma: no cover - from_state does it
        raise NotImplementedError

    @abstractmethod
    def _restore_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Any:
        """The fitted state rebuilt and validated from its JSON part and the arrays (ValueError if not)."""

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> StateVideoDetector:
        det = cls._from_meta(meta)
        if cls.state_key not in meta:
            raise ValueError(f"{cls.name} model holds no {cls.state_key} state")
        det.state_ = det._restore_state(meta[cls.state_key], arrays)
        return det
