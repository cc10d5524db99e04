"""What moving regions look like, through the configured encoder (OpenCLIP when its weights exist,
the offline EfficientNet-Lite0 otherwise).

Why crops of the moving regions, not the whole frame: a bicycle or a cart among walkers changes a
few hundred pixels of a frame, which a whole-frame embedding barely notices, while the crop around
it is all bicycle. Why a small input (64 px) for convolutional encoders: moving regions are small,
and the crop costs about 1 ms on two CPU cores instead of 10 at 224 px. Why a projection (PCA,
fitted on the training crops): k-NN over a few thousand 64-d rows is cheap and the model file
stays small.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..encoders.crops import CropEncoder
from .features import BLOB_DIM

if TYPE_CHECKING:
    from ..encoders.base import Encoder

#: input size of crops for convolutional encoders (transformers need their own input size)
CROP_SIZE = 64
#: context kept around a region, as a share of its size on each side
CROP_PAD = 0.15


def region_boxes(blobs: np.ndarray, width: int, height: int, pad: float = CROP_PAD) -> np.ndarray:
    """(m, 4) int pixel boxes x0, y0, x1, y1 of moving regions (``features.moving_blobs`` rows:
    centre as frame fractions, width and height in frame heights), grown by ``pad``, clipped."""
    b = np.asarray(blobs, np.float64).reshape(-1, BLOB_DIM)
    cx, cy = b[:, 0] * width, b[:, 1] * height
    hw = b[:, 2] * height * (0.5 + pad)
    hh = b[:, 3] * height * (0.5 + pad)
    boxes = np.stack([cx - hw, cy - hh, cx + hw, cy + hh], 1)
    boxes = np.round(boxes).astype(np.int64)
    boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, width)
    boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, height)
    # never empty: at least 2 px each way
    boxes[:, 2] = np.maximum(boxes[:, 2], np.minimum(boxes[:, 0] + 2, width))
    boxes[:, 3] = np.maximum(boxes[:, 3], np.minimum(boxes[:, 1] + 2, height))
    boxes[:, 0] = np.minimum(boxes[:, 0], boxes[:, 2] - 2).clip(0)
    boxes[:, 1] = np.minimum(boxes[:, 1], boxes[:, 3] - 2).clip(0)
    return boxes


class CropEmbedder:
    """Embeds the crops of moving regions with one encoder, in batches.

    Example:
        >>> emb = CropEmbedder(create_encoder("efficientnet"))  # doctest: +SKIP
        >>> emb.embed(emb.crops(frame.image, blobs)).shape  # doctest: +SKIP
        (3, 1280)
    """

    def __init__(self, encoder: Encoder, *, size: int = CROP_SIZE, pad: float = CROP_PAD, batch: int = 64):
        self.encoder = encoder
        self._encode = CropEncoder(encoder, size, batch=max(1, batch))
        self.pad = pad
        self.timing = {"crop_embed_s": 0.0, "crops": 0}

    @property
    def dim(self) -> int:
        return self.encoder.dim

    @property
    def identity_key(self) -> str:
        return self.encoder.identity.key

    def crops(self, image: np.ndarray, blobs: np.ndarray) -> list[np.ndarray]:
        """The pixels of each moving region of ``image`` (RGB, source size)."""
        h, w = image.shape[:2]
        return [image[y0:y1, x0:x1] for x0, y0, x1, y1 in region_boxes(blobs, w, h, self.pad)]

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """(m, dim) float32 unit rows."""
        t0 = time.perf_counter()
        out = self._encode(crops)
        self.timing["crop_embed_s"] += time.perf_counter() - t0
        self.timing["crops"] += len(crops)
        return out
