"""The "encoder" of models that embed nothing (motion models): no network, no weights, no text.

Why: interfaces ask every model for its encoder (prompts, descriptions, caches); a motion model
answers with this one instead of loading a network it never uses.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .identity import Description, EncoderIdentity

#: what a model that embeds nothing records as its encoder
NULL_IDENTITY = EncoderIdentity(backend="motion", model="dis-cells", pretrained="", dim=1)


class NullEncoder:
    """Duck-typed :class:`~vlm_anomaly.encoders.base.Encoder` with a one-dimensional zero embedding."""

    identity = NULL_IDENTITY
    runtime = "none"
    supports_text = False
    groups = 1
    batch_size = 16

    @property
    def dim(self) -> int:
        return 1

    @property
    def cache_key(self) -> str:
        return self.identity.key

    def encode(self, images: Sequence[np.ndarray]) -> np.ndarray:
        return np.zeros((len(images), 1), np.float32)

    def describe(self, embeddings: np.ndarray, *, top_k: int = 3, **_) -> list[Description]:
        return [Description((), ()) for _ in range(len(embeddings))]

    def check_embeddings(self, embeddings: np.ndarray) -> None:
        pass
