"""Plots of an evaluation: ROC curve and per-clip score timelines with ground truth shaded.

PNG through matplotlib (headless Agg backend) for documents; one self-contained HTML page through
plotly (the script is inlined, so it opens offline) for zooming into single frames.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .detection_metrics import roc_points
from .results import true_runs

if TYPE_CHECKING:  # evaluation imports this module
    from .evaluation import EvaluationReport


def label_spans(labels: np.ndarray, frames: np.ndarray) -> list[tuple[int, int]]:
    """Runs of anomalous frames as (first frame, last frame) pairs.

    Example:
        >>> label_spans(np.array([0, 1, 1, 0, 1]), np.arange(5))
        [(1, 2), (4, 4)]
    """
    return [(int(frames[a]), int(frames[b])) for a, b in true_runs(labels)]


def _pooled_roc(report: EvaluationReport) -> tuple[np.ndarray, np.ndarray]:
    """(false-positive rate, true-positive rate) over all test frames."""
    clips = report.clips
    return roc_points(np.concatenate([c.scores for c in clips]), np.concatenate([c.labels for c in clips]))


def _title(report: EvaluationReport) -> str:
    c = report.config
    what = " / ".join(str(c[k]) for k in ("encoder", "features", "detector") if k in c)
    return f"{Path(report.dataset.root).name}: {what} - pooled AUC {report.pooled.auc:.3f}"


def write_png(report: EvaluationReport, out: Path) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = {}
    fig, ax = plt.subplots(figsize=(5, 5))
    fpr, tpr = _pooled_roc(report)
    ax.plot(fpr, tpr, label=f"pooled AUC {report.pooled.auc:.3f}")
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
    ax.set(xlabel="false-positive rate", ylabel="true-positive rate", title="ROC (all test frames)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    paths["roc_png"] = out / "roc.png"
    fig.savefig(paths["roc_png"], dpi=110)
    plt.close(fig)

    fig = timelines_figure(report)
    paths["timelines_png"] = out / "timelines.png"
    fig.savefig(paths["timelines_png"], dpi=100)
    plt.close(fig)
    return paths


def timelines_figure(report: EvaluationReport):
    """One small score timeline per clip, ground truth shaded, under one figure title.

    Constrained layout reserves room for the figure title above the subplot titles, and the title
    wraps to the figure's width, so it is neither drawn over the first row nor cut at the edges.
    """
    import matplotlib.pyplot as plt

    n = len(report.clips)
    cols = 3 if n > 4 else 1
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 1.8 * rows + 0.8), squeeze=False,
                             layout="constrained")
    thr = report.pooled.eer_threshold
    for ax, c in zip(axes.ravel(), report.clips):
        for a, b in label_spans(c.labels, c.frame_indices):
            ax.axvspan(a - 0.5, b + 0.5, color="tab:red", alpha=0.18, lw=0)
        ax.plot(c.frame_indices, c.scores, lw=1)
        if np.isfinite(thr):
            ax.axhline(thr, color="grey", lw=0.7, ls="--")
        auc = "n/a" if not c.metrics.defined else f"{c.metrics.auc:.3f}"
        ax.set_title(f"clip {c.name}  AUC {auc}", fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    title = _title(report) + "  (red: anomalous frames; dashed: EER threshold)"
    fig.suptitle(textwrap.fill(title, width=12 * 5 * cols), fontsize=9)  # ~12 characters an inch at 9 pt
    return fig


def write_html(report: EvaluationReport, out: Path) -> Path:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    n = len(report.clips)
    titles = [f"ROC - pooled AUC {report.pooled.auc:.3f}"] + [
        f"clip {c.name} AUC {c.metrics.auc:.3f}" if c.metrics.defined else f"clip {c.name} (one class)"
        for c in report.clips
    ]
    fig = make_subplots(rows=n + 1, cols=1, subplot_titles=titles, vertical_spacing=0.25 / (n + 1))
    fpr, tpr = _pooled_roc(report)
    fig.add_trace(go.Scatter(x=fpr, y=tpr, mode="lines", name="ROC", showlegend=False), row=1, col=1)
    for r, c in enumerate(report.clips, start=2):
        for a, b in label_spans(c.labels, c.frame_indices):
            fig.add_vrect(x0=a - 0.5, x1=b + 0.5, fillcolor="red", opacity=0.15, line_width=0, row=r, col=1)
        fig.add_trace(go.Scatter(x=c.frame_indices, y=c.scores, mode="lines", name=f"clip {c.name}",
                                 showlegend=False, hovertemplate="frame %{x}<br>score %{y:.4f}"),
                      row=r, col=1)
    fig.update_layout(height=260 * (n + 1), title=_title(report), margin={"t": 80})
    path = out / "report.html"
    fig.write_html(path, include_plotlyjs=True, full_html=True)
    return path


def write_plots(report: EvaluationReport, out: Path) -> dict[str, Path]:
    paths = write_png(report, out)
    paths["html"] = write_html(report, out)
    return paths
