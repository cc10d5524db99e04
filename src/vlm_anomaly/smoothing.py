"""Temporal smoothing of per-frame scores.

Why two variants: offline scoring can look both ways (centred window, no lag); live monitoring
cannot see the future, so it uses a causal (trailing) window - counted in samples (the window the
model's threshold was calibrated with) or spanning a bounded time (what ends live events, so they
end soon after the scene returns to normal at any sampling interval).
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Sequence

import numpy as np


def _runs(n: int, breaks: Sequence[int]) -> list[tuple[int, int]]:
    """The (start, end) of each run of ``n`` frames between ``breaks`` (no window reaches across one)."""
    return list(itertools.pairwise([0, *sorted({int(b) for b in breaks if 0 < b < n}), n]))


def moving_average(scores: np.ndarray, window: int = 5, *, causal: bool = False,
                   breaks: Sequence[int] = ()) -> np.ndarray:
    """Moving average with a shrinking window at the edges (no padding artefacts). ``breaks``:
    positions where a new run starts (the first frame after a gap): no window reaches across one.

    Example:
        >>> moving_average(np.array([0.0, 0.0, 3.0, 0.0, 0.0]), 3).round(2).tolist()
        [0.0, 1.0, 1.0, 1.0, 0.0]
        >>> moving_average(np.array([0.0, 0.0, 3.0, 0.0, 0.0]), 3, breaks=[2]).round(2).tolist()
        [0.0, 0.0, 1.5, 1.0, 0.0]
    """
    x = np.asarray(scores, dtype=np.float64)
    n = len(x)
    runs = _runs(n, breaks)
    if len(runs) > 1:
        return np.concatenate([moving_average(x[a:b], window, causal=causal) for a, b in runs])
    if n == 0 or window <= 1:
        return x.copy()
    c = np.concatenate([[0.0], np.cumsum(x)])
    idx = np.arange(n)
    if causal:
        lo, hi = np.maximum(0, idx - window + 1), idx + 1
    else:
        half = window // 2
        lo = np.maximum(0, idx - half)
        hi = np.minimum(n, idx + (window - half))
    return (c[hi] - c[lo]) / (hi - lo)


class CausalSmoother:
    """Streaming version of the causal moving average, one score at a time."""

    def __init__(self, window: int = 5):
        self.window = max(1, int(window))
        self._buf: deque[float] = deque(maxlen=self.window)

    def update(self, score: float) -> float:
        self._buf.append(float(score))
        return sum(self._buf) / len(self._buf)

    @property
    def full(self) -> bool:
        """The last value averaged a whole window (not the few scores since the start or a reset)."""
        return len(self._buf) == self.window

    def reset(self) -> None:
        self._buf.clear()


def span_window(span_s: float, interval_s: float, max_window: int) -> int:
    """Samples in a causal window of about ``span_s`` seconds at one sample per ``interval_s``
    (1 to ``max_window``; an unknown interval, 0, gives ``max_window``).

    Why in seconds: a window counted in samples lasts longer the coarser the sampling (5 samples
    are 0.5 s at 100 ms but 5 s at 1000 ms), and so does everything that waits for it to clear.

    Example:
        >>> [span_window(1.0, iv, 5) for iv in (0.1, 0.25, 0.5, 1.0, 2.0)]
        [5, 4, 2, 1, 1]
    """
    max_window = max(1, int(max_window))
    if interval_s <= 0:
        return max_window
    return max(1, min(max_window, int(math.floor(span_s / interval_s + 0.5))))


class SpanSmoother:
    """Causal moving average over about ``span_s`` seconds of samples (at most ``max_window``).

    ``interval_s``: the sampling interval; when unknown (every frame of a source whose rate is not
    known up front) it is the median spacing of the samples seen since the last :meth:`reset`.

    Example:
        >>> sm = SpanSmoother(1.0, 5, interval_s=0.5)
        >>> [sm.update(i * 0.5, s) for i, s in enumerate([4.0, 0.0, 2.0])], sm.window
        ([4.0, 2.0, 1.0], 2)
    """

    def __init__(self, span_s: float, max_window: int, *, interval_s: float | None = None):
        if span_s < 0:
            raise ValueError(f"smoothing span must not be negative, got {span_s}")
        self.span_s = float(span_s)
        self.max_window = max(1, int(max_window))
        self.interval_s = interval_s if interval_s and interval_s > 0 else None
        self._times: deque[float] = deque(maxlen=self.max_window)
        self._buf: deque[float] = deque(maxlen=self.max_window)

    @property
    def window(self) -> int:
        """Samples averaged now."""
        interval = self.interval_s
        if interval is None:
            if len(self._times) < 2:
                return 1
            interval = float(np.median(np.diff(np.asarray(self._times))))
        return span_window(self.span_s, interval, self.max_window)

    def update(self, t: float, score: float) -> float:
        self._times.append(float(t))
        self._buf.append(float(score))
        n = min(self.window, len(self._buf))
        return sum(itertools.islice(reversed(self._buf), n)) / n

    def reset(self) -> None:
        self._times.clear()
        self._buf.clear()


def worst_of(window: Sequence[tuple[float, float, dict]], own: dict, threshold: float = 0.0) -> dict:
    """``own`` when the window's mean score is normal (at least ``threshold``), else the explanation
    of the window's lowest-scoring frame, marked with that frame's time (``from_time``).
    ``window``: (score, time, explanation) of the frames a smoothed score averages."""
    if not window or np.mean([w[0] for w in window]) >= threshold:
        return own
    _, t, e = min(window, key=lambda w: w[0])
    return e if e is own else {**e, "from_time": round(float(t), 3)}


def agreeing(scores: np.ndarray, timestamps: np.ndarray, explanations: list[dict], window: int, *,
             threshold: float = 0.0, breaks: Sequence[int] = ()) -> list[dict]:
    """Explanations that agree with the labels: a frame whose centred smoothed score (as offline
    labels smooth, no window across a gap: ``breaks``) is below ``threshold`` is explained by the
    lowest-scoring frame of that window - what made the smoothed score low - not by itself, which
    may look normal; never by a frame on the other side of a gap."""
    n = len(scores)
    if n == 0 or window <= 1 or len(explanations) != n:
        return list(explanations)
    smooth = moving_average(scores, window, breaks=breaks)
    half = window // 2
    out = []
    for a, b in _runs(n, breaks):
        for j in range(a, b):
            if smooth[j] >= threshold:
                out.append(explanations[j])
                continue
            lo, hi = max(a, j - half), min(b, j + window - half)
            w = [(float(scores[i]), float(timestamps[i]), explanations[i]) for i in range(lo, hi)]
            out.append(worst_of(w, explanations[j], threshold))
    return out
