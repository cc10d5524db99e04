"""Per-frame scoring results, their incidents (as live monitoring builds them), and CSV/JSON exports."""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_write_text
from .config import EventSettings, Settings
from .detection_metrics import FrameMetrics, frame_metrics
from .errors import VlmAnomalyError
from .incidents import EventBuilder, Incident, replay
from .redact import source_slug
from .smoothing import moving_average
from .values import FrameScores, Gap

#: score bands of a model without its own calibration (the One-Class SVM's decision scale:
#: higher = more normal, around 0 at the boundary it learnt)
SCORE_BANDS = (
    ("very normal", 1.0, float("inf")),
    ("normal", 0.0, 1.0),
    ("borderline", -1.0, 0.0),
    ("strong anomaly", float("-inf"), -1.0),
)

#: score bands of a model calibrated on held-out normal clips (the motion detector). Its scores are
#: built so that the threshold, the (1 - target false-alarm) quantile of the held-out normal frames'
#: smoothed scores, is 0 and their median is +1: above +1 scores the better half of normal frames,
#: between 0 and +1 the rest of them but the target share, below 0 what the model flags.
CALIBRATED_BANDS = (
    ("typical normal", 1.0, float("inf")),
    ("normal", 0.0, 1.0),
    ("anomalous", float("-inf"), 0.0),
)

Bands = tuple[tuple[str, float, float], ...]


def score_bands(extra: Mapping[str, Any] | None) -> Bands:
    """The bands of a model's score scale, from what the model recorded about its calibration
    (``AnomalyModel.extra``): calibrated models get the bands of their held-out normal frames."""
    return CALIBRATED_BANDS if extra and extra.get("target_false_alarm") is not None else SCORE_BANDS


def output_names(sources: Sequence[str | Path]) -> list[str]:
    """One file name (without suffix) per source for a folder of results, distinct for each source.

    Why not the base name alone: ``a/clip.mp4`` and ``b/clip.mp4`` (or a dataset's ``train/01`` and
    ``test/01``) would overwrite each other's results. A unique base name is kept as it is; sources
    sharing one are named by their path below the folder they have in common, separators as
    ``__`` (``a__clip.mp4``, ``train__01``); a source listed twice gets ``-2``, ``-3``, ...

    Example:
        >>> output_names(["x/a/clip.mp4", "x/b/clip.mp4", "x/c/other.mp4"])
        ['a__clip.mp4', 'b__clip.mp4', 'other.mp4']
    """
    # a stream URL is named by its slug: never by its user info or secret query values
    urls = {i for i, s in enumerate(sources) if re.match(r"^[A-Za-z][A-Za-z0-9+.\-]*://", str(s))}
    paths = [Path(os.path.abspath(s)) for s in sources]  # lexical: a symlink keeps its own name
    names = [source_slug(s) if i in urls else p.name for i, (s, p) in enumerate(zip(sources, paths))]
    groups: dict[str, list[int]] = defaultdict(list)
    for i, name in enumerate(names):
        if i not in urls:
            groups[name].append(i)
    for members in groups.values():
        if len(members) > 1:
            common = Path(os.path.commonpath([paths[i].parent for i in members]))
            for i in members:
                names[i] = "__".join(paths[i].relative_to(common).parts)
    taken: set[str] = set()
    unique = []
    for name in names:
        base = re.sub(r"[^A-Za-z0-9._-]+", "_", name).lstrip(".") or "source"
        name, k = base, 1
        while name in taken:
            k += 1
            name = f"{base}-{k}"
        taken.add(name)
        unique.append(name)
    return unique


def band(score: float, bands: Bands = SCORE_BANDS) -> str:
    """The name of the band ``score`` falls in (the lowest band's for anything below them all)."""
    for name, lo, hi in bands:
        if lo <= score < hi:
            return name
    return min(bands, key=lambda b: b[1])[0]


def true_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) positions of each run of True values, e.g. anomalous segments or labelled spans.

    Example:
        >>> true_runs(np.array([0, 1, 1, 0, 1], bool))
        [(1, 2), (4, 4)]
    """
    m = np.asarray(mask, bool).astype(np.int8)
    edges = np.diff(np.concatenate([[0], m, [0]]))
    return [(int(a), int(b) - 1) for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1))]


def gap_breaks(timestamps: np.ndarray, gaps: Sequence[Gap]) -> list[int]:
    """Positions of the first frame after each gap (where no smoothing window reaches across)."""
    return [int(np.searchsorted(timestamps, g.end_time - 1e-6)) for g in gaps]


@dataclass
class ScoreResult:
    """Everything a user checks after scoring one video.

    ``labels`` are True for anomalous frames (centred smoothed score below the threshold); change
    the threshold with :meth:`relabel` without re-encoding anything. :meth:`incidents` are the
    events live monitoring reports for the same scores (the ``events`` settings, sampled every
    ``interval_ms``). ``gaps``: holes in the source's timestamps, as ``watch`` reports them; no
    smoothing window and no incident reaches across one.
    """

    source: str
    model: str
    frame_indices: np.ndarray
    timestamps: np.ndarray
    raw_scores: np.ndarray
    smoothed_scores: np.ndarray
    threshold: float
    smoothing_window: int
    descriptions: list[str] = field(default_factory=list)
    confidences: list[float] = field(default_factory=list)
    embeddings: np.ndarray | None = field(default=None, repr=False)
    timing: dict = field(default_factory=dict)
    #: per-frame explanations (detectors that explain): what fired, where, nearest normal
    explanations: list[dict] = field(default_factory=list)
    #: sampling of the scored frames (ms between samples, 0 = every frame)
    interval_ms: int = 0
    #: how scores become events (default: the default event settings)
    events: EventSettings | None = field(default=None, repr=False)
    gaps: list[Gap] = field(default_factory=list)

    @classmethod
    def of(cls, res: FrameScores, *, model: str, threshold: float, smoothing_window: int,
           descriptions: list[str] | None = None, confidences: list[float] | None = None,
           timing: dict | None = None, interval_ms: int = 0, events: EventSettings | None = None,
           gaps: Sequence[Gap] = ()) -> ScoreResult:
        """The result of a detector's :class:`~vlm_anomaly.values.FrameScores` under a model's labelling."""
        raw = np.asarray(res.scores, np.float64)
        smooth = moving_average(raw, smoothing_window, breaks=gap_breaks(res.timestamps, gaps))
        return cls(res.source, model, res.frame_indices, res.timestamps, raw, smooth, threshold, smoothing_window,
                   list(descriptions or []), list(confidences or []), res.embeddings, dict(timing or {}),
                   list(res.explanations), interval_ms, events, list(gaps))

    @property
    def breaks(self) -> list[int]:
        """Positions of the first frame after each gap."""
        return gap_breaks(self.timestamps, self.gaps)

    @property
    def labels(self) -> np.ndarray:
        return self.smoothed_scores < self.threshold

    @property
    def n_frames(self) -> int:
        return len(self.raw_scores)

    @property
    def n_anomalies(self) -> int:
        return int(self.labels.sum())

    @property
    def anomaly_rate(self) -> float:
        return self.n_anomalies / self.n_frames if self.n_frames else 0.0

    def relabel(self, threshold: float, window: int | None = None) -> ScoreResult:
        """A copy with another threshold (and optionally smoothing window), no re-encoding."""
        w = window or self.smoothing_window
        smooth = (self.smoothed_scores if w == self.smoothing_window
                  else moving_average(self.raw_scores, w, breaks=self.breaks))
        return replace(self, smoothed_scores=smooth, threshold=threshold, smoothing_window=w)

    def frame_labels(self, labels: np.ndarray) -> np.ndarray:
        """The ground truth of the scored frames, from per-*source*-frame labels (sampling skips frames)."""
        y = np.asarray(labels).ravel()
        idx = np.asarray(self.frame_indices, dtype=np.int64)
        if len(idx) and int(idx.max()) >= len(y):
            raise VlmAnomalyError(f"{len(y)} labels, but frame {int(idx.max())} was scored: one label per "
                                  "frame of the video is needed")
        return y[idx]

    def evaluate(self, labels: np.ndarray) -> FrameMetrics:
        """Frame-level AUC, AP and EER of the smoothed scores against per-source-frame ``labels``.

        Example:
            >>> m = result.evaluate(parse_frame_labels(Path("labels.json").read_bytes()))  # doctest: +SKIP
            >>> m.auc  # doctest: +SKIP
            0.97
        """
        return frame_metrics(self.smoothed_scores, self.frame_labels(labels))

    def incidents(self) -> list[Incident]:
        """The incidents of these scores, replayed through the live event builder: the same ones
        ``watch`` and the Live page report for the same source."""
        events = self.events or Settings().events
        builder = EventBuilder.from_settings(events, threshold=self.threshold, model_window=self.smoothing_window,
                                             interval_ms=self.interval_ms)
        return replay(builder, self.timestamps, self.raw_scores, self.gaps)

    def named(self, name: str) -> ScoreResult:
        """This result with its source (and its gaps') called ``name``: what a user who uploaded a
        video knows it by, not the upload's place on the server."""
        return replace(self, source=name, gaps=[replace(g, source=name) for g in self.gaps])

    def summary(self) -> dict:
        return {
            "source": self.source,
            "model": self.model,
            "frames": self.n_frames,
            "anomalies": self.n_anomalies,
            "anomaly_rate": round(self.anomaly_rate, 6),
            "threshold": self.threshold,
            "smoothing_window": self.smoothing_window,
            "lowest_score": round(float(self.smoothed_scores.min()), 6) if self.n_frames else None,
            "mean_score": round(float(self.raw_scores.mean()), 6) if self.n_frames else None,
            "incidents": [i.as_dict() for i in sorted(self.incidents(), key=lambda i: i.worst_score)],
            "gaps": [g.as_dict() for g in self.gaps],
            "missed_s": round(sum(g.missed_s for g in self.gaps), 3),
            "timing": self.timing,
        }

    def rows(self) -> list[dict]:
        lab = self.labels
        rows = [
            {
                "index": int(self.frame_indices[i]),
                "time": round(float(self.timestamps[i]), 3),
                "raw_score": round(float(self.raw_scores[i]), 6),
                "smoothed_score": round(float(self.smoothed_scores[i]), 6),
                "label": "anomaly" if lab[i] else "normal",
                "description": self.descriptions[i] if i < len(self.descriptions) else "",
                "confidence": round(float(self.confidences[i]), 4) if i < len(self.confidences) else None,
            }
            for i in range(self.n_frames)
        ]
        for r, e in zip(rows, self.explanations):
            r["explanation"] = e
        for k, g in zip(self.breaks, self.gaps):  # the frame after a gap says what was missed before it
            if k < len(rows):
                rows[k]["gap_before_s"] = round(g.missed_s, 3)
        return rows

    def to_csv(self) -> str:
        buf = io.StringIO()
        fields = ["index", "time", "raw_score", "smoothed_score", "label", "description", "confidence"]
        if self.explanations:
            fields.append("explanation")
        if self.gaps:
            fields.append("gap_before_s")
        w = csv.DictWriter(buf, fieldnames=fields)
        w.writeheader()
        for r in self.rows():
            if "explanation" in r:
                r["explanation"] = r["explanation"].get("text", "")
            w.writerow(r)
        return buf.getvalue()

    def as_dict(self) -> dict:
        """The summary and every frame's row: what ``score --json`` writes and an API score job returns."""
        return {"summary": self.summary(), "frames": self.rows()}

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2)

    def write_csv(self, path: str | Path) -> None:
        atomic_write_text(path, self.to_csv())

    def write_json(self, path: str | Path) -> None:
        atomic_write_text(path, self.to_json())
