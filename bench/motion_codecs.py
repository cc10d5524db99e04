"""Few clips and codec shift on Ped2: train on train 01-04 rendered as MP4 (10 fps), score test 02
rendered as MP4 and re-encoded with other codecs, strong compression, smaller sizes and another
frame rate. Reports frame AUC and the share of normal / anomalous frames flagged at the model's
own threshold (smoothed score < threshold), for the default detector and, with --ocsvm, the old
default (One-Class SVM on EfficientNet-Lite0 frame embeddings) in the same run.

    PYTHONPATH=src python bench/motion_codecs.py --data ../shared/data/ped2 --out /tmp/codecs [--ocsvm]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from vlm_anomaly.config import load_settings
from vlm_anomaly.pipeline import Pipeline
from vlm_anomaly.synthetic import reencode

#: name -> (codec, options, scale, fps, container suffix); fps 30 repeats each 10 fps frame 3 times
VARIANTS = {
    "mp4 (mpeg4, as trained)": ("mpeg4", {}, 1.0, 10, ".mp4"),
    "h264 crf 35": ("libx264", {"crf": "35", "preset": "ultrafast"}, 1.0, 10, ".mp4"),
    "h265 crf 38, 0.75x": ("libx265", {"crf": "38", "preset": "ultrafast", "x265-params": "log-level=none"}, 0.75,
                           10, ".mp4"),
    "mpeg2 300 kbit/s": ("mpeg2video", {"b": "300000"}, 1.0, 10, ".mpg"),
    "mjpeg q 25, 0.5x": ("mjpeg", {"q:v": "25"}, 0.5, 10, ".avi"),
    "h264 crf 30, 0.5x, 30 fps": ("libx264", {"crf": "30", "preset": "ultrafast"}, 0.5, 30, ".mp4"),
}


def render(folder: str, out: Path, codec: str = "mpeg4", options: dict | None = None, scale: float = 1.0,
           fps: int = 10, repeat: int = 1) -> Path:
    opts = dict(options or {})
    bit_rate = int(opts.pop("b", 0)) or (2_000_000 if codec == "mpeg4" else 0)
    qscale = int(opts.pop("q:v", 0))
    return reencode(folder, out, codec=codec, options=opts, scale=scale, fps=fps, repeat=repeat, bit_rate=bit_rate,
                    qscale=qscale)


def evaluate(pipe: Pipeline, model, path: Path, labels: np.ndarray, interval_ms: int) -> dict:
    t0 = time.perf_counter()
    r = pipe.score(model, path, interval_ms=interval_ms, describe=False)
    dt = time.perf_counter() - t0
    # frames are matched to labels by time (a 30 fps file repeats each 10 fps frame)
    src_idx = np.clip(np.round(r.timestamps * 10).astype(int), 0, len(labels) - 1)
    y = labels[src_idx]
    s = np.asarray(r.smoothed_scores)
    flagged = s < r.threshold
    return {"auc": round(float(roc_auc_score(y, -s)), 4), "auc_raw": round(float(roc_auc_score(y, -r.raw_scores)), 4),
            "normal_flagged": round(float(flagged[y == 0].mean()), 4),
            "anomalous_flagged": round(float(flagged[y == 1].mean()), 4), "frames": len(s),
            "seconds": round(dt, 2), "frames_per_s": round(len(s) / dt, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data/ped2")
    ap.add_argument("--out", default="/tmp/motion_codecs")
    ap.add_argument("--ocsvm", action="store_true", help="also the old default (slow: encodes every frame)")
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = Path(args.data)
    train = [render(str(data / "train" / c), out / f"train{c}.mp4") for c in ("01", "02", "03", "04")]
    labels = np.asarray(json.loads((data / "test_labels.json").read_text())["02"])
    tests = {}
    for name, (codec, opts, scale, fps, ext) in VARIANTS.items():
        p = out / f"test02_{len(tests)}{ext}"
        tests[name] = render(str(data / "test" / "02"), p, codec, opts, scale, fps, repeat=fps // 10)
    report: dict = {}
    detectors = ["motion"] + (["ocsvm"] if args.ocsvm else [])
    for det in detectors:
        extra = {"encoder": "efficientnet"} if det == "ocsvm" else {}
        s = load_settings(overrides={"detector": det, "interval_ms": 0, "home": str(out / "home"),
                                     "embedding_cache": False, **extra})
        pipe = Pipeline(s)
        t0 = time.perf_counter()
        model = pipe.fit(train)
        fit_s = time.perf_counter() - t0
        rows = {"fit_s": round(fit_s, 1)}
        for name, p in tests.items():
            # score at the source rate of 10 fps: every frame of the 10 fps files, every 3rd at 30 fps
            rows[name] = evaluate(pipe, model, p, labels, 0 if "30 fps" not in name else 100)
            print(det, name, rows[name], flush=True)
        report[det] = rows
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
