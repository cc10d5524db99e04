"""PatchCore-style detector: per-cell nearest-neighbour distance to normal cells, worst cell wins.

Input rows are frames encoded as ``groups`` cell descriptors concatenated (the ``tiles``
features, see :mod:`vlm_anomaly.encoders.tiles`). For a fixed camera, each cell is compared
with the memory bank of the *same* cell in the training frames: a cart on the walkway is far from
every normal walkway cell even when it would resemble some other part of the scene.

Each cell's distance is standardised with held-out training distances of that cell (its own
scale: a busy walkway varies more than a wall), the frame score is the worst cell, and the
threshold puts about ``nu`` of held-out training frames below 0. The bank keeps at most
``max_bank`` training frames (random subset, seeded) to bound memory and time.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import CannotLearnError
from .base import BaseDetector, require
from .neighbours import held_out_rows, sq_dists, time_chunks


class PatchKNNDetector(BaseDetector):
    """Worst-cell nearest-neighbour distance over a grid of cells; higher score = more normal.

    Args:
        groups: cells per frame (set from the encoder; 1 = the whole frame).
        nu: fraction of held-out training frames below the threshold.
        max_bank: most training frames kept in the memory bank.
        exclude: training rows on either side of a calibration row that are skipped as neighbours.
        max_calibration: most training rows used as held-out calibration queries.

    Example:
        >>> X = np.random.default_rng(0).normal(size=(200, 4 * 3))  # 4 cells of 3 values
        >>> det = PatchKNNDetector(groups=4).fit(X)
        >>> Y = X[:2].copy(); Y[1, :3] += 8  # one cell of the second frame changes
        >>> s = det.decision_function(Y); bool(s[1] < 0 and s[1] < s[0])
        True
    """

    name = "patch-knn"

    def __init__(self, groups: int = 1, nu: float = 0.1, max_bank: int = 2048, exclude: int = 12,
                 max_calibration: int = 1024, seed: int = 0):
        self.groups = int(groups)
        self.nu = float(nu)
        self.max_bank = int(max_bank)
        self.exclude = int(exclude)
        self.max_calibration = int(max_calibration)
        self.seed = int(seed)
        if self.groups < 1:
            raise ValueError("groups must be at least 1")

    def _cells(self, X: np.ndarray) -> np.ndarray:
        if X.shape[1] % self.groups:
            raise ValueError(f"embedding dimension {X.shape[1]} is not a multiple of {self.groups} cells")
        return X.reshape(len(X), self.groups, -1).astype(np.float32)

    def fit(self, X: np.ndarray) -> PatchKNNDetector:
        X = self._check_fit_X(X, min_samples=3)
        cells = self._cells(X)
        n, g, _ = cells.shape
        rows = held_out_rows(n, self.max_calibration, self.seed)
        exclude = self.exclude if n - (2 * self.exclude + 1) >= 1 else 0
        mask = np.abs(rows[:, None] - np.arange(n)[None, :]) <= exclude
        held = np.empty((len(rows), g))
        for j in range(g):
            B = cells[:, j]
            d2 = sq_dists(cells[rows, j], B)
            d2[mask] = np.inf
            held[:, j] = np.sqrt(d2.min(1))
        keep = held_out_rows(n, self.max_bank, self.seed + 1)
        self.bank_ = np.ascontiguousarray(cells[keep].transpose(1, 0, 2))  # (groups, bank, channels)
        # kept in the model: footage marked normal later is calibrated with these, without the videos
        self.held_, self.held_tag_ = held, np.zeros(len(held), np.int64)
        self.bank_tag_ = np.zeros(self.bank_.shape[1], np.int64)
        self.normal_: dict[str, int] = {}
        self._calibrate()
        self.n_features_in_ = X.shape[1]
        self.threshold_ = 0.0
        return self

    def _calibrate(self) -> None:
        """Per-cell scales and the frame threshold from the held-out (rows, groups) cell distances."""
        held = self.held_
        mu, sd = held.mean(0), held.std(0)
        # floor: a cell that never changes in training must not turn noise into alarms
        self.mu_, self.sd_ = mu, np.maximum(sd, max(float(np.median(sd)), 1e-6))
        worst = ((held - self.mu_) / self.sd_).max(1)
        self.radius_ = float(np.quantile(worst, 1.0 - self.nu))

    def add_rows(self, X: np.ndarray, key: str) -> None:
        """Learn frames marked normal after training: they join the memory bank, and their
        distances - each measured against the bank and the footage's other time chunks (a frame is
        never its own neighbour) - join the held-out distances the threshold comes from."""
        self._check_fitted()
        if getattr(self, "held_", None) is None:
            raise CannotLearnError("this patch-knn model was saved before models kept their calibration "
                                   "distances: train it again once to let it learn footage as normal")
        if key in self.normal_:
            raise ValueError(f"footage {key!r} was already added")
        cells = self._cells(self._check_X(X))
        n = len(cells)
        chunk = time_chunks(n)
        held = np.empty((n, self.groups))
        for j in range(self.groups):
            d2 = sq_dists(cells[:, j], self.bank_[j]).min(1)
            if n > 1:
                own = sq_dists(cells[:, j], cells[:, j])
                own[chunk[:, None] == chunk[None, :]] = np.inf
                d2 = np.minimum(d2, own.min(1))
            held[:, j] = np.sqrt(d2)
        tag = int(max([0, *self.normal_.values()])) + 1
        self.normal_[key] = tag
        self.bank_ = np.ascontiguousarray(np.concatenate([self.bank_, cells.transpose(1, 0, 2)], 1))
        self.bank_tag_ = np.concatenate([self.bank_tag_, np.full(n, tag)])
        self.held_ = np.concatenate([self.held_, held])
        self.held_tag_ = np.concatenate([self.held_tag_, np.full(n, tag)])
        self._calibrate()

    def remove_rows(self, key: str) -> None:
        """Forget frames added by :meth:`add_rows`; the model scores as before they were added."""
        tag = self.normal_.pop(key)
        keep = self.bank_tag_ != tag
        self.bank_, self.bank_tag_ = np.ascontiguousarray(self.bank_[:, keep]), self.bank_tag_[keep]
        keep = self.held_tag_ != tag
        self.held_, self.held_tag_ = self.held_[keep], self.held_tag_[keep]
        self._calibrate()

    def _meta(self) -> dict[str, Any]:
        return {**super()._meta(), "normal": dict(getattr(self, "normal_", {}))}

    @classmethod
    def _from_meta(cls, meta: dict[str, Any]) -> PatchKNNDetector:
        det = super()._from_meta(meta)
        normal = meta.get("normal", {})
        if not isinstance(normal, dict) or not all(isinstance(v, int) and v > 0 for v in normal.values()):
            raise ValueError("the footage marked normal is malformed")
        det.normal_ = {str(k): int(v) for k, v in normal.items()}
        return det

    def cell_scores(self, X: np.ndarray) -> np.ndarray:
        """(N, groups) standardised distance of every cell (higher = more unusual), for heat maps."""
        self._check_fitted()
        cells = self._cells(self._check_X(X))
        out = np.empty(cells.shape[:2])
        for j in range(self.groups):
            B = self.bank_[j]
            out[:, j] = np.sqrt(sq_dists(cells[:, j], B).min(1))
        return (out - self.mu_) / self.sd_

    def _decision(self, X: np.ndarray) -> np.ndarray:
        return self.radius_ - self.cell_scores(X).max(1)

    def _get_arrays(self) -> dict[str, np.ndarray]:
        out = {"bank": self.bank_, "mu": self.mu_, "sd": self.sd_, "radius": np.array([self.radius_])}
        if getattr(self, "held_", None) is not None:
            out.update(held=self.held_, held_tag=self.held_tag_, bank_tag=self.bank_tag_)
        return out

    def _set_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        g = self.groups
        if self.n_features_in_ % g:
            raise ValueError("feature count is not a multiple of the cell count")
        self.bank_ = require(arrays, "bank", (g, -1, self.n_features_in_ // g)).astype(np.float32)
        if self.bank_.shape[1] == 0:
            raise ValueError("empty memory bank")
        self.mu_ = require(arrays, "mu", (g,))
        self.sd_ = require(arrays, "sd", (g,))
        if np.any(self.sd_ <= 0):
            raise ValueError("array 'sd' must be positive")
        (self.radius_,) = (float(v) for v in require(arrays, "radius", (1,)))
        self.held_ = self.held_tag_ = None
        self.bank_tag_ = np.zeros(self.bank_.shape[1], np.int64)
        if "held" in arrays:  # models saved before they kept their calibration distances have none
            self.held_ = require(arrays, "held", (-1, g)).astype(np.float64)
            self.held_tag_ = require(arrays, "held_tag", (len(self.held_),)).astype(np.int64)
            self.bank_tag_ = require(arrays, "bank_tag", (self.bank_.shape[1],)).astype(np.int64)
            if len(self.held_) < 2:
                raise ValueError("too few calibration distances")
        if not hasattr(self, "normal_"):
            self.normal_ = {}
