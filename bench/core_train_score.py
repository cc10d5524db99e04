"""Time to train on two 1-minute 640x480 30 fps clips and to score a third, and the peak memory.

The numbers the core issue asks for. Run once (not a test):

    PYTHONPATH=src HF_HUB_OFFLINE=1 python bench/core_train_score.py [--encoder efficientnet] [--workdir DIR]

Clips are generated (vlm_anomaly.synthetic) and kept in the work dir; the embedding cache is off so
every run decodes and encodes for real. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--encoder", default="efficientnet")
    ap.add_argument("--interval-ms", type=int, default=500)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "vlm-anomaly-bench-clips")
    args = ap.parse_args()

    import numpy as np
    import torch
    from sklearn.metrics import roc_auc_score

    from vlm_anomaly import Pipeline, load_settings
    from vlm_anomaly.synthetic import write_video

    args.workdir.mkdir(parents=True, exist_ok=True)
    span = (args.seconds / 3, args.seconds / 2)
    t0 = time.perf_counter()
    clips = []
    for name, start, anomaly in (("normal1.mp4", 0.0, None), ("normal2.mp4", args.seconds, None),
                                 ("test.mp4", 2 * args.seconds, span)):
        path = args.workdir / f"{int(args.seconds)}s-{name}"
        if not path.exists():
            write_video(path, seconds=args.seconds, fps=30, size=(640, 480), start_s=start, anomaly_span=anomaly)
        clips.append(path)
    generate_s = time.perf_counter() - t0

    with tempfile.TemporaryDirectory() as home:
        settings = load_settings(overrides={"home": home, "encoder": args.encoder,
                                            "interval_ms": args.interval_ms, "embedding_cache": False})
        pipe = Pipeline(settings)
        t0 = time.perf_counter()
        enc = pipe.encoder
        build_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        model = pipe.train("bench", clips[:2])
        train_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        result = pipe.score("bench", clips[2])
        score_s = time.perf_counter() - t0

    truth = (result.timestamps >= span[0]) & (result.timestamps < span[1])
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    report = {
        "encoder": enc.identity.label,
        "device": str(enc.device),
        "torch_threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "machine": platform.processor() or platform.machine(),
        "clips": f"3 x {args.seconds:g} s, 640x480, 30 fps, H.264",
        "interval_ms": args.interval_ms,
        "generate_clips_s": round(generate_s, 1),
        "encoder_build_s": round(build_s, 2),
        "train_s": round(train_s, 2),
        "train_frames": model.n_frames,
        "score_s": round(score_s, 2),
        "score_frames": result.n_frames,
        "score_ms_per_frame": round(1000 * score_s / max(1, result.n_frames), 1),
        "anomalies": result.n_anomalies,
        "frame_auc": round(float(roc_auc_score(truth, -result.raw_scores)), 4),
        "peak_rss_mib": round(peak_kib / 1024, 1),
        "mean_score": float(np.mean(result.raw_scores)),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
