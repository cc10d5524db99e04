"""Foreground regions (boxes) from the moving-pixel mask: connected components, merged.

Why no object detector: detector weights cannot be downloaded here, and for anomalies of motion
(a cyclist among walkers) what moves is what matters. Static objects are left to the whole-frame
attribute.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Box:
    """Axis-aligned box in source pixels, ``x1``/``y1`` exclusive."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def area(self) -> int:
        return max(0, self.x1 - self.x0) * max(0, self.y1 - self.y0)

    @property
    def center(self) -> tuple[float, float]:
        return (self.x0 + self.x1) / 2.0, (self.y0 + self.y1) / 2.0

    def as_list(self) -> list[int]:
        return [self.x0, self.y0, self.x1, self.y1]


def merge_boxes(boxes: list[Box], gap: int = 0) -> list[Box]:
    """Union boxes that overlap or lie within ``gap`` pixels of each other, until none do."""
    out = list(boxes)
    changed = True
    while changed:
        changed = False
        merged: list[Box] = []
        for b in out:
            for i, m in enumerate(merged):
                if (b.x0 <= m.x1 + gap and m.x0 <= b.x1 + gap and b.y0 <= m.y1 + gap and m.y0 <= b.y1 + gap):
                    merged[i] = Box(min(b.x0, m.x0), min(b.y0, m.y0), max(b.x1, m.x1), max(b.y1, m.y1))
                    changed = True
                    break
            else:
                merged.append(b)
        out = merged
    return out


def find_regions(
    mask: np.ndarray,
    scale: float,
    source_size: tuple[int, int],
    *,
    min_area_frac: float = 0.0005,
    max_regions: int = 12,
    merge_gap: int = 2,
) -> list[Box]:
    """Boxes (source pixels) of the moving blobs in a reduced-grid ``mask``, largest first.

    Args:
        mask: (h, w) bool, moving pixels on the grid reduced by ``scale``.
        source_size: (width, height) of the source frame, to scale and clip boxes.
        min_area_frac: blobs smaller than this fraction of the frame are noise.
        max_regions: keep at most this many (the largest).
        merge_gap: blobs closer than this (reduced px) are parts of one object.
    """
    w, h = source_size
    m = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
    n, _, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    min_px = min_area_frac * mask.shape[0] * mask.shape[1]
    boxes = [
        Box(int(x), int(y), int(x + bw), int(y + bh))
        for x, y, bw, bh, area in stats[1:]
        if area >= min_px
    ]
    boxes = merge_boxes(boxes, merge_gap)
    inv = 1.0 / scale
    out = []
    for b in boxes:
        sb = Box(max(0, int(np.floor(b.x0 * inv))), max(0, int(np.floor(b.y0 * inv))),
                 min(w, int(np.ceil(b.x1 * inv))), min(h, int(np.ceil(b.y1 * inv))))
        if sb.area > 0:
            out.append(sb)
    out.sort(key=lambda b: -b.area)
    return out[:max_regions]
