"""Plotly figures: score timelines with the threshold line and the score bands."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from ..events.feed import Reading
from ..results import SCORE_BANDS, Bands, ScoreResult, true_runs

BAND_COLOURS = {
    "very normal": "rgba(46, 160, 67, 0.10)",
    "typical normal": "rgba(46, 160, 67, 0.10)",
    "normal": "rgba(46, 160, 67, 0.05)",
    "borderline": "rgba(255, 170, 0, 0.10)",
    "strong anomaly": "rgba(220, 40, 40, 0.12)",
    "anomalous": "rgba(220, 40, 40, 0.10)",
}
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd")


def _y_range(values: Sequence[np.ndarray], threshold: float) -> tuple[float, float]:
    """The scores shown and the threshold, padded: the axis follows the data, whatever the
    detector's scale (the One-Class SVM's stays near +-1, the motion detector's goes to -20)."""
    arr = np.concatenate([np.asarray(v, float) for v in values if len(v)] or [np.zeros(1)])
    arr = arr[np.isfinite(arr)]
    lo = min(float(arr.min()) if arr.size else threshold, threshold)
    hi = max(float(arr.max()) if arr.size else threshold, threshold)
    pad = max(0.08 * (hi - lo), 0.25)
    return lo - pad, hi + pad


def _bands(fig: go.Figure, y0: float, y1: float, bands: Bands = SCORE_BANDS) -> None:
    for name, lo, hi in bands:
        a, b = max(lo, y0), min(hi, y1)
        if a >= b:
            continue
        fig.add_hrect(y0=a, y1=b, fillcolor=BAND_COLOURS.get(name, "rgba(128, 128, 128, 0.06)"), line_width=0,
                      layer="below",
                      annotation_text=name, annotation_position="top left",
                      annotation_font_size=10, annotation_font_color="gray")


def _threshold(fig: go.Figure, threshold: float) -> None:
    fig.add_hline(y=threshold, line_dash="dash", line_color="crimson",
                  annotation_text=f"threshold {threshold:+.2f}", annotation_position="bottom right")


def _layout(fig: go.Figure, y: tuple[float, float], title: str, height: int = 380) -> go.Figure:
    fig.update_layout(title=title, height=height, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                      xaxis_title="time (s)", yaxis_title="decision score (higher = more normal)",
                      yaxis_range=list(y), legend={"orientation": "h", "y": -0.2}, hovermode="x unified")
    return fig


def _truth(fig: go.Figure, t: np.ndarray, truth: np.ndarray) -> None:
    """Shade the spans a user labelled anomalous (ground truth)."""
    for n, (i, j) in enumerate(true_runs(truth)):
        fig.add_vrect(x0=float(t[i]), x1=float(t[j]), fillcolor="orange", opacity=0.18, line_width=0,
                      layer="below", annotation_text="labelled anomalous" if n == 0 else None,
                      annotation_position="top left")


def _scores(fig: go.Figure, t: np.ndarray, raw: np.ndarray, smooth: np.ndarray, smooth_name: str, threshold: float,
            bands: Bands, title: str, height: int = 380) -> go.Figure:
    """Raw and smoothed scores over time, the score bands, the threshold line, the layout."""
    fig.add_trace(go.Scatter(x=t, y=raw, name="raw score", mode="lines+markers",
                             line={"width": 1, "color": "#9ab"}, marker={"size": 4}))
    fig.add_trace(go.Scatter(x=t, y=smooth, name=smooth_name, mode="lines", line={"width": 3, "color": "#1f77b4"}))
    y = _y_range([raw, smooth], threshold)
    _bands(fig, *y, bands)
    _threshold(fig, threshold)
    return _layout(fig, y, title, height)


def timeline(result: ScoreResult, *, title: str = "Decision score over time",
             truth: np.ndarray | None = None, bands: Bands = SCORE_BANDS) -> go.Figure:
    """Raw and smoothed scores, anomalous frames marked, threshold line, the model's score ``bands``
    (:func:`~vlm_anomaly.results.score_bands`); ``truth`` (one 0/1 per scored frame) shades the
    spans labelled anomalous."""
    t = result.timestamps
    fig = go.Figure()
    if truth is not None:
        _truth(fig, t, np.asarray(truth).astype(bool))
    _scores(fig, t, result.raw_scores, result.smoothed_scores, f"smoothed (window {result.smoothing_window})",
            result.threshold, bands, title)
    lab = result.labels
    if lab.any():
        fig.add_trace(go.Scatter(x=t[lab], y=result.smoothed_scores[lab], name="anomaly", mode="markers",
                                 marker={"color": "crimson", "size": 8, "symbol": "x"}))
    return fig


def compare(results: Mapping[str, ScoreResult], *, title: str = "Models compared",
            bands: Bands = ()) -> go.Figure:
    """Smoothed scores of several models on the same video, overlaid (each with its threshold);
    ``bands`` only when the models share a score scale."""
    fig = go.Figure()
    for (name, r), colour in zip(results.items(), PALETTE):
        fig.add_trace(go.Scatter(x=r.timestamps, y=r.smoothed_scores, name=f"{name} (smoothed)",
                                 mode="lines", line={"width": 3, "color": colour}))
        fig.add_trace(go.Scatter(x=r.timestamps, y=r.raw_scores, name=f"{name} (raw)", mode="lines",
                                 line={"width": 1, "color": colour, "dash": "dot"}, opacity=0.6))
    thr = [r.threshold for r in results.values()] or [0.0]
    y = _y_range([a for r in results.values() for a in (r.raw_scores, r.smoothed_scores)], min(thr))
    _bands(fig, *y, bands)
    for v in sorted(set(thr)):
        _threshold(fig, v)
    return _layout(fig, y, title, height=420)


def live(readings: Sequence[Reading], threshold: float, *, title: str = "Live score",
         bands: Bands = SCORE_BANDS) -> go.Figure:
    """Rolling chart of live readings: raw and causal smoothed score, threshold, bands."""
    t = np.array([r.t for r in readings], float)
    raw = np.array([r.raw for r in readings], float)
    smooth = np.array([r.smoothed for r in readings], float)
    return _scores(go.Figure(), t, raw, smooth, "smoothed (causal)", threshold, bands, title, height=320)
