"""Vectorised image preprocessing that keeps the whole camera view.

Why letterbox, not centre-crop: a CLIP transform crops the long side away, and an anomaly at the
edge of a wide security view would never be seen. We resize the whole frame into the square input
and pad the rest with the normalisation mean (which becomes zero after normalising).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Preprocessing:
    """How frames become model input; part of the encoder identity saved with every model."""

    size: int = 224
    mean: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
    std: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)
    mode: str = "letterbox"

    def as_dict(self) -> dict:
        return {"size": self.size, "mean": list(self.mean), "std": list(self.std), "mode": self.mode}

    def __call__(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """RGB uint8 frames of any sizes -> float32 array (N, 3, size, size), normalised.

        Why a lookup table: a uint8 pixel has 256 possible values, so normalising is one table
        lookup per channel, written straight into the NCHW output for the resized region only
        (3x less CPU than converting, normalising and transposing the whole padded batch).
        """
        n = len(images)
        s = self.size
        lut, pad = self._tables()
        out = np.empty((n, 3, s, s), np.float32)
        out[:] = pad[None, :, None, None]
        for i, img in enumerate(images):
            img = as_rgb(img)
            h, w = img.shape[:2]
            scale = s / max(h, w)
            nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
            interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            resized = cv2.resize(img, (nw, nh), interpolation=interp)
            y0, x0 = (s - nh) // 2, (s - nw) // 2
            for c in range(3):
                np.take(lut[c], resized[:, :, c], out=out[i, c, y0 : y0 + nh, x0 : x0 + nw])
        return out

    def _tables(self) -> tuple[np.ndarray, np.ndarray]:
        """(per-channel value -> normalised value, normalised padding); the mean pads the frame."""
        mean255 = np.asarray(self.mean, np.float32) * 255.0
        inv_std = 1.0 / (np.asarray(self.std, np.float32) * 255.0)
        values = np.arange(256, dtype=np.float32)
        lut = (values[None, :] - mean255[:, None]) * inv_std[:, None]
        pad_value = np.clip(np.round(mean255), 0, 255).astype(np.uint8)
        pad = lut[np.arange(3), pad_value]
        return lut.astype(np.float32), pad.astype(np.float32)


def as_rgb(img: np.ndarray) -> np.ndarray:
    if img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_RGBA2RGB)
    return img
