"""Dense optical flow between a sampled frame and the source frame just before it.

Why the source neighbour and not the previous *sample*: with a 500 ms sampling interval the
previous sample is many frames away and flow between them is meaningless; one source frame apart,
displacements are small and measure true speed (pixels per source frame).
Why downscaled grayscale: flow cost grows with pixels; half resolution keeps walkers visible and
costs a few milliseconds per frame on a CPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

FLOW_METHODS = ("farneback", "dis")


@dataclass(frozen=True)
class MotionField:
    """Flow and moving-pixel mask of one frame, on the reduced grid.

    ``flow`` is in *source* pixels per source frame (already divided by ``scale``), so speeds read
    the same whatever the reduction.
    """

    flow: np.ndarray  # (h, w, 2) float32
    mask: np.ndarray  # (h, w) bool: pixels judged moving
    scale: float  # reduced size / source size

    @property
    def magnitude(self) -> np.ndarray:
        return np.linalg.norm(self.flow, axis=2)


def small_gray(rgb: np.ndarray, scale: float) -> np.ndarray:
    """RGB (or gray) uint8 frame -> downscaled grayscale."""
    gray = rgb if rgb.ndim == 2 else cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    if scale != 1.0:
        gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return gray


def dense_flow(prev_gray: np.ndarray, gray: np.ndarray, method: str = "farneback") -> np.ndarray:
    """Flow (h, w, 2) float32 from ``prev_gray`` to ``gray`` in pixels of these images."""
    if method == "farneback":
        # small window: object-sized flow blobs instead of halos around walkers
        return cv2.calcOpticalFlowFarneback(prev_gray, gray, None, 0.5, 3, 9, 3, 5, 1.1, 0)
    if method == "dis":
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
        return dis.calc(prev_gray, gray, None)
    raise ValueError(f"unknown flow method {method!r}; choose from {', '.join(FLOW_METHODS)}")


def motion_field(
    previous: np.ndarray | None,
    current: np.ndarray,
    *,
    scale: float = 0.5,
    method: str = "farneback",
    diff_threshold: float = 8.0,
    flow_threshold: float = 0.6,
) -> MotionField:
    """Flow of ``current`` against ``previous`` plus the mask of moving pixels.

    A pixel moves when the frames differ there (near it) *and* the flow is faster than
    ``flow_threshold`` source px/frame: the difference rejects flow noise on flat ground, the flow
    rejects sensor noise and flicker. Without a previous frame, nothing moves.
    """
    gray = small_gray(current, scale)
    if previous is None or previous.shape[:2] != current.shape[:2]:
        h, w = gray.shape
        return MotionField(np.zeros((h, w, 2), np.float32), np.zeros((h, w), bool), scale)
    prev = small_gray(previous, scale)
    flow = dense_flow(prev, gray, method) / np.float32(scale)
    diff = cv2.absdiff(cv2.GaussianBlur(prev, (3, 3), 0), cv2.GaussianBlur(gray, (3, 3), 0))
    changed = cv2.dilate((diff > diff_threshold).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    mag = np.linalg.norm(flow, axis=2)
    return MotionField(flow.astype(np.float32, copy=False), changed & (mag > flow_threshold), scale)
