"""The ``scene`` attribute: what each place of a fixed camera's view normally contains.

Why: motion sees only what moves; a bag set down and left, a car parked where none park, a person
lying still are invisible to it after they stop. The camera is fixed, so the training clips show
what every place normally looks like. Each cell of the grid is judged against what was seen *at
that cell* in training, on its still frames (cells where something moves now, or next to it, are
left to the motion attributes): something present that never was there stays anomalous as long as
it stays and ends when it leaves.

Why these features (``features.scene_image``): the working frame area-resized to 4 x 4 pixels a
cell averages away block noise and grain (codec shift); subtracting the frame's mean and dividing
by its contrast removes a change of the whole scene's light (clouds, dusk, a camera's gain).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .attribute import Attribute, FitData, grow_box, load_bank, worst_cell
from .density import CellBanks, build_banks, heldout_distances
from .features import SCENE_DIM

if TYPE_CHECKING:
    from .extract import SourceCells
    from .scorer import MotionState

#: a cell's content stands when its patch changed less than ``MotionConfig.scene_still`` over the
#: last second (units of the frame's contrast over a 16-pixel patch; a walker passing changes it
#: by several; the level learnt at fit, :func:`learn_still`) and this share of it does not move now
BUSY_SHARE = 0.02


#: the stillness level is learnt from at least this many cells where nothing moves (else kept)
MIN_QUIET = 200


def learn_still(feats: Sequence[SourceCells], still: float, noise: float) -> float:
    """The stillness level for this camera: ``still``, or ``noise`` x the median change over a second
    of the training cells where nothing moves, when larger. Why: grain, a night mode's gain and a
    low bit rate change an empty cell's patch from sample to sample (0.5-0.9 on a grainy IR
    camera, about 0.1 on a clean one); at a fixed level nothing there ever counts as still, and
    something standing is never judged. Unchanged with ``noise`` 0 or too few quiet cells."""
    if noise <= 0:
        return still
    quiet = [f.scene_change[~busy_cells(f) & np.isfinite(f.scene_change)] for f in feats
             if f.n_frames and f.scene_change is not None]
    ch = np.concatenate(quiet) if quiet else np.zeros(0)
    return max(still, noise * float(np.median(ch))) if len(ch) >= MIN_QUIET else still


def still_cells(feats: SourceCells, still_change: float) -> np.ndarray:
    """(n, cells) True where the cell's content stands: unchanged for a second, nothing moving."""
    still = (feats.scene_change < still_change) & ~busy_cells(feats)
    return still.reshape(len(still), -1)


def busy_cells(feats: SourceCells) -> np.ndarray:
    """(n, rows, cols) True where something moves in the cell now."""
    return feats.motion[..., 3] > BUSY_SHARE


#: a change that makes more than this share of all cells stop standing at once is the whole view's
WHOLE_VIEW = 0.5


def hold_standing(z: np.ndarray, still: np.ndarray, busy: np.ndarray, ts: np.ndarray, hold_s: float,
                  memory: dict) -> np.ndarray:
    """(n, cells) the z that judges each cell: its own ``z`` where it stands (``still``); where it
    does not but something moved over it (``busy``) since it last stood, the z it had then, for up
    to ``hold_s`` seconds after, and no more than its ``z`` now. Why: a walker passing in front of a
    bag or a standing person makes those cells change (and, for a second after, not count as
    still), which cut one long incident into pieces; the current z as the cap ends the hold at once
    when the place looks as in training again (the object has gone); a cell that stops counting as
    still with nothing moving over it (grain, a codec's flicker) is judged as before. Nothing is
    held across a change of most of the view at once (more than
    ``WHOLE_VIEW`` of the cells stop standing together): that is the camera (a lens uncovered, a
    view moved), not someone passing in front, and what stood before is no longer known to be there.
    ``memory`` carries each cell's last standing z and time between the calls of one stream; 0
    elsewhere, and everywhere with ``hold_s`` 0."""
    out = np.where(still, z, 0.0)
    if hold_s <= 0 or not len(z):
        return out
    if memory.get("z") is None or memory["z"].shape != (z.shape[1],):
        memory["z"], memory["t"] = np.zeros(z.shape[1]), np.full(z.shape[1], -np.inf)
        memory["still"], memory["passed"] = np.zeros(z.shape[1], bool), np.zeros(z.shape[1], bool)
    last_z, last_t, passed = memory["z"], memory["t"], memory["passed"]
    for j in range(len(z)):
        if np.mean(memory["still"] & ~still[j]) > WHOLE_VIEW:
            last_t[:] = -np.inf
        memory["still"] = still[j]
        passed |= busy[j]
        passed[still[j]] = False
        age = ts[j] - last_t
        held = ~still[j] & passed & (age >= 0) & (age <= hold_s)
        out[j, held] = np.minimum(last_z[held], z[j, held])
        last_z[still[j]], last_t[still[j]] = z[j, still[j]], ts[j]
    return out


#: said when places are followed that would otherwise alarm: the view drifted from every training clip
DRIFT_NOTICE = "part of the view changed slowly since training (a moving shadow?): add footage of this time of day"

#: a cell hidden for a while (someone passing) may have drifted by up to this many seconds' worth
#: of the stillness level meanwhile, no more: what arrives at once changes its patch by more
FOLLOW_MAX_S = 2.0


def follow_gradual(X: np.ndarray, normal: np.ndarray, still: np.ndarray, ts: np.ndarray, step: float,
                   memory: dict) -> np.ndarray:
    """(n, cells) True where a standing cell does not look normal (``normal``: as in training) but
    its patch (``X``, (n, cells, d)) has changed only gradually since it last did: each time it
    stood, by less than ``step`` (the stillness level, a change per second) times the seconds since
    it last settled (1 to ``FOLLOW_MAX_S``). Why: a shadow that moves with the sun reaches places
    where no training clip had one, and was "something never there" (and, once it covered most of
    the view, "camera view moved") all afternoon (docs/motion.md, item 30); it arrives by small
    steps, while a bag, a parked car, a person who stops or a knocked camera changes the look at
    once (for an object, while the cell is busy, after which its patch is far from the one it
    settled on) and is judged as before. The settled patch is kept while the cell does not stand,
    so what passes over a drifting shadow does not break the chain, and when an object that stood
    there leaves, the chain goes on from the look before it. ``memory`` carries each cell's settled
    patch and its time between the calls of one stream."""
    out = np.zeros(still.shape, bool)
    if not len(still):
        return out
    if memory.get("settled") is None or memory["settled"].shape != X.shape[1:]:
        memory["settled"], memory["settled_t"] = np.zeros(X.shape[1:], np.float32), np.full(X.shape[1], -np.inf)
    settled, settled_t = memory["settled"], memory["settled_t"]
    for j in range(len(still)):
        anchor = still[j] & normal[j]
        allowed = step * np.clip(ts[j] - settled_t, 1.0, FOLLOW_MAX_S)
        out[j] = (still[j] & ~anchor & np.isfinite(settled_t)
                  & (np.linalg.norm(X[j] - settled, axis=-1) < allowed))
        moved = anchor | out[j]
        settled[moved], settled_t[moved] = X[j, moved], ts[j]
    return out


def cell_calibration(dist: np.ndarray, still: np.ndarray, min_count: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Per cell, the median and robust spread (IQR / 1.349) of its held-out distances on still
    frames; no cell is judged more strictly than the typical cell (the spread is at least the
    cells' median spread), cells with too few still frames get the overall values."""
    vals = dist[still]
    q1, q2, q3 = np.percentile(vals, [25, 50, 75]) if len(vals) else (0.0, 0.0, 1.0)
    med = np.full(dist.shape[1], float(q2))
    scale = np.full(dist.shape[1], max(float(q3 - q1) / 1.349, 1e-3))
    for c in range(dist.shape[1]):
        v = dist[still[:, c], c]
        if len(v) >= min_count:
            a, b, e = np.percentile(v, [25, 50, 75])
            med[c], scale[c] = b, (e - a) / 1.349
    scale = np.maximum(scale, max(float(np.median(scale)), 1e-3))
    return med, scale


class SceneAttribute(Attribute):
    """What stands at each place of the view, against what training saw there."""

    name = "scene"
    needs_motion = False

    def raw(self, feats: SourceCells) -> np.ndarray:
        X = feats.scene
        return X.reshape(len(X), -1, SCENE_DIM).astype(np.float32)

    def bank(self, st: MotionState, rows: np.ndarray) -> CellBanks:
        """Per cell, its own normal still patches, the nearest one (no neighbour tolerance: the
        view is fixed, and the 4 x 4 area resize already tolerates a pixel or two)."""
        return CellBanks(rows, st.cells[self.name], st.n_cells, None, 1)

    def fit(self, data: FitData, st: MotionState) -> np.ndarray:
        X = np.concatenate([self.raw(f) for f in data.feats])
        still = np.concatenate([still_cells(f, data.config.scene_still) for f in data.feats])
        self.keep_bank(st, data, *build_banks(X, data.config.max_bank, still))
        st.scales[self.name] = np.ones(SCENE_DIM)
        dist = heldout_distances(X, data.groups, data.config.max_bank, None, 1, still)
        st.arrays["scene_cell_median"], st.arrays["scene_cell_scale"] = cell_calibration(dist, still)
        # calibrated on what stands, not on the repeats of it that :func:`hold_standing` makes while
        # something passes in front: those would weigh long-hidden places many times over, widen the
        # spread, and halve a standing object's z (IR plaza: 31 -> 14, docs/motion.md item 29)
        return self._frame_values(np.where(still, self._z(st, dist), 0.0))

    def normal_rows(self, st: MotionState, feats: SourceCells) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return build_banks(self.raw(feats), st.config.max_bank, still_cells(feats, st.config.scene_still))

    @staticmethod
    def _z(st: MotionState, dist: np.ndarray) -> np.ndarray:
        """(n, cells) each cell's distance in units of how much its own held-out normal patches
        vary (a place whose look changes between training clips - a moving shadow, a car parked in
        one clip - tolerates more than one that never changes); judged where it stands
        (:func:`hold_standing`)."""
        return (dist - st.arrays["scene_cell_median"]) / st.arrays["scene_cell_scale"]

    @staticmethod
    def _frame_values(cz: np.ndarray) -> np.ndarray:
        """Per frame, its most unusual cell's z (:func:`hold_standing`)."""
        return cz.max(1).clip(min=0.0) if len(cz) else np.zeros(0)

    def zscore(self, st: MotionState, values: np.ndarray) -> np.ndarray:
        """Only beyond ``scene_margin`` times what normal frames reach (its 99th percentile ``high``,
        at least 1): most frames hold nothing standing, and its noise would otherwise add to every
        frame's fused score; a margin, because a re-encoded, smaller stream makes more still cells
        look a little new, and places whose look differs between normal clips (a person who stops)
        would otherwise move whole clips' normal frames (see docs/motion.md)."""
        c = st.calib[self.name]
        return np.maximum(c(values) - st.config.scene_margin * max(c.high, 1.0), 0.0)

    def fires(self, st: MotionState, z: float) -> bool:
        return z > 0

    def load(self, st: MotionState, meta: dict, arrays: dict[str, np.ndarray]) -> None:
        load_bank(st, self.name, arrays, SCENE_DIM, nonempty=True)
        med = np.asarray(arrays.get("scene_cell_median", np.zeros(0)), np.float64)
        scale = np.asarray(arrays.get("scene_cell_scale", np.zeros(0)), np.float64)
        if (med.shape != (st.n_cells,) or scale.shape != (st.n_cells,) or not np.all(np.isfinite(med))
                or not np.all(scale > 0)):
            raise ValueError("scene calibration is malformed")
        st.arrays["scene_cell_median"], st.arrays["scene_cell_scale"] = med, scale

    def values(self, st: MotionState, feats: SourceCells) -> tuple[np.ndarray, Any]:
        return self.stream_values(st, feats, {})

    def stream_values(self, st: MotionState, feats: SourceCells, memory: dict) -> tuple[np.ndarray, Any]:
        X = self.raw(feats)
        d, i = st.bank(self.name).query(X)
        z, still = self._z(st, d), still_cells(feats, st.config.scene_still)
        drifted = np.zeros(feats.n_frames, bool)
        if st.config.scene_follow:
            c = st.calib[self.name]  # a normal frame's worst cell reaches this 1 % of the time
            level = c.median + c.high * c.scale
            gradual = follow_gradual(X, z <= level, still, feats.timestamps, st.config.scene_still, memory)
            # what the user should hear of: places followed that, judged against training alone, would alarm
            drifted = self.zscore(st, np.where(gradual, z, 0.0).max(1, initial=0.0)) > 0
            z = np.where(gradual, np.minimum(z, level), z)
        cz = hold_standing(z, still, busy_cells(feats).reshape(feats.n_frames, -1), feats.timestamps,
                           st.config.scene_hold_s, memory)
        return self._frame_values(cz), (cz, i, drifted)

    def notice(self, st: MotionState, feats: SourceCells, j: int, detail: Any) -> str | None:
        return DRIFT_NOTICE if detail[2][j] else None

    def locate(self, st: MotionState, feats: SourceCells, j: int, detail: Any, out: dict) -> bool:
        dist = detail[0]
        R, C = st.config.grid.rows, st.cols
        w, h = (int(v) for v in feats.size)
        _, r, c = worst_cell(st, self.name, feats, j, detail[:2], out)
        # the box: the connected cells around the worst one that are unusual for their place too
        grid = (dist[j] > max(3.0, 0.3 * float(dist[j].max()))).reshape(R, C)
        grid[r, c] = True
        out["box"], out["cells"] = grow_box(grid, r, c, w, h, R, C)
        return True

    def phrase(self, e: dict) -> str:
        return f"something in the {e.get('where', '')} that was never there in the normal videos"
