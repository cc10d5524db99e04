"""Tiled embeddings: the whole frame plus a grid of overlapping tiles, each embedded on its own.

Why: a whole-frame embedding at 224 px cannot see a bicycle or a cart that fills 2% of a wide
camera view; embedded on its own, a tile of a sixth of the view gives that object 6x more pixels.
The tiles overlap and together cover every pixel (nothing at the edges is cropped away); each is
letterboxed by the base encoder like any frame. The embedding of a frame is the concatenation of
``groups`` unit vectors (whole frame first, then the tiles row by row), so caches, the model store
and the pipeline treat it like any embedding; ``patch-knn`` scores each tile against the same tile
of normal frames and takes the worst, and the descriptions come from the whole-frame part.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..errors import ConfigError
from .base import Description, Encoder, EncoderIdentity


def tile_boxes(w: int, h: int, rows: int, cols: int, overlap: float) -> list[tuple[int, int, int, int]]:
    """(x0, y0, x1, y1) of a ``rows`` x ``cols`` grid of tiles overlapping by ``overlap`` of a tile,
    covering the whole ``w`` x ``h`` frame.

    Example:
        >>> tile_boxes(300, 200, 1, 2, 0.5)
        [(0, 0, 200, 200), (100, 0, 300, 200)]
    """
    def spans(n: int, size: int) -> list[tuple[int, int]]:
        if n == 1:
            return [(0, size)]
        tile = size / (n - (n - 1) * overlap)
        step = tile * (1 - overlap)
        return [(int(round(k * step)), size if k == n - 1 else int(round(k * step + tile))) for k in range(n)]

    return [(x0, y0, x1, y1) for (y0, y1) in spans(rows, h) for (x0, x1) in spans(cols, w)]


class TiledEncoder(Encoder):
    """Wraps a frame encoder: whole frame + ``rows`` x ``cols`` overlapping tiles per frame.

    Example:
        >>> from vlm_anomaly.encoders import create_encoder  # doctest: +SKIP
        >>> enc = TiledEncoder(create_encoder("efficientnet"), rows=2, cols=3)  # doctest: +SKIP
        >>> enc.groups, enc.dim  # doctest: +SKIP
        (7, 8960)
    """

    def __init__(self, base: Encoder, *, rows: int = 2, cols: int = 3, overlap: float = 0.25):
        if isinstance(base, TiledEncoder) or base.groups != 1:
            raise ConfigError("tiles need a whole-frame encoder (not tiles again)")
        if not (1 <= rows <= 8 and 1 <= cols <= 8) or rows * cols < 2:
            raise ConfigError(f"tile grid {rows}x{cols}: use 1-8 rows and columns, at least 2 tiles")
        if not 0.0 <= overlap < 0.9:
            raise ConfigError(f"tile overlap {overlap}: use a fraction from 0 to 0.9")
        self.base = base
        self.rows, self.cols, self.overlap = int(rows), int(cols), float(overlap)
        b = base.identity
        self.identity = EncoderIdentity(
            backend=b.backend, model=b.model, pretrained=b.pretrained, dim=b.dim * self.groups,
            weights_sha256=b.weights_sha256,
            preprocessing={**b.preprocessing, "features": "tiles",
                           "tiles": [self.rows, self.cols, round(self.overlap, 4)]})
        self.preprocess = base.preprocess
        self.device = base.device
        self.batch_size = base.batch_size
        self.runtime = base.runtime
        self.int8_supported = base.int8_supported

    @property
    def groups(self) -> int:
        return 1 + self.rows * self.cols

    @property
    def supports_text(self) -> bool:
        return self.base.supports_text

    def use_runtime(self, runtime: str = "torch", **kwargs) -> TiledEncoder:
        self.base.use_runtime(runtime, **kwargs)
        self.runtime = self.base.runtime
        return self

    def crops(self, image: np.ndarray) -> list[np.ndarray]:
        """The whole frame, then its tiles row by row."""
        h, w = image.shape[:2]
        return [image] + [image[y0:y1, x0:x1] for x0, y0, x1, y1 in tile_boxes(w, h, self.rows, self.cols,
                                                                                self.overlap)]

    def encode(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """(N, groups * base dim): every frame's crops embedded together, in the base's batches."""
        if len(images) == 0:
            return np.zeros((0, self.dim), np.float32)
        crops = [c for img in images for c in self.crops(np.asarray(img))]
        return self.base.encode(crops).reshape(len(images), self.dim)

    def whole(self, embeddings: np.ndarray) -> np.ndarray:
        """The whole-frame part of tiled embeddings (unit rows of the base encoder)."""
        return np.asarray(embeddings)[:, : self.base.dim]

    def encode_array(self, x: np.ndarray) -> np.ndarray:
        return self.base.encode_array(x)  # preprocessed single images (e.g. object crops): the base's

    def _forward_image(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - encode() goes via base
        return self.base._forward_image(x)

    def text_similarity(self, embeddings: np.ndarray, labels: list[str]) -> np.ndarray:
        return self.base.text_similarity(self.whole(embeddings), labels)

    def describe(self, embeddings: np.ndarray, *, top_k: int = 3, **kwargs) -> list[Description]:
        return self.base.describe(self.whole(embeddings), top_k=top_k, **kwargs)

    def __getattr__(self, name: str):
        # anything else a backend offers (prompt embeddings, labels, ...) is the base's
        if name == "base":
            raise AttributeError(name)
        return getattr(self.base, name)
