"""The motion scorer: per-location k-NN densities of how things move and what moving things look
like, each calibrated on held-out normal clips, fused by a fixed rule, thresholded at a target
false-alarm rate learnt from normal data alone.

Scores follow the project convention: higher = more normal, below 0 = anomalous; 0 is the
threshold that flags ``target_false_alarm`` of held-out normal frames (after smoothing).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields, replace
from itertools import takewhile
from pathlib import Path

import numpy as np

from ..detectors.calibration import RobustZ
from ..detectors.neighbours import Projection, time_chunks
from ..errors import InvalidVideoError, NotFittedError
from ..smoothing import worst_of
from ..values import EmbeddedVideo
from ..video import Frame, content_hash, video_rate
from ..video.sources import DEFAULT_FOLDER_FPS
from .appearance import CropEmbedder
from .attribute import FitData
from .calibration import fit_threshold
from .extract import (
    CellStream,
    SourceCells,
    degraded,
    extract_cells,
    iter_cells,
    iter_source,
    learn_speed_floor,
    pack_cells,
)
from .features import GridConfig, grid_cols
from .registry import ATTRIBUTES as REGISTRY
from .scene import learn_still

log = logging.getLogger(__name__)

#: the attributes a model may fuse (see ``registry.py``): "object": position-free speed/size of
#: moving regions; "appearance": what moving regions look like (crop embeddings, position-free);
#: "motion"/"shape": per grid cell
ATTRIBUTES = tuple(REGISTRY)

#: training clips are sampled at least this often, whatever the scoring interval: the held-out
#: calibration then rests on enough frames of each clip (at 500 ms a 40 s clip gave 80, so one
#: odd frame, smoothed over the window, set the per-clip 99th percentile and the threshold - and
#: a walker going the wrong way stayed under it), and the banks hold the motion between samples
FIT_INTERVAL_MS = 100


@dataclass(frozen=True)
class MotionConfig:
    """Hyper-parameters (fixed before any test run; see docs/motion.md)."""

    grid: GridConfig = field(default_factory=GridConfig)
    #: chosen by bench/motion_cv.py (training clips only); scene and camera: see docs/motion.md;
    #: "direction" is fused gated (``direction_margin``), CV round 9's pick (docs/motion.md)
    fused: tuple[str, ...] = ("object", "appearance", "shape", "direction", "scene", "camera")
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
    #: direction adds to the fused score only beyond this many times its held-out 99th percentile
    #: (0: its whole z, as models saved before this field did)
    direction_margin: float = 1.0
    #: scene: a cell's content stands when its patch changed less than this over the last second
    #: (frame-contrast units over its 16 pixels; 0.5 chosen by bench/motion_cv.py --fixed-camera);
    #: fitting raises it to ``scene_still_noise`` x the camera's own noise (see ``scene.learn_still``),
    #: so the saved model holds the level it learnt
    scene_still: float = 0.5
    #: scene: the stillness level is at least this many times the median change of the training
    #: cells where nothing moves (grain, a codec's flicker; docs/motion.md); 0: ``scene_still`` as given
    scene_still_noise: float = 2.0
    #: scene: adds to the fused score only beyond this many times its held-out 99th percentile
    #: (most frames hold nothing standing; 4 chosen by bench/motion_cv.py --fixed-camera, docs/motion.md v8)
    scene_margin: float = 4.0
    #: scene: a standing cell that something passes in front of keeps the verdict it had when it last
    #: stood for up to this many seconds (see ``scene.hold_standing``); 0: no hold, as models saved before
    scene_hold_s: float = 3.0
    #: scene: a standing cell whose look has changed only gradually since it last looked as in
    #: training (a shadow moving with the sun) keeps that verdict (see ``scene.follow_gradual``);
    #: False: judged against training alone, as models saved before
    scene_follow: bool = True
    #: each attribute adds only its z above 0 (its held-out median) to the fused score: an attribute
    #: more typical than usual is no evidence that the frame is normal (a frame with few moving
    #: regions has a low worst-region distance, whose negative z cancelled another attribute's
    #: evidence; docs/motion.md, item 27). False: the plain sum, as models saved before
    evidence_only: bool = False
    #: moving regions touching the frame's edge count for the region attributes (object,
    #: appearance); False: they do not (their flow has nothing to match on one side; docs/motion.md,
    #: item 27). True: as models saved before
    edge_regions: bool = True

    def __post_init__(self):
        bad = [a for a in self.fused if a not in ATTRIBUTES]
        if bad or not self.fused:
            raise ValueError(f"unknown attributes {bad}; choose from {', '.join(ATTRIBUTES)}")
        if not 0 < self.target_false_alarm < 0.5:
            raise ValueError("target_false_alarm must be between 0 and 0.5")
        if self.threshold_rule not in ("pooled", "clip"):
            raise ValueError("threshold_rule must be 'pooled' or 'clip'")
        # also read from model files (untrusted): sizes and counts within what fitting ever uses
        ranges = {"k": (1, 1000), "k_object": (1, 1000), "k_appearance": (1, 1000), "pca_dim": (1, 4096),
                  "radius": (0, 64), "max_bank": (1, 1_000_000), "smoothing_window": (1, 100_000),
                  "place_examples": (0, 1_000_000), "place_max_radius": (0, 64), "direction_margin": (0, 1e6),
                  "scene_still": (0, 1e6), "scene_still_noise": (0, 1e6),
                  "scene_margin": (0, 1e6), "scene_hold_s": (0, 1e6)}
        for name, (low, top) in ranges.items():
            v = getattr(self, name)
            if not low <= v <= top:  # also refuses NaN
                raise ValueError(f"{name} must be {low:g} to {top:g}, got {v}")

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
        kw.setdefault("direction_margin", 0.0)  # models saved before it existed added direction's whole z
        kw.setdefault("evidence_only", False)  # models saved before these existed: plain sum, edge regions count
        kw.setdefault("edge_regions", True)
        kw.setdefault("scene_still_noise", 0.0)  # models saved before it existed learnt no stillness level
        kw.setdefault("scene_hold_s", 0.0)  # models saved before it existed held nothing
        kw.setdefault("scene_follow", False)  # ... and followed no gradual change
        return cls(grid=GridConfig.from_dict(d.get("grid", {})), fused=tuple(d.get("fused", base.fused)), **kw)


@dataclass
class MotionState:
    """What fitting learns (arrays + JSON, no pickle). Each attribute keeps its k-NN bank in
    ``rows``/``cells``/``refs``/``scales`` and anything else it learns in ``arrays``/``values``."""

    config: MotionConfig
    cols: int
    sources: list[str]
    calib: dict[str, RobustZ] = field(default_factory=dict)
    threshold: float = 0.0  # fused z at which a frame becomes anomalous (after smoothing)
    heldout_flagged: float = 0.0  # share of held-out normal frames over the threshold
    score_unit: float = 1.0  # threshold - median held-out fused value: output scores are in this unit
    scales: dict[str, np.ndarray] = field(default_factory=dict)  # per attribute, per-dimension divisor
    rows: dict[str, np.ndarray] = field(default_factory=dict)  # per attribute (M, d) scaled normal examples
    cells: dict[str, np.ndarray] = field(default_factory=dict)  # per attribute (M,) cell of each example
    refs: dict[str, np.ndarray] = field(default_factory=dict)  # per attribute (M, 2): source number, frame
    arrays: dict[str, np.ndarray] = field(default_factory=dict)  # other learnt arrays, by their file key
    values: dict[str, float] = field(default_factory=dict)  # other learnt numbers, by their file key
    #: appearance: PCA of the training crops' embeddings, and the encoder whose embeddings they are
    projection: Projection | None = None
    encoder_key: str = ""
    #: footage marked normal after training: its key -> the source number its examples carry
    normal: dict[str, int] = field(default_factory=dict)
    #: the training videos' frame rate (0: unknown). Motion is measured per second, and a frame
    #: folder carries no timing: one is read at this rate, the camera's, not at a guess
    fps: float = 0.0
    _banks: dict = field(default_factory=dict, repr=False)

    @property
    def n_cells(self) -> int:
        return self.config.grid.rows * self.cols

    def bank(self, a: str):
        """Attribute ``a``'s k-NN bank over its stored rows (built once)."""
        if a not in self._banks:
            self._banks[a] = REGISTRY[a].bank(self, self.rows[a])
        return self._banks[a]

    def to_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        meta = {"config": self.config.as_dict(), "cols": self.cols, "sources": list(self.sources),
                "calibration": {a: c.as_list() for a, c in self.calib.items()}, "threshold": self.threshold,
                "heldout_flagged": self.heldout_flagged, "score_unit": self.score_unit,
                "encoder_key": self.encoder_key, "normal": dict(self.normal), "fps": self.fps, **self.values}
        arrays = dict(self.arrays)
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
        thr = float(meta["threshold"])
        if not np.isfinite(thr):
            raise ValueError("threshold is not finite")
        st = cls(config, int(meta["cols"]), [str(s) for s in meta["sources"]],
                 {a: RobustZ.from_list(meta["calibration"][a]) for a in config.fused}, thr,
                 float(meta.get("heldout_flagged", 0.0)), float(meta.get("score_unit", 1.0)),
                 encoder_key=str(meta.get("encoder_key", "")))
        for a in config.fused:
            REGISTRY[a].load(st, meta, arrays)
        load_heldout(st, arrays)
        normal = meta.get("normal", {})
        if not isinstance(normal, dict) or any(
                not isinstance(v, int) or not 0 <= v < len(st.sources) for v in normal.values()):
            raise ValueError("the footage marked normal is malformed")
        st.normal = {str(k): int(v) for k, v in normal.items()}
        st.fps = float(meta.get("fps", 0.0))
        if not (np.isfinite(st.fps) and 0.0 <= st.fps <= 1000.0):
            raise ValueError("the training frame rate is not a frame rate")
        return st


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


def frame_crop_means(feats: SourceCells) -> np.ndarray | None:
    """(N, D) unit mean of each frame's crop embeddings (zero rows without regions); None without crops."""
    if not feats.crops.shape[1]:
        return None
    out = np.zeros((feats.n_frames, feats.crops.shape[1]), np.float32)
    np.add.at(out, feats.blob_frame, feats.crops)
    norm = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norm > 0, norm, 1.0)


class MotionScorer:
    """Fit on normal sources, score any source frame by frame, live or offline; explains frames.

    Example:
        >>> scorer = MotionScorer().fit(["train/01", "train/02"])  # doctest: +SKIP
        >>> scorer.score_detailed("test/01").scores  # doctest: +SKIP
    """

    name = "motion"

    def __init__(self, config: MotionConfig | None = None, *, interval_ms: int = 0, max_side: int = 0,
                 max_frames: int = 0, max_duration_s: float = 0, state: MotionState | None = None,
                 embedder: CropEmbedder | None = None, folder_fps: float = 0.0):
        self.config = state.config if state is not None else (config or MotionConfig())
        #: the stillness level asked for: every fit learns from it afresh (``config`` holds the learnt one)
        self._still_asked = self.config.scene_still
        #: embeds the moving regions' crops (needed when the ``appearance`` attribute is fused)
        self.embedder = embedder
        self.interval_ms = interval_ms
        self.max_side = max_side
        self.max_frames = max_frames
        self.max_duration_s = max_duration_s
        #: the rate frame folders are read at when the user says (0: see :attr:`folder_fps`)
        self.folder_fps_asked = folder_fps
        self.state = state
        self.timing: dict = {}

    # -- features ---------------------------------------------------------------------------
    def _cols_for(self, source: str) -> int:
        if self.state is not None:
            return self.state.cols
        from ..video import probe

        info = probe(source)
        return grid_cols(info.width / max(1, info.height), self.config.grid.rows)

    def _measure(self, src: str, cols: int, frames: Iterable[tuple[Frame, bool]],
                 progress: Callable[[int], None] | None) -> SourceCells:
        """Features of the sampled ``frames`` of ``src``, all at once (training, footage marked normal)."""
        stream = self._stream(cols)
        out = extract_cells(src, self.config.grid, cols, progress=progress, stream=stream, frames=frames)
        self.timing = dict(stream.timing)
        return out

    @property
    def fit_interval_ms(self) -> int:
        """The sampling of training clips: the scoring interval, or ``FIT_INTERVAL_MS`` when sparser."""
        return min(self.interval_ms, FIT_INTERVAL_MS) if self.interval_ms > 0 else 0

    def _frames(self, src: str, *, fit: bool = False):
        """The frames of ``src`` to measure; ``fit``: of a training clip, sampled at least every
        ``FIT_INTERVAL_MS`` whatever the scoring interval (the features are rate-free, so a model
        fitted so scores any interval; see :data:`FIT_INTERVAL_MS`)."""
        iv, mf = self.interval_ms, self.max_frames
        if fit and iv != self.fit_interval_ms:
            mf, iv = mf * -(-iv // FIT_INTERVAL_MS), FIT_INTERVAL_MS  # the same length of footage
        return iter_source(src, interval_ms=iv, max_side=self.max_side, max_frames=mf,
                           max_duration_s=self.max_duration_s, config=self.config.grid, folder_fps=self.folder_fps)

    @property
    def folder_fps(self) -> float:
        """The rate a frame folder is read at: the one the user gives (setting ``folder_fps``), else
        the training videos' (:attr:`MotionState.fps`), else the usual guess. Why: a folder of
        frames of the model's camera runs at its rate; read at another, every motion would measure
        that many times faster or slower than normal, and every time would be wrong."""
        fps = self.state.fps if self.state is not None else getattr(self, "_fit_fps", 0.0)
        return self.folder_fps_asked or fps or DEFAULT_FOLDER_FPS

    def _stream(self, cols: int) -> CellStream:
        emb = None
        if any(REGISTRY[a].needs_crops for a in self.config.fused):
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
        # the camera's rate, kept in the model: its videos', else the rate the user gave its folders
        self._fit_fps = video_rate(map(str, train_sources)) or self.folder_fps_asked
        if progress:
            progress(0, 0, "measuring how fast normal objects move")
        grid = learn_speed_floor(((str(s), self._frames(str(s), fit=True)) for s in train_sources),
                                 self.config.grid, cols)
        self.config = replace(self.config, grid=grid)
        feats, copies, done = [], [], 0

        def step(stage: str, base: int) -> Callable[[int], None]:
            return lambda n: progress(base + n, 0, stage) if progress else None

        for src in map(str, train_sources):
            feats.append(self._measure(src, cols, self._frames(src, fit=True), step("measuring motion", done)))
            done += feats[-1].n_frames
            if self.config.augment:  # the clip at half size, strongly compressed (see extract.degrade)
                copies.append(self._measure(src, cols, degraded(self._frames(src, fit=True)),
                                            step("measuring motion (compressed copy)", done)))
                done += copies[-1].n_frames
        self.fit_cells(feats, copies=copies)
        self.state.fps = self._fit_fps
        if names is not None and len(names) == len(feats):
            self.state.sources = [str(n) for n in names]
        self._train = [(str(f.source), f.frame_indices, f.timestamps, frame_crop_means(f)) for f in feats]
        return self

    @property
    def train_videos(self) -> list[EmbeddedVideo]:
        """The sampled frames of each training source with the mean embedding of their moving
        regions (None without appearance: motion alone embeds nothing)."""
        return [EmbeddedVideo(src, content_hash(src), idx, ts, emb)
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
        # the camera's own noise, from the clips as recorded (the degraded copies are another stream)
        still = learn_still(feats[:n_orig], self._still_asked, cfg.scene_still_noise)
        cfg = self.config = replace(cfg, scene_still=still)
        rank = {c: r for r, c in enumerate(keep_clip)}
        data = FitData(cfg, feats, _groups(feats, copy_of),
                       np.concatenate([np.full(f.n_frames, rank[copy_of[i]]) for i, f in enumerate(feats)]),
                       np.concatenate([f.frame_indices for f in feats]),
                       np.concatenate([f.has_motion for f in feats]), cols,
                       self.embedder.identity_key if self.embedder is not None else "")
        st = MotionState(cfg, cols, names)
        heldout = {a: REGISTRY[a].fit(data, st) for a in cfg.fused}
        clip = np.concatenate([np.full(f.n_frames, i) for i, f in enumerate(feats)])
        # kept in the model: footage marked normal later is calibrated with these, without the videos
        st.arrays["heldout_values"] = np.stack([np.asarray(heldout[a], np.float64) for a in cfg.fused], 1)
        st.arrays["heldout_frames"] = np.stack([data.groups, data.has_motion, clip, data.src_no], 1).astype(np.int64)
        calibrate(st)
        if "appearance" not in cfg.fused:
            st.encoder_key = ""
        self.state = st
        return self

    # -- footage marked normal after training ------------------------------------------------
    def extract_range(self, source: str | Path, start_s: float | None = None, end_s: float | None = None,
                      progress: Callable[[int], None] | None = None) -> SourceCells:
        """Features of the sampled frames of ``source`` between ``start_s`` and ``end_s`` (seconds
        of the source; None: its start/end), measured as scoring the whole source measures them
        (the frames before the range serve as references and scene history)."""
        src = str(source)
        frames = takewhile(lambda ft: end_s is None or ft[0].timestamp <= end_s + 1e-6, self._frames(src))
        feats = self._measure(src, self._check().cols, frames, progress)
        return feats.where(feats.timestamps >= start_s - 1e-6) if start_s is not None else feats

    def add_normal(self, feats: SourceCells, key: str, name: str) -> None:
        """Learn ``feats`` (footage marked normal) as one more normal clip: each attribute's normal
        examples grow with its rows, the clip joins the held-out clips (measured against the model
        as it was: it is held out, as every training clip is) and calibration and threshold are
        recomputed from the held-out values the model keeps - no training video is read again."""
        st = self._check()
        if key in st.normal:
            raise ValueError(f"footage {key!r} was already added")
        if not feats.n_frames:
            raise InvalidVideoError("no sampled frame in the footage to mark normal")
        if feats.motion.shape[2] != st.cols:
            raise InvalidVideoError("the footage's grid does not match the model's (another camera's aspect ratio?)")
        held = self._heldout_values(feats)
        src_no = len(st.sources)
        st.sources.append(str(name))
        st.normal[key] = src_no
        for a in st.config.fused:
            REGISTRY[a].add_normal(st, feats, src_no)
        if "heldout_values" in st.arrays:
            info = st.arrays["heldout_frames"]
            n = feats.n_frames
            new = np.stack([np.full(n, int(info[:, 0].max()) + 1), feats.has_motion.astype(np.int64),
                            np.full(n, int(info[:, 2].max()) + 1), np.full(n, src_no)], 1)
            st.arrays["heldout_values"] = np.concatenate([st.arrays["heldout_values"], held])
            st.arrays["heldout_frames"] = np.concatenate([info, new]).astype(np.int64)
            calibrate(st)
        st._banks.clear()

    def _heldout_values(self, feats: SourceCells) -> np.ndarray:
        """(n, attributes) values of the footage's frames, each measured held out: against the
        model's normal data plus the footage's other time chunks (as a single training clip is held
        out, in 4 chunks). Why not against the model alone: what the footage shows is normal now -
        measured only against the old data, every marked anomaly would raise the threshold to its
        own level and the model would stop seeing anything as unusual."""
        st = self._check()
        n = feats.n_frames
        chunk = time_chunks(n)
        out = np.zeros((n, len(st.config.fused)))
        for c in np.unique(chunk):
            sel = chunk == c
            tmp = replace(st, rows=dict(st.rows), cells=dict(st.cells), refs=dict(st.refs), arrays=dict(st.arrays),
                          sources=list(st.sources), _banks={})
            if (~sel).any():
                for a in st.config.fused:
                    REGISTRY[a].add_normal(tmp, feats.where(~sel), len(st.sources))
            part = feats.where(sel)
            out[sel] = np.stack([np.asarray(REGISTRY[a].values(tmp, part)[0], np.float64)
                                 for a in st.config.fused], 1)
        return out

    def remove_normal(self, key: str) -> None:
        """Forget footage added by :meth:`add_normal`: its examples and held-out values go, and the
        calibration is recomputed - the model scores as it did before that footage was added."""
        st = self._check()
        if key not in st.normal:
            raise KeyError(key)
        src_no = st.normal.pop(key)
        for a in st.config.fused:
            REGISTRY[a].remove_normal(st, src_no)
        if "heldout_values" in st.arrays:
            keep = st.arrays["heldout_frames"][:, 3] != src_no
            st.arrays["heldout_values"] = st.arrays["heldout_values"][keep]
            st.arrays["heldout_frames"] = st.arrays["heldout_frames"][keep]
            calibrate(st)
        if src_no == len(st.sources) - 1:
            st.sources.pop()
        st._banks.clear()

    @staticmethod
    def _fuse(st: MotionState, z: dict[str, np.ndarray], has_motion: np.ndarray) -> np.ndarray:
        """The fused value of each frame: the sum of the attributes' z (a fixed rule); attributes
        that need motion lend frames without a reference their nearest measured frame's value."""
        n = len(has_motion)
        fused = np.zeros(n)
        fill = None
        if n and not has_motion.all() and has_motion.any():
            ok = np.flatnonzero(has_motion)
            fill = ok[np.clip(np.searchsorted(ok, np.arange(n)), 0, len(ok) - 1)]
        for a in st.config.fused:
            v = np.maximum(z[a], 0.0) if st.config.evidence_only else z[a]
            fused = fused + (v[fill] if fill is not None and REGISTRY[a].needs_motion else v)
        return fused

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
        memory: dict = {}  # what attributes remember from the earlier chunks of this clip
        parts = [self.score_cells(c, memory) for c in iter_cells(src, st.config.grid, st.cols, frames=self._frames(src),
                                                         progress=progress, stream=stream)]
        self.timing = dict(stream.timing)
        attrs = {a: np.concatenate([p.attribute_scores[a] for p in parts]) for a in parts[0].attribute_scores}
        emb = (np.concatenate([p.embeddings for p in parts]) if all(p.embeddings is not None for p in parts)
               else None)
        scores = np.concatenate([p.scores for p in parts])
        ts = np.concatenate([p.timestamps for p in parts])
        # each frame's own explanation: where labels are made (with the gaps), it is made to agree with them
        expl = [e for p in parts for e in p.explanations]
        return MotionScores(src, np.concatenate([p.frame_indices for p in parts]), ts, scores, attrs, expl, emb)

    def score_cells(self, feats: SourceCells, memory: dict | None = None) -> MotionScores:
        """Scores of ``feats``; ``memory`` (one dict per stream, kept by the caller between calls)
        carries what attributes remember from the stream's earlier frames (None: a stream of its own)."""
        st = self._check()
        if feats.n_frames and feats.motion.shape[2] != st.cols:
            raise InvalidVideoError("the video's grid does not match the model's")
        memory = {} if memory is None else memory
        z, detail = {}, {}
        for a in st.config.fused:
            v, detail[a] = REGISTRY[a].stream_values(st, feats, memory.setdefault(a, {}))
            z[a] = REGISTRY[a].zscore(st, v)
        fused = self._fuse(st, z, feats.has_motion)
        scores = (st.threshold - fused) / st.score_unit
        expl = [self._explain(feats, j, z, detail) for j in range(feats.n_frames)]
        return MotionScores(feats.source, feats.frame_indices, feats.timestamps, scores, z, expl,
                            frame_crop_means(feats))

    def score_stream(self, frames: Iterable[Frame]) -> Iterator[tuple[Frame, float, dict]]:
        """Live: (frame, score, explanation) per frame, in order; reference frames carry over."""
        st = self._check()
        stream = self._stream(st.cols)
        recent: deque[tuple[float, float, dict]] = deque(maxlen=max(1, st.config.smoothing_window))
        memory: dict = {}
        for f in frames:
            c = stream.features(f)
            crops = stream.embed(stream.embedder.crops(f.image, c.blobs) if stream.embedder is not None else [])
            res = self.score_cells(pack_cells(f.source, (f.image.shape[1], f.image.shape[0]),
                                              [(f.index, f.timestamp, c)], crops, st.config.grid.rows, st.cols),
                                   memory)
            self.timing = dict(stream.timing)
            # the watcher smooths over the trailing window: explain by its worst frame when it is low
            recent.append((float(res.scores[0]), f.timestamp, res.explanations[0]))
            yield f, float(res.scores[0]), worst_of(list(recent), res.explanations[0])

    # -- explanations ---------------------------------------------------------------------------
    def _explain(self, feats: SourceCells, j: int, z: dict, detail: dict) -> dict:
        """Frame ``j`` in words and boxes: the attributes that fired, and where the most unusual
        one (or the next that saw something there) found its worst region or cell."""
        st = self.state
        zj = {a: float(z[a][j]) for a in z}
        top = max(zj, key=zj.get)
        w, h = (int(v) for v in feats.size)
        out: dict = {
            "attribute": top,
            "fired": [a for a in st.config.fused if REGISTRY[a].fires(st, zj[a])],
            "z": {a: round(v, 3) for a, v in zj.items()},
            "objects": int(np.sum(feats.blob_frame == j)),
            "frame_size": [w, h],
        }
        fired = sorted(out["fired"], key=zj.get, reverse=True)
        # a camera fault changes what every other attribute sees (a moved view's cells all differ
        # from their places'): the frame is the camera's, whatever the others' z; and a note on how
        # the scene looks would describe the fault's dark, blurred or shifted image as the scene's
        fault = [a for a in fired if REGISTRY[a].kind == "camera"]
        first = fault[0] if fault else top
        out["kind"] = REGISTRY[fault[0] if fault else fired[0]].kind if fired else "activity"
        for a in [first] + [a for a in st.config.fused if a != first]:
            if REGISTRY[a].locate(st, feats, j, detail[a], out):
                break
        notices = [] if fault else [m for a in st.config.fused if (m := REGISTRY[a].notice(st, feats, j, detail[a]))]
        if notices:
            out["notice"] = "; ".join(notices)
        out["text"] = motion_text(out)
        return out


def calibrate(st: MotionState) -> None:
    """Each attribute's robust z and the threshold, from the held-out values the state keeps (the
    training clips', and those of footage marked normal since): one rule for fit and additions."""
    cfg = st.config
    V, info = st.arrays["heldout_values"], st.arrays["heldout_frames"]
    groups, has_motion, clip = info[:, 0], info[:, 1].astype(bool), info[:, 2]
    for i, a in enumerate(cfg.fused):
        st.calib[a] = REGISTRY[a].calibrate(V[:, i], has_motion)
    # held-out frames without a reference keep their own (empty) value, as scored up to v5
    fused = MotionScorer._fuse(st, {a: REGISTRY[a].zscore(st, V[:, i]) for i, a in enumerate(cfg.fused)},
                               np.ones(len(V), bool))
    starts = np.flatnonzero(np.r_[True, clip[1:] != clip[:-1]])
    slices = [slice(int(a), int(b)) for a, b in zip(starts, np.r_[starts[1:], len(clip)])]
    st.threshold, st.heldout_flagged, st.score_unit = fit_threshold(
        fused, groups, slices, cfg.smoothing_window, cfg.target_false_alarm, cfg.threshold_rule)


def load_heldout(st: MotionState, arrays: dict[str, np.ndarray]) -> None:
    """Restore the held-out values (models saved before they were kept have none: they learn
    footage marked normal into their examples but keep their calibration)."""
    if "heldout_values" not in arrays and "heldout_frames" not in arrays:
        return
    V = np.asarray(arrays.get("heldout_values", np.zeros((0, 0))), np.float64)
    info = np.asarray(arrays.get("heldout_frames", np.zeros((0, 0))), np.int64)
    if (V.ndim != 2 or V.shape[1] != len(st.config.fused) or info.shape != (len(V), 4) or len(V) < 2
            or not np.all(np.isfinite(V)) or info[:, 1].min() < 0 or info[:, 1].max() > 1):
        raise ValueError("the held-out calibration values are malformed")
    st.arrays["heldout_values"], st.arrays["heldout_frames"] = V, info


def _groups(feats: Sequence[SourceCells], copy_of: Sequence[int]) -> np.ndarray:
    """Held-out groups: one per clip (a degraded copy goes with its clip), or 4 time chunks of a
    single clip (and of its copy)."""
    if len(set(copy_of)) >= 2:
        return np.concatenate([np.full(f.n_frames, copy_of[i]) for i, f in enumerate(feats)])
    return np.concatenate([time_chunks(f.n_frames) for f in feats])


def motion_text(e: dict) -> str:
    """What the motion analysis saw, in words (no text tower needed)."""
    n = e.get("objects", 0)
    fired = e.get("fired") or []
    phrases = [attr.phrase(e) for name, attr in REGISTRY.items() if name in fired]
    if e.get("kind") == "camera":  # the camera's fault alone: what the scene does is moot then
        parts = [REGISTRY["camera"].phrase(e)] if "camera" in REGISTRY else phrases
    else:
        parts = [f"{n} moving object{'s' if n != 1 else ''}" if n else "no motion", *phrases]
        if not fired and n:
            parts.append("motion as in the normal videos")
    if e.get("notice"):
        parts.append(f"note: {e['notice']}")
    return ", ".join(parts)
