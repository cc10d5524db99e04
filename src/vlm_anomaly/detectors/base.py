"""Detector interface in the scikit-learn / PyOD style.

The constructor only stores parameters; ``fit`` learns from normal embeddings and returns ``self``;
fitted state ends in ``_``. Scores follow One-Class SVM's convention everywhere: higher = more
normal, ``> threshold_`` normal, ``< threshold_`` anomalous, with ``threshold_ = 0`` by default.

A detector saves itself as JSON parameters plus named float arrays (:meth:`get_state` /
:meth:`from_state`), so a model file never needs pickle.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from ..errors import EncoderMismatchError, NotFittedError


class BaseDetector(ABC):
    """One-class detector over (N, D) float embeddings."""

    #: short name in the registry and in saved models
    name: ClassVar[str] = ""
    #: False: the pipeline samples and encodes, the detector sees one embedding per frame;
    #: True: a :class:`~vlm_anomaly.detectors.video.VideoDetector` that reads the video itself
    reads_video: ClassVar[bool] = False
    #: live sources hand each frame its predecessor (``Frame.previous``), for motion
    needs_previous: ClassVar[bool] = False
    #: False: the detector embeds nothing (e.g. motion alone); the pipeline then neither loads the
    #: configured encoder nor describes frames with it, and the model records a null encoder
    uses_encoder: ClassVar[bool] = True

    @classmethod
    def encoder_needed(cls, settings: Any) -> bool:
        """Whether fitting with ``settings`` embeds anything (a detector may make it optional)."""
        return cls.uses_encoder

    @classmethod
    def encoder_settings(cls, settings: Any) -> Any:
        """The settings this detector's encoder is built from: the configured one by default; a
        detector may pick its own (e.g. a fast backbone for many small crops a frame)."""
        return settings

    threshold_: float = 0.0

    @abstractmethod
    def fit(self, X: np.ndarray) -> BaseDetector:
        """Learn normality from embeddings of normal frames; returns ``self``."""

    @abstractmethod
    def _decision(self, X: np.ndarray) -> np.ndarray:
        """Raw decision scores of validated input (higher = more normal)."""

    @abstractmethod
    def get_params(self) -> dict[str, Any]:
        """Constructor parameters (JSON-serialisable)."""

    @abstractmethod
    def _get_arrays(self) -> dict[str, np.ndarray]:
        """Fitted state as named numeric arrays."""

    @abstractmethod
    def _set_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        """Restore fitted state from :meth:`_get_arrays`' output (validate shapes)."""

    # -- shared behaviour -------------------------------------------------------------------

    def model_extra(self) -> dict[str, Any]:
        """What the model file should show about this detector (e.g. its calibration), in ``extra``."""
        return {}

    @property
    def is_fitted(self) -> bool:
        return getattr(self, "n_features_in_", None) is not None

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit() first")

    def _check_X(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1:
            X = X[None, :]
        if X.ndim != 2:
            raise EncoderMismatchError(f"expected a 2-D array of embeddings, got shape {X.shape}")
        if self.is_fitted and X.shape[1] != self.n_features_in_:
            raise EncoderMismatchError(
                f"embedding dimension {X.shape[1]} does not match the model's {self.n_features_in_}"
            )
        if not np.all(np.isfinite(X)):
            raise EncoderMismatchError("embeddings contain NaN or infinite values")
        return X

    def _check_fit_X(self, X: np.ndarray, min_samples: int = 2) -> np.ndarray:
        X = self._check_X(X)
        if len(X) < min_samples:
            raise ValueError(f"need at least {min_samples} normal frames to fit, got {len(X)}")
        return X

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Scores (N,) - higher is more normal; compare with ``threshold_``."""
        self._check_fitted()
        X = self._check_X(X)
        if len(X) == 0:
            return np.zeros(0)
        return self._decision(X)

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        return self.decision_function(X)

    def predict(self, X: np.ndarray, threshold: float | None = None) -> np.ndarray:
        """+1 for normal, -1 for anomalous (scikit-learn's convention)."""
        t = self.threshold_ if threshold is None else threshold
        return np.where(self.decision_function(X) >= t, 1, -1)

    def _meta(self) -> dict[str, Any]:
        """The JSON part every saved detector has: name, parameters, fitted scalars."""
        return {
            "name": self.name,
            "params": self.get_params(),
            "n_features_in": int(self.n_features_in_),
            "threshold": float(self.threshold_),
        }

    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(JSON-safe metadata, arrays) describing the fitted detector."""
        self._check_fitted()
        return self._meta(), {k: np.asarray(v) for k, v in self._get_arrays().items()}

    @classmethod
    def _from_meta(cls, meta: dict[str, Any]) -> BaseDetector:
        """A detector with the saved parameters and fitted scalars; subclasses then restore arrays."""
        det = cls(**meta.get("params", {}))
        det.n_features_in_ = int(meta["n_features_in"])
        det.threshold_ = float(meta.get("threshold", 0.0))
        return det

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> BaseDetector:
        det = cls._from_meta(meta)
        det._set_arrays(arrays)
        return det


def require(arrays: dict[str, np.ndarray], name: str, shape: tuple, *, finite: bool = True) -> np.ndarray:
    """Fetch a saved array, checking its shape (``-1`` = any) and values. Raises ValueError."""
    if name not in arrays:
        raise ValueError(f"array {name!r} missing")
    a = np.asarray(arrays[name], dtype=np.float64)
    if a.ndim != len(shape) or any(s != -1 and s != d for s, d in zip(shape, a.shape)):
        raise ValueError(f"array {name!r} has shape {a.shape}, expected {shape}")
    if finite and not np.all(np.isfinite(a)):
        raise ValueError(f"array {name!r} holds NaN or infinite values")
    return a
