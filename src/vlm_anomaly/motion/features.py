"""Per-location motion features at a fixed working resolution, in resolution- and rate-free units.

Why a fixed working height: a camera's sub-stream at half size, a re-encoded export and the
original must give the same numbers; shrinking every frame to one height (and blurring it a
little) removes most of what resolution and block noise change. Why heights per second: speeds in
pixels per frame depend on frame size and frame rate; displacement divided by the frame height
and by the true time between the two frames does not. Why a grid of cells in relative
coordinates: what is normal depends on where (far people move fewer pixels, people walk on the
path, not on the grass), and per-cell statistics need no object detector and do not merge crowds.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, fields

import cv2
import numpy as np

from .direction import DIRECTION_DIM, direction_cells

#: per cell, motion attribute: p90 speed, mean vx, mean vy (heights/s, of moving pixels), moving share
MOTION_DIM = 4
#: per cell, shape attribute: gradient-orientation histogram of the moving pixels (8 bins, weighted
#: by moving share), a cheap stand-in for "what the moving thing looks like"
SHAPE_BINS = 8
#: per cell, scene attribute: the cell's pixels at SCENE_PATCH x SCENE_PATCH (after an area resize
#: of the working frame: averages away block noise), minus the frame's mean, over its contrast
#: (a change of the whole scene's gain and offset leaves it unchanged)
SCENE_PATCH = 4
SCENE_DIM = SCENE_PATCH * SCENE_PATCH
#: per frame, camera statistics: mean grey level, contrast (grey-level std), sharpness (99th
#: percentile of |Laplacian| over the contrast: gain-free), change against the reference frames (mean |diff|,
#: the larger of the flow's and the direction's reference; NaN without one)
CAMERA_DIM = 4
#: the direction histograms count pixels faster than this share of the moving-speed floor
DIRECTION_FLOOR = 0.5
#: the direction reference (``GridConfig.direction_gap_s``) is not older than this; where the only
#: earlier frames are older (sampling slower than once a second), the main reference serves
DIRECTION_MAX_GAP_S = 1.0
#: per moving blob (object): centre x, centre y (frame fractions), width, height (frame heights),
#: filled share of its box, 90th-percentile speed, mean vx, mean vy (frame heights/s)
BLOB_DIM = 8


@dataclass(frozen=True)
class GridConfig:
    """How frames become cell features (saved with the model: scoring must use the same)."""

    work_height: int = 160  # every frame is resized to this height (aspect kept)
    blur_sigma: float = 1.0  # Gaussian blur before flow: hides block noise and sensor grain
    rows: int = 8  # grid rows; columns follow the training aspect ratio
    min_gap_s: float = 0.09  # flow against the newest earlier frame at least this old (rate-free)
    max_gap_s: float = 0.5  # older references are not used (scene changed too much)
    #: direction histograms: flow against the newest earlier frame at least this old (rate-free;
    #: 0: the reference above). A walker moves about one working pixel in 0.1 s, where the flow
    #: under-measures it or loses it under the speed floor from sample to sample; over 0.4 s it
    #: moves several pixels and its direction is measured in every sample (docs/motion.md, v10)
    direction_gap_s: float = 0.4
    #: a pixel moves when its displacement against the reference exceeds this many working pixels
    #: (the flow's own noise is a displacement, whatever the frame rate: an absolute speed would hide
    #: slow or far walkers in a 10 fps video and show noise in a 30 fps one)
    min_shift_px: float = 0.3
    #: heights/s: and faster than this. Fitting replaces it by ``relative_floor`` x the median speed
    #: of the training clips' moving regions (a far camera or a low frame rate moves people fewer
    #: heights per second; a fixed floor would hide them), so the saved model holds the learnt floor
    moving_speed: float = 0.04
    #: 0.73: on Ped2's training clips (25 fps) this gives the 0.04 heights/s that v1-v4 used
    relative_floor: float = 0.73
    diff_threshold: float = 6.0  # grey levels: ... and the frames differ near it
    min_blob_frac: float = 0.002  # moving regions smaller than this share of height^2 are noise
    #: a moving region wider than this share of its height is also measured in windows of half its
    #: height (people side by side, a cyclist inside a crowd), besides as a whole; 0: never
    split_aspect: float = 0.0
    #: a moving region also yields, as regions of their own, its parts whose flow differs from the
    #: region's median flow by more than this many times the median's speed (a cyclist inside or
    #: beside a group of walkers: the group is one connected region moving at a walker's speed,
    #: the cyclist's pixels are not); 0: never
    split_flow: float = 0.7
    #: DIS optical flow's finest pyramid level (0: the working frame itself, 1: half of it, 2: a
    #: quarter, the fast preset's own; see ``FlowEngine``): at 1 a fast object among walkers keeps
    #: its own speed, but in the synthetic CV more held-out normal frames were flagged, so the
    #: default stays 2 (docs/motion.md, v10)
    flow_finest_scale: int = 2

    def __post_init__(self) -> None:
        # the one check, whether the config is built or read from a model file (untrusted: a working
        # height of a million pixels would allocate terabytes, a negative one crash mid-scoring)
        if self.flow_finest_scale not in range(FlowEngine.COARSE + 1):
            raise ValueError(f"flow_finest_scale must be 0 to {FlowEngine.COARSE}, got {self.flow_finest_scale}")
        if not 16 <= self.work_height <= 2160:
            raise ValueError(f"work_height must be 16 to 2160, got {self.work_height}")
        if not 1 <= self.rows <= 64:
            raise ValueError(f"rows must be 1 to 64, got {self.rows}")
        limits = {"blur_sigma": 20.0, "min_gap_s": 10.0, "max_gap_s": 10.0, "direction_gap_s": 10.0,
                  "min_shift_px": 100.0, "moving_speed": 100.0, "relative_floor": 100.0, "diff_threshold": 255.0,
                  "min_blob_frac": 1.0, "split_aspect": 100.0, "split_flow": 100.0}
        for name, top in limits.items():
            v = getattr(self, name)
            if not 0 <= v <= top:  # also refuses NaN
                raise ValueError(f"{name} must be 0 to {top:g}, got {v}")

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: dict) -> GridConfig:
        names = {f.name for f in fields(cls)}
        kw = {k: type(getattr(cls(), k))(v) for k, v in d.items() if k in names}
        # models saved before a field existed were measured without it
        return cls(**{"split_aspect": 0.0, "split_flow": 0.0, "min_shift_px": 0.0, "relative_floor": 0.0,
                      "direction_gap_s": 0.0, **kw})


def work_gray(image: np.ndarray, cfg: GridConfig) -> np.ndarray:
    """RGB/gray uint8 frame -> blurred grayscale at the working height (aspect kept)."""
    gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    h, w = gray.shape
    H = cfg.work_height
    W = max(8, int(round(w * H / h)))
    if (h, w) != (H, W):
        gray = cv2.resize(gray, (W, H), interpolation=cv2.INTER_AREA if h > H else cv2.INTER_LINEAR)
    if cfg.blur_sigma > 0:
        gray = cv2.GaussianBlur(gray, (0, 0), cfg.blur_sigma)
    return gray


def grid_cols(aspect: float, rows: int) -> int:
    """Columns for a width/height ``aspect`` so cells are roughly square."""
    return max(1, int(round(rows * aspect)))


class FlowEngine:
    """OpenCV DIS optical flow (fast preset; about a millisecond per working-size frame on one
    core), optionally refined at pyramid level ``finest_scale`` (several milliseconds more).

    Why two passes below the preset's own level (a quarter): at a quarter one 8-pixel patch spans
    32 working pixels, several walkers at once, so a fast object among walkers takes their speed;
    at half it is about one walker. But the finer pass alone can lock onto a neighbour one period
    away in a regular pattern (a row of similar walkers, a fence) and spread that match along it
    (spatial propagation); so its flow is kept only where it stays within one quarter-level pixel
    (4 working pixels) of the preset's own flow, which is what refining can legitimately change.
    """

    #: the preset's finest level; also the level whose pixel bounds the finer pass's correction
    COARSE = 2

    def __init__(self, finest_scale: int = COARSE) -> None:
        """``finest_scale``: 0 to ``COARSE``, checked where it is configured (:class:`GridConfig`)."""
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
        self._fine = None
        if int(finest_scale) < self.COARSE:
            self._fine = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
            self._fine.setFinestScale(int(finest_scale))

    def __call__(self, prev: np.ndarray, cur: np.ndarray) -> np.ndarray:
        flow = self._dis.calc(prev, cur, None)
        if self._fine is None:
            return flow
        fine = self._fine.calc(prev, cur, None)
        d = fine - flow
        ok = (d[..., 0] ** 2 + d[..., 1] ** 2) <= float(2 ** self.COARSE) ** 2
        return np.where(ok[..., None], fine, flow)


@dataclass
class CellFeatures:
    """Features of one frame: (rows, cols, MOTION_DIM) motion and (rows, cols, SHAPE_BINS) shape."""

    motion: np.ndarray
    shape: np.ndarray
    has_motion: bool
    blobs: np.ndarray = field(default_factory=lambda: np.zeros((0, BLOB_DIM), np.float32))
    scene: np.ndarray | None = None  # (rows, cols, SCENE_DIM)
    camera: np.ndarray | None = None  # (CAMERA_DIM,)
    scene_change: np.ndarray | None = None  # (rows, cols)
    #: (rows, cols, DIRECTION_DIM) which way and how fast each cell moves (see ``direction.py``)
    direction: np.ndarray | None = None


def _cell_sums(values: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Sum of an (H, W, ...) array over each cell of a rows x cols grid (cells may differ by a pixel)."""
    H, W = values.shape[:2]
    ys = np.linspace(0, H, rows + 1).astype(int)
    xs = np.linspace(0, W, cols + 1).astype(int)
    integ = np.add.reduceat(np.add.reduceat(values, ys[:-1], axis=0), xs[:-1], axis=1)
    return integ


#: the reference frame is brought to the current frame's light when the typical ratio of their
#: brightness, place by place, differs from 1 by more than this
LIGHT_RATIO = 0.02


def match_light(prev: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """``prev`` scaled to the light of ``cur``: a change of the whole scene's light between the two
    frames (a cloud, dusk, a lamp, the camera's gain) is then not motion. The gain is the median
    over an 8 x 8 grid of the places' brightness ratio, so an object entering (a few places) does
    not count as a light change; frames whose light barely differs are returned unchanged."""
    a = cv2.resize(prev, (8, 8), interpolation=cv2.INTER_AREA).astype(np.float32)
    b = cv2.resize(cur, (8, 8), interpolation=cv2.INTER_AREA).astype(np.float32)
    gain = float(np.median(b / np.maximum(a, 1.0)))
    if abs(gain - 1.0) <= LIGHT_RATIO:
        return prev
    return np.clip(prev.astype(np.float32) * gain, 0, 255).astype(np.uint8)


def cell_features(prev: np.ndarray | None, cur: np.ndarray, dt: float, cfg: GridConfig, cols: int,
                  flow_engine: FlowEngine, source_height: int = 0) -> CellFeatures:
    """Motion and shape features of each cell of ``cur`` (working-size gray) against ``prev``.

    ``source_height``: the frame's height before resizing; a smaller source is upscaled to the
    working height, and its compression noise with it, so the displacement floor is then at
    least ``min_shift_px`` *source* pixels."""
    rows = cfg.rows
    if prev is None or prev.shape != cur.shape or not dt > 0:
        return CellFeatures(np.zeros((rows, cols, MOTION_DIM), np.float32),
                            np.zeros((rows, cols, SHAPE_BINS), np.float32), False,
                            direction=np.zeros((rows, cols, DIRECTION_DIM), np.float32))
    flow, speed, changed, min_speed = _flow_field(prev, cur, dt, cfg, flow_engine, source_height)
    H = cur.shape[0]
    moving = (speed > max(cfg.moving_speed, min_speed)) & changed
    slow = _direction_mask(speed, changed, cfg, min_speed)
    mv = moving.astype(np.float32)
    ys = np.linspace(0, H, rows + 1).astype(int)
    xs = np.linspace(0, cur.shape[1], cols + 1).astype(int)
    area = np.outer(np.diff(ys), np.diff(xs)).astype(np.float32)
    n_mv = _cell_sums(mv, rows, cols)
    share = n_mv / area
    denom = np.maximum(n_mv, 1.0)
    vx = _cell_sums(flow[..., 0] * mv, rows, cols) / denom
    vy = _cell_sums(flow[..., 1] * mv, rows, cols) / denom
    # high speed of each cell: mean of the moving pixels' speed squared -> rms (cheaper than a percentile)
    rms = np.sqrt(_cell_sums(speed * speed * mv, rows, cols) / denom)
    motion = np.stack([rms, vx, vy, share], -1).astype(np.float32)
    # shape: orientation histogram of gradients on moving pixels
    gx = cv2.Sobel(cur, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(cur, cv2.CV_32F, 0, 1, ksize=3)
    mag, ang = cv2.cartToPolar(gx, gy)
    b = (np.mod(ang, np.pi) * (SHAPE_BINS / np.pi)).astype(np.int32) % SHAPE_BINS
    w = mag * mv
    hist = np.zeros((H, cur.shape[1], SHAPE_BINS), np.float32)
    np.put_along_axis(hist, b[..., None], w[..., None], axis=2)
    hsum = _cell_sums(hist, rows, cols)
    hsum = hsum / np.maximum(hsum.sum(-1, keepdims=True), 1e-6) * share[..., None]
    return CellFeatures(motion, hsum.astype(np.float32), True, moving_blobs(moving, speed, flow, cfg),
                        direction=direction_cells(flow, speed, slow, rows, cols))


def _flow_field(prev: np.ndarray, cur: np.ndarray, dt: float, cfg: GridConfig, flow_engine: FlowEngine,
                source_height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Flow of ``cur`` against ``prev`` (light matched) in frame heights per second, its speed, the
    pixels whose grey level changed (dilated), and the displacement floor as a speed: a smaller
    source is upscaled to the working height, and its compression noise with it, so the floor is
    then at least ``min_shift_px`` *source* pixels."""
    prev = match_light(prev, cur)
    H = cur.shape[0]
    to_speed = np.float32(1.0 / (dt * H))
    min_shift = cfg.min_shift_px * max(1.0, H / source_height if source_height > 0 else 1.0)
    flow = flow_engine(prev, cur) * to_speed  # heights per second
    speed = np.sqrt(flow[..., 0] ** 2 + flow[..., 1] ** 2)
    diff = cv2.absdiff(prev, cur)
    changed = cv2.dilate((diff > cfg.diff_threshold).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    return flow, speed, changed, min_shift * float(to_speed)


def _direction_mask(speed: np.ndarray, changed: np.ndarray, cfg: GridConfig, min_speed: float) -> np.ndarray:
    """The pixels the direction histograms count: changed, and faster than half the moving floor
    (a walker measured near the floor would otherwise flicker in and out of its cells' histograms
    from frame to frame) and than the displacement floor ``min_speed``."""
    return (speed > max(DIRECTION_FLOOR * cfg.moving_speed, min_speed)) & changed


def direction_features(prev: np.ndarray, cur: np.ndarray, dt: float, cfg: GridConfig, cols: int,
                       flow_engine: FlowEngine, source_height: int = 0) -> np.ndarray:
    """(rows, cols, DIRECTION_DIM) direction histograms of ``cur`` against an older ``prev`` (the
    frame ``direction_gap_s`` before): the same pixels and units as :func:`cell_features`' own,
    from a flow over a longer time, where a slow walker has moved several pixels."""
    flow, speed, changed, min_speed = _flow_field(prev, cur, dt, cfg, flow_engine, source_height)
    return direction_cells(flow, speed, _direction_mask(speed, changed, cfg, min_speed), cfg.rows, cols)


def scene_image(gray: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """The working frame at SCENE_PATCH pixels a cell (area resize), gain- and offset-free:
    (value - frame mean) / max(frame contrast, 2 grey levels)."""
    small = cv2.resize(gray, (cols * SCENE_PATCH, rows * SCENE_PATCH), interpolation=cv2.INTER_AREA)
    small = small.astype(np.float32)
    return (small - small.mean()) / max(float(small.std()), 2.0)


def scene_cells(image: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """(rows, cols, SCENE_DIM) per-cell patches of a :func:`scene_image`."""
    p = SCENE_PATCH
    return image.reshape(rows, p, cols, p).transpose(0, 2, 1, 3).reshape(rows, cols, p * p)


def camera_stats(gray: np.ndarray, ref: np.ndarray | None, older: np.ndarray | None = None) -> np.ndarray:
    """(CAMERA_DIM,) brightness, contrast, gain-free sharpness and change against ``ref`` - or
    against ``older`` (a frame further back) where that is more: a recorder or re-streamer that
    pads a camera's rate repeats single frames, and only an image unchanged against both is frozen."""
    g = gray.astype(np.float32)
    mean, std = float(g.mean()), float(g.std())
    # the edges' Laplacian (its 99th percentile), not its mean: a smooth image's mean is the
    # quantisation and codec noise, as large blurred as sharp
    lap = np.abs(cv2.Laplacian(g, cv2.CV_32F)).ravel()
    k = int(0.99 * (len(lap) - 1))
    lap = float(np.partition(lap, k)[k]) / max(std, 1.0)
    diffs = [float(cv2.absdiff(gray, r).mean()) for r in (ref, older) if r is not None and r.shape == gray.shape]
    diff = max(diffs) if diffs else np.nan
    return np.array([mean, std, lap, diff], np.float32)


def moving_blobs(moving: np.ndarray, speed: np.ndarray, flow: np.ndarray, cfg: GridConfig) -> np.ndarray:
    """(m, BLOB_DIM) features of the connected moving regions (objects, or groups walking together)."""
    H, W = moving.shape
    m = cv2.morphologyEx(moving.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
    n, lab, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    min_px = cfg.min_blob_frac * H * H
    out = []

    def add(x: int, y: int, sel: np.ndarray) -> None:
        ys, xs = np.nonzero(sel)
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        sel = sel[y0:y1, x0:x1]
        bw, bh = x1 - x0, y1 - y0
        sp = speed[y + y0:y + y1, x + x0:x + x1][sel]
        fl = flow[y + y0:y + y1, x + x0:x + x1][sel]
        out.append([(x + x0 + bw / 2) / W, (y + y0 + bh / 2) / H, bw / H, bh / H, float(sel.sum()) / (bw * bh),
                    float(np.percentile(sp, 90)), float(fl[:, 0].mean()), float(fl[:, 1].mean())])

    for i in range(1, n):
        x, y, bw, bh, area = (int(v) for v in stats[i])
        if area < min_px:
            continue
        sel = lab[y:y + bh, x:x + bw] == i
        add(x, y, sel)
        if cfg.split_aspect > 0 and bw > cfg.split_aspect * bh:
            k = max(2, int(round(bw / (0.5 * bh))))
            edges = np.linspace(0, bw, k + 1).astype(int)
            for a, b in zip(edges[:-1], edges[1:]):
                part = sel[:, a:b]
                if part.sum() >= min_px / 2:
                    add(x + a, y, part)
        if cfg.split_flow > 0 and area >= 2 * min_px:
            for part in odd_parts(sel, flow[y:y + bh, x:x + bw], cfg.split_flow, cfg.moving_speed, min_px):
                add(x, y, part)
    return np.asarray(out, np.float32).reshape(-1, BLOB_DIM)


def odd_parts(sel: np.ndarray, flow: np.ndarray, ratio: float, min_speed: float, min_px: float) -> list[np.ndarray]:
    """Masks (in ``sel``'s box) of the connected parts of a moving region whose flow differs from the
    region's median flow by more than ``ratio`` x its speed (at least ``min_speed``), each at least
    ``min_px`` pixels, when they are not most of the region: what moves unlike the group it is in."""
    f = flow[sel]
    med = np.median(f, axis=0)
    dev = np.hypot(flow[..., 0] - med[0], flow[..., 1] - med[1])
    odd = (sel & (dev > ratio * max(float(np.hypot(med[0], med[1])), min_speed))).astype(np.uint8)
    odd = cv2.morphologyEx(odd, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    total = int(odd.sum())
    if total < min_px or total > 0.6 * int(sel.sum()):
        return []
    n, lab, stats, _ = cv2.connectedComponentsWithStats(odd, connectivity=8)
    return [lab == i for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] >= min_px]


class ReferenceBuffer:
    """Recent working-size frames of a stream, to pick the flow reference at a rate-free time gap.

    Why not simply the previous source frame: at 30 fps (or with duplicated frames) it is so close
    that displacements drown in noise, at 10 fps it is fine; taking the newest frame at least
    ``min_gap_s`` older makes a 10 fps export and a 30 fps stream measure the same motion.
    """

    def __init__(self, cfg: GridConfig, maxlen: int = 64):
        self.cfg = cfg
        self._buf: deque[tuple[float, np.ndarray]] = deque(maxlen=maxlen)

    def add(self, t: float, gray: np.ndarray) -> None:
        """Hold a frame, in time order. A frame older than the newest (the source frame a sample
        brings, when the sample before it is nearer: every other sample at 15 or 25 fps sampled
        every 100 ms) goes in its place: dropped, motion was measured over 0.2 s instead of 0.13."""
        i = len(self._buf)
        while i and self._buf[i - 1][0] > t:
            i -= 1
        if i and self._buf[i - 1][0] == t:  # held already
            return
        if len(self._buf) == self._buf.maxlen:
            self._buf.popleft()
            i = max(0, i - 1)
        self._buf.insert(i, (t, gray))
        keep = max(self.cfg.max_gap_s, DIRECTION_MAX_GAP_S if self.cfg.direction_gap_s > 0 else 0.0) + 1.0
        while len(self._buf) > 1 and self._buf[-1][0] - self._buf[0][0] > keep:
            self._buf.popleft()

    def newest(self) -> float | None:
        """The time of the newest frame held (None when empty)."""
        return self._buf[-1][0] if self._buf else None

    def reference(self, t: float, shape: tuple[int, ...]) -> tuple[np.ndarray | None, float]:
        """(frame, gap in seconds) to measure motion at time ``t`` against; (None, 0) when none."""
        best = None
        for tr, g in reversed(self._buf):
            gap = t - tr
            if gap <= 1e-6 or g.shape != shape:
                continue
            if gap > self.cfg.max_gap_s + 1e-3:  # timestamps are rounded
                break
            best = (g, gap)
            if gap >= self.cfg.min_gap_s:
                break
        return best if best is not None else (None, 0.0)

    def direction_reference(self, t: float, shape: tuple[int, ...]) -> tuple[np.ndarray | None, float]:
        """(frame, gap) for the direction histograms: the newest frame at least ``direction_gap_s``
        before ``t`` and at most ``DIRECTION_MAX_GAP_S``; (None, 0) when there is none (then the
        main reference's histograms serve)."""
        if self.cfg.direction_gap_s <= 0:
            return None, 0.0
        for tr, g in reversed(self._buf):
            gap = t - tr
            if gap + 1e-3 < self.cfg.direction_gap_s or g.shape != shape:  # timestamps are rounded
                continue
            if gap > DIRECTION_MAX_GAP_S + 1e-3:
                break
            return g, gap
        return None, 0.0
