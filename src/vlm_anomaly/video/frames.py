"""Small value objects that travel through the pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class VideoInfo:
    """What is known about a source before decoding all of it.

    ``fps`` and ``frame_count`` may be estimates (0 when unknown): containers lie, streams have no end.
    """

    source: str
    kind: str  # "file", "folder", "stream", "webcam"
    width: int
    height: int
    fps: float
    frame_count: int
    codec: str = ""

    @property
    def duration_s(self) -> float:
        return self.frame_count / self.fps if self.fps > 0 and self.frame_count > 0 else 0.0


@dataclass
class Frame:
    """One sampled frame: RGB ``uint8`` array of shape (H, W, 3), its index in the source and time."""

    index: int
    timestamp: float
    image: np.ndarray = field(repr=False)
    source: str = ""
    #: the source frame just before this one (RGB), when asked for with ``with_previous`` (motion features)
    previous: np.ndarray | None = field(default=None, repr=False)
    #: when ``previous`` was taken (seconds), so motion can be measured per second, not per frame
    previous_timestamp: float | None = None

    @property
    def name(self) -> str:
        return f"{Path(self.source).name}@{self.timestamp:.2f}s"
