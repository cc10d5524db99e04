"""Value types that travel between layers (no behaviour beyond small derived properties), and
the time stamp that models, jobs and stored records carry.

Why a module of its own: the pipeline, the stores, the detectors and the shells all pass these
around; living low in the import graph, any of them may import them without pulling a service in.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field

import numpy as np


def utc_stamp() -> str:
    """Now in UTC to the second, ISO 8601: how models, jobs and stored records say when."""
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


@dataclass
class EmbeddedVideo:
    """The sampled frames of one source with their whole-frame embeddings (None: a detector that
    embeds nothing, e.g. motion alone)."""

    source: str
    sha256: str
    frame_indices: np.ndarray
    timestamps: np.ndarray
    embeddings: np.ndarray | None
    from_cache: bool = False

    @property
    def n_frames(self) -> int:
        return len(self.frame_indices)

    @property
    def duration_s(self) -> float:
        return float(self.timestamps[-1]) if len(self.timestamps) else 0.0


@dataclass
class FrameScores:
    """Scores of frames: what every detector returns, for a whole source offline or a batch of live
    frames (higher = more normal, below the model's threshold anomalous).

    ``explanations``: one dict per frame (``"text"`` is what a person reads), or empty when the
    detector explains nothing. ``embeddings``: one whole-frame embedding per frame for zero-shot
    descriptions and the nearest normal frame, or None when the detector embeds nothing.
    """

    source: str
    frame_indices: np.ndarray
    timestamps: np.ndarray
    scores: np.ndarray
    explanations: list[dict] = field(default_factory=list)
    embeddings: np.ndarray | None = field(default=None, repr=False)
    #: the features came from a cache, not from decoding the source again
    from_cache: bool = False
    #: seconds per stage, as the detector measured them
    timing: dict = field(default_factory=dict)

    @property
    def n_frames(self) -> int:
        return len(self.scores)


@dataclass(frozen=True)
class Gap:
    """Time during which a source gave no frames (stall, drop, failed reconnection, a hole in a
    file's timestamps): live monitoring and offline results report it, and nothing is smoothed,
    and no incident runs, across it."""

    source: str
    start_time: float  # source time of the last frame before the gap
    end_time: float  # source time of the first frame after it
    reason: str
    reconnects: int

    @property
    def missed_s(self) -> float:
        return max(0.0, self.end_time - self.start_time)

    @property
    def ends_event(self) -> str:
        """Why an incident running into the gap ended there."""
        return f"missed {self.missed_s:.1f} s of the source: {self.reason}"

    def missed_samples(self, interval_ms: int) -> int:
        """Samples that should have been taken during the gap."""
        if interval_ms <= 0:
            return 0
        return max(0, int(self.missed_s * 1000 // interval_ms) - 1)

    def as_dict(self) -> dict:
        return {
            "source": self.source,
            "start_time": round(self.start_time, 3),
            "end_time": round(self.end_time, 3),
            "missed_s": round(self.missed_s, 3),
            "reason": self.reason,
            "reconnects": self.reconnects,
        }
