"""Detectors that read the video itself (motion, neighbouring frames): they make their own features.

Frame-embedding detectors get one embedding per sampled frame from the pipeline; a video detector
needs more - optical flow against the previous frame, object crops, a window of neighbouring frames
- so its scorer decodes the source itself. Both go through the same contract
(:mod:`~vlm_anomaly.detectors.contract`); nothing outside this package tells them apart.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

import numpy as np

from .contract import Detector


class VideoDetector(Detector):
    """A detector whose scorer (:meth:`~.contract.Detector.scorer_for`) reads the video; the model
    file holds it like any other detector."""


class StateVideoDetector(VideoDetector):
    """A video detector whose fitted ``state_`` is one object saving itself as ``to_state()`` ->
    (JSON, arrays): the JSON goes under ``meta[state_key]`` beside the detector's own metadata, the
    arrays are the detector's arrays. Subclasses say how to rebuild it (:meth:`_restore_state`)."""

    #: where the state's JSON part sits in the saved detector metadata
    state_key: ClassVar[str] = ""

    def __init__(self, config: dict | None = None):
        self.config = dict(config or {})

    @staticmethod
    def fitted_state(fitted: Detector | None) -> Any:
        """The state a scorer should hold: ``fitted``'s (checked), or None for a fresh scorer."""
        if fitted is None:
            return None
        fitted._check_fitted()
        return fitted.state_

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
