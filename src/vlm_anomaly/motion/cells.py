"""Per-cell attributes of what moves: ``motion`` (rms speed, mean vx, vy, moving share) and
``shape`` (gradient-orientation histogram of the moving pixels), each judged per cell of the grid
against the normal examples of that cell and of the cells within ``radius`` (position tolerance);
a frame's value is its worst cell's distance."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InvalidVideoError
from .attribute import Attribute, FitData, grow_box, load_bank, worst_cell
from .density import CellBanks, build_banks, heldout_distances, neighbours
from .direction import (
    ACTIVE_SHARE,
    DIRECTION_BINS,
    DIRECTION_DIM,
    cell_divisors,
    direction_scale,
    direction_words,
    place_radius,
    turned,
)
from .features import MOTION_DIM, SHAPE_BINS

if TYPE_CHECKING:
    from .extract import SourceCells
    from .scorer import MotionState


def speed_p99(motion: np.ndarray) -> tuple[np.ndarray, float]:
    """(R, C) 99th percentile of the moving pixels' speed per cell (NaN: under 5 examples), and overall."""
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


def active_rows(X: np.ndarray) -> np.ndarray:
    """The (m, d) rows of (n, cells, d) cell features where something moved (not all zero)."""
    flat = X.reshape(-1, X.shape[-1])
    return flat[np.abs(flat).sum(1) > 0]


class CellAttribute(Attribute):
    """Per-cell k-NN with neighbour tolerance; subclasses say which cell features and their scale."""

    dim: int = 0
    #: the :class:`SourceCells` field of its (n, rows, cols, d) features
    field: str = ""
    #: the ``st.arrays`` entry of per-cell divisors of its distances, when there is one
    cell_scale: str = ""

    def raw(self, feats: SourceCells) -> np.ndarray:
        """Extract: (n, cells, d) unscaled rows."""
        X = getattr(feats, self.field)
        return X.reshape(len(X), -1, X.shape[-1]).astype(np.float64)

    def scale(self, X: np.ndarray) -> np.ndarray:
        """Per-dimension divisors from the training rows where something moved (1 when nothing did)."""
        act = active_rows(X)
        return self.active_scale(act) if len(act) else np.ones(X.shape[-1])

    def active_scale(self, act: np.ndarray) -> np.ndarray:
        """:meth:`scale` from the (m, d) rows where something moved."""
        raise NotImplementedError

    def neighbourhood(self, st: MotionState) -> list[np.ndarray]:
        """Per cell, the cells whose normal examples it accepts (position tolerance)."""
        return neighbours(st.config.grid.rows, st.cols, st.config.radius)

    def bank(self, st: MotionState, rows: np.ndarray) -> CellBanks:
        return CellBanks(rows, st.cells[self.name], st.n_cells, self.neighbourhood(st), st.config.k)

    def scaled_rows(self, data: FitData, st: MotionState) -> np.ndarray:
        """The training clips' (n, cells, d) rows over the scale learnt from them (kept in ``st``,
        with the normal speeds the explanations quote)."""
        if "speed_p99" not in st.arrays:
            st.arrays["speed_p99"], st.values["speed_p99_global"] = speed_p99(
                np.concatenate([f.motion for f in data.feats]))
        X = np.concatenate([self.raw(f) for f in data.feats])
        st.scales[self.name] = self.scale(X)
        return X / st.scales[self.name]

    def fit(self, data: FitData, st: MotionState) -> np.ndarray:
        cfg = data.config
        X = self.scaled_rows(data, st)
        self.keep_bank(st, data, *build_banks(X, cfg.max_bank))
        return self.frame_values(st, heldout_distances(X, data.groups, cfg.max_bank, self.neighbourhood(st), cfg.k))

    def frame_values(self, st: MotionState, D: np.ndarray) -> np.ndarray:
        """Held-out (n, cells) distances -> each frame's value: its worst cell's."""
        return D.max(1)

    def normal_rows(self, st: MotionState, feats: SourceCells) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return build_banks(self.raw(feats) / st.scales[self.name], st.config.max_bank)

    def load(self, st: MotionState, meta: dict, arrays: dict[str, np.ndarray]) -> None:
        load_bank(st, self.name, arrays, self.dim)
        sp = np.asarray(arrays.get("speed_p99", np.full((st.config.grid.rows, st.cols), np.nan)), np.float64)
        if sp.shape != (st.config.grid.rows, st.cols):
            raise ValueError("speed grid is malformed")
        st.arrays["speed_p99"] = sp
        st.values["speed_p99_global"] = float(meta.get("speed_p99_global", 0.0))

    def values(self, st: MotionState, feats: SourceCells) -> tuple[np.ndarray, Any]:
        d, i = st.bank(self.name).query(self.raw(feats) / st.scales[self.name])
        if self.cell_scale in st.arrays:
            d = d / st.arrays[self.cell_scale]
        return (d.max(1) if len(d) else np.zeros(0)), (d, i)

    def locate(self, st: MotionState, feats: SourceCells, j: int, detail: Any, out: dict) -> bool:
        self.locate_cell(st, feats, j, detail, out)
        return True

    def locate_cell(self, st: MotionState, feats: SourceCells, j: int, detail: Any, out: dict) -> tuple[int, int, int]:
        """:meth:`locate`, returning the worst cell (cell, row, column)."""
        R, C = st.config.grid.rows, st.cols
        w, h = (int(v) for v in feats.size)
        cell, r, c = worst_cell(st, self.name, feats, j, detail, out)
        share = feats.motion[j][..., 3]
        out["box"], _ = grow_box(share > 0.05, r, c, w, h, R, C)
        sp99 = st.arrays["speed_p99"]
        normal = float(sp99[r, c]) if np.isfinite(sp99[r, c]) else 0.0
        out["speed"] = round(float(feats.motion[j][r, c, 0]), 3)
        out["normal_speed"] = {"p99": round(normal, 3), "unit": "frame heights/s"}
        return cell, r, c


class MotionCellAttribute(CellAttribute):
    """How fast and which way things move in each cell."""

    name = "motion"
    dim = MOTION_DIM
    field = "motion"

    def active_scale(self, act: np.ndarray) -> np.ndarray:
        """The 95th percentile of |value| over cells where something moved, so speeds and shares
        weigh alike whatever the camera."""
        sp = max(float(np.percentile(np.abs(act[:, :3]), 95)), 1e-3)
        sh = max(float(np.percentile(act[:, 3], 95)), 1e-3)
        return np.array([sp, sp, sp, sh])

    def phrase(self, e: dict) -> str:
        sp, ns = e.get("speed", 0.0), e.get("normal_speed", {}).get("p99", 0.0)
        where = e.get("where", "")
        if ns > 0 and sp > ns:
            return f"fast object in the {where}, {sp / ns:.1f}x faster than any normal object there"
        if ns == 0 and sp > 0:
            return f"motion in the {where}, where nothing moved in the normal videos"
        return f"unusual motion in the {where} (z {e['z'].get('motion', 0):.1f})"


class ShapeAttribute(CellAttribute):
    """What the moving pixels of each cell look like (orientation histogram)."""

    name = "shape"
    dim = SHAPE_BINS
    field = "shape"

    def active_scale(self, act: np.ndarray) -> np.ndarray:
        return np.full(act.shape[-1], max(float(np.percentile(act.sum(1), 95)), 1e-3))

    def phrase(self, e: dict) -> str:
        return f"unusual moving shape in the {e.get('where', '')} (z {e['z'].get('shape', 0):.1f})"


class DirectionAttribute(CellAttribute):
    """Which way and how fast each cell moves (``direction.py``), judged against its own cell's
    normal examples or, where training saw little motion, a ring of cells around it (radius learnt
    at fit: the place tolerance); optional per-cell divisors (``place_norm``)."""

    name = "direction"
    dim = DIRECTION_DIM
    field = "direction"
    cell_scale = "place_scale"

    def raw(self, feats: SourceCells) -> np.ndarray:
        if feats.direction is None:
            raise InvalidVideoError("the direction attribute needs the cells' direction histograms")
        return super().raw(feats)

    def scale(self, X: np.ndarray) -> np.ndarray:
        return direction_scale(X)

    def neighbourhood(self, st: MotionState) -> list[np.ndarray]:
        return neighbours(st.config.grid.rows, st.cols, st.arrays["place_radius"])

    def fit(self, data: FitData, st: MotionState) -> np.ndarray:
        cfg = data.config
        active = np.concatenate([f.motion[..., 3] for f in data.feats]) > ACTIVE_SHARE
        # the tolerance of the model that will score is the one calibrated: every held-out fold uses
        # the radius learnt from all clips (a fold's own, from fewer clips, would be wider and its
        # threshold too low for the deployed bank)
        st.arrays["place_radius"] = place_radius(active, cfg.grid.rows, data.cols, cfg.place_examples,
                                                 cfg.place_max_radius)
        return super().fit(data, st)

    def frame_values(self, st: MotionState, D: np.ndarray) -> np.ndarray:
        """With ``place_norm``, each cell's distances over what held-out normal frames reach there."""
        if st.config.place_norm:
            st.arrays["place_scale"] = cell_divisors(D)
            D = D / st.arrays["place_scale"]
        return D.max(1)

    def load(self, st: MotionState, meta: dict, arrays: dict[str, np.ndarray]) -> None:
        super().load(st, meta, arrays)
        place = np.asarray(arrays.get("place_radius", np.zeros(0)), np.int64)
        if place.shape != (st.n_cells,) or place.min() < 0 or place.max() > max(st.config.grid.rows, st.cols):
            raise ValueError("the direction attribute's place tolerance is malformed")
        st.arrays["place_radius"] = place
        if st.config.place_norm:
            pscale = np.asarray(arrays.get("place_scale", np.zeros(0)), np.float64)
            if pscale.shape != (st.n_cells,) or not np.all(pscale > 0) or not np.all(np.isfinite(pscale)):
                raise ValueError("the direction attribute's per-cell scale is malformed")
            st.arrays["place_scale"] = pscale

    def zscore(self, st: MotionState, values: np.ndarray) -> np.ndarray:
        """Only beyond ``direction_margin`` times what held-out normal frames reach (its 99th
        percentile, at least 1): a cell's direction is noisy (a walker turning, a compressed
        stream's flow), and that noise must not add to every frame's fused score; what goes
        clearly against the place's flow or much faster than anything there does."""
        c, m = st.calib[self.name], st.config.direction_margin
        z = c(values)
        return np.maximum(z - m * max(c.high, 1.0), 0.0) if m > 0 else z

    def fires(self, st: MotionState, z: float) -> bool:
        return z > 0 if st.config.direction_margin > 0 else z > st.calib[self.name].high

    def locate(self, st: MotionState, feats: SourceCells, j: int, detail: Any, out: dict) -> bool:
        cell, r, c = self.locate_cell(st, feats, j, detail, out)
        near = detail[1]
        i = int(near[j, cell]) if len(near) else -1
        hist = feats.direction[j][r, c]
        normal = (st.rows[self.name][i] * st.scales[self.name] if i >= 0 else np.zeros(DIRECTION_DIM))
        near = False
        if np.sum(normal[:DIRECTION_BINS]) <= 0:
            # the nearest normal example is an idle cell: the place's usual direction is what its
            # moving examples went (someone going the wrong way where few walk is nearest to nobody);
            # where the cell itself never moved (the edge of someone passing just beside the
            # normal paths), what the cells around it went
            for ring in (np.array([cell]), neighbours(st.config.grid.rows, st.cols, 1)[cell]):
                mine = st.rows[self.name][np.isin(st.cells[self.name], ring)] * st.scales[self.name]
                moved = mine[mine[:, :DIRECTION_BINS].sum(1) > 0] if len(mine) else mine
                if len(moved):
                    normal, near = moved.mean(0), len(ring) > 1
                    break
        out.update({"speed": round(float(max(np.sum(hist[:DIRECTION_BINS]), hist[-1])), 3),
                    "normal_speed": {"p99": round(float(max(np.sum(normal[:DIRECTION_BINS]), normal[-1])), 3),
                                     "unit": "frame heights/s"},
                    "direction": {"moving": direction_words(hist), "normal": direction_words(normal),
                                  "turned_deg": 45 * turned(hist, normal), "nearby": near}})
        return True

    def phrase(self, e: dict) -> str:
        d = e.get("direction") or {}
        where, sp = e.get("where", ""), e.get("speed", 0.0)
        ns = e.get("normal_speed", {}).get("p99", 0.0)
        if d.get("turned_deg", 0) >= 90 and d.get("normal"):
            there = "nearby" if d.get("nearby") else "there"
            return f"moving {d['moving']} in the {where}, where normal motion {there} goes {d['normal']}"
        if d and not d.get("normal") and sp > 0:
            return f"motion in the {where}, where nothing moved in the normal videos"
        if ns > 0 and sp > 1.5 * ns:
            return f"fast motion in the {where}, {sp / ns:.1f}x faster than normal motion there"
        return (f"motion in the {where} unlike the normal motion there in direction or speed "
                f"(z {e['z'].get('direction', 0):.1f})")
