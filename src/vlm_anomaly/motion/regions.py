"""Attributes of the moving regions, position-free: ``object`` (speed and size in units of a normal
object's height at that row) and ``appearance`` (what the region's crop looks like through the
encoder). One bank of normal regions from all training clips serves the whole frame; a frame's
value is its worst region's k-NN distance."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..detectors.calibration import robust_scale
from ..detectors.neighbours import Projection, subsample
from ..errors import InvalidVideoError
from .attribute import Attribute, FitData, load_bank, nearest_normal, where_words
from .calibration import leave_one_group_out
from .objects import OBJECT_DIM, RegionBank, fit_perspective, object_features, per_frame_max

if TYPE_CHECKING:
    from .extract import SourceCells
    from .scorer import MotionState


def region_boxes(blobs: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(m, 4) boxes of moving regions in fractions of the frame (blob widths are in frame heights)."""
    w, h = size
    a = float(h) / max(1.0, float(w))
    boxes = np.stack([blobs[:, 0] - blobs[:, 2] * 0.5 * a, blobs[:, 1] - blobs[:, 3] / 2,
                      blobs[:, 0] + blobs[:, 2] * 0.5 * a, blobs[:, 1] + blobs[:, 3] / 2], 1)
    return np.clip(boxes, 0, 1)


def at_edge(blobs: np.ndarray, size: tuple[int, int], work_height: int) -> np.ndarray:
    """(m,) whether each moving region touches the frame's edge (within half a working pixel):
    something entering or leaving the view has nothing to match on one side, so its flow, speed
    and crop are unreliable; it is measured once inside (as the direction attribute does)."""
    w, h = size
    b = region_boxes(np.asarray(blobs, np.float64).reshape(-1, 8), size)
    ex, ey = 0.5 / (work_height * float(w) / max(1.0, float(h))), 0.5 / work_height
    return (b[:, 0] <= ex) | (b[:, 2] >= 1 - ex) | (b[:, 1] <= ey) | (b[:, 3] >= 1 - ey)


def fit_regions(data: FitData, st: MotionState) -> np.ndarray:
    """What every region attribute shares, learnt once: the perspective line, the normal objects'
    99th-percentile relative speed and boxes; returns the rows kept in the region banks."""
    blobs, keep = data.blobs, subsample(len(data.blobs), data.config.max_bank * 20)
    if "perspective" not in st.arrays:
        persp = fit_perspective(blobs[:, 1], blobs[:, 3])
        OF = object_features(blobs, persp)
        st.arrays["perspective"] = persp
        st.values["object_speed_p99"] = float(np.percentile(OF[:, 0], 99)) if len(OF) else 0.0
        st.arrays["object_boxes"] = region_boxes(blobs[keep], data.feats[0].size)
    return keep


class RegionAttribute(Attribute):
    """A k-NN bank over one row per moving region (all clips, position-free)."""

    def rows(self, st: MotionState, feats: SourceCells) -> np.ndarray:
        """Extract: (m, d) rows of the regions of ``feats``."""
        raise NotImplementedError

    def learn(self, data: FitData, st: MotionState) -> np.ndarray:
        """Learn the scaling/projection into ``st``; return the rows of all training regions."""
        raise NotImplementedError

    def dim(self, st: MotionState) -> int:
        raise NotImplementedError

    def fit(self, data: FitData, st: MotionState) -> np.ndarray:
        keep = fit_regions(data, st)
        X = self.learn(data, st)
        b_row, n = data.blob_row, data.n
        self.keep_bank(st, data, X[keep], np.zeros(len(keep), np.int64), b_row[keep])
        b_group = data.groups[b_row]
        edge = (np.zeros(len(b_row), bool) if st.config.edge_regions else
                at_edge(data.blobs, data.feats[0].size, st.config.grid.work_height))

        def heldout(frames: np.ndarray) -> np.ndarray:
            g = data.groups[frames][0]
            other = keep[b_group[keep] != g]
            sel = b_group == g
            d, _ = self.bank(st, X[other]).query(X[sel])
            return per_frame_max(np.where(edge[sel], 0.0, d), b_row[sel], n)[0][frames]

        return leave_one_group_out(data.groups, heldout, n)

    def normal_rows(self, st: MotionState, feats: SourceCells) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        keep = subsample(len(feats.blobs), st.config.max_bank * 20)
        return self.rows(st, feats)[keep], np.zeros(len(keep), np.int64), feats.blob_frame[keep]

    def add_normal(self, st: MotionState, feats: SourceCells, src_no: int) -> None:
        """Both region banks keep the same regions; their boxes are stored once, beside them."""
        super().add_normal(st, feats, src_no)
        boxes = st.arrays["object_boxes"]
        if len(boxes) < len(st.rows[self.name]):
            keep = subsample(len(feats.blobs), st.config.max_bank * 20)
            st.arrays["object_boxes"] = np.concatenate([boxes, region_boxes(feats.blobs[keep], feats.size)])

    def remove_normal(self, st: MotionState, src_no: int) -> np.ndarray | None:
        keep = super().remove_normal(st, src_no)
        if keep is not None and len(st.arrays["object_boxes"]) == len(keep):
            st.arrays["object_boxes"] = st.arrays["object_boxes"][keep]
        return keep

    def load(self, st: MotionState, meta: dict, arrays: dict[str, np.ndarray]) -> None:
        load_bank(st, self.name, arrays, self.dim(st), nonempty=True)
        persp = np.asarray(arrays.get("perspective", np.array([0.15, 0.0])), np.float64)
        oboxes = np.asarray(arrays.get("object_boxes", np.zeros((0, 4))), np.float64)
        if persp.shape != (2,) or not np.all(np.isfinite(persp)):
            raise ValueError("perspective is malformed")
        if oboxes.shape != (len(st.rows[self.name]), 4):
            raise ValueError(f"object boxes do not match the {self.name} bank")
        st.arrays["perspective"], st.arrays["object_boxes"] = persp, oboxes
        st.values["object_speed_p99"] = float(meta.get("object_speed_p99", 0.0))

    def values(self, st: MotionState, feats: SourceCells) -> tuple[np.ndarray, Any]:
        d, i = st.bank(self.name).query(self.rows(st, feats))
        if not st.config.edge_regions and len(d):
            d = np.where(at_edge(feats.blobs, feats.size, st.config.grid.work_height), 0.0, d)
        per_frame, arg = per_frame_max(d, feats.blob_frame, feats.n_frames)
        return per_frame, (arg, i)

    def locate(self, st: MotionState, feats: SourceCells, j: int, detail: Any, out: dict) -> bool:
        arg, near = detail
        o = int(arg[j])
        if o < 0:
            return False
        R, C = st.config.grid.rows, st.cols
        w, h = (int(v) for v in feats.size)
        b = feats.blobs[o]
        rel = object_features(b[None], st.arrays["perspective"])[0]
        box = [int((b[0] - b[2] / 2 * h / max(1, w)) * w), int((b[1] - b[3] / 2) * h),
               int((b[0] + b[2] / 2 * h / max(1, w)) * w), int((b[1] + b[3] / 2) * h)]
        out["box"] = [max(0, box[0]), max(0, box[1]), min(w, box[2]), min(h, box[3])]
        r, c = min(R - 1, int(b[1] * R)), min(C - 1, int(b[0] * C))
        out["where"] = where_words(r, c, R, C)
        out["speed"] = round(float(rel[0]), 3)
        out["normal_speed"] = {"p99": round(st.values.get("object_speed_p99", 0.0), 3), "unit": "normal heights/s"}
        out["size"] = round(float(np.exp(rel[2])), 2)
        i = int(near[o])
        if i >= 0:
            boxes = st.arrays["object_boxes"]
            nb = boxes[i] if i < len(boxes) else np.zeros(4)
            out["nearest_normal"] = nearest_normal(st, self.name, i, [int(nb[0] * w), int(nb[1] * h),
                                                                      int(nb[2] * w), int(nb[3] * h)])
        return True


class ObjectAttribute(RegionAttribute):
    """How fast and how big each moving region is, for its place (perspective), k-NN (k_object)."""

    name = "object"

    def dim(self, st: MotionState) -> int:
        return OBJECT_DIM

    def rows(self, st: MotionState, feats: SourceCells) -> np.ndarray:
        return object_features(feats.blobs, st.arrays["perspective"]) / st.scales[self.name]

    def bank(self, st: MotionState, rows: np.ndarray):
        return RegionBank(rows, st.config.k_object)

    def learn(self, data: FitData, st: MotionState) -> np.ndarray:
        OF = object_features(data.blobs, st.arrays["perspective"])
        if len(OF) < 2:
            raise InvalidVideoError("the training videos show too little motion: use videos with moving people")
        st.scales[self.name] = robust_scale(OF)
        return OF / st.scales[self.name]

    def phrase(self, e: dict) -> str:
        sp, ns = e.get("speed", 0.0), e.get("normal_speed", {}).get("p99", 0.0)
        where, size = e.get("where", ""), e.get("size", 1.0)
        if ns > 0 and sp > ns:
            return f"fast object in the {where}, {sp / ns:.1f}x faster than any normal object"
        if size > 1.6:
            return f"large object in the {where}, {size:.1f}x the height of a normal one there"
        return f"unusual moving object in the {where} (z {e['z'].get('object', 0):.1f})"


class AppearanceAttribute(RegionAttribute):
    """What each moving region looks like: its crop's embedding, PCA-projected, k-NN (k_appearance)."""

    name = "appearance"
    needs_crops = True

    def dim(self, st: MotionState) -> int:
        return st.projection.components.shape[0]

    def rows(self, st: MotionState, feats: SourceCells) -> np.ndarray:
        if feats.crops.shape != (len(feats.blobs), st.projection.components.shape[1]):
            raise InvalidVideoError("the appearance attribute needs the moving regions' crop "
                                    "embeddings from the model's encoder")
        return st.projection(feats.crops)

    def bank(self, st: MotionState, rows: np.ndarray):
        return RegionBank(rows, st.config.k_appearance, kd_tree=False)

    def learn(self, data: FitData, st: MotionState) -> np.ndarray:
        feats = data.feats
        E = np.concatenate([f.crops for f in feats]) if all(f.crops.shape[1] for f in feats) else None
        if E is None or len(E) != len(data.blobs):
            raise InvalidVideoError("the appearance attribute needs the moving regions' crop "
                                    "embeddings: fit with a CropEmbedder")
        if len(E) < 2:
            raise InvalidVideoError("the training videos show too little motion: use videos with moving people")
        st.projection = Projection.fit(E, data.config.pca_dim)
        st.encoder_key = data.embedder_key
        X = st.projection(E).astype(np.float64)
        st.scales[self.name] = np.ones(X.shape[1])
        return X

    def load(self, st: MotionState, meta: dict, arrays: dict[str, np.ndarray]) -> None:
        mean = np.asarray(arrays.get("appearance_mean", np.zeros(0)), np.float32)
        comp = np.asarray(arrays.get("appearance_components", np.zeros((0, 0))), np.float32)
        if (mean.ndim != 1 or comp.ndim != 2 or comp.shape[1] != len(mean) or not len(comp)
                or not np.all(np.isfinite(comp)) or not np.all(np.isfinite(mean))):
            raise ValueError("appearance projection is malformed")
        st.projection = Projection(mean, comp)
        super().load(st, meta, arrays)

    def phrase(self, e: dict) -> str:
        return (f"unusual-looking object in the {e.get('where', '')}, unlike the normal moving objects "
                f"(z {e['z'].get('appearance', 0):.1f})")
