"""The encoder interface: frames in, L2-normalised float32 embeddings out, in batches."""

from __future__ import annotations

import hashlib
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import EncoderMismatchError
from .preprocess import Preprocessing

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EncoderIdentity:
    """Everything that makes two encoders produce comparable embeddings; saved with each model."""

    backend: str
    model: str
    pretrained: str
    dim: int
    weights_sha256: str = ""
    preprocessing: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "backend": self.backend,
            "model": self.model,
            "pretrained": self.pretrained,
            "dim": self.dim,
            "weights_sha256": self.weights_sha256,
            "preprocessing": self.preprocessing,
        }

    @classmethod
    def from_dict(cls, d: dict) -> EncoderIdentity:
        return cls(
            backend=str(d["backend"]),
            model=str(d["model"]),
            pretrained=str(d.get("pretrained", "")),
            dim=int(d["dim"]),
            weights_sha256=str(d.get("weights_sha256", "")),
            preprocessing=dict(d.get("preprocessing", {})),
        )

    @property
    def key(self) -> str:
        """Short stable hash, used in cache keys."""
        return hashlib.sha256(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()[:16]

    @property
    def label(self) -> str:
        return f"{self.backend}:{self.model}/{self.pretrained}"

    def check_compatible(self, other: EncoderIdentity) -> None:
        """Raise :class:`EncoderMismatchError` if embeddings of ``other`` cannot be scored by self."""
        problems = []
        for name in ("backend", "model", "pretrained", "dim"):
            a, b = getattr(self, name), getattr(other, name)
            if a != b:
                problems.append(f"{name} {b!r} != {a!r}")
        if self.weights_sha256 and other.weights_sha256 and self.weights_sha256 != other.weights_sha256:
            problems.append(f"different weights file (sha256 {other.weights_sha256[:12]} != "
                            f"{self.weights_sha256[:12]})")
        if self.preprocessing and other.preprocessing and self.preprocessing != other.preprocessing:
            keys = sorted(set(self.preprocessing) | set(other.preprocessing))
            diff = [f"{k} {other.preprocessing.get(k)!r} != {self.preprocessing.get(k)!r}"
                    for k in keys if self.preprocessing.get(k) != other.preprocessing.get(k)]
            problems.append(f"different preprocessing ({', '.join(diff)})")
        if problems:
            raise EncoderMismatchError(
                f"model was trained with encoder {self.label} (dim {self.dim}) but the current "
                f"encoder differs: {'; '.join(problems)} (current != model); scoring needs the "
                "encoder the model was trained with"
            )


@dataclass(frozen=True)
class Description:
    """Top-k zero-shot labels of one frame with their probabilities."""

    labels: tuple[str, ...]
    probs: tuple[float, ...]

    @property
    def text(self) -> str:
        return self.labels[0] if self.labels else ""

    @property
    def confidence(self) -> float:
        return self.probs[0] if self.probs else 0.0


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

    @property
    def dim(self) -> int:
        return self.identity.dim

    @property
    def supports_text(self) -> bool:
        return False

    @property
    def groups(self) -> int:
        """Feature groups per embedding (1 = one whole-frame vector; >1 = tiles or patches)."""
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
        with torch.inference_mode():
            t = torch.from_numpy(x).to(self.device)
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

    def check_embeddings(self, embeddings: np.ndarray) -> None:
        if embeddings.ndim != 2 or embeddings.shape[1] != self.dim:
            raise EncoderMismatchError(
                f"embeddings of shape {embeddings.shape} do not match encoder dim {self.dim}"
            )


def topk_descriptions(probs: np.ndarray, labels: Sequence[str], top_k: int) -> list[Description]:
    k = min(top_k, probs.shape[1])
    idx = np.argsort(-probs, axis=1)[:, :k]
    return [
        Description(tuple(labels[j] for j in row), tuple(float(probs[i, j]) for j in row))
        for i, row in enumerate(idx)
    ]


def softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=1, keepdims=True)
