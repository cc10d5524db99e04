"""Why a walker at 4x the traffic's speed is missed on the nuisance plaza: per sample of the bench's
``fast`` clip, whether the walker is in view, the label, the smoothed and raw scores, each
attribute's z, how many moving regions the sample has and the fastest ones' speeds (frame heights/s);
first the threshold, the output unit, the learnt moving floor and each attribute's calibration.

Uses the renders of ``bench/motion_nuisance.py`` (``--renders``: its ``--out``/15fps/<scene>), trains
the default on its training clips under ``--home`` (or reuses the model there), prints a table.

    PYTHONPATH=src python bench/motion_fast_diag.py --scene ir_night_grain
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from vlm_anomaly.config import load_settings
from vlm_anomaly.pipeline import Pipeline
from vlm_anomaly.smoothing import moving_average
from vlm_anomaly.synthetic_nuisance import fast_in_view

SPAN = (8.0, 18.0)  # the bench's incident span, in seconds of the clip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scene", default="ir_night_grain")
    ap.add_argument("--renders", default="/tmp/motion_nuisance/15fps")
    ap.add_argument("--home", default="/tmp/motion_fast_diag")
    args = ap.parse_args()
    d = Path(args.renders) / args.scene
    pipe = Pipeline(load_settings(overrides={"home": str(Path(args.home) / args.scene)}))
    if not pipe.store.exists(args.scene):
        pipe.train(args.scene, sorted(d.glob("train*.mp4")))
    model = pipe.load(args.scene)
    scorer = model.detector.scorer(interval_ms=model.interval_ms, encoder=pipe.encoder_for(model))
    st = scorer.state
    print(f"threshold {st.threshold:.2f}  unit {st.score_unit:.2f}  moving floor {st.config.grid.moving_speed:.4f}")
    for a in st.config.fused:
        print(f"  calibration {a}: {st.calib[a].as_list()}")
    feats = scorer.extract_range(d / "fast.mp4")
    res = scorer.score_cells(feats)
    sm = moving_average(res.scores, st.config.smoothing_window)
    print("    t view label smooth    raw " + " ".join(f"{a[:6]:>7}" for a in st.config.fused) + " regions speeds")
    counts = np.bincount(feats.blob_frame, minlength=feats.n_frames)
    for j, t in enumerate(feats.timestamps):
        b = feats.blobs[feats.blob_frame == j]
        if SPAN[0] - 2 <= t <= SPAN[1] + 1:
            zs = " ".join(f"{res.attribute_scores[a][j]:7.2f}" for a in st.config.fused)
            sp = " ".join(f"{v:.2f}" for v in sorted(b[:, 5], reverse=True)[:4])
            seen = SPAN[0] <= t < SPAN[1] and fast_in_view(t - SPAN[0])
            print(f"{t:5.2f} {'V' if seen else ' ':>4} {'ANOM' if sm[j] < 0 else '':>5} "
                  f"{sm[j]:6.2f} {res.scores[j]:6.2f} {zs} {len(b):7d} {sp}")
    print(f"moving regions per sample: {counts.mean():.1f}")


if __name__ == "__main__":
    main()
