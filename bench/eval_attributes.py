"""Frame-level ROC-AUC / AP of the attribute scorer on UCSD Ped2 (or any dataset in that layout).

Protocol (as in the published tables): train on ``train/NN`` (normal only), score every frame of
``test/NN``, concatenate all test frames, ROC-AUC against ``test_labels.json`` (1 = anomalous).
Every hyper-parameter is fixed in advance (AttributeConfig defaults); test labels are only read
to compute the metrics. Features are cached per clip, so re-runs only redo the k-NN.

    PYTHONPATH=src python bench/eval_attributes.py --data ../shared/data/ped2 --json docs/attributes_ped2.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def default_data() -> Path:
    """``<repo>/../shared/data/ped2``, looking further up for worktrees nested one level deeper."""
    for parent in REPO.parents:
        cand = parent / "shared" / "data" / "ped2"
        if cand.is_dir():
            return cand
    return REPO.parent / "shared" / "data" / "ped2"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=default_data())
    ap.add_argument("--cache", type=Path, default=Path(os.environ.get("VLM_ANOMALY_HOME", Path.home() / ".vlm-anomaly"))
                    / "cache" / "attributes-eval")
    ap.add_argument("--train", default="", help="comma-separated train clips (default: all)")
    ap.add_argument("--test", default="", help="comma-separated test clips (default: all)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--window", type=int, default=5, help="moving-average window (project default 5)")
    ap.add_argument("--encoder", default="efficientnet")
    ap.add_argument("--json", type=Path, default=None, help="write the report here")
    ap.add_argument("--extract-only", action="store_true",
                    help="only fill the feature cache for the listed clips (run several at once on disjoint clips)")
    args = ap.parse_args()

    import torch
    from sklearn.metrics import average_precision_score, roc_auc_score

    from vlm_anomaly.attributes import AttributeConfig, AttributeScorer
    from vlm_anomaly.detectors import moving_average
    from vlm_anomaly.encoders import create_encoder

    torch.set_num_threads(args.threads)
    cv2_threads(args.threads)
    data = args.data
    labels = json.loads((data / "test_labels.json").read_text())
    train = sorted(p.name for p in (data / "train").iterdir() if p.is_dir())
    test = sorted(p.name for p in (data / "test").iterdir() if p.is_dir())
    if args.train:
        train = [c for c in train if c in args.train.split(",")]
    if args.test:
        test = [c for c in test if c in args.test.split(",")]
    enc = create_encoder(args.encoder)
    cfg = AttributeConfig()
    scorer = AttributeScorer(enc, cfg, interval_ms=0, cache_dir=args.cache)
    timing_file = args.cache / "timing.json"
    timings = json.loads(timing_file.read_text()) if timing_file.is_file() else {}

    def save_timing(key: str, value: dict) -> None:
        # several extract-only runs may share the file: merge with what is there now
        timing_file.parent.mkdir(parents=True, exist_ok=True)
        current = json.loads(timing_file.read_text()) if timing_file.is_file() else {}
        current[key] = value
        timings.update(current)
        tmp = timing_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(current, indent=1))
        os.replace(tmp, timing_file)

    def extract(split: str, clip: str):
        src = str(data / split / clip)
        key = f"{enc.identity.key}/{split}/{clip}"
        cached = scorer._cache_path(src)
        fresh = cached is None or not cached.is_file()
        w0, c0 = time.perf_counter(), time.process_time()
        before = dict(scorer.extractor.timing)
        feats = scorer.extract(src)
        if fresh:
            after = scorer.extractor.timing
            save_timing(key, {"frames": int(feats.n_frames), "wall_s": time.perf_counter() - w0,
                              "cpu_s": time.process_time() - c0,
                              **{k: after[k] - before[k] for k in ("motion_s", "frame_embed_s", "crop_embed_s",
                                                                   "crops")}})
            print(f"  {split}/{clip}: {feats.n_frames} frames, {timings[key]['wall_s']:.1f} s", flush=True)
        return feats

    if args.extract_only:
        for split, clips in (("train", train), ("test", test)):
            for c in clips:
                extract(split, c)
        return
    print(f"extracting {len(train)} train clips", flush=True)
    train_feats = [extract("train", c) for c in train]
    t0 = time.perf_counter()
    scorer.fit_features(train_feats)
    fit_s = time.perf_counter() - t0
    print(f"extracting + scoring {len(test)} test clips", flush=True)
    y, fused, fused_s, per_attr, clip_auc = [], [], [], {}, {}
    score_s = 0.0
    for c in test:
        feats = extract("test", c)
        t0 = time.perf_counter()
        res = scorer.score_features(feats)
        score_s += time.perf_counter() - t0
        lab = np.asarray(labels[c], int)[feats.frame_indices]
        y.append(lab)
        fused.append(res.scores)
        fused_s.append(moving_average(res.scores, args.window))
        for a, s in res.attribute_scores.items():
            per_attr.setdefault(a, []).append(s)
            per_attr.setdefault(a + "+smooth", []).append(moving_average(s, args.window))
        if 0 < lab.sum() < len(lab):
            clip_auc[c] = float(roc_auc_score(lab, -res.scores))
    y = np.concatenate(y)

    def metrics(scores: list[np.ndarray]) -> dict:
        s = -np.concatenate(scores)  # anomaly score
        return {"auc": round(float(roc_auc_score(y, s)), 4), "ap": round(float(average_precision_score(y, s)), 4)}

    rows = {"fused": metrics(fused), f"fused+smooth{args.window}": metrics(fused_s)}
    for a in sorted(per_attr):
        rows[a.replace("+smooth", f"+smooth{args.window}")] = metrics(per_attr[a])
    keys = [f"{enc.identity.key}/train/{c}" for c in train] + [f"{enc.identity.key}/test/{c}" for c in test]
    tt = [timings[k] for k in keys if k in timings]
    n_frames = sum(t["frames"] for t in tt)
    timing = {}
    if n_frames:
        timing = {
            "frames_timed": n_frames,
            "wall_s_per_frame": round(sum(t["wall_s"] for t in tt) / n_frames, 4),
            "cpu_s_per_frame": round(sum(t["cpu_s"] for t in tt) / n_frames, 4),
            "motion_s_per_frame": round(sum(t["motion_s"] for t in tt) / n_frames, 4),
            "frame_embed_s_per_frame": round(sum(t["frame_embed_s"] for t in tt) / n_frames, 4),
            "crop_embed_s_per_frame": round(sum(t["crop_embed_s"] for t in tt) / n_frames, 4),
            "crops_per_frame": round(sum(t["crops"] for t in tt) / n_frames, 2),
        }
    n_test = len(y)
    timing["fit_s"] = round(fit_s, 2)
    timing["knn_score_s_per_frame"] = round(score_s / max(1, n_test), 5)
    report = {
        "dataset": str(data), "train_clips": train, "test_clips": test, "test_frames": int(n_test),
        "anomalous_frames": int(y.sum()), "encoder": enc.identity.label, "config": cfg.as_dict(),
        "smoothing_window": args.window, "threads": args.threads, "metrics": rows,
        "per_clip_auc_fused": {k: round(v, 4) for k, v in clip_auc.items()},
        "per_clip_mean_auc_fused": round(float(np.mean(list(clip_auc.values()))), 4) if clip_auc else None,
        "timing": timing,
    }
    print(json.dumps(report, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1))


def cv2_threads(n: int) -> None:
    import cv2

    cv2.setNumThreads(n)


if __name__ == "__main__":
    main()
