"""StandardScaler + One-Class SVM (rbf) over frame embeddings: the ``ocsvm`` detector.

scikit-learn fits it; scoring uses the saved support vectors with the same formula, so a model
loaded from its JSON + arrays reproduces scikit-learn's decision function without pickle.
"""

from __future__ import annotations

import numpy as np

from .base import BaseDetector, require
from .neighbours import sq_dists


class OneClassSVMDetector(BaseDetector):
    """One-Class SVM on standardised embeddings.

    Args:
        nu: upper bound on the fraction of training frames treated as outliers.
        gamma: rbf width, ``"scale"`` (1 / (D · var)) or a float.

    Example:
        >>> import numpy as np
        >>> X = np.random.default_rng(0).normal(size=(200, 8))
        >>> det = OneClassSVMDetector().fit(X)
        >>> float((det.predict(X) == -1).mean()) < 0.2
        True
    """

    name = "ocsvm"

    def __init__(self, nu: float = 0.1, gamma: str | float = "scale"):
        self.nu = nu
        self.gamma = gamma

    def fit(self, X: np.ndarray) -> OneClassSVMDetector:
        X = self._check_fit_X(X)
        from sklearn.preprocessing import StandardScaler  # here: listing models must not load scikit-learn
        from sklearn.svm import OneClassSVM

        scaler = StandardScaler().fit(X)
        Z = scaler.transform(X)
        svm = OneClassSVM(kernel="rbf", nu=self.nu, gamma=self.gamma).fit(Z)
        self.n_features_in_ = X.shape[1]
        self.mean_ = scaler.mean_.astype(np.float64)
        self.scale_ = scaler.scale_.astype(np.float64)
        self.support_vectors_ = svm.support_vectors_.astype(np.float64)
        self.dual_coef_ = svm.dual_coef_.ravel().astype(np.float64)
        self.intercept_ = float(svm.intercept_[0])
        self.gamma_ = float(svm._gamma)
        self.threshold_ = 0.0
        self._sklearn = (scaler, svm)  # kept for tests that compare with scikit-learn
        return self

    def _decision(self, X: np.ndarray) -> np.ndarray:
        Z = (X - self.mean_) / self.scale_
        sv = self.support_vectors_
        out = np.empty(len(Z))
        sv_sq = (sv**2).sum(1)
        for i in range(0, len(Z), 4096):  # in blocks to bound memory
            d2 = sq_dists(Z[i : i + 4096], sv, sv_sq)
            out[i : i + 4096] = np.exp(-self.gamma_ * d2) @ self.dual_coef_ + self.intercept_
        return out

    def _get_arrays(self) -> dict[str, np.ndarray]:
        return {
            "mean": self.mean_,
            "scale": self.scale_,
            "support_vectors": self.support_vectors_,
            "dual_coef": self.dual_coef_,
            "scalars": np.array([self.intercept_, self.gamma_]),
        }

    def _set_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        d = self.n_features_in_
        self.mean_ = require(arrays, "mean", (d,))
        self.scale_ = require(arrays, "scale", (d,))
        if np.any(self.scale_ <= 0):
            raise ValueError("array 'scale' must be positive")
        self.support_vectors_ = require(arrays, "support_vectors", (-1, d))
        n = len(self.support_vectors_)
        if n == 0:
            raise ValueError("no support vectors")
        self.dual_coef_ = require(arrays, "dual_coef", (n,))
        self.intercept_, self.gamma_ = (float(v) for v in require(arrays, "scalars", (2,)))
        if self.gamma_ <= 0:
            raise ValueError("gamma must be positive")
