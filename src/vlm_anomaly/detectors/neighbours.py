"""Nearest-neighbour distances shared by the kNN-style detectors.

Why the temporal exclusion: training rows are consecutive video frames, near-copies of their
neighbours, so a frame's in-sample nearest neighbour is always "itself a moment ago". Calibrating
a threshold on such distances would make every unseen normal frame look anomalous. Held-out
distances skip the rows within ``exclude`` positions of the query.
"""

from __future__ import annotations

import numpy as np

BLOCK = 1024


def sq_dists(Q: np.ndarray, B: np.ndarray, b_sq: np.ndarray | None = None) -> np.ndarray:
    """Squared Euclidean distances (len(Q), len(B)), clipped at 0, in float64."""
    b_sq = (B**2).sum(1) if b_sq is None else b_sq
    d2 = (Q**2).sum(1)[:, None] + b_sq[None, :] - 2.0 * (Q @ B.T)
    return np.maximum(d2, 0.0)


def knn_mean_dist(Q: np.ndarray, B: np.ndarray, k: int, *, squared: bool = False) -> np.ndarray:
    """Mean (squared if asked) Euclidean distance of each row of ``Q`` to its ``k`` nearest rows of ``B``."""
    k = min(k, len(B))
    b_sq = (B**2).sum(1)
    out = np.empty(len(Q))
    for i in range(0, len(Q), BLOCK):
        d2 = sq_dists(Q[i : i + BLOCK], B, b_sq)
        part = np.partition(d2, k - 1, axis=1)[:, :k] if k < len(B) else d2
        out[i : i + BLOCK] = (part if squared else np.sqrt(part)).mean(1)
    return out


def held_out_rows(n: int, max_queries: int, seed: int = 0) -> np.ndarray:
    """Sorted row indices used as calibration queries (all rows when ``n <= max_queries``)."""
    if n <= max_queries:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, max_queries, replace=False))


def held_out_knn_dist(X: np.ndarray, rows: np.ndarray, k: int, exclude: int, *,
                      squared: bool = False) -> np.ndarray:
    """Mean distance of ``X[rows]`` to their ``k`` nearest rows of ``X`` farther than ``exclude`` rows.

    Falls back to excluding only the row itself when too few rows would remain.
    """
    n = len(X)
    if n - (2 * exclude + 1) < k:
        exclude = 0
    k = max(1, min(k, n - 2 * exclude - 1))
    b_sq = (X**2).sum(1)
    out = np.empty(len(rows))
    all_idx = np.arange(n)
    for i in range(0, len(rows), BLOCK):
        r = rows[i : i + BLOCK]
        d2 = sq_dists(X[r], X, b_sq)
        d2[np.abs(r[:, None] - all_idx[None, :]) <= exclude] = np.inf
        part = np.partition(d2, k - 1, axis=1)[:, :k]
        out[i : i + BLOCK] = (part if squared else np.sqrt(part)).mean(1)
    return out
