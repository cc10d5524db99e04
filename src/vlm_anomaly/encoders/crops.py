"""Embedding many small crops of a frame (moving regions, objects) with one encoder.

Why a crop size of its own: regions are small, and a convolutional encoder embeds a 64 px crop in
a tenth of the time of a 224 px one; transformers need their own input size (fixed position
embeddings), so they keep it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .base import Encoder
from .preprocess import Preprocessing


def crop_size_for(encoder: Encoder, requested: int) -> int:
    """Crops go in at ``requested`` px for convolutional encoders; ViTs need their own input size."""
    return requested if encoder.identity.backend == "efficientnet" else encoder.preprocess.size


class CropEncoder:
    """``encoder`` applied to crops at :func:`crop_size_for` ``size``, in batches (64 small crops
    or 16 large ones unless ``batch`` says); returns (m, dim) float32 unit rows."""

    def __init__(self, encoder: Encoder, size: int, *, batch: int = 0):
        self.encoder = encoder
        p = encoder.preprocess
        self.preprocess = Preprocessing(size=crop_size_for(encoder, size), mean=p.mean, std=p.std, mode=p.mode)
        self.batch = batch or max(encoder.batch_size, 64 if self.preprocess.size <= 96 else 16)

    @property
    def dim(self) -> int:
        return self.encoder.dim

    def __call__(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        if not len(crops):
            return np.zeros((0, self.encoder.dim), np.float32)
        return np.concatenate([self.encoder.encode_array(self.preprocess(crops[i:i + self.batch]))
                               for i in range(0, len(crops), self.batch)]).astype(np.float32, copy=False)
