"""The project's one k-nearest-neighbour module: exact k-NN queries, the rows a memory bank keeps,
and the PCA projection that makes k-NN over embeddings cheap.

Why exact, brute force in blocks: banks hold at most a few thousand rows, so a matrix product
per block is fast and needs no index to save; low-dimensional banks (motion features, 4-8
values) use KD-trees through :func:`tree_query`. Why held-out rows skip their neighbours in
time: training rows are consecutive video frames, near-copies of their neighbours, so a frame's
in-sample nearest neighbour is always "itself a moment ago"; calibrating a threshold on such
distances would make every unseen normal frame look anomalous.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from scipy.spatial import cKDTree

BLOCK = 2048


def sq_dists(Q: np.ndarray, B: np.ndarray, b_sq: np.ndarray | None = None) -> np.ndarray:
    """Squared Euclidean distances (len(Q), len(B)), clipped at 0."""
    b_sq = (B**2).sum(1) if b_sq is None else b_sq
    d2 = (Q**2).sum(1)[:, None] + b_sq[None, :] - 2.0 * (Q @ B.T)
    return np.maximum(d2, 0.0)


def knn(bank: np.ndarray, X: np.ndarray, k: int, *, chunk: int = BLOCK) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distances (n, k) to the ``k`` nearest bank rows, ascending, and their indices (float32)."""
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


def tree_query(tree: cKDTree, X: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`knn_score` over a KD-tree (exact, float64): mean distance to the k nearest (n,) and
    the row of the nearest (n,)."""
    k = min(k, tree.n)
    d, i = tree.query(X, k=k)
    if k == 1:  # (n,) already: the mean of one distance is itself (live scoring calls this per cell)
        return d, i
    return d.mean(1), i[:, 0]


def subsample(n: int, max_rows: int) -> np.ndarray:
    """Evenly spaced row indices (deterministic): consecutive video frames are near duplicates."""
    if max_rows <= 0 or n <= max_rows:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_rows).astype(np.int64))


def time_chunks(n: int) -> np.ndarray:
    """(n,) which of 4 consecutive time chunks each of ``n`` frames falls in: footage learnt as
    normal after training is held out chunk against chunk, as a single training clip is."""
    return np.minimum(np.arange(n) * 4 // max(1, n), 3)


def held_out_rows(n: int, max_queries: int, seed: int = 0) -> np.ndarray:
    """Sorted row indices used as calibration queries (all rows when ``n <= max_queries``)."""
    if n <= max_queries:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, max_queries, replace=False))


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
