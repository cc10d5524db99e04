"""Value types that travel between layers (no behaviour beyond small derived properties).

Why a module of its own: the pipeline, the stores, the detectors and the shells all pass these
around; living low in the import graph, any of them may import them without pulling a service in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .video.frames import Frame


@dataclass
class EmbeddedVideo:
    """Embeddings of the sampled frames of one source."""

    source: str
    sha256: str
    frame_indices: np.ndarray
    timestamps: np.ndarray
    embeddings: np.ndarray
    from_cache: bool = False
    frames: list[Frame] | None = field(default=None, repr=False)

    @property
    def n_frames(self) -> int:
        return len(self.embeddings)

    @property
    def duration_s(self) -> float:
        return float(self.timestamps[-1]) if len(self.timestamps) else 0.0
