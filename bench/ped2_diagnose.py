"""Diagnose the default motion model's Ped2 misses: which attribute drives each frame's fused score.

Reads Ped2's TEST LABELS: a diagnosis tool, never a way to choose parameters (docs/motion.md,
item 27, says which conclusions came from it). Trains the default on the 16 training clips as
``vlm-anomaly evaluate`` does (every frame) into ``--models-dir`` unless a model named
``ped2-default`` is already there, scores every test frame with each attribute's z, and writes:
pooled and per-clip AUCs, the pooled AUC without some clips, each attribute's AUC alone and the
fused AUC without it, mean z per clip and label, the lowest-scoring normal and highest-scoring
anomalous frames (smoothed like ``evaluate``) with their z and explanation, how often a frame's
worst moving region touches the frame's edge, appearance z by number of moving regions, and the
held-out training clips' fused levels (what sets the threshold).

    PYTHONPATH=src python bench/ped2_diagnose.py --data /work/shared/data/ped2 \
        --models-dir /tmp/ped2-models --json docs/results/ped2-diagnosis/diagnosis.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from vlm_anomaly.config import load_settings
from vlm_anomaly.motion.extract import iter_cells
from vlm_anomaly.motion.regions import at_edge
from vlm_anomaly.motion.registry import ATTRIBUTES as REGISTRY
from vlm_anomaly.pipeline import Pipeline
from vlm_anomaly.smoothing import moving_average


def auc(labels: np.ndarray, fused: np.ndarray) -> float:
    """Frame AUC of anomalous (1) against normal (0) frames, higher fused = more anomalous."""
    return round(float(roc_auc_score(labels, fused)), 4)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data/ped2")
    ap.add_argument("--models-dir", required=True, help="model store: trains ped2-default there unless present")
    ap.add_argument("--json", required=True)
    args = ap.parse_args()
    root = Path(args.data)
    pipe = Pipeline(load_settings(overrides={"models_dir": args.models_dir}))
    report: dict = {"note": "reads Ped2's test labels: diagnosis only, never for choosing parameters"}
    if not pipe.store.exists("ped2-default"):
        t0 = time.time()
        train = sorted(str(p) for p in (root / "train").iterdir() if p.is_dir())
        pipe.fit_and_save("ped2-default", lambda: pipe.fit(train, interval_ms=0))
        report["fit_s"] = round(time.time() - t0, 1)
    sc = pipe.scorer(pipe.load("ped2-default"), interval_ms=0).inner
    st = sc.state
    A = list(st.config.fused)
    labels = json.loads((root / "test_labels.json").read_text())
    keys = ("clip", "frame", "score", "smooth", "label", "z", "regions", "edge", "text")
    rows: dict[str, list] = {k: [] for k in keys}
    for clip in sorted(p.name for p in (root / "test").iterdir() if p.is_dir()):
        src = str(root / "test" / clip)
        scores = []
        for feats in iter_cells(src, st.config.grid, st.cols, frames=sc._frames(src), stream=sc._stream(st.cols)):
            res = sc.score_cells(feats)
            _, (arg, _) = REGISTRY["object"].values(st, feats)
            edge = at_edge(feats.blobs, feats.size, st.config.grid.work_height)
            rows["frame"] += feats.frame_indices.tolist()
            rows["z"] += np.stack([res.attribute_scores[a] for a in A], 1).tolist()
            rows["regions"] += np.bincount(feats.blob_frame, minlength=feats.n_frames).tolist()
            rows["edge"] += [bool(edge[o]) if o >= 0 else False for o in arg]
            rows["text"] += [e["text"] for e in res.explanations]
            scores += res.scores.tolist()
        rows["clip"] += [clip] * len(scores)
        rows["score"] += scores
        rows["smooth"] += moving_average(np.asarray(scores), st.config.smoothing_window).tolist()
        rows["label"] += [labels[clip][i] for i in rows["frame"][-len(scores):]]
    clip, y = np.array(rows["clip"]), np.array(rows["label"])
    s, sm, Z = np.array(rows["score"]), np.array(rows["smooth"]), np.array(rows["z"])
    n_reg, edge = np.array(rows["regions"]), np.array(rows["edge"])
    clips = sorted(set(clip))
    report["threshold"], report["score_unit"] = st.threshold, st.score_unit
    report["pooled_auc"], report["pooled_raw_auc"] = auc(y, -sm), auc(y, -s)
    report["clip_auc"] = {c: auc(y[clip == c], -sm[clip == c]) for c in clips if len(set(y[clip == c])) == 2}
    report["normal_median_score"] = {c: round(float(np.median(sm[(clip == c) & (y == 0)])), 3)
                                     for c in clips if ((clip == c) & (y == 0)).any()}
    report["anomalous_median_score"] = {c: round(float(np.median(sm[(clip == c) & (y == 1)])), 3)
                                        for c in clips if ((clip == c) & (y == 1)).any()}
    report["pooled_auc_without"] = {"+".join(d): auc(y[~np.isin(clip, d)], -sm[~np.isin(clip, d)])
                                    for d in (["10", "11"], ["12"], ["10", "11", "12"], ["08", "09", "10", "11"])}
    report["attribute_alone_raw_auc"] = {a: auc(y, Z[:, i]) for i, a in enumerate(A)}
    report["raw_auc_without_attribute"] = {a: auc(y, np.delete(Z, i, 1).sum(1)) for i, a in enumerate(A)}
    report["mean_z"] = {f"{c} {'anomalous' if lab else 'normal'}": dict(zip(A, np.round(Z[m].mean(0), 2).tolist()))
                        for c in clips for lab in (0, 1) if (m := (clip == c) & (y == lab)).any()}

    def frame(i: int) -> dict:
        return {"clip": str(clip[i]), "frame": rows["frame"][i], "score": round(float(s[i]), 3),
                "smoothed": round(float(sm[i]), 3), "z": dict(zip(A, np.round(Z[i], 2).tolist())),
                "regions": int(n_reg[i]), "worst_region_at_edge": bool(edge[i]), "text": rows["text"][i]}

    report["lowest_normal"] = [frame(i) for i in np.argsort(np.where(y == 0, sm, np.inf))[:20]]
    report["highest_anomalous"] = [frame(i) for i in np.argsort(np.where(y == 1, -sm, np.inf))[:20]]
    zo = Z[:, A.index("object")]
    report["object_z_over_3"] = {lab: {"frames": int(((zo > 3) & (y == k)).sum()),
                                       "worst_region_at_edge": int(((zo > 3) & (y == k) & edge).sum())}
                                 for k, lab in ((0, "normal"), (1, "anomalous"))}
    if "appearance" in A:
        za = Z[:, A.index("appearance")]
        m = y == 0
        report["normal_appearance_z_by_regions"] = {
            f"{k}-{k + 1}": round(float(za[m & (n_reg >= k) & (n_reg <= k + 1)].mean()), 2)
            for k in range(0, 8, 2) if (m & (n_reg >= k) & (n_reg <= k + 1)).any()}
        report["normal_corr_regions_appearance_z"] = round(float(np.corrcoef(n_reg[m], za[m])[0, 1]), 3)
    V, info = st.arrays["heldout_values"], st.arrays["heldout_frames"]
    HZ = np.stack([REGISTRY[a].zscore(st, V[:, i]) for i, a in enumerate(A)], 1)
    held = {}
    for c in np.unique(info[:, 2]):
        f = HZ[info[:, 2] == c].sum(1)
        kind = "copy" if c >= len(st.sources) else "clean"
        held[f"training clip {int(info[info[:, 2] == c][0, 3]) + 1:02d}, {kind}"] = {
            "median": round(float(np.median(f)), 2),
            "p99_smoothed": round(float(np.quantile(moving_average(f, st.config.smoothing_window), 0.99)), 2)}
    report["heldout_fused"] = held
    report["heldout_negative_mean"] = {a: round(float(np.minimum(HZ[:, i], 0).mean()), 2) for i, a in enumerate(A)}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=1))
    print(json.dumps({k: report[k] for k in ("pooled_auc", "pooled_raw_auc", "clip_auc", "pooled_auc_without")}))


if __name__ == "__main__":
    main()
