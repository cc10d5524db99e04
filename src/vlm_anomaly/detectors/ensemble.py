"""Ensemble: the mean of several detectors' scores, each standardised on its training scores.

Why: the detectors fail differently (kNN is local, the Gaussian global, the forest axis-aligned);
scores on different scales are made comparable with statistics of the training data only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import BaseDetector, require
from .registry import create_detector, get_detector_class


class EnsembleDetector(BaseDetector):
    """Mean of member z-scores; 0 = the ``nu`` quantile of the training ensemble scores.

    Example:
        >>> X = np.random.default_rng(0).normal(size=(300, 8))
        >>> det = EnsembleDetector(members=("knn", "gaussian")).fit(X)
        >>> bool(det.decision_function(X[:1] * 20)[0] < 0)
        True
    """

    name = "ensemble"

    def __init__(self, members: tuple[str, ...] | list[str] = ("knn", "gaussian"), nu: float = 0.1, k: int = 5):
        self.members = tuple(str(m) for m in members)
        self.nu = float(nu)
        self.k = int(k)
        if not self.members or self.name in self.members:
            raise ValueError("an ensemble needs one or more other detectors as members")

    def get_params(self) -> dict[str, Any]:
        return {"members": list(self.members), "nu": self.nu, "k": self.k}

    def fit(self, X: np.ndarray) -> EnsembleDetector:
        X = self._check_fit_X(X)
        self.detectors_: list[BaseDetector] = []
        stats, train = [], []
        common = np.arange(len(X))
        for m in self.members:
            det = create_detector(m, nu=self.nu, k=self.k).fit(X)
            s = getattr(det, "train_scores_", None)
            rows = getattr(det, "train_rows_", None)
            if s is None:
                s, rows = det.decision_function(X), None
            rows = np.arange(len(X)) if rows is None else np.asarray(rows)
            sd = float(np.std(s))
            stats.append((float(np.mean(s)), sd if sd > 0 else 1.0))
            self.detectors_.append(det)
            train.append(dict(zip(rows.tolist(), np.asarray(s).tolist())))
            common = np.intersect1d(common, rows)
        self.stats_ = np.asarray(stats, np.float64)
        self.n_features_in_ = X.shape[1]
        # members may calibrate on different subsets of rows: the shift uses the rows they share
        z = np.mean([[(t[r] - m) / sd for r in common.tolist()] for t, (m, sd) in zip(train, self.stats_)],
                    axis=0)
        self.shift_ = float(np.quantile(z, self.nu))
        self.threshold_ = 0.0
        return self

    def _decision(self, X: np.ndarray) -> np.ndarray:
        z = [(d.decision_function(X) - m) / sd for d, (m, sd) in zip(self.detectors_, self.stats_)]
        return np.mean(z, axis=0) - self.shift_

    def _get_arrays(self) -> dict[str, np.ndarray]:
        out = {"stats": self.stats_, "shift": np.array([self.shift_])}
        for i, d in enumerate(self.detectors_):
            _, arrays = d.get_state()
            out.update({f"m{i}.{k}": v for k, v in arrays.items()})
        return out

    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta, arrays = super().get_state()
        meta["member_states"] = [d.get_state()[0] for d in self.detectors_]
        return meta, arrays

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> EnsembleDetector:
        det = cls._from_meta(meta)
        det._member_metas = list(meta.get("member_states", []))
        det._set_arrays(arrays)
        return det

    def _set_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        metas = getattr(self, "_member_metas", [])
        if len(metas) != len(self.members):
            raise ValueError("ensemble member states do not match its members")
        self.stats_ = require(arrays, "stats", (len(self.members), 2))
        (self.shift_,) = (float(v) for v in require(arrays, "shift", (1,)))
        self.detectors_ = []
        for i, (name, meta) in enumerate(zip(self.members, metas)):
            if meta.get("name") != name or int(meta.get("n_features_in", -1)) != self.n_features_in_:
                raise ValueError(f"ensemble member {i} state does not match {name!r}")
            sub = {k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith(f"m{i}.")}
            self.detectors_.append(get_detector_class(name).from_state(meta, sub))
