"""The ``direction`` attribute: which way and how fast things move, cell by cell, judged against what
training saw at that place - or, where training saw little motion, around it.

Why a direction histogram: the position-free ``object`` attribute sees speed and size but not
direction, so someone walking against or across the usual flow, at a walker's speed, looks normal
to it. Following AI-VAD's velocity attribute (flow orientation bins weighted by magnitude), each
cell gets 8 orientation bins holding the speed of its moving pixels going that way. Unlike AI-VAD,
which divides each bin by its own pixel count, a bin here is divided by the cell's moving pixels
(at least ``MIN_SHARE`` of the cell): the bins then also say *how much* of the motion goes each
way, and a few halo pixels going backwards weigh little. A ninth value, the rms speed, keeps the
fastest pixels visible, and a tenth the rms speed of the cell's fastest quarter (a 2 x 2 split):
a fast object that fills a quarter of a cell among slower walkers is averaged with them in the
cell's own values, not in its quarter's.

Why cells and not moving regions: a cyclist inside or beside a group of walkers merges with them
into one connected region whose speed is a walker's; a cell (1/8 of the frame height, about the
height of a normal person on Ped2, smaller near the camera) holds only the cyclist and its
immediate neighbours, so its speed stands out.

Why a learnt place tolerance: a cell where training saw enough motion is judged by its own normal
examples only (walking the wrong way on a one-way path, walking on the grass beside the path);
where training saw little, by the examples of the nearest ring of cells that together saw enough
(people in a corner few training walkers crossed are still people walking as they walk nearby).
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

#: orientation bins (45 degrees each, soft-assigned) + the rms speed of the cell's moving pixels +
#: the rms speed of its fastest quarter (see :func:`direction_cells`)
DIRECTION_BINS = 8
DIRECTION_DIM = DIRECTION_BINS + 2
#: a quarter cell's rms speed counts in full once this share of it moves (less: it shrinks), so a
#: few fast halo pixels do not make a quarter look fast
QUARTER_SHARE = 0.1
#: a cell's values are means over its moving pixels once they fill this share of it; below, they
#: shrink in proportion (a few moving pixels say little about how a cell moves)
MIN_SHARE = 0.05
#: share of a cell's pixels moving for the cell to count as active (as elsewhere in the motion scorer)
ACTIVE_SHARE = 0.05

_NAMES = ("left", "up-left", "up", "up-right", "right", "down-right", "down", "down-left")


@lru_cache(maxsize=32)
def _cell_index(H: int, W: int, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """(H * W,) the cell of each pixel of a rows x cols grid, and (rows * cols,) each cell's area."""
    ys = np.minimum((np.arange(H) * rows) // H, rows - 1)
    xs = np.minimum((np.arange(W) * cols) // W, cols - 1)
    idx = (ys[:, None] * cols + xs[None, :]).ravel()
    return idx, np.bincount(idx, minlength=rows * cols).astype(np.float64)


def inside_view(moving: np.ndarray) -> np.ndarray:
    """``moving`` without the moving regions that touch the frame's edge: something coming into
    or leaving the view has nothing to match on one side, and its flow points anywhere (strongly
    so in a compressed, upscaled stream); its direction is measured once it is inside."""
    n, lab = cv2.connectedComponents(moving.astype(np.uint8), connectivity=8)
    if n <= 1:
        return moving
    edge = np.unique(np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]]))
    return moving & ~np.isin(lab, edge[edge > 0])


def direction_cells(flow: np.ndarray, speed: np.ndarray, moving: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """(rows, cols, DIRECTION_DIM) direction histogram of one frame's moving pixels.

    ``flow`` (H, W, 2) and ``speed`` (H, W) in frame heights/s, ``moving`` (H, W) bool."""
    H, W = moving.shape
    cell_of, area = _cell_index(H, W, rows, cols)
    quarter_of, qarea = _cell_index(H, W, 2 * rows, 2 * cols)
    n_cells = rows * cols
    out = np.zeros((n_cells, DIRECTION_DIM))
    px = np.flatnonzero(inside_view(moving).ravel())
    if len(px):
        c = cell_of[px]
        v = speed.ravel()[px].astype(np.float64)
        fx = flow[..., 0].ravel()[px]
        fy = flow[..., 1].ravel()[px]
        # angle 0 = left, growing clockwise in image coordinates (y down): left, up-left, up, ...
        pos = (np.arctan2(-fy, -fx) % (2 * np.pi)) * (DIRECTION_BINS / (2 * np.pi))
        lo = np.floor(pos).astype(np.int64) % DIRECTION_BINS
        frac = pos - np.floor(pos)
        hi = (lo + 1) % DIRECTION_BINS
        m = n_cells * DIRECTION_BINS
        hist = (np.bincount(c * DIRECTION_BINS + lo, v * (1 - frac), minlength=m)
                + np.bincount(c * DIRECTION_BINS + hi, v * frac, minlength=m)).reshape(n_cells, DIRECTION_BINS)
        n_mv = np.bincount(c, minlength=n_cells).astype(np.float64)
        denom = np.maximum(n_mv, MIN_SHARE * area)
        out[:, :DIRECTION_BINS] = hist / denom[:, None]
        sq = np.bincount(c, v * v, minlength=n_cells)
        out[:, DIRECTION_BINS] = np.sqrt(sq / np.maximum(n_mv, 1.0)) * np.minimum(1.0, n_mv / denom)
        q = quarter_of[px]
        nq = np.bincount(q, minlength=4 * n_cells).astype(np.float64)
        qrms = np.sqrt(np.bincount(q, v * v, minlength=4 * n_cells) / np.maximum(nq, 1.0))
        qrms = (qrms * np.minimum(1.0, nq / (QUARTER_SHARE * qarea))).reshape(2 * rows, 2 * cols)
        out[:, DIRECTION_BINS + 1] = qrms.reshape(rows, 2, cols, 2).max((1, 3)).ravel()
    return out.reshape(rows, cols, DIRECTION_DIM).astype(np.float32)


def direction_scale(X: np.ndarray) -> np.ndarray:
    """One divisor for all dimensions: the 95th percentile of the active cells' total (their mean
    speed), so the bank's distances are in units of a fast normal cell, whatever the camera."""
    flat = X.reshape(-1, X.shape[-1])
    tot = flat[:, :DIRECTION_BINS].sum(1)
    act = tot[tot > 0]
    s = max(float(np.percentile(act, 95)), 1e-3) if len(act) else 1.0
    return np.full(X.shape[-1], s)


def place_radius(active: np.ndarray, rows: int, cols: int, min_examples: int, max_radius: int) -> np.ndarray:
    """(rows * cols,) per cell: the smallest ring radius whose cells hold ``min_examples`` active
    training examples together (``max_radius`` where none does).

    ``active`` (n, rows, cols) bool: the cell moved in that training frame."""
    counts = active.reshape(len(active), rows, cols).sum(0).astype(np.int64)
    integ = np.pad(counts, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    out = np.full(rows * cols, max_radius, np.int64)
    for r in range(rows):
        for c in range(cols):
            for rad in range(max_radius + 1):
                r0, r1 = max(0, r - rad), min(rows, r + rad + 1)
                c0, c1 = max(0, c - rad), min(cols, c + rad + 1)
                if integ[r1, c1] - integ[r0, c1] - integ[r1, c0] + integ[r0, c0] >= min_examples:
                    out[r * cols + c] = rad
                    break
    return out


def cell_divisors(D: np.ndarray) -> np.ndarray:
    """(cells,) what a held-out normal distance reaches in each cell (its 99th percentile), at
    least the median of those over the cells that moved: dividing by it puts a busy, varied cell
    and a quiet one on one scale, so the worst cell of a frame is the most unusual one rather
    than the noisiest."""
    q = np.percentile(D, 99, axis=0)
    floor = float(np.median(q[q > 0])) if np.any(q > 0) else 1.0
    return np.maximum(q, max(floor, 1e-6))


def direction_words(h: np.ndarray) -> str:
    """The main direction of an 8-bin histogram in words ('' without motion)."""
    h = np.asarray(h, np.float64)[:DIRECTION_BINS]
    if h.sum() <= 0:
        return ""
    return _NAMES[int(np.argmax(h))]


def turned(a: np.ndarray, b: np.ndarray) -> int:
    """Angle in whole bins (0-4, 45 degrees each) between the main directions of two histograms."""
    if np.sum(a[:DIRECTION_BINS]) <= 0 or np.sum(b[:DIRECTION_BINS]) <= 0:
        return 0
    d = abs(int(np.argmax(a[:DIRECTION_BINS])) - int(np.argmax(b[:DIRECTION_BINS]))) % DIRECTION_BINS
    return min(d, DIRECTION_BINS - d)
