"""Small value objects that travel through the pipeline."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

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
    #: seconds of video a file's header declares (0.0: none), to see a file that ends short
    length_s: float = 0.0

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
    #: an earlier source frame (RGB), when asked for with ``with_previous`` (motion features): the
    #: newest one at least :data:`PREVIOUS_GAP_S` older (see :class:`FrameBefore`)
    previous: np.ndarray | None = field(default=None, repr=False)
    #: when ``previous`` was taken (seconds), so motion can be measured per second, not per frame
    previous_timestamp: float | None = None

    @property
    def name(self) -> str:
        return f"{Path(self.source).name}@{self.timestamp:.2f}s"


#: ``Frame.previous`` is the newest source frame at least this much older than the sample. Why not
#: the frame just before: at 15, 25 or 30 fps that one is 33-67 ms old, too close to measure motion
#: against, so motion fell back to the previous *sample* (0.5 s back at the default sampling) while
#: training, sampled every 100 ms, measured it over about 0.1 s: near the camera a walker's half
#: second of motion is an "unusual shape". 0.09 s keeps the frame just before at 10 fps and below.
PREVIOUS_GAP_S = 0.09

T = TypeVar("T")


class FrameBefore(Generic[T]):
    """From a stream of (time, item), the newest item at least ``gap_s`` older than a given time
    (else the oldest one held), holding only the few items a later time may still need."""

    def __init__(self, gap_s: float = PREVIOUS_GAP_S):
        self.gap_s = gap_s
        self._buf: deque[tuple[float, T]] = deque()

    def before(self, t: float) -> tuple[float, T] | None:
        best = None
        for tb, item in reversed(self._buf):
            if tb >= t:
                continue
            best = (tb, item)
            if t - tb >= self.gap_s - 1e-6:
                break
        return best

    def add(self, t: float, item: T) -> None:
        self._buf.append((t, item))
        while len(self._buf) >= 2 and t - self._buf[1][0] >= self.gap_s - 1e-6:
            self._buf.popleft()
