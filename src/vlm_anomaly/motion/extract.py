"""Decode a source once and turn every sampled frame into cell features (memory flat in length)."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from itertools import islice
from typing import ClassVar

import cv2
import numpy as np

from ..errors import InvalidVideoError
from ..redact import redact_url
from ..video import Frame, sample_frames
from ..video.sampling import SampleGrid
from ..video.sources import DEFAULT_FOLDER_FPS
from .appearance import CropEmbedder
from .direction import DIRECTION_DIM
from .features import (
    BLOB_DIM,
    CAMERA_DIM,
    MOTION_DIM,
    SCENE_DIM,
    SHAPE_BINS,
    CellFeatures,
    FlowEngine,
    GridConfig,
    ReferenceBuffer,
    camera_stats,
    cell_features,
    direction_features,
    scene_cells,
    scene_image,
    work_gray,
)

log = logging.getLogger(__name__)

#: samples in a row that had earlier frames, all too old to measure motion against, before a warning
FAR_APART_WARN = 3


@dataclass
class SourceCells:
    """Cell features of the sampled frames of one source."""

    source: str
    size: tuple[int, int]  # source (width, height)
    frame_indices: np.ndarray
    timestamps: np.ndarray
    has_motion: np.ndarray  # (N,) bool
    motion: np.ndarray  # (N, R, C, MOTION_DIM)
    shape: np.ndarray  # (N, R, C, SHAPE_BINS)
    blob_frame: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # (M,) frame row of each blob
    blobs: np.ndarray = field(default_factory=lambda: np.zeros((0, BLOB_DIM), np.float32))  # (M, BLOB_DIM)
    #: (M, D) encoder embeddings of the blobs' crops; (0, 0) when no crop embedder was used
    crops: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    scene: np.ndarray | None = None  # (N, R, C, SCENE_DIM) gain-free patches (features.scene_image)
    #: (N, R, C) how much each cell's patch changed over the last SCENE_STILL_S (inf: too little history)
    scene_change: np.ndarray | None = None
    camera: np.ndarray | None = None  # (N, CAMERA_DIM) brightness, contrast, sharpness, change

    def __post_init__(self) -> None:
        n, R, C = self.motion.shape[:3]
        if self.scene is None:
            self.scene = np.zeros((n, R, C, SCENE_DIM), np.float32)
        if self.scene_change is None:
            self.scene_change = np.full((n, R, C), np.inf, np.float32)
        if self.camera is None:
            self.camera = np.full((n, CAMERA_DIM), np.nan, np.float32)
    #: (N, R, C, DIRECTION_DIM) direction histograms per cell (see ``direction.py``)
    direction: np.ndarray | None = None

    #: the fields with one entry per sampled frame (along their first axis)
    PER_FRAME: ClassVar[tuple[str, ...]] = ("frame_indices", "timestamps", "has_motion", "motion", "shape",
                                            "scene", "scene_change", "camera", "direction")

    @property
    def n_frames(self) -> int:
        return len(self.frame_indices)

    def where(self, keep: np.ndarray) -> SourceCells:
        """The frames where ``keep`` (n,) is True, their moving regions renumbered."""
        keep = np.asarray(keep, bool)
        new_no = np.cumsum(keep) - 1
        bk = keep[self.blob_frame] if len(self.blob_frame) else np.zeros(0, bool)
        return replace(
            self, **{k: getattr(self, k)[keep] for k in self.PER_FRAME if getattr(self, k) is not None},
            blob_frame=new_no[self.blob_frame[bk]].astype(np.int64), blobs=self.blobs[bk],
            crops=self.crops[bk] if len(self.crops) == len(self.blobs) and self.crops.shape[1] else self.crops)


@dataclass
class CellStream:
    """Turns a stream of frames into cell features; keeps its reference frames between calls.

    Frames may carry ``previous`` (the source frame before them) and ``previous_timestamp``; the
    stream's own earlier frames serve as references too. With an ``embedder``, the moving regions'
    crops are embedded too (in batches of a chunk offline, per frame live).
    """

    config: GridConfig
    cols: int
    embedder: CropEmbedder | None = None
    timing: dict = field(default_factory=lambda: {"prepare_s": 0.0, "features_s": 0.0, "frames": 0})

    def __post_init__(self) -> None:
        self._refs = ReferenceBuffer(self.config)
        self._flow = FlowEngine(self.config.flow_finest_scale)
        self._scenes = SceneHistory()
        self._far_apart = 0  # samples in a row whose earlier frames were all too old

    def embed(self, crops: list[np.ndarray]) -> np.ndarray:
        """The embeddings of moving regions' crops; (0, 0) without an embedder."""
        return self.embedder.embed(crops) if self.embedder is not None else np.zeros((0, 0), np.float32)

    def observe(self, t: float, image: np.ndarray) -> None:
        """A frame that is not scored but may serve as a reference later."""
        self._refs.add(t, work_gray(image, self.config))

    def features(self, frame: Frame) -> CellFeatures:
        t0 = time.perf_counter()
        self._check_shape(frame)
        gray = work_gray(frame.image, self.config)
        prev_t = getattr(frame, "previous_timestamp", None)
        if frame.previous is not None and prev_t is not None and prev_t < frame.timestamp:
            self._refs.add(float(prev_t), work_gray(frame.previous, self.config))
        ref, gap = self._refs.reference(frame.timestamp, gray.shape)
        self._check_spacing(frame, ref is None)
        t1 = time.perf_counter()
        out = cell_features(ref, gray, gap, self.config, self.cols, self._flow, frame.image.shape[0])
        dref, dgap = self._refs.direction_reference(frame.timestamp, gray.shape)
        if dref is not None and out.has_motion:
            out.direction = direction_features(dref, gray, dgap, self.config, self.cols, self._flow,
                                               frame.image.shape[0])
        out.scene = scene_cells(scene_image(gray, self.config.rows, self.cols), self.config.rows, self.cols)
        out.scene_change = self._scenes.change(frame.timestamp, out.scene)
        out.camera = camera_stats(gray, ref, dref)
        self._refs.add(frame.timestamp, gray)
        tm = self.timing
        tm["prepare_s"] += t1 - t0
        tm["features_s"] += time.perf_counter() - t1
        tm["frames"] += 1
        return out

    def _check_shape(self, frame: Frame) -> None:
        """Refuse a frame of another shape than the view the grid was made for. Why: the grid's
        cells would be stretched over it, so places, sizes and the standing scene no longer match
        what training saw, and every frame of a wider view scored as an anomaly, without a word.
        Up to a column's worth of difference is the same view: a 640x352 sub-stream of a 16:9 camera
        falls on the other side of the columns' rounding than its 1920x1080 main stream."""
        h, w = frame.image.shape[:2]
        if abs(self.config.rows * w / max(1, h) - self.cols) > 1.0:
            raise InvalidVideoError(
                f"{redact_url(frame.source)}: its frames ({w}x{h}, aspect {w / max(1, h):.2f}) do not have the "
                f"shape of the view the model knows (aspect about {self.cols / self.config.rows:.1f}): another "
                "camera, or a cropped or stretched stream? A model learns one camera's view: train one on "
                "this footage")

    def _check_spacing(self, frame: Frame, no_ref: bool) -> None:
        """Warn once when frames keep coming too far apart to measure motion (a 0.5 fps camera):
        the detector then sees no motion at all, and would miss everything without a word."""
        newest = self._refs.newest()
        if not no_ref or newest is None or newest >= frame.timestamp:
            self._far_apart = 0
            return
        self._far_apart += 1
        if self._far_apart == FAR_APART_WARN:
            log.warning("%s: frames %.1f s apart, but motion is measured only between frames at most %g s "
                        "apart: no motion is seen (the frame rate is too low for the motion detector)",
                        frame.source, frame.timestamp - newest, self.config.max_gap_s)


#: a cell's content counts as standing when its patch barely changed over this many seconds
SCENE_STILL_S = 1.0


class SceneHistory:
    """Recent scene patches of a stream, to tell what stands (unchanged for ``SCENE_STILL_S``) from
    what passes: a walker changes its cells within a second, a bag set down does not."""

    def __init__(self, window_s: float = SCENE_STILL_S):
        self.window_s = window_s
        self._buf: deque[tuple[float, np.ndarray]] = deque()

    def change(self, t: float, patches: np.ndarray) -> np.ndarray:
        """(R, C) the largest change of each cell's patch against the samples of the last window
        (inf while the history spans less than half the window)."""
        while self._buf and t - self._buf[0][0] > self.window_s + 1e-3:
            self._buf.popleft()
        if self._buf and t <= self._buf[-1][0]:  # a repeated or out-of-order timestamp
            return np.full(patches.shape[:2], np.inf, np.float32)
        if self._buf and t - self._buf[0][0] >= self.window_s / 2 - 1e-3:
            out = np.max([np.linalg.norm(patches - p, axis=-1) for _, p in self._buf], axis=0).astype(np.float32)
        else:
            out = np.full(patches.shape[:2], np.inf, np.float32)
        self._buf.append((t, patches))
        return out


def iter_source(source: str, *, interval_ms: int = 0, max_side: int = 0, max_frames: int = 0,
                max_duration_s: float = 0, config: GridConfig | None = None,
                folder_fps: float = DEFAULT_FOLDER_FPS) -> Iterator[tuple[Frame, bool]]:
    """The frames of a file/folder that scoring needs, with whether each is a sampled one.

    Why not always every frame: converting frames nobody measures costs more than the flow. When
    the sampling interval is a usable time gap or longer, each sample comes with the newest source
    frame at least ``video.frames.PREVIOUS_GAP_S`` (= ``min_gap_s``) before it, the frame a live
    source hands over too, so a model scores the same offline and live, and at 10 or 30 fps alike;
    only shorter intervals (or every frame) need the frames in between.
    """
    cfg = config or GridConfig()
    kw = dict(max_side=max_side, max_frames=max_frames, max_duration_s=max_duration_s, folder_fps=folder_fps)
    if interval_ms >= cfg.min_gap_s * 1000:
        for f in sample_frames(source, interval_ms=interval_ms, with_previous=True, **kw):
            yield f, True
        return
    grid = SampleGrid(interval_ms)
    n = 0
    for f in sample_frames(source, interval_ms=0, max_side=max_side, max_duration_s=max_duration_s,
                           folder_fps=folder_fps):
        take = grid.take(f.timestamp)
        yield f, take
        if take:
            n += 1
            if max_frames and n >= max_frames:
                return


def degrade(image: np.ndarray, scale: float = 0.5, quality: int = 30) -> np.ndarray:
    """The frame as a camera's sub-stream might deliver it: half size, strong JPEG compression.

    Why: a model fitted only on clean exports finds the blockier, smaller live stream abnormal;
    fitting on both (training-time augmentation) teaches it that compression is normal."""
    h, w = image.shape[:2]
    small = cv2.resize(image, (max(8, round(w * scale)), max(8, round(h * scale))), interpolation=cv2.INTER_AREA)
    bgr = small[..., ::-1] if small.ndim == 3 else small
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(bgr), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 image
        return small
    out = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    return np.ascontiguousarray(out[..., ::-1]) if out.ndim == 3 else out


def degraded(frames: Iterable[tuple[Frame, bool]]) -> Iterator[tuple[Frame, bool]]:
    """``frames`` with every image (and its ``previous``) passed through :func:`degrade`."""
    for f, take in frames:
        prev = degrade(f.previous) if f.previous is not None else None
        yield replace(f, image=degrade(f.image), previous=prev), take


def iter_cells(source: str, config: GridConfig, cols: int, *, frames: Iterable[tuple[Frame, bool]] | None = None,
               progress: Callable[[int], None] | None = None, stream: CellStream | None = None,
               chunk: int = 256) -> Iterator[SourceCells]:
    """Cell features of the sampled ``frames`` of ``source`` (default: every frame, see
    :func:`iter_source`), ``chunk`` frames at a time (memory stays flat in video length: neither
    frames nor features of earlier chunks are kept)."""
    cs = stream or CellStream(config, cols)
    it = frames if frames is not None else iter_source(source, config=config)
    done = 0
    size = (0, 0)
    measured: list[tuple[int, float, CellFeatures]] = []
    crops: list[np.ndarray] = []
    for f, take in it:
        size = (f.image.shape[1], f.image.shape[0])
        if not take:
            cs.observe(f.timestamp, f.image)
            continue
        c = cs.features(f)
        measured.append((f.index, f.timestamp, c))
        if cs.embedder is not None:
            crops.extend(cs.embedder.crops(f.image, c.blobs))
        done += 1
        if progress:
            progress(done)
        if len(measured) >= chunk:
            yield pack_cells(str(source), size, measured, cs.embed(crops), config.rows, cols)
            measured, crops = [], []
    if measured or done == 0:
        yield pack_cells(str(source), size, measured, cs.embed(crops), config.rows, cols)


def pack_cells(source: str, size: tuple[int, int], measured: Sequence[tuple[int, float, CellFeatures]],
               crops: np.ndarray, rows: int, cols: int) -> SourceCells:
    """One :class:`SourceCells` from (frame index, timestamp, features) of consecutive sampled
    frames; ``crops``: the embeddings of their moving regions' crops, in order."""
    feats = [c for _, _, c in measured]

    def stack(name: str, *dim: int) -> np.ndarray:
        return np.stack([getattr(c, name) for c in feats]) if feats else np.zeros((0, *dim), np.float32)

    return SourceCells(
        source=source, size=size, frame_indices=np.asarray([i for i, _, _ in measured], np.int64),
        timestamps=np.asarray([t for _, t, _ in measured], np.float64),
        has_motion=np.asarray([c.has_motion for c in feats], bool),
        motion=stack("motion", rows, cols, MOTION_DIM), shape=stack("shape", rows, cols, SHAPE_BINS),
        blob_frame=np.repeat(np.arange(len(feats), dtype=np.int64), [len(c.blobs) for c in feats]),
        blobs=np.concatenate([c.blobs for c in feats]).astype(np.float32) if feats
        else np.zeros((0, BLOB_DIM), np.float32),
        crops=crops, scene=stack("scene", rows, cols, SCENE_DIM), camera=stack("camera", CAMERA_DIM),
        scene_change=stack("scene_change", rows, cols), direction=stack("direction", rows, cols, DIRECTION_DIM))


def concat_cells(chunks: Iterable[SourceCells]) -> SourceCells:
    """One :class:`SourceCells` from consecutive chunks of the same source."""
    chunks = list(chunks)
    offsets = np.cumsum([0] + [c.n_frames for c in chunks])
    per_frame = {k: np.concatenate([getattr(c, k) for c in chunks]) if all(getattr(c, k) is not None for c in chunks)
                 else None for k in SourceCells.PER_FRAME}
    return SourceCells(
        source=chunks[0].source, size=chunks[-1].size, **per_frame,
        blob_frame=np.concatenate([c.blob_frame + o for c, o in zip(chunks, offsets)]),
        blobs=np.concatenate([c.blobs for c in chunks]),
        crops=np.concatenate([c.crops for c in chunks]) if all(c.crops.shape[1] for c in chunks)
        else np.zeros((0, 0), np.float32))


#: sampled frames per training clip that the speed floor is learnt from
FLOOR_FRAMES = 300


def learn_speed_floor(clips: Iterable[tuple[str, Iterable[tuple[Frame, bool]]]], config: GridConfig,
                      cols: int) -> GridConfig:
    """``config`` with ``moving_speed`` = ``relative_floor`` x the median speed of the moving regions
    of the training clips (found with the displacement floor alone), so that what counts as
    moving is relative to how fast this camera's normal objects move (far or near, 10 or 30 fps).
    Unchanged when ``relative_floor`` is 0 or the clips show fewer than 20 moving regions."""
    if config.relative_floor <= 0:
        return config
    probe = replace(config, moving_speed=0.0)
    speeds = [extract_cells(src, probe, cols, frames=islice(frames, FLOOR_FRAMES)).blobs[:, 5] for src, frames in clips]
    sp = np.concatenate(speeds) if speeds else np.zeros(0)
    if len(sp) < 20:
        return config
    return replace(config, moving_speed=float(np.clip(config.relative_floor * np.median(sp), 0.002, 0.5)))


def extract_cells(source: str, config: GridConfig, cols: int, **kwargs) -> SourceCells:
    """Cell features of every sampled frame of ``source`` (training needs them all at once)."""
    return concat_cells(iter_cells(source, config, cols, **kwargs))
