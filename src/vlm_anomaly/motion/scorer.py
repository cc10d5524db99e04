"""The motion scorer: per-location k-NN densities of how things move and what moving things look
like, each calibrated on held-out normal clips, fused by a fixed rule, thresholded at a target
false-alarm rate learnt from normal data alone.

Scores follow the project convention: higher = more normal, below 0 = anomalous; 0 is the
threshold that flags ``target_false_alarm`` of held-out normal frames (after smoothing).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import cv2
import numpy as np

from ..detectors.calibration import RobustZ, robust_scale
from ..detectors.neighbours import Projection, knn_score, subsample
from ..errors import InvalidVideoError, NotFittedError
from ..smoothing import moving_average
from ..values import EmbeddedVideo
from ..video import Frame, content_hash
from .appearance import CropEmbedder
from .density import CellBanks, build_banks, neighbours
from .direction import (
    ACTIVE_SHARE,
    DIRECTION_DIM,
    direction_scale,
    direction_words,
    fit_direction,
    radius_neighbours,
    turned,
)
from .extract import (
    CellStream,
    SourceCells,
    degraded,
    extract_cells,
    iter_cells,
    iter_source,
    learn_speed_floor,
)
from .features import MOTION_DIM, SHAPE_BINS, GridConfig, grid_cols
from .objects import OBJECT_DIM, ObjectBank, fit_perspective, object_features, per_frame_max

log = logging.getLogger(__name__)

#: "object": position-free speed/size of moving regions; "appearance": what moving regions look
#: like (encoder embeddings of their crops, position-free); "motion"/"shape": per grid cell;
#: "direction": per grid cell, which way and how fast, with a place tolerance learnt from training
ATTRIBUTES = ("object", "appearance", "motion", "shape", "direction")
CELL_ATTRIBUTES = ("motion", "shape", "direction")
REGION_ATTRIBUTES = ("object", "appearance")
DIMS = {"motion": MOTION_DIM, "shape": SHAPE_BINS, "object": OBJECT_DIM, "direction": DIRECTION_DIM}


@dataclass(frozen=True)
class MotionConfig:
    """Hyper-parameters (fixed before any test run; see docs/motion.md)."""

    grid: GridConfig = field(default_factory=GridConfig)
    #: chosen by bench/motion_cv.py on training clips only; "direction" (CV round 8's pick) is not
    #: fused by default after its Ped2 result and calibration limits (docs/motion.md, item 13)
    fused: tuple[str, ...] = ("object", "appearance", "shape")
    k: int = 1
    k_object: int = 3  # neighbours in the (position-free, larger) bank of normal objects
    k_appearance: int = 3  # neighbours in the bank of normal regions' crop embeddings (CV round 5)
    pca_dim: int = 64  # crop embeddings are projected to this many dimensions (PCA on training crops)
    radius: int = 2  # a cell also accepts the normal examples of cells this close
    max_bank: int = 1000  # normal examples kept per cell and attribute
    smoothing_window: int = 5  # samples; the threshold is calibrated on scores smoothed like this
    target_false_alarm: float = 0.01  # share of held-out normal frames above the threshold
    #: "pooled": quantile of all held-out normal frames; "clip": the highest per-clip quantile
    #: (a new clip differs from the training clips as much as they differ from each other)
    threshold_rule: str = "clip"
    #: also fit on each training clip at half size under strong JPEG compression (a sub-stream)
    augment: bool = True
    #: direction: a cell is judged by its own normal examples when training saw it move in at least
    #: this many frames, else by the smallest ring of cells around it (up to ``place_max_radius``) that did
    place_examples: int = 0  # CV round 8: 0 (every cell by its own examples) beat 50 and 200
    place_max_radius: int = 3
    #: direction: divide each cell's distance by what held-out normal frames reach in that cell
    place_norm: bool = False

    def __post_init__(self):
        bad = [a for a in self.fused if a not in ATTRIBUTES]
        if bad or not self.fused:
            raise ValueError(f"unknown attributes {bad}; choose from {', '.join(ATTRIBUTES)}")
        if not 0 < self.target_false_alarm < 0.5:
            raise ValueError("target_false_alarm must be between 0 and 0.5")
        if self.threshold_rule not in ("pooled", "clip"):
            raise ValueError("threshold_rule must be 'pooled' or 'clip'")

    def as_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["grid"] = self.grid.as_dict()
        d["fused"] = list(self.fused)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> MotionConfig:
        base = cls()
        kw = {f.name: d[f.name] for f in fields(cls) if f.name in d and f.name not in ("grid", "fused")}
        kw = {k: type(getattr(base, k))(v) for k, v in kw.items()}
        return cls(grid=GridConfig.from_dict(d.get("grid", {})), fused=tuple(d.get("fused", base.fused)), **kw)


@dataclass
class MotionState:
    """What fitting learns (arrays + JSON, no pickle)."""

    config: MotionConfig
    cols: int
    sources: list[str]
    scales: dict[str, np.ndarray]  # per attribute, per-dimension divisor
    rows: dict[str, np.ndarray]  # per attribute (M, d) scaled normal examples
    cells: dict[str, np.ndarray]  # per attribute (M,) cell of each example
    refs: dict[str, np.ndarray]  # per attribute (M, 2): training source number, frame index
    calib: dict[str, RobustZ]
    threshold: float  # fused z at which a frame becomes anomalous (after smoothing)
    heldout_flagged: float  # share of held-out normal frames over the threshold
    speed_p99: np.ndarray  # (R, C) 99th percentile of normal speeds (heights/s) per cell, NaN: none
    speed_p99_global: float
    #: objects: perspective (a, b: normal height = a + b * row), the normal objects' boxes
    #: (x0, y0, x1, y1 as frame fractions), their 99th-percentile relative speed
    perspective: np.ndarray = field(default_factory=lambda: np.array([0.15, 0.0]))
    object_boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    object_speed_p99: float = 0.0
    score_unit: float = 1.0  # threshold - median held-out fused value: output scores are in this unit
    #: appearance: PCA of the training crops' embeddings (mean (D,), components (p, D)), and the
    #: encoder whose embeddings they are
    projection: Projection | None = None
    encoder_key: str = ""
    #: direction: per cell, the radius of cells whose normal examples it is judged by
    place_radius: np.ndarray | None = None
    place_scale: np.ndarray | None = None  # direction: per-cell divisor of distances (place_norm)
    _banks: dict | None = field(default=None, repr=False)

    @property
    def n_cells(self) -> int:
        return self.config.grid.rows * self.cols

    def banks(self) -> dict[str, CellBanks]:
        if self._banks is None:
            nb = neighbours(self.config.grid.rows, self.cols, self.config.radius)
            cfg = self.config
            R = self.config.grid.rows
            self._banks = {a: (ObjectBank(self.rows[a], cfg.k_object) if a == "object" else
                               DenseBank(self.rows[a], cfg.k_appearance) if a == "appearance" else
                               CellBanks(self.rows[a], self.cells[a], self.n_cells,
                                         radius_neighbours(self.place_radius, R, self.cols), cfg.k)
                               if a == "direction" else
                               CellBanks(self.rows[a], self.cells[a], self.n_cells, nb, cfg.k))
                           for a in self.rows}
        return self._banks

    def to_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        meta = {"config": self.config.as_dict(), "cols": self.cols, "sources": list(self.sources),
                "calibration": {a: c.as_list() for a, c in self.calib.items()}, "threshold": self.threshold,
                "heldout_flagged": self.heldout_flagged, "speed_p99_global": self.speed_p99_global,
                "object_speed_p99": self.object_speed_p99, "score_unit": self.score_unit,
                "encoder_key": self.encoder_key}
        arrays = {"speed_p99": self.speed_p99, "perspective": self.perspective, "object_boxes": self.object_boxes}
        if self.place_radius is not None:
            arrays["place_radius"] = self.place_radius.astype(np.int64)
        if self.place_scale is not None:
            arrays["place_scale"] = self.place_scale.astype(np.float64)
        if self.projection is not None:
            arrays["appearance_mean"] = self.projection.mean.astype(np.float32)
            arrays["appearance_components"] = self.projection.components.astype(np.float32)
        for a in self.rows:
            arrays[f"rows_{a}"] = self.rows[a].astype(np.float32)
            arrays[f"cells_{a}"] = self.cells[a].astype(np.int64)
            arrays[f"refs_{a}"] = self.refs[a].astype(np.int64)
            arrays[f"scale_{a}"] = self.scales[a].astype(np.float64)
        return meta, arrays

    @classmethod
    def from_state(cls, meta: dict, arrays: dict[str, np.ndarray]) -> MotionState:
        """Rebuild and validate; raises ValueError on inconsistent content."""
        missing = [k for k in ("config", "cols", "sources", "calibration", "threshold") if k not in meta]
        if missing:
            raise ValueError(f"motion state incomplete: missing {', '.join(missing)}")
        config = MotionConfig.from_dict(meta["config"])
        cols = int(meta["cols"])
        n_cells = config.grid.rows * cols
        rows, cells, refs, scales = {}, {}, {}, {}
        projection = None
        if "appearance" in config.fused:
            mean = np.asarray(arrays.get("appearance_mean", np.zeros(0)), np.float32)
            comp = np.asarray(arrays.get("appearance_components", np.zeros((0, 0))), np.float32)
            if (mean.ndim != 1 or comp.ndim != 2 or comp.shape[1] != len(mean) or not len(comp)
                    or not np.all(np.isfinite(comp)) or not np.all(np.isfinite(mean))):
                raise ValueError("appearance projection is malformed")
            projection = Projection(mean, comp)
        for a in config.fused:
            need = [f"{p}_{a}" for p in ("rows", "cells", "refs", "scale")]
            if any(k not in arrays for k in need):
                raise ValueError(f"motion state incomplete: no bank for {a!r}")
            r = np.asarray(arrays[f"rows_{a}"], np.float32)
            c = np.asarray(arrays[f"cells_{a}"], np.int64)
            f = np.asarray(arrays[f"refs_{a}"], np.int64)
            s = np.asarray(arrays[f"scale_{a}"], np.float64)
            dim = projection.components.shape[0] if a == "appearance" else DIMS[a]
            if (r.ndim != 2 or r.shape[1] != dim or c.shape != (len(r),) or f.shape != (len(r), 2)
                    or (a in REGION_ATTRIBUTES and len(r) == 0)
                    or s.shape != (dim,) or not np.all(np.isfinite(r)) or not np.all(s > 0)):
                raise ValueError(f"bank {a!r} is malformed")
            if len(c) and (c.min() < 0 or c.max() >= n_cells):
                raise ValueError(f"bank {a!r} points outside the grid")
            rows[a], cells[a], refs[a], scales[a] = r, c, f, s
        sp = np.asarray(arrays.get("speed_p99", np.full((config.grid.rows, cols), np.nan)), np.float64)
        if sp.shape != (config.grid.rows, cols):
            raise ValueError("speed grid is malformed")
        calib = {a: RobustZ.from_list(meta["calibration"][a]) for a in config.fused}
        thr = float(meta["threshold"])
        if not np.isfinite(thr):
            raise ValueError("threshold is not finite")
        persp = np.asarray(arrays.get("perspective", np.array([0.15, 0.0])), np.float64)
        oboxes = np.asarray(arrays.get("object_boxes", np.zeros((0, 4))), np.float64)
        if persp.shape != (2,) or not np.all(np.isfinite(persp)):
            raise ValueError("perspective is malformed")
        for a in REGION_ATTRIBUTES:
            if a in rows and oboxes.shape != (len(rows[a]), 4):
                raise ValueError(f"object boxes do not match the {a} bank")
        place, pscale = None, None
        if "direction" in config.fused:
            place = np.asarray(arrays.get("place_radius", np.zeros(0)), np.int64)
            if place.shape != (n_cells,) or place.min() < 0 or place.max() > max(config.grid.rows, cols):
                raise ValueError("the direction attribute's place tolerance is malformed")
            if config.place_norm:
                pscale = np.asarray(arrays.get("place_scale", np.zeros(0)), np.float64)
                if pscale.shape != (n_cells,) or not np.all(pscale > 0) or not np.all(np.isfinite(pscale)):
                    raise ValueError("the direction attribute's per-cell scale is malformed")
        return cls(config, cols, [str(s) for s in meta["sources"]], scales, rows, cells, refs, calib, thr,
                   float(meta.get("heldout_flagged", 0.0)), sp, float(meta.get("speed_p99_global", 0.0)),
                   persp, oboxes, float(meta.get("object_speed_p99", 0.0)), float(meta.get("score_unit", 1.0)),
                   projection, str(meta.get("encoder_key", "")), place, pscale)


@dataclass
class MotionScores:
    """Per-frame results of one source."""

    source: str
    frame_indices: np.ndarray
    timestamps: np.ndarray
    scores: np.ndarray  # higher = more normal, < 0 anomalous
    attribute_scores: dict[str, np.ndarray]  # per attribute: robust z of its worst cell
    explanations: list[dict]
    #: (N, D) per frame, the mean crop embedding of its moving regions (None: no crops embedded)
    embeddings: np.ndarray | None = None

    @property
    def frame_embeddings(self) -> np.ndarray:
        """What the frame's moving regions look like (descriptions, nearest normal frame); without
        crop embeddings one zero per frame (the video-scorer contract asks for an array)."""
        if self.embeddings is not None:
            return self.embeddings
        return np.zeros((len(self.frame_indices), 1), np.float32)


def frame_crop_means(feats: SourceCells) -> np.ndarray | None:
    """(N, D) unit mean of each frame's crop embeddings (zero rows without regions); None without crops."""
    if not feats.crops.shape[1]:
        return None
    out = np.zeros((feats.n_frames, feats.crops.shape[1]), np.float32)
    np.add.at(out, feats.blob_frame, feats.crops)
    norm = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norm > 0, norm, 1.0)


def _raw(cells: SourceCells, attr: str) -> np.ndarray:
    if attr == "direction" and cells.direction is None:
        raise InvalidVideoError("the direction attribute needs the cells' direction histograms")
    X = cells.motion if attr == "motion" else cells.direction if attr == "direction" else cells.shape
    n = len(X)
    return X.reshape(n, -1, X.shape[-1]).astype(np.float64)


def _scales(X: np.ndarray, attr: str) -> np.ndarray:
    """Per-dimension divisors: the 95th percentile of |value| over cells where something moved,
    so speeds and shares weigh alike whatever the camera."""
    flat = X.reshape(-1, X.shape[-1])
    act = flat[np.abs(flat).sum(1) > 0]
    if len(act) == 0:
        return np.ones(flat.shape[1])
    if attr == "motion":
        sp = max(float(np.percentile(np.abs(act[:, :3]), 95)), 1e-3)
        sh = max(float(np.percentile(act[:, 3], 95)), 1e-3)
        return np.array([sp, sp, sp, sh])
    return np.full(flat.shape[1], max(float(np.percentile(act.sum(1), 95)), 1e-3))


def _groups(feats: Sequence[SourceCells], copy_of: Sequence[int]) -> np.ndarray:
    """Held-out groups: one per clip (a degraded copy goes with its clip), or 4 time chunks of a
    single clip (and of its copy)."""
    if len(set(copy_of)) >= 2:
        return np.concatenate([np.full(f.n_frames, copy_of[i]) for i, f in enumerate(feats)])
    return np.concatenate([np.minimum(np.arange(f.n_frames) * 4 // max(1, f.n_frames), 3) for f in feats])


class MotionScorer:
    """Fit on normal sources, score any source frame by frame, live or offline; explains frames.

    Example:
        >>> scorer = MotionScorer().fit(["train/01", "train/02"])  # doctest: +SKIP
        >>> scorer.score_detailed("test/01").scores  # doctest: +SKIP
    """

    name = "motion"

    def __init__(self, config: MotionConfig | None = None, *, interval_ms: int = 0, max_side: int = 0,
                 max_frames: int = 0, max_duration_s: float = 0, state: MotionState | None = None,
                 embedder: CropEmbedder | None = None):
        self.config = state.config if state is not None else (config or MotionConfig())
        #: embeds the moving regions' crops (needed when the ``appearance`` attribute is fused)
        self.embedder = embedder
        self.interval_ms = interval_ms
        self.max_side = max_side
        self.max_frames = max_frames
        self.max_duration_s = max_duration_s
        self.state = state
        self.timing: dict = {}

    # -- features ---------------------------------------------------------------------------
    def _cols_for(self, source: str) -> int:
        if self.state is not None:
            return self.state.cols
        from ..video import probe

        info = probe(source)
        return grid_cols(info.width / max(1, info.height), self.config.grid.rows)

    def extract(self, source: str | Path, progress: Callable[[int], None] | None = None,
                cols: int | None = None, *, degrade: bool = False) -> SourceCells:
        """Features of every sampled frame of ``source``; ``degrade``: of its half-size, strongly
        compressed version (training-time augmentation)."""
        src = str(source)
        stream = self._stream(cols or self._cols_for(src))
        frames = self._frames(src)
        out = extract_cells(src, self.config.grid, stream.cols, progress=progress, stream=stream,
                            frames=degraded(frames) if degrade else frames)
        self.timing = dict(stream.timing)
        return out

    def _frames(self, src: str):
        return iter_source(src, interval_ms=self.interval_ms, max_side=self.max_side, max_frames=self.max_frames,
                           max_duration_s=self.max_duration_s, config=self.config.grid)

    def _stream(self, cols: int) -> CellStream:
        emb = None
        if "appearance" in self.config.fused:
            if self.embedder is None:
                raise InvalidVideoError("the motion model's appearance attribute needs the encoder: "
                                        "give the scorer a CropEmbedder")
            key = self.state.encoder_key if self.state is not None else ""
            if key and key != self.embedder.identity_key:
                raise InvalidVideoError(f"the model's appearance was learnt with encoder {key}, "
                                        f"not {self.embedder.identity_key}")
            emb = self.embedder
        return CellStream(self.config.grid, cols, embedder=emb)

    # -- fit ----------------------------------------------------------------------------------
    def fit(self, train_sources: Sequence[str | Path],
            progress: Callable[[int, int, str], None] | None = None, *,
            names: Sequence[str] | None = None) -> MotionScorer:
        """Learn what normal motion looks like from videos/frame folders of normal activity.

        ``names``: what explanations call the training videos (default: their file names).
        """
        if not train_sources:
            raise InvalidVideoError("training needs at least one normal video or frame folder")
        cols = self._cols_for(str(train_sources[0]))
        if progress:
            progress(0, 0, "measuring how fast normal objects move")
        grid = learn_speed_floor(((str(s), self._frames(str(s))) for s in train_sources), self.config.grid, cols)
        self.config = replace(self.config, grid=grid)
        feats, copies, done = [], [], 0

        def step(stage: str, base: int) -> Callable[[int], None]:
            return lambda n: progress(base + n, 0, stage) if progress else None

        for src in train_sources:
            feats.append(self.extract(src, step("measuring motion", done), cols))
            done += feats[-1].n_frames
            if self.config.augment:
                copies.append(self.extract(src, step("measuring motion (compressed copy)", done), cols, degrade=True))
                done += copies[-1].n_frames
        self.fit_cells(feats, copies=copies)
        if names is not None and len(names) == len(feats):
            self.state.sources = [str(n) for n in names]
        self._train = [(str(f.source), f.frame_indices, f.timestamps, frame_crop_means(f)) for f in feats]
        return self

    @property
    def train_videos(self) -> list[EmbeddedVideo]:
        """The sampled frames of each training source with the mean embedding of their moving
        regions (without appearance, one zero per frame)."""
        return [EmbeddedVideo(src, content_hash(src), idx, ts,
                              emb if emb is not None else np.zeros((len(idx), 1), np.float32))
                for src, idx, ts, emb in getattr(self, "_train", [])]

    def fit_cells(self, feats: Sequence[SourceCells], *, copies: Sequence[SourceCells] = ()) -> MotionScorer:
        """Fit from extracted features (one :class:`SourceCells` per normal clip), and of the clips'
        degraded copies (``copies[i]`` of ``feats[i]``): normal examples too, held out with their clip."""
        cfg = self.config
        if copies and len(copies) != len(feats):
            raise ValueError("one degraded copy per training clip")
        keep_clip = [i for i, f in enumerate(feats) if f.n_frames]
        copy_of = keep_clip + [i for i in keep_clip if copies and copies[i].n_frames]
        feats = [feats[i] for i in keep_clip] + [copies[i] for i in keep_clip if copies and copies[i].n_frames]
        n_orig = len(keep_clip)
        n = sum(f.n_frames for f in feats)
        if n < 2:
            raise InvalidVideoError(f"training needs at least 2 sampled frames, got {n}")
        cols = feats[0].motion.shape[2]
        if any(f.motion.shape[2] != cols for f in feats):
            raise InvalidVideoError("training videos must share one aspect ratio (same camera)")
        names = [Path(f.source).name or f.source for f in feats[:n_orig]]
        rank = {c: r for r, c in enumerate(keep_clip)}
        groups = _groups(feats, copy_of)
        offsets = np.cumsum([0] + [f.n_frames for f in feats])
        frame_no = np.concatenate([f.frame_indices for f in feats])
        src_no = np.concatenate([np.full(f.n_frames, rank[copy_of[i]]) for i, f in enumerate(feats)])
        has_motion = np.concatenate([f.has_motion for f in feats])
        nb = neighbours(cfg.grid.rows, cols, cfg.radius)
        n_cells = cfg.grid.rows * cols
        rows, cells, refs, scales, calib, heldout = {}, {}, {}, {}, {}, {}
        place, pscale = None, None
        # objects: all clips' moving regions, position-free
        blobs = np.concatenate([f.blobs for f in feats]).reshape(-1, 8)
        b_row = np.concatenate([f.blob_frame + offsets[i] for i, f in enumerate(feats)]).astype(np.int64)
        persp = fit_perspective(blobs[:, 1], blobs[:, 3])
        OF = object_features(blobs, persp)
        obj_p99 = float(np.percentile(OF[:, 0], 99)) if len(OF) else 0.0
        if "object" in cfg.fused and len(OF) < 2:
            raise InvalidVideoError("the training videos show too little motion: use videos with moving people")
        keep = subsample(len(blobs), cfg.max_bank * 20)  # the region banks' rows (object and appearance)
        projection = None
        for a in cfg.fused:
            if a in REGION_ATTRIBUTES:
                if a == "object":
                    sc = robust_scale(OF)
                    X = OF / sc
                    bank = lambda rows_: ObjectBank(rows_, cfg.k_object)  # noqa: E731
                else:
                    E = np.concatenate([f.crops for f in feats]) if all(f.crops.shape[1] for f in feats) else None
                    if E is None or len(E) != len(blobs):
                        raise InvalidVideoError("the appearance attribute needs the moving regions' crop "
                                                "embeddings: fit with a CropEmbedder")
                    if len(E) < 2:
                        raise InvalidVideoError("the training videos show too little motion: use videos "
                                                "with moving people")
                    projection = Projection.fit(E, cfg.pca_dim)
                    X = projection(E).astype(np.float64)
                    sc = np.ones(X.shape[1])
                    bank = lambda rows_: DenseBank(rows_, cfg.k_appearance)  # noqa: E731
                scales[a] = sc
                rows[a], cells[a] = X[keep].astype(np.float32), np.zeros(len(keep), np.int64)
                refs[a] = np.stack([src_no[b_row[keep]], frame_no[b_row[keep]]], 1)
                per_frame = np.zeros(n)
                b_group = groups[b_row]
                for g in np.unique(groups):
                    other = keep[b_group[keep] != g]
                    sel = b_group == g
                    d, _ = bank(X[other]).query(X[sel])
                    v, _ = per_frame_max(d, b_row[sel], n)
                    per_frame = np.maximum(per_frame, v)
            elif a == "direction":
                X = np.concatenate([_raw(f, a) for f in feats])
                sc = direction_scale(X)
                scales[a] = sc
                active = np.concatenate([f.motion[..., 3] for f in feats]) > ACTIVE_SHARE
                r, c, fr, place, per_frame, pscale = fit_direction(
                    X / sc, active, groups, cfg.grid.rows, cols, max_bank=cfg.max_bank, k=cfg.k,
                    min_examples=cfg.place_examples, max_radius=cfg.place_max_radius, per_cell=cfg.place_norm)
                rows[a], cells[a] = r.astype(np.float32), c
                refs[a] = np.stack([src_no[fr], frame_no[fr]], 1)
            else:
                X = np.concatenate([_raw(f, a) for f in feats])
                sc = _scales(X, a)
                scales[a] = sc
                X = X / sc
                r, c, fr = build_banks(X, cfg.max_bank)
                rows[a], cells[a] = r.astype(np.float32), c
                refs[a] = np.stack([src_no[fr], frame_no[fr]], 1)
                per_frame = np.zeros(n)
                for g in np.unique(groups):
                    r2, c2, _ = build_banks(X[groups != g], cfg.max_bank)
                    d, _ = CellBanks(r2, c2, n_cells, nb, cfg.k).query(X[groups == g])
                    per_frame[groups == g] = d.max(1)
            calib[a] = RobustZ.fit(per_frame[has_motion] if has_motion.any() else per_frame)
            heldout[a] = per_frame
        fused = sum(calib[a](heldout[a]) for a in cfg.fused)
        smooth = np.concatenate([moving_average(fused[sl], cfg.smoothing_window) for sl in _clip_slices(feats)])
        q = 1.0 - cfg.target_false_alarm
        if cfg.threshold_rule == "clip" and len(np.unique(groups)) >= 2:
            thr = max(float(np.quantile(smooth[groups == g], q)) for g in np.unique(groups))
        else:
            thr = float(np.quantile(smooth, q))
        flagged = float(np.mean(smooth > thr))
        # unit of the output: the gap between a typical normal frame and the threshold, so that a
        # typical normal frame scores +1, the threshold 0, and hysteresis margins mean the same anywhere
        unit = max(thr - float(np.median(smooth)), 1e-6)
        sp99, sp_glob = _speed_p99(np.concatenate([f.motion for f in feats]))
        oboxes = np.zeros((0, 4))
        if any(a in rows for a in REGION_ATTRIBUTES):
            kb = blobs[keep]
            oboxes = np.stack([kb[:, 0] - kb[:, 2] * 0.5 * _aspect_inv(feats), kb[:, 1] - kb[:, 3] / 2,
                               kb[:, 0] + kb[:, 2] * 0.5 * _aspect_inv(feats), kb[:, 1] + kb[:, 3] / 2], 1)
        self.state = MotionState(cfg, cols, names, scales, rows, cells, refs, calib, thr, flagged, sp99, sp_glob,
                                 persp, np.clip(oboxes, 0, 1), obj_p99, unit, projection,
                                 self.embedder.identity_key if projection is not None and self.embedder else "",
                                 place, pscale)
        return self

    # -- score ----------------------------------------------------------------------------------
    def _check(self) -> MotionState:
        if self.state is None:
            raise NotFittedError("MotionScorer is not fitted: call fit() first")
        return self.state

    def score(self, source: str | Path) -> np.ndarray:
        return self.score_detailed(source).scores

    def score_detailed(self, source: str | Path, progress: Callable[[int], None] | None = None) -> MotionScores:
        """Scores and explanations of every sampled frame, extracted and scored chunk by chunk."""
        st = self._check()
        src = str(source)
        stream = self._stream(st.cols)
        parts = [self.score_cells(c) for c in iter_cells(
            src, st.config.grid, st.cols, interval_ms=self.interval_ms, max_side=self.max_side,
            max_frames=self.max_frames, max_duration_s=self.max_duration_s, progress=progress, stream=stream)]
        self.timing = dict(stream.timing)
        attrs = {a: np.concatenate([p.attribute_scores[a] for p in parts]) for a in parts[0].attribute_scores}
        emb = (np.concatenate([p.embeddings for p in parts]) if all(p.embeddings is not None for p in parts)
               else None)
        return MotionScores(src, np.concatenate([p.frame_indices for p in parts]),
                            np.concatenate([p.timestamps for p in parts]), np.concatenate([p.scores for p in parts]),
                            attrs, [e for p in parts for e in p.explanations], emb)

    def score_cells(self, feats: SourceCells) -> MotionScores:
        st = self._check()
        if feats.n_frames and feats.motion.shape[2] != st.cols:
            raise InvalidVideoError("the video's grid does not match the model's")
        banks = st.banks()
        n = feats.n_frames
        z, dist, near = {}, {}, {}
        for a in st.config.fused:
            if a in REGION_ATTRIBUTES:
                if a == "object":
                    X = object_features(feats.blobs, st.perspective) / st.scales[a]
                else:
                    if feats.crops.shape != (len(feats.blobs), st.projection.components.shape[1]):
                        raise InvalidVideoError("the appearance attribute needs the moving regions' crop "
                                                "embeddings from the model's encoder")
                    X = st.projection(feats.crops)
                d, i = banks[a].query(X)
                per_frame, arg = per_frame_max(d, feats.blob_frame, n)
                dist[a], near[a] = (d, arg), i
            else:
                d, i = banks[a].query(_raw(feats, a) / st.scales[a])
                if a == "direction" and st.place_scale is not None:
                    d = d / st.place_scale
                per_frame = d.max(1) if len(d) else np.zeros(0)
                dist[a], near[a] = d, i
            z[a] = st.calib[a](per_frame)
        fused = sum(z[a] for a in st.config.fused)
        if len(fused) and not feats.has_motion.all() and feats.has_motion.any():
            ok = np.flatnonzero(feats.has_motion)
            fill = ok[np.clip(np.searchsorted(ok, np.arange(len(fused))), 0, len(ok) - 1)]
            fused = fused[fill]
        scores = (st.threshold - fused) / st.score_unit
        expl = [self._explain(feats, j, z, dist, near) for j in range(n)]
        return MotionScores(feats.source, feats.frame_indices, feats.timestamps, scores, z, expl,
                            frame_crop_means(feats))

    def score_stream(self, frames: Iterable[Frame]) -> Iterator[tuple[Frame, float, dict]]:
        """Live: (frame, score, explanation) per frame, in order; reference frames carry over."""
        st = self._check()
        stream = self._stream(st.cols)
        for f in frames:
            c = stream.features(f)
            crops = (stream.embedder.embed(stream.embedder.crops(f.image, c.blobs)) if stream.embedder is not None
                     else np.zeros((0, 0), np.float32))
            sc = SourceCells(f.source, (f.image.shape[1], f.image.shape[0]), np.array([f.index]),
                             np.array([f.timestamp]), np.array([c.has_motion]), c.motion[None], c.shape[None],
                             np.zeros(len(c.blobs), np.int64), c.blobs, crops,
                             c.direction[None] if c.direction is not None else None)
            res = self.score_cells(sc)
            self.timing = dict(stream.timing)
            yield f, float(res.scores[0]), res.explanations[0]

    # -- explanations ---------------------------------------------------------------------------
    def _explain(self, feats: SourceCells, j: int, z: dict, dist: dict, near: dict) -> dict:
        st = self.state
        R, C = st.config.grid.rows, st.cols
        zj = {a: float(z[a][j]) for a in z}
        top = max(zj, key=zj.get)
        w, h = (int(v) for v in feats.size)
        n_obj = int(np.sum(feats.blob_frame == j))
        out: dict = {
            "attribute": top,
            "fired": [a for a in st.config.fused if zj[a] > st.calib[a].high],
            "z": {a: round(v, 3) for a, v in zj.items()},
            "objects": n_obj,
            "frame_size": [w, h],
        }
        o = int(dist[top][1][j]) if top in REGION_ATTRIBUTES else -1
        cell_attr = top if top in CELL_ATTRIBUTES else next((a for a in st.config.fused if a in CELL_ATTRIBUTES),
                                                            None)
        if o >= 0:
            b = feats.blobs[o]
            rel = object_features(b[None], st.perspective)[0]
            box = [int((b[0] - b[2] / 2 * h / max(1, w)) * w), int((b[1] - b[3] / 2) * h),
                   int((b[0] + b[2] / 2 * h / max(1, w)) * w), int((b[1] + b[3] / 2) * h)]
            out["box"] = [max(0, box[0]), max(0, box[1]), min(w, box[2]), min(h, box[3])]
            r, c = min(R - 1, int(b[1] * R)), min(C - 1, int(b[0] * C))
            out["where"] = where_words(r, c, R, C)
            out["speed"] = round(float(rel[0]), 3)
            out["normal_speed"] = {"p99": round(st.object_speed_p99, 3), "unit": "normal heights/s"}
            out["size"] = round(float(np.exp(rel[2])), 2)
            i = int(near[top][o])
            if i >= 0:
                src, fr = st.refs[top][i]
                nb = st.object_boxes[i] if i < len(st.object_boxes) else np.zeros(4)
                out["nearest_normal"] = {"attribute": top, "source": _name(st, src), "frame": int(fr),
                                         "box": [int(nb[0] * w), int(nb[1] * h), int(nb[2] * w), int(nb[3] * h)]}
        elif cell_attr is not None:
            top = cell_attr
            cell = int(np.argmax(dist[top][j]))
            r, c = divmod(cell, C)
            x0, x1 = int(c * w / C), int((c + 1) * w / C)
            y0, y1 = int(r * h / R), int((r + 1) * h / R)
            share = feats.motion[j][..., 3]
            out["box"] = _grow_box(share > 0.05, r, c, w, h, R, C) or [x0, y0, x1, y1]
            out["where"] = where_words(r, c, R, C)
            normal = float(st.speed_p99[r, c]) if np.isfinite(st.speed_p99[r, c]) else 0.0
            out["speed"] = round(float(feats.motion[j][r, c, 0]), 3)
            out["normal_speed"] = {"p99": round(normal, 3), "unit": "frame heights/s"}
            i = int(near[top][j, cell]) if len(near[top]) else -1
            if top == "direction":
                out.update(_direction_explanation(feats.direction[j][r, c], st, i))
            if i >= 0:
                src, fr = st.refs[top][i]
                out["nearest_normal"] = {"attribute": top, "source": _name(st, src), "frame": int(fr),
                                         "box": [x0, y0, x1, y1]}
        out["text"] = motion_text(out)
        return out


@dataclass
class DenseBank:
    """Normal regions' projected crop embeddings; exact k-NN by matrix products (64-d rows)."""

    rows: np.ndarray
    k: int

    def query(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean distance to the k nearest normal regions (m,) and the nearest one's row (m,)."""
        if len(X) == 0:
            return np.zeros(0), np.zeros(0, np.int64)
        if len(self.rows) == 0:
            return np.linalg.norm(X, axis=1), np.full(len(X), -1, np.int64)
        d, i = knn_score(self.rows, X, self.k)
        return d.astype(np.float64), i


def _direction_explanation(hist: np.ndarray, st: MotionState, nearest: int) -> dict:
    """Which way the cell moves, which way its nearest normal example moved, how fast (heights/s)."""
    normal = (st.rows["direction"][nearest] * st.scales["direction"] if nearest >= 0
              else np.zeros(DIRECTION_DIM))
    return {"speed": round(float(np.sum(hist[:-1])), 3),
            "normal_speed": {"p99": round(float(np.sum(normal[:-1])), 3), "unit": "frame heights/s"},
            "direction": {"moving": direction_words(hist), "normal": direction_words(normal),
                          "turned_deg": 45 * turned(hist, normal)}}


def _name(st: MotionState, src) -> str:
    return st.sources[int(src)] if 0 <= int(src) < len(st.sources) else ""


def _aspect_inv(feats: Sequence[SourceCells]) -> float:
    """Frame height / width (blob widths are in frame heights, boxes in width fractions)."""
    w, h = feats[0].size
    return float(h) / max(1.0, float(w))


def _clip_slices(feats: Sequence[SourceCells]) -> list[slice]:
    out, lo = [], 0
    for f in feats:
        out.append(slice(lo, lo + f.n_frames))
        lo += f.n_frames
    return out


def _speed_p99(motion: np.ndarray) -> tuple[np.ndarray, float]:
    sp, share = motion[..., 0], motion[..., 3]
    R, C = sp.shape[1:3]
    out = np.full((R, C), np.nan)
    for r in range(R):
        for c in range(C):
            v = sp[:, r, c][share[:, r, c] > 0.05]
            if len(v) >= 5:
                out[r, c] = np.percentile(v, 99)
    act = sp[share > 0.05]
    return out, float(np.percentile(act, 99)) if len(act) else 0.0


def _count_objects(active: np.ndarray) -> int:
    n, _ = cv2.connectedComponents(active.astype(np.uint8), connectivity=8)
    return int(n - 1)


def _grow_box(active: np.ndarray, r: int, c: int, w: int, h: int, R: int, C: int) -> list[int] | None:
    """Source-pixel box of the connected active cells around (r, c)."""
    if not active[r, c]:
        return None
    _, lab = cv2.connectedComponents(active.astype(np.uint8), connectivity=8)
    ys, xs = np.nonzero(lab == lab[r, c])
    return [int(xs.min() * w / C), int(ys.min() * h / R), int((xs.max() + 1) * w / C), int((ys.max() + 1) * h / R)]


def where_words(r: int, c: int, R: int, C: int) -> str:
    v = ("upper", "middle", "lower")[min(2, r * 3 // max(1, R))]
    hz = ("left", "centre", "right")[min(2, c * 3 // max(1, C))]
    return "centre" if (v, hz) == ("middle", "centre") else f"{v} {hz}".replace("middle ", "")


def motion_text(e: dict) -> str:
    """What the motion analysis saw, in words (no text tower needed)."""
    n = e.get("objects", 0)
    parts = [f"{n} moving object{'s' if n != 1 else ''}" if n else "no motion"]
    fired = e.get("fired") or []
    sp, ns = e.get("speed", 0.0), e.get("normal_speed", {}).get("p99", 0.0)
    where = e.get("where", "")
    if "object" in fired:
        size = e.get("size", 1.0)
        if ns > 0 and sp > ns:
            parts.append(f"fast object in the {where}, {sp / ns:.1f}x faster than any normal object")
        elif size > 1.6:
            parts.append(f"large object in the {where}, {size:.1f}x the height of a normal one there")
        else:
            parts.append(f"unusual moving object in the {where} (z {e['z'].get('object', 0):.1f})")
    if "appearance" in fired:
        parts.append(f"unusual-looking object in the {where}, unlike the normal moving objects "
                     f"(z {e['z'].get('appearance', 0):.1f})")
    if "motion" in fired:
        if ns > 0 and sp > ns:
            parts.append(f"fast object in the {where}, {sp / ns:.1f}x faster than any normal object there")
        elif ns == 0 and sp > 0:
            parts.append(f"motion in the {where}, where nothing moved in the normal videos")
        else:
            parts.append(f"unusual motion in the {where} (z {e['z'].get('motion', 0):.1f})")
    if "direction" in fired:
        d = e.get("direction") or {}
        if d.get("turned_deg", 0) >= 90 and d.get("normal"):
            parts.append(f"moving {d['moving']} in the {where}, where normal motion there goes {d['normal']}")
        elif d and not d.get("normal") and sp > 0:
            parts.append(f"motion in the {where}, where nothing moved in the normal videos")
        elif ns > 0 and sp > 1.5 * ns:
            parts.append(f"fast motion in the {where}, {sp / ns:.1f}x faster than normal motion there")
        else:
            parts.append(f"motion in the {where} unlike the normal motion there in direction or speed "
                         f"(z {e['z'].get('direction', 0):.1f})")
    if "shape" in fired:
        parts.append(f"unusual moving shape in the {where} (z {e['z'].get('shape', 0):.1f})")
    if not fired and n:
        parts.append("motion as in the normal videos")
    return ", ".join(parts)
