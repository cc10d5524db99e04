"""Gaussian density of the normal embeddings: Mahalanobis distance with Ledoit-Wolf shrinkage.

Why: a single Gaussian fitted to pretrained features is a strong, fast one-class baseline
(Rippel et al., "Modeling the Distribution of Normal Data in Pre-Trained Deep Features"). With
fewer frames than dimensions the sample covariance is singular; Ledoit-Wolf shrinkage picks the
shrinkage from the training data alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import BaseDetector, require


class GaussianDetector(BaseDetector):
    """Score = threshold radius - Mahalanobis distance; about ``nu`` of training frames fall below 0.

    Example:
        >>> X = np.random.default_rng(0).normal(size=(300, 8))
        >>> det = GaussianDetector().fit(X)
        >>> round(float((det.decision_function(X) < 0).mean()), 2)
        0.1
    """

    name = "gaussian"

    def __init__(self, nu: float = 0.1):
        self.nu = float(nu)

    def get_params(self) -> dict[str, Any]:
        return {"nu": self.nu}

    def fit(self, X: np.ndarray) -> GaussianDetector:
        X = self._check_fit_X(X)
        from sklearn.covariance import LedoitWolf  # here: listing models must not load scikit-learn

        lw = LedoitWolf().fit(X)
        self.mean_ = lw.location_.astype(np.float64)
        self.precision_ = np.asarray(lw.precision_, np.float64)
        self.shrinkage_ = float(lw.shrinkage_)
        self.n_features_in_ = X.shape[1]
        d = self._mahalanobis(X)
        self.radius_ = float(np.quantile(d, 1.0 - self.nu))
        self.train_scores_ = self.radius_ - d
        self.threshold_ = 0.0
        return self

    def _mahalanobis(self, X: np.ndarray) -> np.ndarray:
        Z = X - self.mean_
        return np.sqrt(np.maximum(np.einsum("ij,ij->i", Z @ self.precision_, Z), 0.0))

    def _decision(self, X: np.ndarray) -> np.ndarray:
        return self.radius_ - self._mahalanobis(X)

    def _get_arrays(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean_, "precision": self.precision_,
                "scalars": np.array([self.radius_, self.shrinkage_])}

    def _set_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        d = self.n_features_in_
        self.mean_ = require(arrays, "mean", (d,))
        self.precision_ = require(arrays, "precision", (d, d))
        self.radius_, self.shrinkage_ = (float(v) for v in require(arrays, "scalars", (2,)))
