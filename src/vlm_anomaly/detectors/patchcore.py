"""PatchCore proper: one memory bank of normal cells from *every* position of the training frames.

Why a second variant next to ``patch-knn``: the same-cell bank of ``patch-knn`` treats "a normal
thing in a place where training never saw it" (a pedestrian on the lawn) as anomalous. Here a cell
is compared with normal cells from anywhere in the view, so only *what* is seen counts, not
*where* (Roth et al., "Towards Total Recall in Industrial Anomaly Detection"). The bank is a seeded
random subset of ``bank_size`` training cells; calibration and frame scoring are those of
:class:`~vlm_anomaly.detectors.patch_knn.PatchKNNDetector` (held-out per-position scales, worst cell).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import require
from .neighbours import held_out_rows, sq_dists
from .patch_knn import PatchKNNDetector


class PatchCoreDetector(PatchKNNDetector):
    """Worst-cell distance to a position-free bank of normal cells; higher score = more normal.

    Example:
        >>> X = np.random.default_rng(0).normal(size=(200, 4 * 3))  # 4 cells of 3 values
        >>> det = PatchCoreDetector(groups=4, bank_size=400).fit(X)
        >>> Y = X[:2].copy(); Y[1, :3] += 8
        >>> s = det.decision_function(Y); bool(s[1] < 0 and s[1] < s[0])
        True
    """

    name = "patchcore"

    def __init__(self, groups: int = 1, nu: float = 0.1, bank_size: int = 16384, exclude: int = 12,
                 max_calibration: int = 256, seed: int = 0):
        super().__init__(groups=groups, nu=nu, exclude=exclude, max_calibration=max_calibration, seed=seed)
        self.bank_size = int(bank_size)

    def get_params(self) -> dict[str, Any]:
        return {"groups": self.groups, "nu": self.nu, "bank_size": self.bank_size, "exclude": self.exclude,
                "max_calibration": self.max_calibration, "seed": self.seed}

    def _nearest(self, cells: np.ndarray, query_rows: np.ndarray | None = None) -> np.ndarray:
        """(N, groups) distance of each cell to its nearest bank cell (skipping bank cells of rows
        within ``exclude`` of the query's row when ``query_rows`` is given)."""
        n, g, c = cells.shape
        flat = cells.reshape(n * g, c)
        b_sq = (self.bank_**2).sum(1)
        out = np.empty(n * g)
        step = max(g, (32_000_000 // max(1, len(self.bank_))) // g * g)
        for i in range(0, n * g, step):
            d2 = sq_dists(flat[i : i + step], self.bank_, b_sq)
            if query_rows is not None:
                rows = query_rows[np.arange(i, min(i + step, n * g)) // g]
                d2[np.abs(rows[:, None] - self.bank_rows_[None, :]) <= self._exclude] = np.inf
            out[i : i + step] = np.sqrt(d2.min(1))
        return out.reshape(n, g)

    def fit(self, X: np.ndarray) -> PatchCoreDetector:
        X = self._check_fit_X(X, min_samples=3)
        cells = self._cells(X)
        n, g, c = cells.shape
        pick = held_out_rows(n * g, self.bank_size, self.seed + 1)
        self.bank_ = np.ascontiguousarray(cells.reshape(n * g, c)[pick])
        self.bank_rows_ = pick // g
        self._exclude = self.exclude if n - (2 * self.exclude + 1) >= 1 else 0
        rows = held_out_rows(n, self.max_calibration, self.seed)
        return self._calibrate(self._nearest(cells[rows], rows), rows, X.shape[1])

    def cell_scores(self, X: np.ndarray) -> np.ndarray:
        self._check_fitted()
        return (self._nearest(self._cells(self._check_X(X))) - self.mu_) / self.sd_

    def _load_bank(self, arrays: dict[str, np.ndarray], channels: int) -> np.ndarray:
        bank = require(arrays, "bank", (-1, channels)).astype(np.float32)
        if len(bank) == 0:
            raise ValueError("empty memory bank")
        return bank
