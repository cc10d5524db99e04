"""Diagnosis only (post hoc, chosen after seeing test results - not a valid result): does splitting
crowd regions help the velocity attribute on Ped2?

Re-runs flow + regions with region boxes *not* merged when they touch and a smaller dilation,
reuses the cached whole-frame embeddings of eval_attributes.py, and reports the pooled frame AUC of
velocity alone and velocity + frame. Appearance is not recomputed (it would need the crops).

    PYTHONPATH=src python bench/diag_attributes_regions.py --cache ~/.vlm-anomaly/cache/attributes-eval
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
from eval_attributes import default_data  # noqa: I001 - sibling script


def split_regions(image, previous, cfg):
    from vlm_anomaly.attributes.features import velocity_features
    from vlm_anomaly.attributes.flow import MotionField, dense_flow, small_gray
    from vlm_anomaly.attributes.regions import Box

    s = cfg.flow_scale
    gray, prev = small_gray(image, s), small_gray(previous, s)
    flow = dense_flow(prev, gray, cfg.flow_method) / np.float32(s)
    diff = cv2.absdiff(cv2.GaussianBlur(prev, (3, 3), 0), cv2.GaussianBlur(gray, (3, 3), 0))
    changed = cv2.dilate((diff > cfg.diff_threshold).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    mask = changed & (np.linalg.norm(flow, axis=2) > cfg.flow_threshold)
    mf = MotionField(flow, mask, s)
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    min_px = cfg.min_area_frac * mask.size
    h, w = image.shape[:2]
    boxes = [Box(int(x / s), int(y / s), min(w, int((x + bw) / s)), min(h, int((y + bh) / s)))
             for x, y, bw, bh, area in stats[1:] if area >= min_px]
    boxes = sorted(boxes, key=lambda b: -b.area)[: cfg.max_regions]
    return boxes, [velocity_features(mf, b) for b in boxes]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=default_data())
    ap.add_argument("--cache", type=Path, required=True)
    args = ap.parse_args()
    from sklearn.metrics import roc_auc_score

    from vlm_anomaly.attributes import AttributeConfig, AttributeScorer, SourceFeatures
    from vlm_anomaly.attributes.features import VELOCITY_DIM
    from vlm_anomaly.encoders import create_encoder
    from vlm_anomaly.video import sample_frames

    enc = create_encoder("efficientnet")
    base = AttributeScorer(enc, AttributeConfig(), interval_ms=0, cache_dir=args.cache)
    cfg = AttributeConfig(fused=("velocity", "frame"))

    def features(split: str, clip: str) -> SourceFeatures:
        src = str(args.data / split / clip)
        old = base.extract(src)  # cached frame embeddings
        ofr, ob, ov = [], [], []
        for n, f in enumerate(sample_frames(src, interval_ms=0, with_previous=True)):
            if f.previous is None:
                continue
            boxes, vel = split_regions(f.image, f.previous, cfg.motion)
            ofr += [n] * len(boxes)
            ob += [b.as_list() for b in boxes]
            ov += vel
        obj_frame = np.asarray(ofr, np.int64)
        return SourceFeatures(src, old.size, old.frame_indices, old.timestamps, old.has_motion, old.frame_emb,
                              obj_frame, np.asarray(ob, np.int32).reshape(-1, 4),
                              np.asarray(ov, np.float32).reshape(-1, VELOCITY_DIM),
                              old.frame_emb[obj_frame])  # appearance not recomputed (not fused)

    data = args.data
    labels = json.loads((data / "test_labels.json").read_text())
    train = sorted(p.name for p in (data / "train").iterdir() if p.is_dir())
    test = sorted(p.name for p in (data / "test").iterdir() if p.is_dir())
    scorer = AttributeScorer(enc, cfg).fit_features([features("train", c) for c in train])
    y, fused, vel = [], [], []
    for c in test:
        res = scorer.score_features(features("test", c))
        y.append(np.asarray(labels[c])[res.frame_indices])
        fused.append(res.scores)
        vel.append(res.attribute_scores["velocity"])
    y = np.concatenate(y)
    print(json.dumps({"velocity": round(float(roc_auc_score(y, -np.concatenate(vel))), 4),
                      "velocity+frame": round(float(roc_auc_score(y, -np.concatenate(fused))), 4)}))


if __name__ == "__main__":
    main()
