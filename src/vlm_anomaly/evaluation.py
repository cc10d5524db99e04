"""Benchmark evaluation: train on a dataset's normal clips, score its labelled test clips, report.

Dataset layout (UCSD Ped2 style; bring your own in the same shape)::

    DATASET/
      train/<clip>/000.jpg ...   or train/<clip>.mp4   (normal activity only)
      test/<clip>/000.jpg ...    or test/<clip>.mp4
      test_labels.json           {"<clip>": [0, 0, 1, ...]}  one 0/1 per frame of the clip, 1 = anomalous

``<clip>`` is the folder name or the video file's stem. Every test clip needs labels.

The protocol follows the published tables: frame-level ROC-AUC over *all test frames
concatenated* (pooled), plus the mean of per-clip AUCs (clips with one class only are skipped and
listed), average precision and equal error rate. Nothing here looks at test labels before the
scores exist; whether a detector's defaults were chosen after earlier test results is what
:func:`protocol_note` writes into the report.

Methods plug in through :class:`FrameScorer` (``fit`` on training sources, ``score`` a source)
and the :data:`SCORERS` registry; every registered detector is available through
:class:`PipelineScorer` (encoder + detector).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .atomic import atomic_write_bytes
from .config import Settings
from .detection_metrics import FrameMetrics, frame_metrics
from .detectors import detector_names, get_detector_class, moving_average
from .detectors.contract import Progress
from .errors import ConfigError, InvalidVideoError, VlmAnomalyError
from .pipeline import Pipeline
from .report_plots import write_plots
from .video import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, list_frame_files

log = logging.getLogger(__name__)

LABELS_FILE = "test_labels.json"
NORMALIZATIONS = ("none", "zscore", "minmax")
#: detectors whose shipped defaults are known to have been chosen partly after test results, with
#: the dataset and where the choices are recorded: a report of such a run must not claim a blind result
CHOSEN_AFTER_TEST_RESULTS: dict[str, str] = {
    "motion": "UCSD Ped2 (design revised after Ped2 test results, four choices made on its test labels: "
              "docs/motion.md, 'Order of events')",
}
PARAMETERS_DOC = "docs/results.md, 'How parameters were chosen'"


def protocol_note(config: dict[str, Any]) -> str:
    """What this run can say about its protocol and how its parameters were chosen.

    Why not a fixed sentence: a report cannot know whether its settings were picked after earlier
    test results; it states what it knows (the detector, whether it is the shipped default, choices
    recorded as made on test results) and points to the docs for the rest.
    """
    parts = ["Trained on the training clips only; test labels are used only to compute these metrics, each "
             "clip's after it was scored. Frame-level ROC-AUC is computed over all test frames concatenated "
             "(the published protocol)."]
    detector = config.get("detector")
    if detector is None:
        parts.append("The scorer does not name its detector; how its parameters were chosen is unknown to this run.")
    else:
        shipped = Settings().detector
        parts.append(f"Detector {detector!r} ({'the shipped default' if detector == shipped else 'not the default'}),"
                     f" smoothing {config.get('smoothing_window')}, normalisation {config.get('normalize')};"
                     " its parameters are in 'config'.")
        known = CHOSEN_AFTER_TEST_RESULTS.get(detector)
        parts.append(f"Its defaults were chosen partly after test results on {known}: on that dataset this is not "
                     "a blind held-out figure." if known else
                     "Whether these settings were chosen before or after earlier test results on this dataset is "
                     "not known to this run.")
    parts.append(f"How the published configurations were chosen: {PARAMETERS_DOC}.")
    return " ".join(parts)


# -- dataset ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Clip:
    """One clip of a dataset: a frame folder or a video file, with labels for test clips."""

    name: str
    source: str
    labels: np.ndarray | None = None


@dataclass
class LabelledDataset:
    root: Path
    train: list[Clip]
    test: list[Clip]


def _clips(folder: Path) -> dict[str, str]:
    if not folder.is_dir():
        raise InvalidVideoError(f"{folder}: missing (expected a folder of clips; see the dataset layout)")
    out: dict[str, str] = {}
    for p in sorted(folder.iterdir()):
        if p.is_dir() and any(q.suffix.lower() in IMAGE_EXTENSIONS for q in p.iterdir()):
            name = p.name
        elif p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS:
            name = p.stem
        else:
            continue
        if name in out:
            raise InvalidVideoError(f"{folder}: two clips are named {name!r}")
        out[name] = str(p)
    if not out:
        raise InvalidVideoError(f"{folder}: no clips (frame folders or video files) found")
    return out


def _select(available: dict[str, str], wanted: Sequence[str] | None, where: str) -> dict[str, str]:
    if not wanted:
        return available
    missing = [w for w in wanted if w not in available]
    if missing:
        raise InvalidVideoError(f"{where}: no clip named {', '.join(missing)} (have {', '.join(available)})")
    return {w: available[w] for w in wanted}


def load_dataset(root: str | Path, *, train_clips: Sequence[str] | None = None,
                 test_clips: Sequence[str] | None = None, max_frames: int = 0) -> LabelledDataset:
    """Find the train/test clips and the per-frame test labels of a dataset folder.

    A test frame folder with fewer labels than the frames that will be scored (its first
    ``max_frames``, 0 = all) is refused here, before minutes of fitting, not after them.
    """
    root = Path(root)
    if not root.is_dir():
        raise InvalidVideoError(f"{root}: dataset folder not found")
    train = _select(_clips(root / "train"), train_clips, f"{root}/train")
    test = _select(_clips(root / "test"), test_clips, f"{root}/test")
    lab_path = root / LABELS_FILE
    try:
        raw = json.loads(lab_path.read_text())
    except OSError:
        raise InvalidVideoError(f"{lab_path}: missing (maps each test clip to per-frame 0/1 labels)") from None
    except json.JSONDecodeError as exc:
        raise InvalidVideoError(f"{lab_path}: not valid JSON ({exc.msg})") from None
    if not isinstance(raw, dict):
        raise InvalidVideoError(f"{lab_path}: must map clip names to lists of 0/1")
    test_items = []
    for name, src in test.items():
        if name not in raw:
            raise InvalidVideoError(f"{lab_path}: no labels for test clip {name!r}")
        y = np.asarray(raw[name])
        if y.ndim != 1 or len(y) == 0 or not np.all((y == 0) | (y == 1)):
            raise InvalidVideoError(f"{lab_path}: labels of {name!r} must be a non-empty list of 0/1")
        if Path(src).is_dir():
            frames = len(list_frame_files(Path(src)))
            if len(y) < (min(frames, max_frames) if max_frames else frames):
                raise InvalidVideoError(f"{lab_path}: test clip {name!r} has {frames} frames but {len(y)} labels")
        test_items.append(Clip(name, src, y.astype(np.int8)))
    return LabelledDataset(root, [Clip(n, s) for n, s in train.items()], test_items)


# -- scorers ------------------------------------------------------------------------------------
@runtime_checkable
class FrameScorer(Protocol):
    """What a method must offer to be evaluated (and compared with the others).

    ``score`` returns one score per sampled frame of the source, higher = more normal. A scorer
    that samples frames (interval > 0) should also offer ``score_frames(source) -> (frame
    indices, scores)`` so the scores can be matched with the labels; it may expose ``timing``
    (seconds per stage) and ``describe_config()`` (a dict for the report).
    """

    def fit(self, train_sources: list[str]) -> FrameScorer: ...

    def score(self, source: str) -> np.ndarray: ...


ScorerFactory = Callable[[Settings], FrameScorer]

#: scorers by name (``--detector NAME``), besides every registered detector
SCORERS: dict[str, ScorerFactory] = {}


def register_scorer(name: str, factory: ScorerFactory) -> ScorerFactory:
    """Make an evaluation-only method available to ``evaluate`` under ``name``; returns the factory.

    Detectors need no registration here: every registered detector is evaluated through
    :class:`PipelineScorer`.
    """
    SCORERS[name] = factory
    return factory


def scorer_names() -> list[str]:
    return sorted(set(SCORERS) | set(detector_names()))


def create_scorer(name: str, settings: Settings) -> FrameScorer:
    """A scorer by name: a registered scorer, else the pipeline with that detector."""
    if name in SCORERS:
        return SCORERS[name](settings)
    if name in detector_names():
        return PipelineScorer(settings.model_copy(update={"detector": name}))
    raise ConfigError(f"unknown detector {name!r}; choose from {', '.join(scorer_names())}")


class PipelineScorer:
    """Encoder + registered detector, through the :class:`~vlm_anomaly.pipeline.Pipeline`.

    Embeddings come from (and go to) the embedding cache, so re-running an evaluation with
    another detector does not encode again.
    """

    def __init__(self, settings: Settings):
        self.settings = settings
        self.pipeline = Pipeline(settings)
        #: (done, total, stage) callback of the frames fitted and scored (the CLI's progress bar)
        self.progress: Progress | None = None
        self.model = None
        self.timing: dict[str, float] = {"encode_s": 0.0, "fit_s": 0.0, "score_s": 0.0}

    def describe_config(self) -> dict[str, Any]:
        enc = self.pipeline.detector_encoder(get_detector_class(self.settings.detector))
        out = {"encoder": enc.identity.label if enc is not None else "none",
               "features": self.settings.features, "detector": self.settings.detector}
        if self.model is not None:
            out["detector_params"] = self.model.detector.get_params()
        return out

    def fit(self, train_sources: list[str]) -> PipelineScorer:
        t0 = time.perf_counter()
        # train_interval_ms None: the pipeline fits at the settings' interval_ms
        self.model = self.pipeline.fit(train_sources, progress=self.progress,
                                       interval_ms=self.settings.train_interval_ms)
        self.timing["fit_s"] += time.perf_counter() - t0
        return self

    def score_frames(self, source: str) -> tuple[np.ndarray, np.ndarray]:
        if self.model is None:
            raise VlmAnomalyError("scorer is not fitted: call fit() first")
        t0 = time.perf_counter()
        res = self.pipeline.score(self.model, source, progress=self.progress, describe=False,
                                  interval_ms=self.settings.interval_ms)
        self.timing["encode_s"] += res.timing.get("embed_s", 0.0)
        self.timing["score_s"] += time.perf_counter() - t0 - res.timing.get("embed_s", 0.0)
        return res.frame_indices, res.raw_scores

    def score(self, source: str) -> np.ndarray:
        return self.score_frames(source)[1]


# -- post-processing ----------------------------------------------------------------------------
def normalize_scores(scores: np.ndarray, how: str = "none") -> np.ndarray:
    """Per-source normalisation: ``zscore`` or ``minmax`` over the source's own scores.

    Why: detectors' score levels drift with scene-wide changes (lighting, crowd density) of a
    whole clip; the published Ped2 methods (FFP, MNAD) min-max normalise each test video. It
    uses the clip's unlabelled scores only - never labels.
    """
    _check_normalization(how)
    s = np.asarray(scores, dtype=np.float64)
    if how == "none" or len(s) == 0:
        return s
    centre, spread = (s.mean(), s.std()) if how == "zscore" else (s.min(), s.max() - s.min())
    return (s - centre) / (spread if spread > 0 else 1.0)


def _check_normalization(how: str) -> None:
    if how not in NORMALIZATIONS:
        raise ConfigError(f"unknown normalisation {how!r}; choose from {', '.join(NORMALIZATIONS)}")


# -- evaluation ---------------------------------------------------------------------------------
@dataclass
class ClipResult:
    name: str
    frame_indices: np.ndarray
    raw_scores: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    metrics: FrameMetrics


@dataclass
class EvaluationReport:
    """Everything the evaluation measured; :meth:`to_dict` is the JSON report."""

    dataset: LabelledDataset
    config: dict[str, Any]
    pooled: FrameMetrics
    raw_pooled: FrameMetrics
    clips: list[ClipResult]
    timing: dict[str, float]
    train_frames: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def mean_clip_auc(self) -> float:
        aucs = [c.metrics.auc for c in self.clips if c.metrics.defined]
        return float(np.mean(aucs)) if aucs else float("nan")

    @property
    def skipped_clips(self) -> list[str]:
        return [c.name for c in self.clips if not c.metrics.defined]

    def to_dict(self, *, frames: bool = True) -> dict[str, Any]:
        mean = self.mean_clip_auc
        d: dict[str, Any] = {
            "format": "vlm-anomaly-evaluation",
            "format_version": 1,
            "protocol": protocol_note(self.config),
            "dataset": {
                "root": str(self.dataset.root),
                "train_clips": [c.name for c in self.dataset.train],
                "test_clips": [c.name for c in self.dataset.test],
                "train_frames": self.train_frames,
                "test_frames": self.pooled.frames,
                "anomalous_test_frames": self.pooled.anomalous,
            },
            "config": self.config,
            "metrics": {
                "pooled": self.pooled.as_dict(),
                "raw_pooled": self.raw_pooled.as_dict(),
                "mean_clip_auc": None if np.isnan(mean) else mean,
                "clips_in_mean": len(self.clips) - len(self.skipped_clips),
                "skipped_single_class_clips": self.skipped_clips,
            },
            "clips": [{"clip": c.name, **c.metrics.as_dict()} for c in self.clips],
            "timing": self.timing,
            "notes": self.notes,
        }
        if frames:
            d["frames"] = {
                "clip": [c.name for c in self.clips for _ in range(len(c.scores))],
                "index": [int(i) for c in self.clips for i in c.frame_indices],
                "raw_score": [float(v) for c in self.clips for v in c.raw_scores],
                "score": [float(v) for c in self.clips for v in c.scores],
                "label": [int(v) for c in self.clips for v in c.labels],
            }
        return d


def _frames_of(scorer: FrameScorer, source: str) -> tuple[np.ndarray, np.ndarray]:
    if hasattr(scorer, "score_frames"):
        idx, s = scorer.score_frames(source)
        return np.asarray(idx, np.int64), np.asarray(s, np.float64)
    s = np.asarray(scorer.score(source), np.float64)
    return np.arange(len(s)), s


def _labels_for(clip: Clip, idx: np.ndarray, n_scores: int) -> np.ndarray:
    y = clip.labels
    assert y is not None
    if len(idx) != n_scores:
        raise VlmAnomalyError(f"test clip {clip.name}: scorer returned {n_scores} scores for {len(idx)} frames")
    if len(idx) and (idx.min() < 0 or idx.max() >= len(y)):
        raise InvalidVideoError(
            f"test clip {clip.name}: frame {int(idx.max())} has no label ({len(y)} labels in {LABELS_FILE})"
        )
    return y[idx]


def evaluate(dataset: LabelledDataset, scorer: FrameScorer, *, smoothing_window: int = 1, normalize: str = "none",
             config: dict[str, Any] | None = None) -> EvaluationReport:
    """Fit ``scorer`` on the training clips, score every test clip, compute the metrics.

    Post-processing per clip, in this order: ``normalize`` (see :func:`normalize_scores`), then
    a centred moving average of ``smoothing_window`` frames.
    """
    _check_normalization(normalize)  # before minutes of fitting
    if smoothing_window < 1:
        raise ConfigError("smoothing window must be at least 1")
    t0 = time.perf_counter()
    scorer.fit([c.source for c in dataset.train])
    t1 = time.perf_counter()
    clips: list[ClipResult] = []
    for clip in dataset.test:
        idx, raw = _frames_of(scorer, clip.source)
        y = _labels_for(clip, idx, len(raw))
        s = moving_average(normalize_scores(raw, normalize), smoothing_window)
        clips.append(ClipResult(clip.name, idx, raw, s, y, frame_metrics(s, y)))
    t2 = time.perf_counter()
    all_s = np.concatenate([c.scores for c in clips])
    all_raw = np.concatenate([c.raw_scores for c in clips])
    all_y = np.concatenate([c.labels for c in clips])
    inner = dict(getattr(scorer, "timing", {}) or {})
    test_frames = int(len(all_y))
    timing = {
        "fit_wall_s": round(t1 - t0, 3),
        "score_wall_s": round(t2 - t1, 3),
        "total_s": round(t2 - t0, 3),
        **{k: round(float(v), 3) for k, v in inner.items()},
        "test_frames_per_s": round(test_frames / (t2 - t1), 2) if t2 > t1 else None,
    }
    cfg = {"smoothing_window": smoothing_window, "normalize": normalize}
    if hasattr(scorer, "describe_config"):
        cfg.update(scorer.describe_config())
    cfg.update(config or {})
    model = getattr(scorer, "model", None)
    train_frames = int(getattr(model, "n_frames", 0) or 0)
    return EvaluationReport(dataset, cfg, frame_metrics(all_s, all_y), frame_metrics(all_raw, all_y),
                            clips, timing, train_frames)


def write_report(report: EvaluationReport, out_dir: str | Path, *, plots: bool = True) -> dict[str, Path]:
    """Write ``report.json`` (atomic) and, if asked, the PNG/HTML plots; returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "report.json"}
    atomic_write_bytes(paths["json"], json.dumps(report.to_dict(), indent=1).encode())
    if plots:
        paths.update(write_plots(report, out))
    return paths
