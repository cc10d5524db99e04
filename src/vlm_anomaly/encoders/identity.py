"""What identifies an encoder's embeddings, and a frame's zero-shot description: plain data.

Kept apart from :mod:`.base` (which needs PyTorch) so that reading a saved model's metadata,
listing models and the model store never import PyTorch.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

from ..errors import EncoderMismatchError


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
        return asdict(self)

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
