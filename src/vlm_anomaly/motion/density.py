"""Per-cell k-NN density of cell features, with position jitter and leave-one-clip-out calibration.

Why per cell: what is normal depends on where (the path vs the lawn, near vs far). Why each cell
also accepts its neighbours' normal examples: a person one cell off the usual track is still
normal. Why KD-trees: the features are low-dimensional (4-8), so exact k-NN costs microseconds per
cell, live or offline.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from ..detectors.neighbours import subsample, tree_query


def neighbours(rows: int, cols: int, radius: int | np.ndarray) -> list[np.ndarray]:
    """Flat indices of the cells within ``radius`` (Chebyshev) of each cell: one radius for all,
    or (rows * cols,) each cell's own."""
    out = []
    for i, rad in enumerate(np.broadcast_to(np.asarray(radius, np.int64), (rows * cols,))):
        r, c = divmod(i, cols)
        rr, cc = np.meshgrid(np.arange(max(0, r - rad), min(rows, r + rad + 1)),
                             np.arange(max(0, c - rad), min(cols, c + rad + 1)), indexing="ij")
        out.append((rr * cols + cc).ravel())
    return out


def select_bank_rows(X: np.ndarray, max_rows: int) -> np.ndarray:
    """Rows of one cell's (n, d) examples to keep: every distinct moving one up to ``max_rows``
    (evenly spaced), plus one all-zero row when there are still ones."""
    n = len(X)
    active = np.flatnonzero(np.abs(X).sum(1) > 0)
    if len(active) > max_rows:
        active = active[subsample(len(active), max_rows)]
    idle = np.flatnonzero(np.abs(X).sum(1) == 0)[:1]
    keep = np.concatenate([active, idle]) if n else active
    return np.sort(keep).astype(np.int64)


class CellBanks:
    """For each cell, a KD-tree over the normal examples of that cell and of its neighbours
    (``nbrs``: flat cell indices per cell; None: the cell's own examples only)."""

    def __init__(self, rows: np.ndarray, cell: np.ndarray, n_cells: int, nbrs: list[np.ndarray] | None, k: int):
        self.rows = np.asarray(rows, np.float32)  # (M, d) examples
        self.cell = np.asarray(cell, np.int64)  # (M,) cell of each example
        self.k = int(k)
        by_cell = [np.flatnonzero(self.cell == c) for c in range(n_cells)]
        self.members = by_cell if nbrs is None else [np.concatenate([by_cell[j] for j in nb]) for nb in nbrs]
        self.trees = [cKDTree(self.rows[m]) if len(m) else None for m in self.members]
        self._idle: dict[int, tuple[float, int]] = {}

    def query(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """X (n, cells, d) -> mean distance to the k nearest (n, cells) and the nearest example row (n, cells).

        An all-zero row (a cell where nothing moved: most cells of most frames) gets its cell's
        answer for the zero vector, queried once: live scoring asks one frame at a time, and one
        KD-tree query per cell per frame was most of its time."""
        n, n_cells, _ = X.shape
        dist = np.zeros((n, n_cells))
        near = np.full((n, n_cells), -1, np.int64)
        idle = ~X.any(axis=2)
        n_idle = idle.sum(0).tolist()
        for c in range(n_cells if n else 0):
            tree = self.trees[c]
            if tree is None:
                dist[:, c] = np.linalg.norm(X[:, c], axis=1)
                continue
            if n_idle[c]:  # whole columns by slice: the one-frame live case is the common one
                rows = slice(None) if n_idle[c] == n else idle[:, c]
                dist[rows, c], near[rows, c] = self._idle_answer(c, X.shape[2])
            if n_idle[c] < n:
                rows = slice(None) if n_idle[c] == 0 else ~idle[:, c]
                dist[rows, c], i = tree_query(tree, X[rows, c], self.k)
                near[rows, c] = self.members[c][i]
        return dist, near

    def _idle_answer(self, c: int, dim: int) -> tuple[float, int]:
        if c not in self._idle:
            d, i = tree_query(self.trees[c], np.zeros((1, dim), np.float32), self.k)
            self._idle[c] = (float(d[0]), int(self.members[c][i[0]]))
        return self._idle[c]


def heldout_distances(X: np.ndarray, groups: np.ndarray, max_rows: int, nbrs: list[np.ndarray] | None, k: int,
                      still: np.ndarray | None = None) -> np.ndarray:
    """(n, cells) each training frame's per-cell distance to the banks built (:func:`build_banks`)
    from the other groups' frames: leave-one-clip-out, so calibration sees how far new normal
    data falls, not the zero distance of a memorised frame."""
    D = np.zeros(X.shape[:2])
    for g in np.unique(groups):
        sel = groups == g
        r, c, _ = build_banks(X[~sel], max_rows, None if still is None else still[~sel])
        D[sel] = CellBanks(r, c, X.shape[1], nbrs, k).query(X[sel])[0]
    return D


def build_banks(X: np.ndarray, max_rows: int, still: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """From training examples X (n, cells, d): the kept rows, their cell, their frame number. Per
    cell :func:`select_bank_rows`, or with ``still`` (n, cells) its still rows, evenly spaced."""
    rows, cells, frames = [], [], []
    for c in range(X.shape[1]):
        if still is None:
            keep = select_bank_rows(X[:, c], max_rows)
        else:
            keep = np.flatnonzero(still[:, c])
            keep = keep[subsample(len(keep), max_rows)]
        rows.append(X[keep, c])
        cells.append(np.full(len(keep), c, np.int64))
        frames.append(keep)
    return np.concatenate(rows), np.concatenate(cells), np.concatenate(frames)
