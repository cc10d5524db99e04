"""What every motion attribute is: one class with one interface, so the scorer fuses, thresholds
and explains them all in one place, and adding an attribute is one class and one line in
``registry.py``.

An attribute

* **extracts** its feature rows from the frames' measured features (:class:`SourceCells`),
* **fits** what normal looks like (a k-NN bank, per-place statistics ...) into the model state and
  returns each training frame's value measured **leave-one-clip-out** (the shared calibration then
  turns those values into a robust z),
* **scores** any frame (a per-frame value: larger = less normal, the frame's worst region/cell),
* **explains** a frame: where (box, place words, the nearest normal example) and a phrase.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

import cv2
import numpy as np

from ..detectors.calibration import RobustZ
from .features import BLOB_DIM

if TYPE_CHECKING:
    from .extract import SourceCells
    from .scorer import MotionConfig, MotionState


@dataclass
class FitData:
    """The training clips' features (degraded copies after the clips) and how they are held out."""

    config: MotionConfig
    feats: list[SourceCells]
    groups: np.ndarray  # (n,) held-out group of each frame (its clip; a copy goes with its clip)
    src_no: np.ndarray  # (n,) training source number of each frame
    frame_no: np.ndarray  # (n,) frame index in its source
    has_motion: np.ndarray  # (n,) frames measured against a reference frame
    cols: int
    embedder_key: str = ""

    @property
    def n(self) -> int:
        return len(self.groups)

    @property
    def n_cells(self) -> int:
        return self.config.grid.rows * self.cols

    @cached_property
    def blobs(self) -> np.ndarray:
        """(M, BLOB_DIM) every clip's moving regions."""
        return np.concatenate([f.blobs for f in self.feats]).reshape(-1, BLOB_DIM)

    @cached_property
    def blob_row(self) -> np.ndarray:
        """(M,) frame row (over all clips) of each moving region."""
        offsets = np.cumsum([0] + [f.n_frames for f in self.feats])
        return np.concatenate([f.blob_frame + offsets[i] for i, f in enumerate(self.feats)]).astype(np.int64)


class Attribute:
    """Base class: see the module docstring. Per-frame values: larger = less normal."""

    name: ClassVar[str] = ""
    #: its value exists only for frames measured against an earlier frame (motion); frames
    #: without one borrow their neighbour's fused value
    needs_motion: ClassVar[bool] = True
    #: needs the moving regions' crop embeddings (an encoder)
    needs_crops: ClassVar[bool] = False
    #: what kind of event its firing makes: "activity" (something in the scene) or "camera"
    kind: ClassVar[str] = "activity"

    def fit(self, data: FitData, st: MotionState) -> np.ndarray:
        """Learn from normal features into ``st``; return (n,) held-out per-frame values."""
        raise NotImplementedError

    def calibrate(self, values: np.ndarray, has_motion: np.ndarray) -> RobustZ:
        """Robust z of the held-out values (of frames measured against a reference, when it needs one)."""
        use = has_motion if self.needs_motion and has_motion.any() else slice(None)
        return RobustZ.fit(values[use])

    def zscore(self, st: MotionState, values: np.ndarray) -> np.ndarray:
        """Its contribution to the fused score: the calibrated z of its values."""
        return st.calib[self.name](values)

    def fires(self, st: MotionState, z: float) -> bool:
        """Whether a frame's z counts as this attribute having fired (explanations)."""
        return z > st.calib[self.name].high

    def notice(self, st: MotionState, feats: SourceCells, j: int, detail: Any) -> str | None:
        """Something the user should know about frame ``j`` that is not an anomaly."""
        return None

    def bank(self, st: MotionState, rows: np.ndarray) -> Any:
        """A k-NN bank over ``rows`` (``query(X) -> (distances, nearest)``), for k-NN attributes."""
        raise NotImplementedError

    def keep_bank(self, st: MotionState, data: FitData, rows: np.ndarray, cells: np.ndarray,
                  frames: np.ndarray) -> None:
        """Keep the k-NN bank learnt at fit: its rows, their cells and each row's training (source, frame)."""
        st.rows[self.name], st.cells[self.name] = rows.astype(np.float32), cells
        st.refs[self.name] = np.stack([data.src_no[frames], data.frame_no[frames]], 1)

    def normal_rows(self, st: MotionState, feats: SourceCells) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Footage marked normal after training: the (rows, cells, frame rows) its k-NN bank gains
        from ``feats``, chosen as :meth:`fit` chooses them; None: it learns nothing more from it
        (limits around the training clips stay as they are)."""
        return None

    def add_normal(self, st: MotionState, feats: SourceCells, src_no: int) -> None:
        """Append :meth:`normal_rows` to the bank, their examples tagged with source ``src_no``."""
        new = self.normal_rows(st, feats)
        if new is None:
            return
        rows, cells, frames = new
        a = self.name
        st.rows[a] = np.concatenate([st.rows[a], rows.astype(np.float32)])
        st.cells[a] = np.concatenate([st.cells[a], cells.astype(np.int64)])
        refs = np.stack([np.full(len(frames), src_no), feats.frame_indices[frames]], 1).astype(np.int64)
        st.refs[a] = np.concatenate([st.refs[a].reshape(-1, 2), refs])

    def remove_normal(self, st: MotionState, src_no: int) -> np.ndarray | None:
        """Drop the examples of source ``src_no``; returns which rows were kept (None: no bank)."""
        a = self.name
        if a not in st.refs:
            return None
        keep = st.refs[a][:, 0] != src_no
        st.rows[a], st.cells[a], st.refs[a] = st.rows[a][keep], st.cells[a][keep], st.refs[a][keep]
        return keep

    def load(self, st: MotionState, meta: dict, arrays: dict[str, np.ndarray]) -> None:
        """Restore and validate what :meth:`fit` learnt (raise ValueError when malformed)."""

    def values(self, st: MotionState, feats: SourceCells) -> tuple[np.ndarray, Any]:
        """(n,) per-frame values of ``feats`` and what :meth:`locate` needs."""
        raise NotImplementedError

    def stream_values(self, st: MotionState, feats: SourceCells, memory: dict) -> tuple[np.ndarray, Any]:
        """:meth:`values` of the next frames of one stream (a clip scored chunk by chunk, a camera
        frame by frame): ``memory`` is this attribute's own dict for that stream, empty at its start
        (and after a gap), for what it remembers from earlier frames. Most remember nothing."""
        return self.values(st, feats)

    def locate(self, st: MotionState, feats: SourceCells, j: int, detail: Any, out: dict) -> bool:
        """Fill ``out`` with where frame ``j``'s worst part is (box, where, nearest normal ...);
        False when this attribute saw nothing there to show."""
        return False

    def phrase(self, e: dict) -> str:
        """What it means when this attribute fired, in words."""
        return f"unusual {self.name} in the {e.get('where', 'frame')} (z {e['z'].get(self.name, 0):.1f})"


def nearest_normal(st: MotionState, a: str, i: int, box: list[int]) -> dict:
    """Row ``i`` of attribute ``a``'s bank as explanations show it: its training source, frame and ``box``."""
    src, fr = (int(v) for v in st.refs[a][i])
    return {"attribute": a, "source": st.sources[src] if 0 <= src < len(st.sources) else "", "frame": fr, "box": box}


def where_words(r: int, c: int, R: int, C: int) -> str:
    v = ("upper", "middle", "lower")[min(2, r * 3 // max(1, R))]
    hz = ("left", "centre", "right")[min(2, c * 3 // max(1, C))]
    return "centre" if (v, hz) == ("middle", "centre") else f"{v} {hz}".replace("middle ", "")


def grow_box(active: np.ndarray, r: int, c: int, w: int, h: int, R: int, C: int) -> tuple[list[int], int]:
    """Source-pixel box of the connected active cells around (r, c), and how many cells they are
    (cell (r, c)'s own box and 0 when it is not active)."""
    if not active[r, c]:
        return cell_box(r, c, w, h, R, C), 0
    _, lab = cv2.connectedComponents(active.astype(np.uint8), connectivity=8)
    ys, xs = np.nonzero(lab == lab[r, c])
    box = [int(xs.min() * w / C), int(ys.min() * h / R), int((xs.max() + 1) * w / C), int((ys.max() + 1) * h / R)]
    return box, int(len(ys))


def cell_box(r: int, c: int, w: int, h: int, R: int, C: int) -> list[int]:
    return [int(c * w / C), int(r * h / R), int((c + 1) * w / C), int((r + 1) * h / R)]


def worst_cell(st: MotionState, a: str, feats: SourceCells, j: int, detail: Any, out: dict) -> tuple[int, int, int]:
    """Frame ``j``'s most unusual cell (the largest of the per-cell values in ``detail``, which
    also holds each cell's nearest bank row): names its place and the normal example of attribute
    ``a`` nearest it in ``out``; returns (cell, row, column)."""
    dist, near = detail
    R, C = st.config.grid.rows, st.cols
    cell = int(np.argmax(dist[j]))
    r, c = divmod(cell, C)
    out["where"] = where_words(r, c, R, C)
    i = int(near[j, cell]) if len(near) else -1
    if i >= 0:
        w, h = (int(v) for v in feats.size)
        out["nearest_normal"] = nearest_normal(st, a, i, cell_box(r, c, w, h, R, C))
    return cell, r, c


def load_bank(st: MotionState, a: str, arrays: dict[str, np.ndarray], dim: int, *, nonempty: bool = False) -> None:
    """Restore attribute ``a``'s k-NN bank (rows, their cell, their training frame, the scale)."""
    need = [f"{p}_{a}" for p in ("rows", "cells", "refs", "scale")]
    if any(k not in arrays for k in need):
        raise ValueError(f"motion state incomplete: no bank for {a!r}")
    r = np.asarray(arrays[f"rows_{a}"], np.float32)
    c = np.asarray(arrays[f"cells_{a}"], np.int64)
    f = np.asarray(arrays[f"refs_{a}"], np.int64)
    s = np.asarray(arrays[f"scale_{a}"], np.float64)
    if (r.ndim != 2 or r.shape[1] != dim or c.shape != (len(r),) or f.shape != (len(r), 2)
            or (nonempty and len(r) == 0)
            or s.shape != (dim,) or not np.all(np.isfinite(r)) or not np.all(s > 0)):
        raise ValueError(f"bank {a!r} is malformed")
    if len(c) and (c.min() < 0 or c.max() >= st.n_cells):
        raise ValueError(f"bank {a!r} points outside the grid")
    st.rows[a], st.cells[a], st.refs[a], st.scales[a] = r, c, f, s
