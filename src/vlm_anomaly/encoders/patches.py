"""Patch features of the offline backbone: one descriptor per image region, PatchCore-style.

Why: a whole-frame embedding at 224 px averages a small bicycle or cart in a wide camera view
away. The strongest industrial anomaly detectors (PatchCore) compare *mid-level* feature-map
cells with a memory bank of normal cells instead. This encoder returns, for every frame, the
concatenated descriptors of a fixed grid of cells (row-major, ``groups`` cells of ``channels``
values each), so the rest of the system (cache, store, pipeline) handles it like any embedding;
the ``patch-knn`` detector knows how to read it.

Descriptors: EfficientNet-Lite0 block 4 (40 ch, stride 8, average-pooled to stride 16) and
block 10 (112 ch, stride 16) concatenated, then a 3x3 local average (PatchCore's neighbourhood
aggregation). The input is the whole frame resized (letterboxed) to ``width`` x ``height``.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .base import Description, EncoderIdentity
from .efficientnet import EfficientNetEncoder
from .preprocess import as_rgb

#: blocks whose outputs are used (0-based indices into EfficientNet-Lite0's 16 MBConv blocks)
LAYERS = (4, 10)
STRIDE = 16


class EfficientNetPatchEncoder(EfficientNetEncoder):
    """Mid-level EfficientNet-Lite0 features on a grid of image cells, flattened per frame.

    Example:
        >>> enc = EfficientNetPatchEncoder(width=288, height=192)  # doctest: +SKIP
        >>> enc.groups, enc.channels, enc.dim  # doctest: +SKIP
        (216, 152, 32832)
    """

    def __init__(self, *, device: str = "auto", batch_size: int = 16, width: int = 288, height: int = 192):
        super().__init__(device=device, batch_size=batch_size)
        if width % STRIDE or height % STRIDE or width < 2 * STRIDE or height < 2 * STRIDE:
            raise ValueError(f"patch input size must be multiples of {STRIDE} of at least {2 * STRIDE}")
        self.width, self.height = int(width), int(height)
        self.grid = (self.height // STRIDE, self.width // STRIDE)
        self.channels = sum(int(self.net._blocks[i]._block_args.output_filters) for i in LAYERS)
        base = self.identity
        self.identity = EncoderIdentity(
            backend=base.backend,
            model=base.model + "-patches",
            pretrained=base.pretrained,
            dim=self.groups * self.channels,
            weights_sha256=base.weights_sha256,
            preprocessing={
                "size": [self.width, self.height],
                "mean": [0.5, 0.5, 0.5],
                "std": [0.5, 0.5, 0.5],
                "mode": "letterbox",
                "features": "patches",
                "layers": list(LAYERS),
                "grid": list(self.grid),
                "channels": self.channels,
            },
        )

    @property
    def groups(self) -> int:
        """Number of cells per frame (the detector scores each and keeps the worst)."""
        return self.grid[0] * self.grid[1]

    def _prepare(self, images: Sequence[np.ndarray]) -> np.ndarray:
        w, h = self.width, self.height
        batch = np.full((len(images), h, w, 3), 128, np.uint8)
        for i, img in enumerate(images):
            img = as_rgb(img)
            ih, iw = img.shape[:2]
            scale = min(w / iw, h / ih)
            nw, nh = max(1, round(iw * scale)), max(1, round(ih * scale))
            interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            y0, x0 = (h - nh) // 2, (w - nw) // 2
            batch[i, y0 : y0 + nh, x0 : x0 + nw] = cv2.resize(img, (nw, nh), interpolation=interp)
        x = batch.astype(np.float32) / 127.5 - 1.0
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))

    def encode(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """(N, groups * channels) float32: per cell descriptors, row-major over the grid."""
        if len(images) == 0:
            return np.zeros((0, self.dim), np.float32)
        out = []
        for i in range(0, len(images), self.batch_size):
            out.append(self.encode_array(self._prepare(images[i : i + self.batch_size])))
        return np.concatenate(out, axis=0)

    def encode_array(self, x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            t = torch.from_numpy(x).to(self.device)
            net = self.net
            t = net._swish(net._bn0(net._conv_stem(t)))
            taps = []
            for idx, block in enumerate(net._blocks[: max(LAYERS) + 1]):
                t = block(t)
                if idx in LAYERS:
                    taps.append(t)
            gh, gw = self.grid
            feats = [F.adaptive_avg_pool2d(f, (gh, gw)) for f in taps]
            f = torch.cat(feats, dim=1)
            f = F.avg_pool2d(f, 3, stride=1, padding=1, count_include_pad=False)
            f = f.permute(0, 2, 3, 1).reshape(len(f), -1)
            return f.float().cpu().numpy().astype(np.float32, copy=False)

    def _forward_image(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - encode_array overrides
        raise NotImplementedError

    def describe(self, embeddings: np.ndarray, *, top_k: int = 3, prompts=None) -> list[Description]:
        """Patch features carry no class scores: no descriptions."""
        return [Description((), ()) for _ in range(len(embeddings))]
