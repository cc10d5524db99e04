"""Ablation on Ped2: tiled patch-knn fused with the attribute scorer's velocity (motion) score.

The fusion rule was fixed before the run: the sum of the two scores' robust z-values, each
calibrated on held-out *training* frames only (patch-knn's held-out training scores; the attribute
scorer's own calibration), then the default 5-frame smoothing. Reported in docs/results.md.

    python bench/eval_fusion.py --data ../shared/data/ped2 --attr-cache DIR
"""
import argparse
import os

os.environ["HF_HUB_OFFLINE"] = "1"
from pathlib import Path

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from vlm_anomaly import load_settings
from vlm_anomaly.attributes import AttributeConfig, AttributeScorer
from vlm_anomaly.attributes.density import RobustZ
from vlm_anomaly.detectors import moving_average
from vlm_anomaly.encoders import create_encoder
from vlm_anomaly.evaluation import PipelineScorer, load_dataset

ap = argparse.ArgumentParser()
ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "ped2")
ap.add_argument("--attr-cache", type=Path, default=Path.home() / ".vlm-anomaly" / "cache" / "attributes-eval")
args = ap.parse_args()
data = args.data
ds = load_dataset(data)
s = load_settings(overrides={"encoder": "efficientnet", "features": "tiles", "detector": "patch-knn", "interval_ms": 0,
                             "train_interval_ms": 120, "runtime": "onnx"})
ps = PipelineScorer(s).fit(ds.train_sources)
det = ps.model.detector
zt = RobustZ.fit(-det.train_scores_)
attr = AttributeScorer(create_encoder("efficientnet"), AttributeConfig(fused=("velocity",)), interval_ms=0,
                       cache_dir=args.attr_cache)
attr.fit_features([attr.extract(src) for src in ds.train_sources])
y, parts = [], {"tiles": [], "velocity": [], "fused": []}
for clip in ds.test:
    idx, sc = ps.score_frames(clip.source)
    res = attr.score_features(attr.extract(clip.source))
    assert np.array_equal(res.frame_indices, idx)
    z1 = zt(-sc)
    z2 = attr.state.calib["velocity"].high - res.attribute_scores["velocity"]
    for k, v in (("tiles", -z1), ("velocity", -z2), ("fused", -(z1 + z2))):
        parts[k].append(moving_average(v, 5))
    y.append(clip.labels[idx])
y = np.concatenate(y)
for k, v in parts.items():
    v = np.concatenate(v)
    print(k, "AUC", round(roc_auc_score(y, -v), 4), "AP", round(average_precision_score(y, -v), 4))
