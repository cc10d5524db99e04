"""Moving objects described without their position: speed and size in units of a normal object's
height *at that place*, so one bank of normal objects serves the whole frame.

Why position-free: people walking where no training walker went are still normal on pedestrian
benchmarks; what is anomalous is how fast something moves for its size and what size/shape it
has. Why a perspective model: far objects are smaller and move fewer pixels; dividing by the
height a normal object has at that image row (fitted on the training objects: on a ground plane
it grows linearly with the row) makes a cyclist near and far equally fast, and keeps a crowd that
merged into one tall region at a walker's speed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from ..detectors.neighbours import knn_score, tree_query

#: object feature: speed (p90, mean-flow) and size (height, width) in normal heights here, fill share
OBJECT_DIM = 5


def fit_perspective(cy: np.ndarray, h: np.ndarray, bands: int = 8, min_count: int = 5) -> np.ndarray:
    """(a, b) with normal height = a + b * cy (frame heights), from per-band medians of the
    lower half of heights (single objects, not merged groups)."""
    if len(h) == 0:
        return np.array([0.15, 0.0])
    xs, ys, ws = [], [], []
    for k in range(bands):
        sel = (cy >= k / bands) & (cy < (k + 1) / bands)
        if sel.sum() >= min_count:
            v = np.sort(h[sel])
            xs.append((k + 0.5) / bands)
            ys.append(float(np.median(v[: max(1, len(v) // 2)])))
            ws.append(np.sqrt(sel.sum()))
    if len(xs) >= 2:
        b, a = np.polyfit(xs, ys, 1, w=ws)
        return np.array([a, b])
    return np.array([float(np.median(h)), 0.0])


def normal_height(persp: np.ndarray, cy: np.ndarray, floor: float = 0.02) -> np.ndarray:
    return np.maximum(persp[0] + persp[1] * np.asarray(cy, np.float64), floor)


def object_features(blobs: np.ndarray, persp: np.ndarray) -> np.ndarray:
    """(m, OBJECT_DIM) position-free features of raw blobs (see ``features.moving_blobs``)."""
    b = np.asarray(blobs, np.float64).reshape(-1, 8)
    hn = normal_height(persp, b[:, 1])
    return np.stack([b[:, 5] / hn, np.hypot(b[:, 6], b[:, 7]) / hn, np.log(np.maximum(b[:, 3], 1e-3) / hn),
                     np.log(np.maximum(b[:, 2], 1e-3) / hn), b[:, 4]], 1)


@dataclass
class RegionBank:
    """Normal regions' rows, one bank for the whole frame: a KD-tree for low-dimensional rows (object
    features), exact k-NN by matrix products otherwise (projected crop embeddings, 64-d)."""

    rows: np.ndarray  # (M, d) scaled
    k: int
    kd_tree: bool = True

    def __post_init__(self) -> None:
        self.tree = cKDTree(self.rows) if self.kd_tree and len(self.rows) else None

    def query(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean distance to the k nearest normal regions (m,) and the nearest one's row (m,)."""
        if len(X) == 0:
            return np.zeros(0), np.zeros(0, np.int64)
        if len(self.rows) == 0:
            return np.linalg.norm(X, axis=1), np.full(len(X), -1, np.int64)
        if self.tree is not None:
            return tree_query(self.tree, X, self.k)
        d, i = knn_score(self.rows, X, self.k)
        return d.astype(np.float64), i


def per_frame_max(values: np.ndarray, frame: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: the largest value of its objects (0 without objects) and that object's row (-1)."""
    out = np.zeros(n)
    arg = np.full(n, -1, np.int64)
    if len(values):
        order = np.argsort(values)  # ascending: the last write per frame is its largest
        out[frame[order]] = values[order]
        arg[frame[order]] = order
        out = np.maximum(out, 0.0)
    return out, arg
