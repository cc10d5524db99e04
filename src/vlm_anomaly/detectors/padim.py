"""PaDiM-style detector: a Gaussian per grid cell, Mahalanobis distance, worst cell wins.

Why: on whole-frame embeddings the Gaussian beat nearest neighbours; PaDiM (Defard et al.,
"PaDiM: a Patch Distribution Modeling Framework") applies the same model to every cell of a
fixed camera's grid. Each cell's covariance uses Ledoit-Wolf shrinkage (chosen from the training
data); cell distances are standardised with their training statistics, as in ``patch-knn``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import BaseDetector, require


class PaDiMDetector(BaseDetector):
    """Worst-cell Mahalanobis distance over a grid of cells; higher score = more normal.

    Example:
        >>> X = np.random.default_rng(0).normal(size=(300, 4 * 3))  # 4 cells of 3 values
        >>> det = PaDiMDetector(groups=4).fit(X)
        >>> Y = X[:2].copy(); Y[1, :3] += 8
        >>> s = det.decision_function(Y); bool(s[1] < 0 and s[1] < s[0])
        True
    """

    name = "padim"

    def __init__(self, groups: int = 1, nu: float = 0.1):
        self.groups = int(groups)
        self.nu = float(nu)
        if self.groups < 1:
            raise ValueError("groups must be at least 1")

    def get_params(self) -> dict[str, Any]:
        return {"groups": self.groups, "nu": self.nu}

    def _cells(self, X: np.ndarray) -> np.ndarray:
        if X.shape[1] % self.groups:
            raise ValueError(f"embedding dimension {X.shape[1]} is not a multiple of {self.groups} cells")
        return X.reshape(len(X), self.groups, -1)

    def fit(self, X: np.ndarray) -> PaDiMDetector:
        from sklearn.covariance import LedoitWolf  # here: listing models must not load scikit-learn

        X = self._check_fit_X(X, min_samples=3)
        cells = self._cells(X)
        g, c = cells.shape[1], cells.shape[2]
        self.mean_ = np.empty((g, c))
        self.precision_ = np.empty((g, c, c))
        for j in range(g):
            lw = LedoitWolf().fit(cells[:, j])
            self.mean_[j] = lw.location_
            self.precision_[j] = lw.precision_
        self.n_features_in_ = X.shape[1]
        self.mu_ = np.zeros(g)
        self.sd_ = np.ones(g)
        d = self._raw_cells(cells)
        mu, sd = d.mean(0), d.std(0)
        self.mu_, self.sd_ = mu, np.maximum(sd, max(float(np.median(sd)), 1e-6))
        worst = ((d - self.mu_) / self.sd_).max(1)
        self.radius_ = float(np.quantile(worst, 1.0 - self.nu))
        self.train_scores_ = self.radius_ - worst
        self.threshold_ = 0.0
        return self

    def _raw_cells(self, cells: np.ndarray) -> np.ndarray:
        out = np.empty(cells.shape[:2])
        for j in range(self.groups):
            Z = cells[:, j] - self.mean_[j]
            out[:, j] = np.sqrt(np.maximum(np.einsum("ij,ij->i", Z @ self.precision_[j], Z), 0.0))
        return out

    def cell_scores(self, X: np.ndarray) -> np.ndarray:
        """(N, groups) standardised Mahalanobis distance of every cell (higher = more unusual)."""
        self._check_fitted()
        return (self._raw_cells(self._cells(self._check_X(X))) - self.mu_) / self.sd_

    def _decision(self, X: np.ndarray) -> np.ndarray:
        return self.radius_ - self.cell_scores(X).max(1)

    def _get_arrays(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean_, "precision": self.precision_, "mu": self.mu_, "sd": self.sd_,
                "radius": np.array([self.radius_])}

    def _set_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        g = self.groups
        if self.n_features_in_ % g:
            raise ValueError("feature count is not a multiple of the cell count")
        c = self.n_features_in_ // g
        self.mean_ = require(arrays, "mean", (g, c))
        self.precision_ = require(arrays, "precision", (g, c, c))
        self.mu_ = require(arrays, "mu", (g,))
        self.sd_ = require(arrays, "sd", (g,))
        if np.any(self.sd_ <= 0):
            raise ValueError("array 'sd' must be positive")
        (self.radius_,) = (float(v) for v in require(arrays, "radius", (1,)))
