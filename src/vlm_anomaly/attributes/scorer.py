"""The attribute-based scorer: velocity + appearance of moving objects + whole frame, k-NN density.

After Reiss & Hoshen, "Attribute-based Representations for Accurate and Interpretable Video Anomaly
Detection": each attribute gets its own k-NN density over the training set's examples, calibrated
on held-aside normal data; a frame's attribute value is its worst object's; the calibrated values
are summed. Scores follow the project convention: higher = more normal, below 0 = anomalous
(0 sits at the 99th percentile of held-aside normal frames, in robust standard deviations).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..encoders.factory import create_encoder
from ..errors import InvalidVideoError, NotFittedError
from ..values import EmbeddedVideo
from ..video import Frame, content_hash
from .density import Projection, RobustZ, calibration_groups, knn, subsample
from .features import VELOCITY_DIM, FeatureExtractor, MotionConfig, SourceFeatures
from .regions import Box

if TYPE_CHECKING:
    from ..encoders.base import Encoder

log = logging.getLogger(__name__)

#: attributes measured per object (frame value = worst object) and per frame
OBJECT_ATTRIBUTES = ("velocity", "appearance", "geometry")
ALL_ATTRIBUTES = (*OBJECT_ATTRIBUTES, "frame")
#: fused by default, fixed in advance (Reiss & Hoshen's velocity + deep features, plus the frame)
DEFAULT_FUSED = ("velocity", "appearance", "frame")


@dataclass(frozen=True)
class AttributeConfig:
    """Hyper-parameters, fixed in advance (never tuned on test labels)."""

    motion: MotionConfig = field(default_factory=MotionConfig)
    fused: tuple[str, ...] = DEFAULT_FUSED
    k: int = 3
    pca_dim: int = 128
    max_bank: int = 10000
    speed_grid: int = 4

    def __post_init__(self):
        bad = [a for a in self.fused if a not in ALL_ATTRIBUTES]
        if bad or not self.fused:
            raise ValueError(f"unknown attributes {bad}; choose from {', '.join(ALL_ATTRIBUTES)}")

    def as_dict(self) -> dict:
        return {"motion": self.motion.as_dict(), "fused": list(self.fused), "k": self.k,
                "pca_dim": self.pca_dim, "max_bank": self.max_bank, "speed_grid": self.speed_grid}

    @classmethod
    def from_dict(cls, d: dict) -> AttributeConfig:
        return cls(motion=MotionConfig.from_dict(d.get("motion", {})),
                   fused=tuple(str(a) for a in d.get("fused", DEFAULT_FUSED)), k=int(d.get("k", 3)),
                   pca_dim=int(d.get("pca_dim", 128)), max_bank=int(d.get("max_bank", 10000)),
                   speed_grid=int(d.get("speed_grid", 4)))


@dataclass
class AttributeState:
    """What fitting learns: per attribute a bank of normal examples (+ where each came from) and a
    calibration; PCA projections of the embeddings; normal speeds per grid cell."""

    config: AttributeConfig
    sources: list[str]
    banks: dict[str, np.ndarray]
    #: per bank row: training source number, frame index, box x0 y0 x1 y1 (whole frame for "frame")
    refs: dict[str, np.ndarray]
    calib: dict[str, RobustZ]
    fused_calib: RobustZ
    projections: dict[str, Projection]
    #: (G, G, 3) p50/p95/p99 of object speeds (px/frame) per grid cell (NaN: too few), and global (3,)
    speed_cells: np.ndarray
    speed_global: np.ndarray

    def features(self, attr: str, feats: SourceFeatures) -> np.ndarray:
        """The vectors of ``attr`` in ``feats``, in the space of its bank."""
        raw = {"velocity": lambda: feats.obj_velocity, "appearance": lambda: feats.obj_appearance,
               "geometry": lambda: feats.obj_geometry, "frame": lambda: feats.frame_emb}[attr]()
        proj = self.projections.get(attr)
        return proj(raw) if proj is not None else np.asarray(raw, np.float32)

    # -- serialisation ----------------------------------------------------------------------
    def to_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        meta = {"config": self.config.as_dict(), "sources": list(self.sources),
                "attributes": sorted(self.banks), "calibration": {a: c.as_list() for a, c in self.calib.items()},
                "fused_calibration": self.fused_calib.as_list()}
        arrays: dict[str, np.ndarray] = {"speed_cells": self.speed_cells, "speed_global": self.speed_global}
        for a, b in self.banks.items():
            arrays[f"bank_{a}"] = b.astype(np.float32)
            arrays[f"refs_{a}"] = self.refs[a].astype(np.int64)
        for a, p in self.projections.items():
            arrays[f"pca_mean_{a}"] = p.mean
            arrays[f"pca_components_{a}"] = p.components
        return meta, arrays

    @classmethod
    def from_state(cls, meta: dict, arrays: dict[str, np.ndarray], dim: int) -> AttributeState:
        """Rebuild and validate; raises ValueError/KeyError on inconsistent content."""
        missing = [k for k in ("config", "attributes", "sources", "calibration", "fused_calibration") if k not in meta]
        needed = ["speed_cells", "speed_global"] + [f"{p}_{a}" for a in meta.get("attributes", [])
                                                     for p in ("bank", "refs")]
        missing += [k for k in needed if k not in arrays]
        if missing:
            raise ValueError(f"attribute state incomplete: missing {', '.join(missing)}")
        config = AttributeConfig.from_dict(meta["config"])
        attrs = [str(a) for a in meta["attributes"]]
        if any(a not in ALL_ATTRIBUTES for a in attrs) or any(a not in attrs for a in config.fused):
            raise ValueError("attribute banks do not match the configuration")
        sources = [str(s) for s in meta["sources"]]
        banks, refs, projections = {}, {}, {}
        for a in attrs:
            b = np.asarray(arrays[f"bank_{a}"], np.float32)
            r = np.asarray(arrays[f"refs_{a}"], np.int64)
            if b.ndim != 2 or len(b) == 0 or not np.all(np.isfinite(b)) or r.shape != (len(b), 6):
                raise ValueError(f"bank {a!r} is malformed")
            if r[:, 0].min() < 0 or r[:, 0].max() >= len(sources):
                raise ValueError(f"refs of {a!r} point outside the training sources")
            if a in ("appearance", "frame"):
                mean = np.asarray(arrays[f"pca_mean_{a}"], np.float32)
                comp = np.asarray(arrays[f"pca_components_{a}"], np.float32)
                if mean.shape != (dim,) or comp.shape != (b.shape[1], dim):
                    raise ValueError(f"projection of {a!r} does not match the encoder dimension")
                projections[a] = Projection(mean, comp)
            elif b.shape[1] != {"velocity": VELOCITY_DIM, "geometry": 4}[a]:
                raise ValueError(f"bank {a!r} has the wrong width")
            banks[a], refs[a] = b, r
        g = config.speed_grid
        cells = np.asarray(arrays["speed_cells"], np.float64)
        glob = np.asarray(arrays["speed_global"], np.float64)
        if cells.shape != (g, g, 3) or glob.shape != (3,):
            raise ValueError("speed grid is malformed")
        calib = {a: RobustZ.from_list(meta["calibration"][a]) for a in attrs}
        return cls(config, sources, banks, refs, calib, RobustZ.from_list(meta["fused_calibration"]),
                   projections, cells, glob)


@dataclass
class AttributeScores:
    """Per-frame results of one source: fused score, each attribute's, and explanations."""

    source: str
    frame_indices: np.ndarray
    timestamps: np.ndarray
    scores: np.ndarray  # fused, higher = more normal, < 0 anomalous
    attribute_scores: dict[str, np.ndarray]  # per attribute: high - z (same convention)
    explanations: list[dict]
    frame_embeddings: np.ndarray


class AttributeScorer:
    """Fit on normal sources, score any source frame by frame; explains each frame.

    Has the evaluation protocol's shape: ``fit(list[str]) -> self`` and ``score(str) -> ndarray``
    (one score per sampled frame, every frame by default, higher = more normal).

    Example:
        >>> scorer = AttributeScorer().fit(["train/01", "train/02"])  # doctest: +SKIP
        >>> scores = scorer.score("test/01")  # doctest: +SKIP
        >>> scorer.score_detailed("test/01").explanations[0]["attribute"]  # doctest: +SKIP
        'velocity'
    """

    name = "attributes"

    def __init__(
        self,
        encoder: Encoder | None = None,
        config: AttributeConfig | None = None,
        *,
        interval_ms: int = 0,
        max_side: int = 0,
        max_frames: int = 0,
        cache_dir: str | Path | None = None,
        state: AttributeState | None = None,
    ):
        self._encoder = encoder
        self.config = config or (state.config if state else AttributeConfig())
        self.interval_ms = interval_ms
        self.max_side = max_side
        self.max_frames = max_frames
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else None
        self.state = state
        self._extractor: FeatureExtractor | None = None
        self._train: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]] = []

    # -- features ---------------------------------------------------------------------------
    @property
    def encoder(self) -> Encoder:
        if self._encoder is None:
            self._encoder = create_encoder("efficientnet")
        return self._encoder

    @property
    def extractor(self) -> FeatureExtractor:
        if self._extractor is None:
            self._extractor = FeatureExtractor(self.encoder, self.config.motion)
        return self._extractor

    def _cache_path(self, source: str) -> Path | None:
        if self.cache_dir is None:
            return None
        key = json.dumps([content_hash(source), self.encoder.identity.key, self.config.motion.as_dict(),
                          self.interval_ms, self.max_side, self.max_frames, "v1"], sort_keys=True)
        return self.cache_dir / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.npz"

    def extract(self, source: str | Path, progress: Callable[[int], None] | None = None) -> SourceFeatures:
        """Attributes of one source (from the feature cache when it was extracted before)."""
        src = str(source)
        path = self._cache_path(src)
        if path is not None and path.is_file():
            try:
                return SourceFeatures.load(path, src)
            except Exception as exc:  # noqa: BLE001 - a damaged cache entry only costs re-extracting
                log.warning("ignoring unreadable feature cache %s: %s", path.name, exc)
        feats = self.extractor.extract(src, interval_ms=self.interval_ms, max_side=self.max_side,
                                       max_frames=self.max_frames, progress=progress)
        if feats.n_frames == 0:
            raise InvalidVideoError(f"{src}: no decodable frame")
        if path is not None:
            try:
                feats.save(path)
            except OSError as exc:
                log.warning("feature cache not written (%s)", exc)
        return feats

    # -- fit ------------------------------------------------------------------------------------
    def fit(self, train_sources: Sequence[str | Path],
            progress: Callable[[int, int, str], None] | None = None, *,
            names: Sequence[str] | None = None) -> AttributeScorer:
        """Learn the normal attributes of videos/frame folders of normal activity; returns self.

        ``names``: what explanations call the training videos (default: their file names).
        """
        if not train_sources:
            raise InvalidVideoError("training needs at least one normal video or frame folder")
        feats = []
        done = 0
        for src in train_sources:
            base = done

            def cb(n: int, base: int = base) -> None:
                if progress:
                    progress(base + n, 0, "extracting attributes")

            feats.append(self.extract(src, cb))
            done += feats[-1].n_frames
        return self.fit_features(feats, names=names)

    @property
    def train_videos(self) -> list[EmbeddedVideo]:
        """The sampled frames of each training source and their whole-frame embeddings."""
        return [EmbeddedVideo(src, content_hash(src), idx, ts, emb) for src, idx, ts, emb in self._train]

    def fit_features(self, feats: Sequence[SourceFeatures], *,
                     names: Sequence[str] | None = None) -> AttributeScorer:
        """Fit from already extracted features (the evaluation caches them)."""
        cfg = self.config
        n_frames = sum(f.n_frames for f in feats)
        if n_frames < 2:
            raise InvalidVideoError(f"training needs at least 2 sampled frames, got {n_frames}")
        sources = ([str(n) for n in names] if names is not None and len(names) == len(feats)
                   else [Path(f.source).name or f.source for f in feats])
        # frame rows, object rows, with their source number and global frame row
        f_src = np.concatenate([np.full(f.n_frames, i) for i, f in enumerate(feats)])
        f_row = np.arange(n_frames)
        offsets = np.cumsum([0] + [f.n_frames for f in feats])
        o_src = np.concatenate([np.full(len(f.obj_frame), i) for i, f in enumerate(feats)])
        o_row = np.concatenate([f.obj_frame + offsets[i] for i, f in enumerate(feats)]).astype(np.int64)
        f_refs = np.concatenate([
            np.stack([np.full(f.n_frames, i), f.frame_indices, np.zeros(f.n_frames), np.zeros(f.n_frames),
                      np.full(f.n_frames, f.size[0]), np.full(f.n_frames, f.size[1])], 1)
            for i, f in enumerate(feats)]).astype(np.int64)
        o_refs = np.concatenate([
            np.concatenate([np.stack([np.full(len(f.obj_frame), i), f.frame_indices[f.obj_frame]], 1),
                            f.obj_boxes], 1) for i, f in enumerate(feats)]).astype(np.int64).reshape(-1, 6)
        has_motion = np.concatenate([f.has_motion for f in feats])
        frame_emb = np.concatenate([f.frame_emb for f in feats])
        raw = {
            "velocity": np.concatenate([f.obj_velocity for f in feats]).reshape(-1, VELOCITY_DIM),
            "appearance": np.concatenate([f.obj_appearance for f in feats]).reshape(-1, frame_emb.shape[1]),
            "geometry": np.concatenate([f.obj_geometry for f in feats]).reshape(-1, 4),
            "frame": frame_emb,
        }
        n_obj = len(o_row)
        attrs = [a for a in ALL_ATTRIBUTES if a == "frame" or n_obj >= 2]
        missing = [a for a in cfg.fused if a not in attrs]
        if missing:
            raise InvalidVideoError(
                f"the training videos show too little motion to learn {', '.join(missing)}: "
                "use videos with moving people or objects, or fuse only 'frame'")
        projections = {a: Projection.fit(raw[a], cfg.pca_dim) for a in ("appearance", "frame") if a in attrs}
        banks, refs, calib, heldout = {}, {}, {}, {}
        for a in attrs:
            X = projections[a](raw[a]) if a in projections else raw[a].astype(np.float32)
            is_frame = a == "frame"
            src_ids, rows, all_refs = (f_src, f_row, f_refs) if is_frame else (o_src, o_row, o_refs)
            groups = calibration_groups(src_ids, rows)
            keep = subsample(len(X), cfg.max_bank)
            banks[a], refs[a] = X[keep], all_refs[keep]
            # held-aside distances: each row against the bank rows of other groups only
            dist = np.zeros(len(X))
            for g in np.unique(groups):
                sel = groups == g
                other = keep[groups[keep] != g]
                if len(other):
                    d, _ = knn(X[other], X[sel], cfg.k)
                    dist[sel] = d.mean(1)
            per_frame = dist if is_frame else _frame_max(dist, rows, n_frames)
            valid = np.isfinite(per_frame) & (has_motion | is_frame)
            calib[a] = RobustZ.fit(per_frame[valid])
            heldout[a] = _fill_missing(np.where(np.isfinite(per_frame), per_frame, 0.0), has_motion | is_frame,
                                       offsets)
        fused = sum(calib[a](heldout[a]) for a in cfg.fused)
        speeds = raw["velocity"][:, -1] if n_obj else np.zeros(0)
        cells, glob = _speed_grid(raw["geometry"][:, :2] if n_obj else np.zeros((0, 2)), speeds, cfg.speed_grid)
        self.state = AttributeState(cfg, sources, banks, refs, calib, RobustZ.fit(fused), projections, cells, glob)
        self._train = [(f.source, f.frame_indices, f.timestamps, f.frame_emb) for f in feats]
        return self

    # -- score ----------------------------------------------------------------------------------
    def _check(self) -> AttributeState:
        if self.state is None:
            raise NotFittedError("AttributeScorer is not fitted: call fit() first")
        return self.state

    def score(self, source: str | Path) -> np.ndarray:
        """One fused score per sampled frame (every frame by default), higher = more normal."""
        return self.score_detailed(source).scores

    def score_frames(self, source: str | Path) -> tuple[np.ndarray, np.ndarray]:
        """(sampled frame indices, fused scores): lets ``evaluate`` match scores with labels."""
        d = self.score_detailed(source)
        return d.frame_indices, d.scores

    def score_detailed(self, source: str | Path, progress: Callable[[int], None] | None = None) -> AttributeScores:
        """Fused and per-attribute scores plus an explanation for every sampled frame."""
        self._check()
        return self.score_features(self.extract(source, progress))

    def score_features(self, feats: SourceFeatures) -> AttributeScores:
        st = self._check()
        n = feats.n_frames
        offsets = np.array([0, n])
        z: dict[str, np.ndarray] = {}
        worst_obj: dict[str, np.ndarray] = {}
        nearest: dict[str, np.ndarray] = {}
        dists: dict[str, np.ndarray] = {}
        for a in st.banks:
            X = st.features(a, feats)
            d, i = knn(st.banks[a], X, st.config.k)
            d = d.mean(1) if len(X) else np.zeros(0)
            nearest[a] = i[:, 0] if len(X) else np.zeros(0, np.int64)
            dists[a] = d
            if a == "frame":
                per_frame = d
            else:
                per_frame = _frame_max(d, feats.obj_frame, n)
                worst_obj[a] = _frame_argmax(d, feats.obj_frame, n)
                per_frame = _fill_missing(np.where(np.isfinite(per_frame), per_frame, 0.0), feats.has_motion,
                                          offsets)
            z[a] = st.calib[a](per_frame)
        fused = st.fused_calib(sum(z[a] for a in st.config.fused))
        scores = st.fused_calib.high - fused
        attr_scores = {a: st.calib[a].high - z[a] for a in z}
        expl = [self._explain(feats, j, z, worst_obj, nearest, dists) for j in range(n)]
        return AttributeScores(feats.source, feats.frame_indices, feats.timestamps, scores, attr_scores, expl,
                               feats.frame_emb)

    def score_stream(self, frames: Iterable[Frame]) -> Iterator[tuple[Frame, float, dict]]:
        """Live use: (frame, fused score, explanation) per frame of a stream (frames need ``previous``
        for motion, e.g. ``sample_frames(..., with_previous=True)``), a batch at a time."""
        self._check()
        ex = self.extractor
        buf: list = []

        def flush() -> Iterator[tuple[Frame, float, dict]]:
            feats = _features_of(buf, self.encoder.dim)
            res = self.score_features(feats)
            for k, item in enumerate(buf):
                yield item[0], float(res.scores[k]), res.explanations[k]
            buf.clear()

        for item in ex.process(frames):
            buf.append(item)
            if len(buf) >= ex.chunk_frames:
                yield from flush()
        if buf:
            yield from flush()

    # -- explanations ---------------------------------------------------------------------------
    def normal_speeds(self, box: Box, size: tuple[int, int]) -> dict:
        """Training speed percentiles (px/frame) of objects in the grid cell of ``box``."""
        st = self._check()
        g = st.config.speed_grid
        cx, cy = box.center
        gx = min(g - 1, max(0, int(cx / max(1, size[0]) * g)))
        gy = min(g - 1, max(0, int(cy / max(1, size[1]) * g)))
        cell = st.speed_cells[gy, gx]
        src = "cell" if np.all(np.isfinite(cell)) else "global"
        v = cell if src == "cell" else st.speed_global
        return {"p50": round(float(v[0]), 3), "p95": round(float(v[1]), 3), "p99": round(float(v[2]), 3),
                "where": f"grid cell ({gx},{gy}) of {g}x{g}" if src == "cell" else "whole frame"}

    def _explain(self, feats: SourceFeatures, j: int, z: dict, worst_obj: dict, nearest: dict,
                 dists: dict) -> dict:
        st = self.state
        zj = {a: float(z[a][j]) for a in z}
        excess = {a: zj[a] - st.calib[a].high for a in st.config.fused}
        top = max(excess, key=excess.get)
        out: dict = {
            "attribute": top,
            "fired": [a for a in st.config.fused if excess[a] > 0],
            "z": {a: round(v, 3) for a, v in zj.items()},
            "objects": int((feats.obj_frame == j).sum()),
        }
        # where: the worst object of the top object attribute (or of velocity when the frame fired)
        oa = top if top in worst_obj else next((a for a in st.config.fused if a in worst_obj), None)
        o = int(worst_obj[oa][j]) if oa is not None else -1
        if o >= 0:
            box = Box(*(int(v) for v in feats.obj_boxes[o]))
            size = (int(feats.size[0]), int(feats.size[1]))
            out["box"] = box.as_list()
            out["frame_size"] = list(size)  # the box is in a frame of this (w, h)
            out["speed"] = round(float(feats.obj_velocity[o, -1]), 3)
            out["normal_speed"] = self.normal_speeds(box, size)
            ref_attr, ref_row = oa, o
        else:
            ref_attr, ref_row = "frame", j
        if top == "frame":
            ref_attr, ref_row = "frame", j
        if ref_attr in nearest and len(nearest[ref_attr]):
            r = st.refs[ref_attr][int(nearest[ref_attr][ref_row])]
            out["nearest_normal"] = {"attribute": ref_attr, "source": st.sources[int(r[0])], "frame": int(r[1]),
                                     "box": [int(v) for v in r[2:6]],
                                     "distance": round(float(dists[ref_attr][ref_row]), 4)}
        out["text"] = explanation_text(out)
        return out


def explanation_text(e: dict) -> str:
    """One line a person reads: which attribute fired, where, how fast vs normal, nearest normal."""
    fired = e.get("fired") or []
    a = e.get("attribute", "")
    head = f"{a} {'fired' if a in fired else 'highest'} (z {e.get('z', {}).get(a, 0):.1f})"
    parts = [head]
    if "box" in e:
        ns = e.get("normal_speed", {})
        parts.append(f"at box {e['box']}: speed {e.get('speed', 0):.2f} px/frame vs normal there "
                     f"p50 {ns.get('p50', 0):.2f} / p99 {ns.get('p99', 0):.2f}")
    nn = e.get("nearest_normal")
    if nn:
        parts.append(f"nearest normal {nn['attribute']}: {nn['source']} frame {nn['frame']} box {nn['box']}")
    return "; ".join(parts)


# -- helpers ------------------------------------------------------------------------------------
def _frame_max(values: np.ndarray, rows: np.ndarray, n: int) -> np.ndarray:
    """Per frame, the largest value of its objects; 0 for frames without objects."""
    out = np.zeros(n)
    if len(values):
        np.maximum.at(out, rows, values)
    return out


def _frame_argmax(values: np.ndarray, rows: np.ndarray, n: int) -> np.ndarray:
    """Per frame, the row of its object with the largest value (-1 when none)."""
    out = np.full(n, -1, np.int64)
    best = np.full(n, -np.inf)
    for i, (r, v) in enumerate(zip(rows, values)):
        if v > best[r]:
            best[r], out[r] = v, i
    return out


def _fill_missing(values: np.ndarray, valid: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Frames without a previous source frame (no motion) take the nearest valid frame's value in
    the same source; a source with none keeps its values."""
    out = np.asarray(values, np.float64).copy()
    for lo, hi in zip(offsets[:-1], offsets[1:]):
        ok = np.flatnonzero(valid[lo:hi])
        if len(ok) == 0 or len(ok) == hi - lo:
            continue
        pos = np.arange(hi - lo)
        nearest = ok[np.clip(np.searchsorted(ok, pos), 0, len(ok) - 1)]
        prev = ok[np.clip(np.searchsorted(ok, pos) - 1, 0, len(ok) - 1)]
        pick = np.where(np.abs(prev - pos) < np.abs(nearest - pos), prev, nearest)
        out[lo:hi] = out[lo:hi][pick]
    return out


def _speed_grid(centres: np.ndarray, speeds: np.ndarray, g: int, min_count: int = 5
                ) -> tuple[np.ndarray, np.ndarray]:
    cells = np.full((g, g, 3), np.nan)
    if len(speeds) == 0:
        return cells, np.zeros(3)
    gx = np.clip((centres[:, 0] * g).astype(int), 0, g - 1)
    gy = np.clip((centres[:, 1] * g).astype(int), 0, g - 1)
    for y in range(g):
        for x in range(g):
            s = speeds[(gx == x) & (gy == y)]
            if len(s) >= min_count:
                cells[y, x] = np.percentile(s, [50, 95, 99])
    return cells, np.percentile(speeds, [50, 95, 99])


def _features_of(items: list, dim: int) -> SourceFeatures:
    """SourceFeatures of a batch of :meth:`FeatureExtractor.process` outputs (live scoring)."""
    frames = [it[0] for it in items]
    obj_frame = np.concatenate([np.full(len(it[1]), k) for k, it in enumerate(items)]).astype(np.int64)
    boxes = [b.as_list() for it in items for b in it[1]]
    img = frames[0].image
    return SourceFeatures(
        source=frames[0].source,
        size=np.array([img.shape[1], img.shape[0]], np.int64),
        frame_indices=np.array([f.index for f in frames], np.int64),
        timestamps=np.array([f.timestamp for f in frames], np.float64),
        has_motion=np.array([f.previous is not None for f in frames], bool),
        frame_emb=np.stack([it[3] for it in items]).astype(np.float32),
        obj_frame=obj_frame,
        obj_boxes=np.asarray(boxes, np.int32).reshape(-1, 4),
        obj_velocity=np.concatenate([it[2] for it in items]).reshape(-1, VELOCITY_DIM).astype(np.float32),
        obj_appearance=np.concatenate([it[4] for it in items]).reshape(-1, dim).astype(np.float32),
    )
