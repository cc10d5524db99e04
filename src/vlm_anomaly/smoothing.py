"""Temporal smoothing of per-frame scores.

Why two variants: offline scoring can look both ways (centred window, no lag); live monitoring
cannot see the future, so it uses a causal (trailing) window.
"""

from __future__ import annotations

from collections import deque

import numpy as np


def moving_average(scores: np.ndarray, window: int = 5, *, causal: bool = False) -> np.ndarray:
    """Moving average with a shrinking window at the edges (no padding artefacts).

    Example:
        >>> moving_average(np.array([0.0, 0.0, 3.0, 0.0, 0.0]), 3).round(2).tolist()
        [0.0, 1.0, 1.0, 1.0, 0.0]
    """
    x = np.asarray(scores, dtype=np.float64)
    n = len(x)
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

    def reset(self) -> None:
        self._buf.clear()
