"""Frame-level detection metrics for labelled videos: ROC-AUC, average precision, equal error rate.

Conventions: scores follow the detectors' (higher = more normal); labels are 1 for anomalous
frames. Anomalous is the positive class, so the metrics rank by ``-score``. scikit-learn does the
computing; this module fixes the conventions and handles single-class inputs, which have no AUC.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from .errors import VlmAnomalyError


@dataclass(frozen=True)
class FrameMetrics:
    """Metrics of one set of scored frames. ``auc``/``ap``/``eer`` are NaN when one class is absent."""

    auc: float
    ap: float
    eer: float
    eer_threshold: float
    frames: int
    anomalous: int

    @property
    def defined(self) -> bool:
        """True when both classes occur, so AUC, AP and EER mean something."""
        return 0 < self.anomalous < self.frames

    def as_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}


def _check(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).ravel()
    if s.shape != y.shape:
        raise VlmAnomalyError(f"{len(s)} scores but {len(y)} labels: they must match frame for frame")
    if not np.all(np.isfinite(s)):
        raise VlmAnomalyError("scores contain NaN or infinite values")
    if not np.all((y == 0) | (y == 1)):
        raise VlmAnomalyError("labels must be 0 (normal) or 1 (anomalous)")
    return s, y.astype(np.int64)


def equal_error_rate(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(EER, score threshold at the EER): where false-positive and miss rates are equal.

    The rates are interpolated linearly between ROC points. Frames scoring below the threshold
    are the ones flagged anomalous.
    """
    s, y = _check(scores, labels)
    if len(np.unique(y)) < 2:
        return float("nan"), float("nan")
    fpr, tpr, thr = roc_curve(y, -s)
    fnr = 1.0 - tpr
    d = fpr - fnr  # increasing from <= 0 to >= 0 along the curve
    i = int(np.searchsorted(d, 0.0))
    i = min(max(i, 1), len(d) - 1)
    d0, d1 = d[i - 1], d[i]
    w = 0.0 if d1 == d0 else (0.0 - d0) / (d1 - d0)
    eer = float(fpr[i - 1] + w * (fpr[i] - fpr[i - 1]))
    t0, t1 = thr[i - 1], thr[i]
    if not np.isfinite(t0):
        t0 = t1
    return eer, float(-(t0 + w * (t1 - t0)))


def frame_metrics(scores: np.ndarray, labels: np.ndarray) -> FrameMetrics:
    """All frame-level metrics at once (e.g. for a labelled test video in the dashboard).

    Example:
        >>> m = frame_metrics(np.array([0.9, 0.8, -0.5, 0.7]), np.array([0, 0, 1, 0]))
        >>> m.auc, m.eer
        (1.0, 0.0)
    """
    s, y = _check(scores, labels)
    eer, eer_t = equal_error_rate(s, y)
    both = 0 < y.sum() < len(y)  # else AUC and AP are undefined
    return FrameMetrics(
        auc=float(roc_auc_score(y, -s)) if both else float("nan"),
        ap=float(average_precision_score(y, -s)) if both else float("nan"),
        eer=eer,
        eer_threshold=eer_t,
        frames=int(len(y)),
        anomalous=int(y.sum()),
    )


def roc_points(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false-positive rate, true-positive rate) of the ROC curve, for plots; empty when the labels
    hold one class (no curve: sklearn's warning about it went to the user's terminal)."""
    s, y = _check(scores, labels)
    if len(np.unique(y)) < 2:
        return np.zeros(0), np.zeros(0)
    fpr, tpr, _ = roc_curve(y, -s)
    return fpr, tpr


MAX_LABEL_BYTES = 16 * 1024 * 1024


def parse_frame_labels(data: bytes | str, *, name: str | None = None) -> np.ndarray:
    """Per-frame 0/1 labels (1 = anomalous) of one video, from what a user has at hand.

    Accepted: a JSON list ``[0, 0, 1, ...]``; a JSON object mapping clip names to such lists (a
    dataset's ``test_labels.json``: the entry named like the video's stem ``name`` is used, or the
    only entry); or plain text with one 0/1 per line or separated by commas/spaces.

    Example:
        >>> parse_frame_labels('{"clip01": [0, 1, 1]}', name="clip01.mp4").tolist()
        [0, 1, 1]
    """
    import json
    from pathlib import Path

    if isinstance(data, bytes):
        if len(data) > MAX_LABEL_BYTES:
            raise VlmAnomalyError(f"labels file is over {MAX_LABEL_BYTES // 2**20} MB")
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise VlmAnomalyError("labels file is not text (JSON list, JSON object or 0/1 per line)") from None
    text = data.strip()
    if not text:
        raise VlmAnomalyError("labels file is empty")
    if text[0] in "[{":
        try:
            obj = json.loads(text)
        except ValueError as exc:
            raise VlmAnomalyError(f"labels file is not valid JSON: {exc}") from None
        except RecursionError:  # '[[[[...': nested deeper than the parser goes
            raise VlmAnomalyError("labels file is not valid JSON: nested too deeply") from None
        if isinstance(obj, dict):
            stem = Path(name).stem if name else None
            if stem is not None and stem in obj:
                obj = obj[stem]
            elif len(obj) == 1:
                obj = next(iter(obj.values()))
            else:
                raise VlmAnomalyError(f"labels file holds {len(obj)} clips and none is named {stem!r}")
        values = obj
    else:
        values = text.replace(",", " ").split()
    if not isinstance(values, list) or not values:
        raise VlmAnomalyError("labels must be a non-empty list of 0/1, one per frame")
    try:
        y = np.array([int(v) for v in values], dtype=np.int64)
    except (TypeError, ValueError):
        raise VlmAnomalyError("labels must be 0 (normal) or 1 (anomalous), one per frame") from None
    if not np.all((y == 0) | (y == 1)):
        raise VlmAnomalyError("labels must be 0 (normal) or 1 (anomalous), one per frame")
    return y
