"""k-nearest-neighbour distance to the normal training embeddings (cosine).

Why: it needs no distributional assumption and no tuning beyond ``k``: a frame is as normal as
its closest normal frames. The threshold is calibrated on held-out training distances so about
``nu`` of unseen normal frames would fall below it, and the decision is shifted so 0 = threshold.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import BaseDetector, require
from .neighbours import held_out_knn_dist, held_out_rows, knn_mean_dist


def _unit(X: np.ndarray) -> np.ndarray:
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)


class KNNDetector(BaseDetector):
    """Mean cosine distance to the ``k`` nearest training embeddings; higher score = more normal.

    Args:
        k: neighbours averaged.
        nu: fraction of held-out normal frames allowed below the threshold.
        exclude: training rows on either side of a calibration row that are not its neighbours
            (consecutive video frames are near-copies).
        max_calibration: most training rows used to calibrate the threshold.

    Example:
        >>> X = np.random.default_rng(0).normal(size=(300, 8))
        >>> det = KNNDetector(k=3).fit(X)
        >>> bool(det.decision_function(X[:1] * 50)[0] < 0 < np.median(det.decision_function(X)))
        True
    """

    name = "knn"

    def __init__(self, k: int = 5, nu: float = 0.1, exclude: int = 12, max_calibration: int = 4096):
        self.k = int(k)
        self.nu = float(nu)
        self.exclude = int(exclude)
        self.max_calibration = int(max_calibration)

    def get_params(self) -> dict[str, Any]:
        return {"k": self.k, "nu": self.nu, "exclude": self.exclude, "max_calibration": self.max_calibration}

    def fit(self, X: np.ndarray) -> KNNDetector:
        X = self._check_fit_X(X, min_samples=max(2, self.k + 1))
        U = _unit(X).astype(np.float32).astype(np.float64)  # the precision it is saved with
        # cosine distance = |u - v|^2 / 2 for unit vectors
        rows = held_out_rows(len(U), self.max_calibration)
        held = held_out_knn_dist(U, rows, self.k, self.exclude, squared=True) / 2.0
        self.bank_ = U
        self.radius_ = float(np.quantile(held, 1.0 - self.nu))
        self.train_rows_ = rows
        self.train_scores_ = self.radius_ - held
        self.n_features_in_ = X.shape[1]
        self.threshold_ = 0.0
        return self

    def _decision(self, X: np.ndarray) -> np.ndarray:
        d = knn_mean_dist(_unit(X), self.bank_, self.k, squared=True) / 2.0
        return self.radius_ - d

    def _get_arrays(self) -> dict[str, np.ndarray]:
        return {"bank": self.bank_.astype(np.float32), "radius": np.array([self.radius_])}

    def _set_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.bank_ = require(arrays, "bank", (-1, self.n_features_in_))
        if len(self.bank_) == 0:
            raise ValueError("empty memory bank")
        (self.radius_,) = (float(v) for v in require(arrays, "radius", (1,)))
