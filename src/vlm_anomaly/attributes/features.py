"""Per-frame and per-object attributes of a source: velocity, box geometry, appearance, whole frame.

Why all in one pass: a frame is decoded once (with its source neighbour for flow), and the crops
of several frames are embedded in large batches next to the frames themselves.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..atomic import atomic_write_bytes
from ..encoders.crops import CropEncoder
from ..video import Frame, batched, prefetch, sample_frames
from .flow import MotionField, motion_field
from .regions import Box, find_regions

if TYPE_CHECKING:
    from ..encoders.base import Encoder

log = logging.getLogger(__name__)

VELOCITY_BINS = 8
#: velocity attribute: mean flow magnitude per direction bin (sums to the mean speed) + p90 speed
VELOCITY_DIM = VELOCITY_BINS + 1


@dataclass(frozen=True)
class MotionConfig:
    """How motion and regions are found (saved with the model: scoring must use the same)."""

    flow_scale: float = 0.5
    flow_method: str = "farneback"
    diff_threshold: float = 8.0
    flow_threshold: float = 0.6
    min_area_frac: float = 0.0005
    max_regions: int = 12
    crop_size: int = 64
    crop_pad: float = 0.15

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: dict) -> MotionConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def velocity_features(motion: MotionField, box: Box) -> np.ndarray:
    """(VELOCITY_DIM,) float32: per-direction mean magnitude over the box's moving pixels + p90 speed."""
    s = motion.scale
    h, w = motion.mask.shape
    x0, y0 = min(w - 1, int(box.x0 * s)), min(h - 1, int(box.y0 * s))
    x1, y1 = max(x0 + 1, int(np.ceil(box.x1 * s))), max(y0 + 1, int(np.ceil(box.y1 * s)))
    flow = motion.flow[y0:y1, x0:x1].reshape(-1, 2)
    sel = motion.mask[y0:y1, x0:x1].reshape(-1)
    if sel.sum() >= 3:
        flow = flow[sel]
    mag = np.linalg.norm(flow, axis=1)
    ang = np.arctan2(flow[:, 1], flow[:, 0])
    bins = ((ang + np.pi) / (2 * np.pi) * VELOCITY_BINS).astype(int) % VELOCITY_BINS
    hist = np.bincount(bins, weights=mag, minlength=VELOCITY_BINS) / max(1, len(mag))
    return np.concatenate([hist, [np.percentile(mag, 90) if len(mag) else 0.0]]).astype(np.float32)


def moving_objects(image: np.ndarray, previous: np.ndarray | None, config: MotionConfig
                   ) -> tuple[list[Box], list[np.ndarray]]:
    """Boxes of the moving objects of a frame and their velocity features (flow vs ``previous``)."""
    c = config
    mf = motion_field(previous, image, scale=c.flow_scale, method=c.flow_method,
                      diff_threshold=c.diff_threshold, flow_threshold=c.flow_threshold)
    h, w = image.shape[:2]
    boxes = find_regions(mf.mask, mf.scale, (w, h), min_area_frac=c.min_area_frac, max_regions=c.max_regions)
    return boxes, [velocity_features(mf, b) for b in boxes]


def crop(image: np.ndarray, box: Box, pad: float = 0.15) -> np.ndarray:
    """The box grown by ``pad`` of its size on each side (context around the object), clipped."""
    h, w = image.shape[:2]
    px, py = int(round((box.x1 - box.x0) * pad)), int(round((box.y1 - box.y0) * pad))
    return image[max(0, box.y0 - py) : min(h, box.y1 + py), max(0, box.x0 - px) : min(w, box.x1 + px)]


@dataclass
class SourceFeatures:
    """Everything the attribute scorer needs from one source; cacheable as a plain ``.npz``.

    Object arrays are aligned (M rows); ``obj_frame`` says which sampled frame (row) each belongs to.
    """

    source: str
    size: np.ndarray  # (2,) int: width, height
    frame_indices: np.ndarray  # (N,) int64 index in the source
    timestamps: np.ndarray  # (N,) float64 seconds
    has_motion: np.ndarray  # (N,) bool: a previous source frame was available
    frame_emb: np.ndarray  # (N, D) float32
    obj_frame: np.ndarray  # (M,) int64
    obj_boxes: np.ndarray  # (M, 4) int32 source pixels
    obj_velocity: np.ndarray  # (M, VELOCITY_DIM) float32
    obj_appearance: np.ndarray  # (M, D) float32

    @property
    def n_frames(self) -> int:
        return len(self.frame_indices)

    @property
    def obj_geometry(self) -> np.ndarray:
        w, h = (float(v) for v in self.size)
        b = self.obj_boxes.astype(np.float32)
        return np.stack([(b[:, 0] + b[:, 2]) / 2 / w, (b[:, 1] + b[:, 3]) / 2 / h,
                         (b[:, 2] - b[:, 0]) / w, (b[:, 3] - b[:, 1]) / h], 1).reshape(-1, 4)

    @property
    def obj_speed(self) -> np.ndarray:
        return self.obj_velocity[:, -1]

    def save(self, path: str | Path) -> None:
        import io

        buf = io.BytesIO()
        arrays = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "source"}
        np.savez(buf, **arrays)
        atomic_write_bytes(Path(path), buf.getvalue())

    @classmethod
    def load(cls, path: str | Path, source: str) -> SourceFeatures:
        with np.load(path, allow_pickle=False) as z:
            return cls(source=source, **{f.name: z[f.name] for f in fields(cls) if f.name != "source"})


@dataclass
class _Pending:
    frame: Frame
    boxes: list[Box]
    velocity: list[np.ndarray]


class FeatureExtractor:
    """Turns frames into :class:`SourceFeatures` with one encoder for frames and crops.

    Example:
        >>> fx = FeatureExtractor(create_encoder("efficientnet"))  # doctest: +SKIP
        >>> feats = fx.extract("clip.mp4", interval_ms=0)  # doctest: +SKIP
    """

    def __init__(self, encoder: Encoder, config: MotionConfig | None = None, *, chunk_frames: int = 16):
        self.encoder = encoder
        self.config = config or MotionConfig()
        self.chunk_frames = max(1, chunk_frames)
        self.crop_encoder = CropEncoder(encoder, self.config.crop_size)
        #: seconds spent per stage (flow+regions, frame embedding, crop embedding), for benchmarks
        self.timing = {"motion_s": 0.0, "frame_embed_s": 0.0, "crop_embed_s": 0.0, "frames": 0, "crops": 0}

    def motion(self, frame: Frame) -> tuple[list[Box], list[np.ndarray]]:
        return moving_objects(frame.image, frame.previous, self.config)

    def process(self, frames: Iterable[Frame]) -> Iterator[tuple[Frame, list[Box], np.ndarray, np.ndarray,
                                                                  np.ndarray]]:
        """Per frame: (frame, boxes, velocity (m, V), frame embedding (D,), crop embeddings (m, D)).

        Works on any frame stream (offline or live); frames need ``previous`` for motion.
        """
        import time

        for chunk in batched(frames, self.chunk_frames):
            t0 = time.perf_counter()
            pend = []
            for f in chunk:
                boxes, vel = self.motion(f)
                pend.append(_Pending(f, boxes, vel))
            t1 = time.perf_counter()
            femb = self.encoder.encode([p.frame.image for p in pend])
            t2 = time.perf_counter()
            crops = [crop(p.frame.image, b, self.config.crop_pad) for p in pend for b in p.boxes]
            cemb = self.crop_encoder(crops)
            t3 = time.perf_counter()
            tm = self.timing
            tm["motion_s"] += t1 - t0
            tm["frame_embed_s"] += t2 - t1
            tm["crop_embed_s"] += t3 - t2
            tm["frames"] += len(pend)
            tm["crops"] += len(crops)
            j = 0
            for p, e in zip(pend, femb):
                m = len(p.boxes)
                vel = np.stack(p.velocity) if m else np.zeros((0, VELOCITY_DIM), np.float32)
                yield p.frame, p.boxes, vel, e, cemb[j : j + m]
                j += m

    def extract(
        self,
        source: str | Path,
        *,
        interval_ms: int = 0,
        max_side: int = 0,
        max_frames: int = 0,
        progress: Callable[[int], None] | None = None,
    ) -> SourceFeatures:
        """All attributes of the sampled frames of a video file or frame folder."""
        src = str(source)
        frames = sample_frames(src, interval_ms=interval_ms, max_side=max_side, max_frames=max_frames,
                               with_previous=True)
        idx, ts, motion_ok, femb, ofr, oboxes, ovel, oapp = [], [], [], [], [], [], [], []
        size = (0, 0)
        for n, (f, boxes, vel, e, cemb) in enumerate(self.process(prefetch(frames, maxsize=32))):
            size = (f.image.shape[1], f.image.shape[0])
            idx.append(f.index)
            ts.append(f.timestamp)
            motion_ok.append(f.previous is not None)
            femb.append(e)
            ofr.extend([n] * len(boxes))
            oboxes.extend(b.as_list() for b in boxes)
            ovel.append(vel)
            oapp.append(cemb)
            if progress:
                progress(n + 1)
        d = self.encoder.dim
        return SourceFeatures(
            source=src,
            size=np.asarray(size, np.int64),
            frame_indices=np.asarray(idx, np.int64),
            timestamps=np.asarray(ts, np.float64),
            has_motion=np.asarray(motion_ok, bool),
            frame_emb=np.stack(femb).astype(np.float32) if femb else np.zeros((0, d), np.float32),
            obj_frame=np.asarray(ofr, np.int64),
            obj_boxes=np.asarray(oboxes, np.int32).reshape(-1, 4),
            obj_velocity=np.concatenate(ovel).astype(np.float32) if ovel else np.zeros((0, VELOCITY_DIM), np.float32),
            obj_appearance=np.concatenate(oapp).astype(np.float32) if oapp else np.zeros((0, d), np.float32),
        )
