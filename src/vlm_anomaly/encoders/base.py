"""The encoder interface: frames in, L2-normalised float32 embeddings out, in batches."""

from __future__ import annotations

import hashlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError
from .identity import Description, EncoderIdentity
from .preprocess import Preprocessing
from .runtime import RUNTIMES, build_onnx_tower

log = logging.getLogger(__name__)


def file_sha256(path: str | Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class Encoder(ABC):
    """Embeds RGB frames. Subclasses set ``identity`` and ``preprocess`` and implement the towers.

    Example:
        >>> enc = create_encoder("efficientnet")  # doctest: +SKIP
        >>> enc.encode([frame.image]).shape  # doctest: +SKIP
        (1, 1280)
    """

    identity: EncoderIdentity
    preprocess: Preprocessing
    device: torch.device
    batch_size: int = 16
    #: where the image forward runs: "torch", "onnx" or "onnx-int8" (see :meth:`use_runtime`)
    runtime: str = "torch"
    #: whether int8 quantisation of the image tower keeps its embeddings (cosine >= 0.99)
    int8_supported: bool = False
    _image_runner: Callable[[np.ndarray], np.ndarray] | None = None

    @property
    def dim(self) -> int:
        return self.identity.dim

    @property
    def cache_key(self) -> str:
        """Key of this encoder's embeddings in caches: the identity, plus the runtime if lossy.

        Why: torch and ONNX fp32 are the same encoder (same identity, same embeddings to ~1e-6), but
        int8 embeddings differ slightly, so they are cached apart.
        """
        return self.identity.key + ("-int8" if self.runtime == "onnx-int8" else "")

    def image_module(self) -> torch.nn.Module:
        """A float32 CPU module mapping preprocessed pixels to raw image features (for export)."""
        raise NotImplementedError(f"{type(self).__name__} cannot be exported")

    def use_runtime(self, runtime: str = "torch", *, cache_dir: str | Path | None = None,
                    threads: int = 0) -> Encoder:
        """Run the image forward in ``runtime``: "torch", "onnx" (fp32) or "onnx-int8".

        The ONNX export is cached per encoder identity under ``<cache_dir>/onnx/``. On CUDA the
        PyTorch fp16 path is kept (it is the faster one there).
        """
        if runtime not in RUNTIMES:
            raise ConfigError(f"unknown runtime {runtime!r}; choose from {', '.join(RUNTIMES)}")
        if runtime != "torch" and self.device.type != "cpu":
            log.warning("runtime %s is for CPUs: using PyTorch on %s", runtime, self.device)
            runtime = "torch"
        if runtime == "onnx-int8" and not self.int8_supported:
            log.warning("int8 is not accurate for %s on this runtime: using the ONNX fp32 export",
                        self.identity.label)
            runtime = "onnx"
        if runtime == "torch":
            self._image_runner = None
        else:
            self._image_runner = build_onnx_tower(
                self.image_module, self.preprocess.size, self.identity.key,
                quantized=runtime == "onnx-int8", cache_dir=cache_dir, threads=threads)
        self.runtime = runtime
        return self

    @property
    def supports_text(self) -> bool:
        return False

    @property
    def groups(self) -> int:
        """Feature groups per embedding (1 = one whole-frame vector; >1 = the whole frame and its tiles)."""
        return 1

    def encode(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Embed frames in batches of ``batch_size``: (N, dim) float32, rows of unit length."""
        if len(images) == 0:
            return np.zeros((0, self.dim), np.float32)
        out = []
        for i in range(0, len(images), self.batch_size):
            x = self.preprocess(images[i : i + self.batch_size])
            out.append(self.encode_array(x))
        return np.concatenate(out, axis=0)

    def encode_array(self, x: np.ndarray) -> np.ndarray:
        """Embed an already preprocessed batch (N, 3, S, S) float32; normalised (N, dim)."""
        if self._image_runner is not None:
            feats = np.asarray(self._image_runner(x), np.float32)
            return feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)
        with torch.inference_mode():
            t = torch.from_numpy(x)
            if self.device.type == "cuda":  # pinned memory: the copy overlaps with the host
                t = t.pin_memory().to(self.device, non_blocking=True)
            feats = self._forward_image(t)
            feats = feats.float()
            feats = feats / feats.norm(dim=-1, keepdim=True).clamp_min(1e-12)
            return feats.cpu().numpy().astype(np.float32, copy=False)

    @abstractmethod
    def _forward_image(self, x: torch.Tensor) -> torch.Tensor:
        """Raw image features of a preprocessed batch."""

    @abstractmethod
    def describe(self, embeddings: np.ndarray, *, top_k: int = 3) -> list[Description]:
        """Zero-shot descriptions of frames from their embeddings (no second image pass)."""


def topk_descriptions(probs: np.ndarray, labels: Sequence[str], top_k: int) -> list[Description]:
    k = min(top_k, probs.shape[1])
    idx = np.argsort(-probs, axis=1)[:, :k]
    return [
        Description(tuple(labels[j] for j in row), tuple(float(probs[i, j]) for j in row))
        for i, row in enumerate(idx)
    ]
