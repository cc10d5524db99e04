"""Isolation Forest, stored as plain arrays and scored from them (no pickle).

scikit-learn grows the trees; their structure (children, split feature, split value, and each
leaf's path-length term) is copied into flat arrays, and scoring walks those arrays in NumPy with
scikit-learn's formula, so a loaded model reproduces ``IsolationForest.decision_function``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import BaseDetector, require


def _average_path_length(n: np.ndarray) -> np.ndarray:
    """c(n): mean path length of an unsuccessful BST search (scikit-learn's definition)."""
    n = np.asarray(n, dtype=np.float64)
    out = np.zeros_like(n)
    out[n == 2] = 1.0
    big = n > 2
    out[big] = 2.0 * (np.log(n[big] - 1.0) + np.euler_gamma) - 2.0 * (n[big] - 1.0) / n[big]
    return out


class IsolationForestDetector(BaseDetector):
    """Isolation Forest; score = scikit-learn's ``decision_function`` (< 0 = anomalous).

    Args:
        n_estimators: trees.
        nu: expected fraction of training frames below the threshold (``contamination``).
        seed: random state, fixed so that refits are reproducible.

    Example:
        >>> X = np.random.default_rng(0).normal(size=(300, 8))
        >>> det = IsolationForestDetector(n_estimators=50).fit(X)
        >>> bool(det.decision_function(X[:1] + 10)[0] < 0)
        True
    """

    name = "iforest"

    def __init__(self, n_estimators: int = 200, nu: float = 0.1, seed: int = 0):
        self.n_estimators = int(n_estimators)
        self.nu = float(nu)
        self.seed = int(seed)

    def get_params(self) -> dict[str, Any]:
        return {"n_estimators": self.n_estimators, "nu": self.nu, "seed": self.seed}

    def fit(self, X: np.ndarray) -> IsolationForestDetector:
        X = self._check_fit_X(X)
        from sklearn.ensemble import IsolationForest  # here: listing models must not load scikit-learn

        forest = IsolationForest(n_estimators=self.n_estimators, contamination=self.nu,
                                 random_state=self.seed).fit(X)
        left, right, feat, thr, value, roots = [], [], [], [], [], []
        offset = 0
        for tree, feats in zip(forest.estimators_, forest.estimators_features_):
            t = tree.tree_
            n = t.node_count
            is_leaf = t.children_left == -1
            depth = np.zeros(n)
            for i in range(n):  # parents precede children in scikit-learn's node order
                if not is_leaf[i]:
                    depth[t.children_left[i]] = depth[i] + 1
                    depth[t.children_right[i]] = depth[i] + 1
            roots.append(offset)
            left.append(np.where(is_leaf, -1, t.children_left + offset))
            right.append(np.where(is_leaf, -1, t.children_right + offset))
            feat.append(np.where(is_leaf, 0, np.asarray(feats)[np.maximum(t.feature, 0)]))
            thr.append(t.threshold)
            value.append(np.where(is_leaf, depth + _average_path_length(t.n_node_samples), 0.0))
            offset += n
        self.left_ = np.concatenate(left).astype(np.int64)
        self.right_ = np.concatenate(right).astype(np.int64)
        self.feature_ = np.concatenate(feat).astype(np.int64)
        self.split_ = np.concatenate(thr).astype(np.float64)
        self.leaf_value_ = np.concatenate(value).astype(np.float64)
        self.roots_ = np.asarray(roots, np.int64)
        self.max_samples_ = int(forest.max_samples_)
        self.offset_ = float(forest.offset_)
        self.n_features_in_ = X.shape[1]
        self.threshold_ = 0.0
        self._sklearn = forest  # kept for tests that compare with scikit-learn
        return self

    def _decision(self, X: np.ndarray) -> np.ndarray:
        Xf = X.astype(np.float32).astype(np.float64)  # scikit-learn's trees split float32 values
        rows = np.arange(len(Xf))
        depth_sum = np.zeros(len(Xf))
        for root in self.roots_:
            node = np.full(len(Xf), root)
            while True:
                inner = self.left_[node] >= 0
                if not inner.any():
                    break
                ni = node[inner]
                go_left = Xf[rows[inner], self.feature_[ni]] <= self.split_[ni]
                node[inner] = np.where(go_left, self.left_[ni], self.right_[ni])
            depth_sum += self.leaf_value_[node]
        c = _average_path_length(np.array([self.max_samples_]))[0]
        scores = -(2.0 ** (-(depth_sum / len(self.roots_)) / c))
        return scores - self.offset_

    def _get_arrays(self) -> dict[str, np.ndarray]:
        return {"left": self.left_, "right": self.right_, "feature": self.feature_, "split": self.split_,
                "leaf_value": self.leaf_value_, "roots": self.roots_,
                "scalars": np.array([self.max_samples_, self.offset_], np.float64)}

    def _set_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        n = len(require(arrays, "split", (-1,), finite=False))
        ints = {}
        for key in ("left", "right", "feature"):
            a = require(arrays, key, (n,))
            if not np.all(a == np.round(a)):
                raise ValueError(f"array {key!r} must hold integers")
            ints[key] = a.astype(np.int64)
        if np.any((ints["left"] < -1) | (ints["left"] >= n) | (ints["right"] < -1) | (ints["right"] >= n)):
            raise ValueError("tree child index out of range")
        if np.any((ints["feature"] < 0) | (ints["feature"] >= self.n_features_in_)):
            raise ValueError("tree split feature out of range")
        inner = ints["left"] >= 0
        parents = np.flatnonzero(inner)
        if np.any(ints["left"][inner] <= parents) or np.any(ints["right"][inner] <= parents):
            raise ValueError("tree children must follow their parent (no cycles)")
        roots = require(arrays, "roots", (-1,)).astype(np.int64)
        if len(roots) == 0 or np.any((roots < 0) | (roots >= n)):
            raise ValueError("tree roots out of range")
        self.left_, self.right_, self.feature_ = ints["left"], ints["right"], ints["feature"]
        self.split_ = require(arrays, "split", (n,), finite=False)
        self.leaf_value_ = require(arrays, "leaf_value", (n,))
        self.roots_ = roots
        max_samples, self.offset_ = (float(v) for v in require(arrays, "scalars", (2,)))
        self.max_samples_ = int(max_samples)
        if self.max_samples_ < 1:
            raise ValueError("max_samples must be positive")
