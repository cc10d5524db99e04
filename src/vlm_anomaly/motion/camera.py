"""The ``camera`` attribute: the camera itself, not the scene - lens covered or dark, image frozen,
defocused or sprayed, view moved - each reported with a plain reason as a camera-kind event, and
none of them depending on motion. A change of the whole scene's light is not an incident: when the
light leaves what training saw, a notice asks for footage of it instead.

Why limits with wide margins around what training saw, instead of a k-NN density: these are
faults of a kind no training clip shows, and the statistics are one number each (contrast, a
gain-free sharpness, the change against the reference frame, the share of the view's still,
structured cells that no longer look like the training background). Each check's value is how far (log2) a
frame lies beyond its limit: 0 inside, so normal frames add nothing to the fused score.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from ..detectors.calibration import RobustZ
from .attribute import Attribute, FitData
from .calibration import leave_one_group_out
from .features import SCENE_DIM, SCENE_PATCH
from .scene import follow_gradual, still_cells

if TYPE_CHECKING:
    from .extract import SourceCells
    from .scorer import MotionState

#: limits, as multiples of the training clips' extremes (fixed before any measurement)
DARK = 0.3  # contrast under 0.3 x the lowest training contrast (1st percentile): dark or covered
FROZEN = 0.1  # change against the reference under 0.1 x the training's 1st percentile: frozen
BLURRED = 0.5  # gain-free sharpness under half the training's 1st percentile: defocused/sprayed
MOVED = 0.5  # over half the still, structured cells unlike the training background: view moved ...
#: ... and the training background, moved as a whole by some shift (up to this share of the view's
#: width / height), matches at least half of those cells again: the background itself moved (an
#: object in front of the camera, however large, does not match a shifted background)
MAX_SHIFT = 0.25
EXPLAINED = 0.5
#: the view's own shift, measured to a fraction of a scene-image pixel (then refined to a shift
#: and a turn), is tried from half a pixel: normal frames measure 0.1-0.4 against the background
SUBPIXEL = 0.5
#: ... and counts when the background so moved explains EXPLAINED of the cells and this share more
#: of them than the unmoved one: in sensor grain a knock of a few pixels leaves half the cells
#: within their limits (and the follow of a drifting look takes the rest), yet the moved background
#: fits clearly better
WARP_GAIN = 0.25
STRUCTURE = 0.2  # a cell has structure when its background patch varies this much (contrast units)
MIN_CELLS = 6  # the moved check needs this many still, structured cells ...
#: ... and this share of the view's structured cells: where moving things hide most of the view's
#: structure, the few cells left (an edge along the path) cannot tell whether the view moved
MIN_SHARE = 0.5
LIGHT = (0.75, 1.3)  # mean grey level beyond these multiples of the training range: lighting notice
#: z per unit of log2 exceedance (a camera fault outweighs any normal activity)
GAIN = 200.0
CHECKS = ("dark", "frozen", "blurred", "moved")
REASONS = {"dark": "image dark", "frozen": "image frozen", "blurred": "image blurred",
           "moved": "camera view moved"}
NOTICE = "lighting unlike any training clip: add footage of it"


def _cells(feats: SourceCells, still_change: float) -> tuple[np.ndarray, np.ndarray]:
    """(n, cells, SCENE_DIM) scene patches and (n, cells) which of them stand still."""
    return feats.scene.reshape(feats.n_frames, -1, SCENE_DIM), still_cells(feats, still_change)


def _background(X: np.ndarray, still: np.ndarray) -> dict[str, np.ndarray]:
    """Per cell: the median still patch, how far normal still patches stray from it (99th
    percentile) and whether the cell has structure to show a moved view (a flat lawn does not)."""
    n_cells = X.shape[1]
    bg = np.zeros((n_cells, X.shape[2]), np.float32)
    dev = np.full(n_cells, np.inf)
    for c in range(n_cells):
        rows = X[still[:, c], c]
        if len(rows) >= 5:
            bg[c] = np.median(rows, 0)
            dev[c] = np.percentile(np.linalg.norm(rows - bg[c], axis=1), 99)
    structured = (bg.std(1) >= STRUCTURE) & np.isfinite(dev)
    return {"bg": bg, "dev": np.where(np.isfinite(dev), dev, 0.0), "structured": structured}


def _limit(bg: dict[str, np.ndarray]) -> np.ndarray:
    """Per cell, how far a patch may stray from the training background and still match it."""
    return np.maximum(2 * bg["dev"], 1.0)


def _differ(X: np.ndarray, bg: dict[str, np.ndarray]) -> np.ndarray:
    """(n, cells) which patches differ from the training background (beyond :func:`_limit`)."""
    return np.linalg.norm(X - bg["bg"][None], axis=2) > _limit(bg)[None]


def _moved_share(X: np.ndarray, still: np.ndarray, bg: dict[str, np.ndarray], rows: int,
                 differ: np.ndarray | None = None) -> np.ndarray:
    """Per frame, the share of its still, structured cells that differ from the training background
    (NaN with fewer than MIN_CELLS such cells, or under MIN_SHARE of the structured ones), kept
    only where the background moved as a whole (:func:`_shift_explains`), else 0. ``differ``: which
    cells count as differing, when the caller knows better than :func:`_differ` (a look that only
    drifted there, a shadow moving with the sun, does not)."""
    limit = _limit(bg)
    if differ is None:
        differ = _differ(X, bg)
    use = still & bg["structured"][None]
    n = use.sum(1)
    enough = max(MIN_CELLS, MIN_SHARE * int(bg["structured"].sum()))
    share = np.where(n >= enough, (differ & use).sum(1) / np.maximum(n, 1), np.nan)
    for j in np.flatnonzero(np.nan_to_num(share, nan=0.0) > MOVED):
        if not _shift_explains(X[j], use[j], bg["bg"], limit, rows):
            share[j] = 0.0
    for j in np.flatnonzero(n >= enough):
        if not share[j] > MOVED:
            share[j] = max(np.nan_to_num(share[j], nan=0.0), _warp_explains(X[j], use[j], bg["bg"], limit, rows))
    return share


def _image(cells: np.ndarray, rows: int) -> np.ndarray:
    """(cells, SCENE_DIM) patches -> the (rows * p, cols * p) scene image they tile."""
    p = SCENE_PATCH
    cols = len(cells) // rows
    return cells.reshape(rows, cols, p, p).transpose(0, 2, 1, 3).reshape(rows * p, cols * p)


def _cell_distances(img: np.ndarray, other: np.ndarray, rows: int) -> np.ndarray:
    """(rows, cols) distance between two scene images, patch by patch; NaN where ``other`` has no
    pixel (a moved background leaves the view's edge empty)."""
    p = SCENE_PATCH
    return np.sqrt(((img - other) ** 2).reshape(rows, p, img.shape[1] // p, p).sum((1, 3)))


def _warp_explains(x: np.ndarray, use: np.ndarray, bg: np.ndarray, limit: np.ndarray, rows: int) -> float:
    """The share of the frame's still, structured cells that the training background explains once
    moved as the view itself moved - a shift found to a fraction of a pixel (phase correlation),
    refined to a shift and a turn (ECC) - when that is at least EXPLAINED and WARP_GAIN more than
    the unmoved background explains; else 0. Why: a knock of a few pixels, or one with a turn,
    matches no whole-pixel shift of :func:`_shift_explains`, least of all in sensor grain."""
    img, ref = _image(x, rows).astype(np.float32), _image(bg, rows).astype(np.float32)
    H, W = img.shape
    window = cv2.createHanningWindow((W, H), cv2.CV_64F)
    (dx, dy), _ = cv2.phaseCorrelate(ref.astype(np.float64), img.astype(np.float64), window)
    if np.hypot(dx, dy) < SUBPIXEL or abs(dx) > MAX_SHIFT * W or abs(dy) > MAX_SHIFT * H:
        return 0.0
    warp = np.float32([[1, 0, -dx], [0, 1, -dy]])  # where each pixel of the frame lies in the background
    try:
        _, warp = cv2.findTransformECC(img, ref, warp.copy(), cv2.MOTION_EUCLIDEAN,
                                       (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 50, 1e-4), None, 1)
    except cv2.error:  # no convergence: the shift alone
        pass
    moved = cv2.warpAffine(ref, warp, (W, H), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=np.nan)
    d1, d0 = _cell_distances(img, moved, rows).ravel(), _cell_distances(img, ref, rows).ravel()
    inside = np.isfinite(d1) & use  # a cell the moved background leaves partly empty is not judged
    n = int(inside.sum())
    if n < MIN_CELLS:
        return 0.0
    m1, m0 = (inside & (d1 <= limit)).sum() / n, (inside & (d0 <= limit)).sum() / n
    return float(m1) if m1 >= EXPLAINED and m1 - m0 >= WARP_GAIN else 0.0


def _shift_explains(x: np.ndarray, use: np.ndarray, bg: np.ndarray, limit: np.ndarray, rows: int) -> bool:
    """Whether the training background, shifted as a whole by some offset (whole scene-image
    pixels, up to ``MAX_SHIFT`` of the view), matches at least ``EXPLAINED`` of the frame's still,
    structured cells that the shift keeps inside the view - the unshifted one matched fewer: the
    camera's view moved. An object in front of the camera, however large, leaves the cells around it
    matching the unshifted background and does not match a shifted one."""
    img, ref = _image(x, rows), _image(bg, rows)
    H, W = img.shape
    for dy in range(-int(MAX_SHIFT * H), int(MAX_SHIFT * H) + 1):
        for dx in range(-int(MAX_SHIFT * W), int(MAX_SHIFT * W) + 1):
            if dx == 0 and dy == 0:
                continue
            # the background pixel now seen at (y, x) is ref[y - dy, x - dx]
            shifted = np.full_like(ref, np.nan)
            shifted[max(0, dy):H + min(0, dy), max(0, dx):W + min(0, dx)] = \
                ref[max(0, -dy):H - max(0, dy), max(0, -dx):W - max(0, dx)]
            dist = _cell_distances(img, shifted, rows).ravel()
            inside = np.isfinite(dist) & use
            if inside.sum() >= MIN_CELLS and (inside & (dist <= limit)).sum() >= EXPLAINED * inside.sum():
                return True
    return False


def _limits(cam: np.ndarray, X: np.ndarray, still: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """What the checks compare against, from normal frames."""
    diff = cam[:, 3][np.isfinite(cam[:, 3])]
    return np.array([
        DARK * float(np.percentile(cam[:, 1], 1)),
        FROZEN * float(np.percentile(diff, 1)) if len(diff) else 0.0,
        BLURRED * float(np.percentile(cam[:, 2], 1)),
        MOVED,
        LIGHT[0] * float(np.percentile(cam[:, 0], 1)),
        LIGHT[1] * float(np.percentile(cam[:, 0], 99))]), _background(X, still)


def _checks(cam: np.ndarray, X: np.ndarray, still: np.ndarray, lim: np.ndarray,
            bg: dict[str, np.ndarray], rows: int, differ: np.ndarray | None = None) -> np.ndarray:
    """(n, 4) log2 exceedance of each check (0 inside its limit)."""
    n = len(cam)
    out = np.zeros((n, len(CHECKS)))
    if not n:
        return out
    out[:, 0] = np.log2(lim[0] / np.maximum(cam[:, 1], lim[0] / 64 + 1e-6))
    if lim[1] >= 0.02:  # training always changed: an unchanged image means the camera froze
        d = np.where(np.isfinite(cam[:, 3]), cam[:, 3], lim[1])  # no reference: not judged
        out[:, 1] = np.log2(lim[1] / np.maximum(d, lim[1] / 64))
    out[:, 2] = np.log2(lim[2] / np.maximum(cam[:, 2], lim[2] / 64 + 1e-9))
    share = _moved_share(X, still, bg, rows, differ)
    out[:, 3] = np.log2(np.maximum(np.nan_to_num(share, nan=0.0), 1e-6) / lim[3])
    return np.maximum(out, 0.0)


class CameraAttribute(Attribute):
    """Lens covered/dark, frozen, blurred, moved: limits around the training clips."""

    name = "camera"
    kind = "camera"
    needs_motion = False

    def fit(self, data: FitData, st: MotionState) -> np.ndarray:
        cam = np.concatenate([f.camera for f in data.feats]).astype(np.float64)
        X, still = (np.concatenate(v) for v in zip(*(_cells(f, data.config.scene_still) for f in data.feats)))
        lim, bg = _limits(cam, X, still)
        st.arrays["camera_limits"] = lim
        st.arrays.update({f"camera_{k}": np.asarray(v, np.float32) for k, v in bg.items()})

        def heldout(sel: np.ndarray) -> np.ndarray:
            lim_, bg_ = _limits(cam[~sel], X[~sel], still[~sel])
            return _checks(cam[sel], X[sel], still[sel], lim_, bg_, data.config.grid.rows).max(1)

        return leave_one_group_out(data.groups, heldout, data.n)

    def calibrate(self, values: np.ndarray, has_motion: np.ndarray) -> RobustZ:
        """Fixed: 0 inside every limit, ``GAIN`` per log2 unit beyond one; fires beyond any."""
        return RobustZ(0.0, 1.0 / GAIN, 0.0)

    def load(self, st: MotionState, meta: dict, arrays: dict[str, np.ndarray]) -> None:
        lim = np.asarray(arrays.get("camera_limits", np.zeros(0)), np.float64)
        bg = np.asarray(arrays.get("camera_bg", np.zeros((0, 0))), np.float32)
        dev = np.asarray(arrays.get("camera_dev", np.zeros(0)), np.float64)
        structured = np.asarray(arrays.get("camera_structured", np.zeros(0)), np.float32)
        if (lim.shape != (6,) or not np.all(np.isfinite(lim)) or bg.shape != (st.n_cells, SCENE_DIM)
                or dev.shape != (st.n_cells,) or structured.shape != (st.n_cells,) or not np.all(np.isfinite(dev))):
            raise ValueError("camera limits are malformed")
        st.arrays.update(camera_limits=lim, camera_bg=bg, camera_dev=dev, camera_structured=structured)

    def values(self, st: MotionState, feats: SourceCells) -> tuple[np.ndarray, Any]:
        return self.stream_values(st, feats, {})

    def stream_values(self, st: MotionState, feats: SourceCells, memory: dict) -> tuple[np.ndarray, Any]:
        lim = st.arrays["camera_limits"]
        bg = {k: st.arrays[f"camera_{k}"] for k in ("bg", "dev")}
        bg["structured"] = st.arrays["camera_structured"] > 0.5
        cam = feats.camera.astype(np.float64)
        X, still = _cells(feats, st.config.scene_still)
        differ = _differ(X, bg)
        if st.config.scene_follow:  # a look that only drifted from the background does not differ
            differ &= ~follow_gradual(X, ~differ, still, feats.timestamps, st.config.scene_still, memory)
        checks = _checks(cam, X, still, lim, bg, st.config.grid.rows, differ)
        light = (cam[:, 0] < lim[4]) | (cam[:, 0] > lim[5]) if len(cam) else np.zeros(0, bool)
        return (checks.max(1) if len(checks) else np.zeros(0)), (checks, light)

    def locate(self, st: MotionState, feats: SourceCells, j: int, detail: Any, out: dict) -> bool:
        checks, _ = detail
        if not checks[j].max() > 0:
            return False
        w, h = (int(v) for v in feats.size)
        # a covered or dark lens explains the rest (no structure: blur, shift are meaningless)
        k = 0 if checks[j, 0] > 0 else int(np.argmax(checks[j]))
        out["box"] = [0, 0, w, h]
        out["where"] = "whole view"
        out["reason"] = REASONS[CHECKS[k]]
        out["camera"] = {"check": CHECKS[k], "brightness": round(float(feats.camera[j, 0]), 1),
                         "contrast": round(float(feats.camera[j, 1]), 1)}
        return True

    def notice(self, st: MotionState, feats: SourceCells, j: int, detail: Any) -> str | None:
        checks, light = detail
        return NOTICE if light[j] and not checks[j].max() > 0 else None

    def phrase(self, e: dict) -> str:
        return e.get("reason") or "camera fault"
