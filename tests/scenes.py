"""Generated clips for the attribute tests: textured squares on a static textured background.

Slow squares walk 1 px/frame; a fast one (same look) crosses at FAST_SPEED px/frame during a known
span, so only its motion sets it apart.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

W, H = 192, 160
SIDE = 18
FAST_SPEED = 7


def background(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.integers(60, 200, size=(H // 4, W // 4), dtype=np.uint8)
    bg = cv2.resize(noise, (W, H), interpolation=cv2.INTER_CUBIC)
    return cv2.cvtColor(bg, cv2.COLOR_GRAY2RGB)


def _square() -> np.ndarray:
    """A blotchy (non-periodic, so flow cannot alias) high-contrast texture, the same for every square."""
    rng = np.random.default_rng(123)
    tile = cv2.resize(rng.integers(0, 2, size=(4, 4)).astype(np.float32) * 235 + 10, (SIDE, SIDE),
                      interpolation=cv2.INTER_LINEAR).astype(np.uint8)
    return np.stack([tile, tile // 2, 255 - tile], 2)


def slow_positions(t: int, offset: int) -> list[tuple[int, int]]:
    """Top-left corners of the slow squares at frame ``t`` (three lanes, 1 px/frame)."""
    return [(10 + offset + t, 8), (120 - offset - t, 56), (40 + offset + t, 134)]


def fast_position(t: int, start: int) -> tuple[int, int]:
    return (4 + FAST_SPEED * (t - start), 95)


def render(t: int, *, offset: int, fast_span: range | None, bg: np.ndarray) -> tuple[np.ndarray, tuple | None]:
    img = bg.copy()
    sq = _square()
    for x, y in slow_positions(t, offset):
        img[y : y + SIDE, x : x + SIDE] = sq
    box = None
    if fast_span is not None and t in fast_span:
        x, y = fast_position(t, fast_span.start)
        x = min(max(x, 0), W - SIDE)
        img[y : y + SIDE, x : x + SIDE] = sq
        box = (x, y, x + SIDE, y + SIDE)
    return img, box


def write_clip(folder: Path, *, n: int = 24, offset: int = 0, fast_span: range | None = None) -> list:
    """Write ``0.png..`` frames; returns the fast square's box per frame (None when absent)."""
    folder.mkdir(parents=True, exist_ok=True)
    bg = background()
    boxes = []
    for t in range(n):
        img, box = render(t, offset=offset, fast_span=fast_span, bg=bg)
        cv2.imwrite(str(folder / f"{t}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        boxes.append(box)
    return boxes


def iou(a, b) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0


def coverage(found, truth) -> float:
    """Fraction of ``truth`` inside ``found``."""
    ix = max(0, min(found[2], truth[2]) - max(found[0], truth[0]))
    iy = max(0, min(found[3], truth[3]) - max(found[1], truth[1]))
    return ix * iy / ((truth[2] - truth[0]) * (truth[3] - truth[1]))
