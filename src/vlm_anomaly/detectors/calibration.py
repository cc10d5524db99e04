"""The project's one robust-scaling module: robust z-scores of distances and per-feature scales.

Why robust (median and interquartile range, not mean and standard deviation): a few unusual
training frames must not stretch the scale that decides what counts as unusual. Why calibrate at
all: distances of different features live on different scales; each becomes a z-score measured
on *held-out* normal data (a bank without the frame's own clip), so the scale reflects how far
new normal data falls, not the zero distance of a memorised frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: interquartile range of a standard normal distribution: IQR / this = a robust standard deviation
IQR_PER_SD = 1.349


def robust_scale(X: np.ndarray) -> np.ndarray:
    """Per-column robust spread of (n, d) ``X``: IQR / 1.349, the standard deviation where the IQR
    is (near) zero, 1 where both are: divisors that never blow noise up."""
    if len(X) == 0:
        return np.ones(X.shape[1])
    q1, q3 = np.percentile(X, [25, 75], axis=0)
    s = (q3 - q1) / IQR_PER_SD
    s = np.where(s > 1e-6, s, X.std(0))
    return np.where(s > 1e-6, s, 1.0)


@dataclass
class RobustZ:
    """z = (value - median) / scale, with the scale from the interquartile range (std as fallback).

    ``high`` is the 99th percentile of the calibration z-values: above it a feature "fires".
    """

    median: float
    scale: float
    high: float

    @classmethod
    def fit(cls, values: np.ndarray, quantile: float = 0.99) -> RobustZ:
        v = np.asarray(values, np.float64)
        v = v[np.isfinite(v)]
        if len(v) == 0:
            return cls(0.0, 1.0, 3.0)
        med = float(np.median(v))
        scale = float(robust_scale(v[:, None])[0])
        z = (v - med) / scale
        return cls(med, scale, float(np.quantile(z, quantile)))

    def __call__(self, values: np.ndarray) -> np.ndarray:
        return (np.asarray(values, np.float64) - self.median) / self.scale

    def as_list(self) -> list[float]:
        return [self.median, self.scale, self.high]

    @classmethod
    def from_list(cls, v) -> RobustZ:
        med, scale, high = (float(x) for x in v)
        if not (np.isfinite(med) and np.isfinite(high) and np.isfinite(scale) and scale > 0):
            raise ValueError("invalid calibration values")
        return cls(med, scale, high)
