"""k-NN distances and calibration on normal data alone, shared by every motion attribute.

Why k-NN: it needs no training beyond storing normal examples, works in any feature space and
explains itself (the nearest normal example *is* the explanation). Why held-aside calibration:
distances of different attributes live on different scales; each is turned into a robust z-score
using distances of normal frames measured against a bank that does not contain their own clip,
so the scale reflects how far *new* normal data falls, not the zero distance of a memorised frame.
(Moved here from the former ``attributes.density`` when that package went away.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..smoothing import moving_average


def knn(bank: np.ndarray, X: np.ndarray, k: int, *, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distances (n, k) to the ``k`` nearest bank rows, ascending, and their indices."""
    bank = np.asarray(bank, np.float32)
    X = np.asarray(X, np.float32)
    n = len(X)
    k = max(1, min(k, len(bank)))
    if n == 0 or len(bank) == 0:
        return np.zeros((n, k), np.float32), np.zeros((n, k), np.int64)
    b2 = (bank**2).sum(1)
    dist = np.empty((n, k), np.float32)
    idx = np.empty((n, k), np.int64)
    for i in range(0, n, chunk):
        x = X[i : i + chunk]
        d2 = (x**2).sum(1)[:, None] + b2[None, :] - 2.0 * x @ bank.T
        part = np.argpartition(d2, k - 1, axis=1)[:, :k] if k < len(bank) else np.tile(
            np.arange(len(bank)), (len(x), 1))
        pd = np.take_along_axis(d2, part, axis=1)
        order = np.argsort(pd, axis=1)
        idx[i : i + chunk] = np.take_along_axis(part, order, axis=1)
        dist[i : i + chunk] = np.sqrt(np.maximum(np.take_along_axis(pd, order, axis=1), 0.0))
    return dist, idx


def knn_score(bank: np.ndarray, X: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean distance to the k nearest normal examples (n,), and the index of the nearest (n,)."""
    d, i = knn(bank, X, k)
    return d.mean(1), i[:, 0]


def leave_one_group_out(groups: np.ndarray, value: Callable[[np.ndarray], np.ndarray], n: int) -> np.ndarray:
    """Per-frame held-out values: ``value(g_mask)`` gives the values of the frames of group ``g``
    (in frame order) measured against what was learnt from every other group."""
    out = np.zeros(n)
    for g in np.unique(groups):
        sel = groups == g
        out[sel] = value(sel)
    return out


@dataclass
class RobustZ:
    """z = (value - median) / scale, with the scale from the interquartile range (std as fallback).

    ``high`` is the 99th percentile of the calibration z-values: above it an attribute "fires".
    """

    median: float
    scale: float
    high: float

    @classmethod
    def fit(cls, values: np.ndarray, quantile: float = 0.99) -> RobustZ:
        v = np.asarray(values, np.float64)
        v = v[np.isfinite(v)]
        if len(v) == 0:
            return cls(0.0, 1.0, 3.0)
        med = float(np.median(v))
        q1, q3 = np.percentile(v, [25, 75])
        scale = float((q3 - q1) / 1.349)
        if not scale > 1e-9:
            scale = float(v.std()) or 1.0
        scale = max(scale, 1e-6)
        z = (v - med) / scale
        return cls(med, scale, float(np.quantile(z, quantile)))

    def __call__(self, values: np.ndarray) -> np.ndarray:
        return (np.asarray(values, np.float64) - self.median) / self.scale

    def as_list(self) -> list[float]:
        return [self.median, self.scale, self.high]

    @classmethod
    def from_list(cls, v) -> RobustZ:
        med, scale, high = (float(x) for x in v)
        if not (np.isfinite(med) and np.isfinite(high) and np.isfinite(scale) and scale > 0):
            raise ValueError("invalid calibration values")
        return cls(med, scale, high)


def fit_threshold(fused: np.ndarray, groups: np.ndarray, slices: Sequence[slice], window: int,
                  target_false_alarm: float, rule: str) -> tuple[float, float, float]:
    """(threshold, share of held-out frames over it, output unit) from held-out fused values.

    The threshold flags ``target_false_alarm`` of the held-out normal frames after smoothing like
    scoring does ("clip": the highest per-clip quantile; "pooled": the quantile of all). The unit
    is the gap between a typical normal frame and the threshold, so that a typical normal frame
    scores +1, the threshold 0, and hysteresis margins mean the same anywhere."""
    smooth = np.concatenate([moving_average(fused[sl], window) for sl in slices])
    q = 1.0 - target_false_alarm
    if rule == "clip" and len(np.unique(groups)) >= 2:
        thr = max(float(np.quantile(smooth[groups == g], q)) for g in np.unique(groups))
    else:
        thr = float(np.quantile(smooth, q))
    flagged = float(np.mean(smooth > thr))
    unit = max(thr - float(np.median(smooth)), 1e-6)
    return thr, flagged, unit


@dataclass
class Projection:
    """Mean-centred PCA projection (fit on training data), to make k-NN over embeddings cheap."""

    mean: np.ndarray
    components: np.ndarray  # (dim, D)

    @classmethod
    def fit(cls, X: np.ndarray, dim: int, *, max_rows: int = 3000) -> Projection:
        """Randomised SVD (seeded, so deterministic) on evenly spaced rows: a full SVD of
        thousands of 1280-d rows costs minutes on a busy CPU, and the basis needs no more."""
        from sklearn.utils.extmath import randomized_svd

        X = np.asarray(X, np.float32)
        X = X[subsample(len(X), max_rows)]
        mean = X.mean(0)
        dim = max(1, min(dim, X.shape[1], max(1, len(X) - 1)))
        _, _, vt = randomized_svd(X - mean, dim, n_iter=4, random_state=0)
        return cls(mean.astype(np.float32), vt[:dim].astype(np.float32))

    def __call__(self, X: np.ndarray) -> np.ndarray:
        return (np.asarray(X, np.float32) - self.mean) @ self.components.T


def subsample(n: int, max_rows: int) -> np.ndarray:
    """Evenly spaced row indices (deterministic): consecutive video frames are near duplicates."""
    if max_rows <= 0 or n <= max_rows:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_rows).astype(np.int64))
