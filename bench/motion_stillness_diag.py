"""Why a person standing on the nuisance plaza is missed: per sample of the standing clip, the
label, the smoothed score, each attribute's z, and for the cells the standing person covers their
patch change over the last second (``scene_change``), whether they count as still, and their scene
z; plus the training cells' noise level (the median change of cells with no motion).

Uses the renders of ``bench/motion_nuisance.py`` (``--out``/<fps>fps/<scene>), trains the default as
that bench does (or reuses the model it saved under ``home``), prints a table.

    PYTHONPATH=src python bench/motion_stillness_diag.py --scene clean
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from vlm_anomaly.config import load_settings
from vlm_anomaly.motion.scene import still_cells
from vlm_anomaly.pipeline import Pipeline
from vlm_anomaly.smoothing import moving_average
from vlm_anomaly.synthetic_nuisance import SIZE, _height

SPAN = (8.0, 18.0)


def person_cells(rows: int, cols: int) -> np.ndarray:
    """(rows, cols) True where the standing person of ``synthetic_nuisance`` covers over a tenth of a cell."""
    w, h = SIZE
    hgt = _height(0.74, h) * 1.05
    x0, x1, y0, y1 = 0.58 * w - 0.14 * hgt, 0.58 * w + 0.14 * hgt, 0.74 * h - hgt, 0.74 * h
    out = np.zeros((rows, cols), bool)
    cw, ch = w / cols, h / rows
    for r in range(rows):
        for c in range(cols):
            ox = max(0.0, min(x1, (c + 1) * cw) - max(x0, c * cw))
            oy = max(0.0, min(y1, (r + 1) * ch) - max(y0, r * ch))
            out[r, c] = ox * oy > 0.1 * cw * ch
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scene", default="clean")
    ap.add_argument("--out", default="/tmp/stillness")
    ap.add_argument("--fps", type=float, default=15.0)
    ap.add_argument("--clip", default="standing")
    ap.add_argument("--retrain", action="store_true")
    args = ap.parse_args()
    d = Path(args.out) / f"{args.fps:g}fps" / args.scene
    home = d / "diag_home"
    pipe = Pipeline(load_settings(overrides={"home": str(home)}))
    if args.retrain or not pipe.store.exists(args.scene):
        pipe.train(args.scene, sorted(d.glob("train*.mp4")))
    model = pipe.load(args.scene)
    enc = pipe.encoder_for(model)
    scorer = model.detector.scorer(interval_ms=model.interval_ms, encoder=enc)
    st = scorer.state
    print(f"scene_still {st.config.scene_still}  threshold {st.threshold:.3f} unit {st.score_unit:.3f}  "
          f"scene calib {st.calib['scene'].as_list()}  margin {st.config.scene_margin}")
    # the training noise: the change of cells with no motion, at the training sampling
    fit = model.detector.scorer(interval_ms=model.fit_interval_ms, encoder=enc)
    ch = []
    for p in sorted(d.glob("train*.mp4"))[:3]:
        f = fit.extract_range(p)
        quiet = (f.motion[..., 3] <= 0) & np.isfinite(f.scene_change)
        ch.append(f.scene_change[quiet])
    ch = np.concatenate(ch)
    print(f"training cells with no motion: change median {np.median(ch):.3f}  p90 {np.percentile(ch, 90):.3f}"
          f"  share < 0.5 {np.mean(ch < 0.5):.2f}")
    feats = scorer.extract_range(d / f"{args.clip}.mp4")
    res = scorer.score_cells(feats)
    sm = moving_average(res.scores, st.config.smoothing_window)
    still = still_cells(feats, st.config.scene_still).reshape(feats.n_frames, st.config.grid.rows, st.cols)
    cells = person_cells(st.config.grid.rows, st.cols)
    _, (cz, _) = scorer_values(st, feats)
    cz = cz.reshape(feats.n_frames, st.config.grid.rows, st.cols)
    print("person cells:", [tuple(int(v) for v in x) for x in np.argwhere(cells)])
    print("   t  lab  smooth   raw   " + " ".join(f"{a[:5]:>6}" for a in st.config.fused)
          + "  | change per person cell | still | cell z")
    for j, t in enumerate(feats.timestamps):
        if not SPAN[0] - 3 <= t <= SPAN[1] + 3:
            continue
        zs = " ".join(f"{res.attribute_scores[a][j]:6.2f}" for a in st.config.fused)
        chg = " ".join(f"{v:4.2f}" for v in feats.scene_change[j][cells])
        stl = "".join("S" if v else "." for v in still[j][cells])
        czs = " ".join(f"{v:5.1f}" for v in cz[j][cells])
        busy = " ".join(f"{v:.2f}" for v in feats.motion[j][..., 3][cells])
        print(f"{t:5.2f} {'ANOM' if sm[j] < 0 else '    '} {sm[j]:6.2f} {res.scores[j]:6.2f} {zs} | {chg} | {stl} |"
              f" {czs} | busy {busy}")


def scorer_values(st, feats):
    from vlm_anomaly.motion.registry import ATTRIBUTES

    return ATTRIBUTES["scene"].values(st, feats)


if __name__ == "__main__":
    main()
