"""Few short training clips, scored at other frame sizes: how many normal frames does the default flag?

A user trains the default on a few short clips of their camera and scores a stream of another
size (a sub-stream, a half-size export). This trains the default (``Pipeline``, shipped settings)
on sets of Ped2 training clips cut to their first ``--frames`` frames (MPEG-4, 10 fps, 360x240),
and scores the normal start of test 02 (its first 90 frames, before the cyclist; no label is read
beyond "these 90 frames are normal") rendered at 1x, 0.75x, 0.5x and 1.5x as MPEG-4 and H.264.
Reports the share of those frames flagged at the model's own threshold, per set and size, and the
whether training warned (``extra["warning"]``, fewer than 9 clips).

    PYTHONPATH=src python bench/motion_fewclips.py --data /work/shared/data/ped2 --json /tmp/fewclips.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from vlm_anomaly.config import load_settings
from vlm_anomaly.pipeline import Pipeline
from vlm_anomaly.synthetic import reencode

#: consecutive disjoint triples of training clips (no choice of "good" or "bad" clips), and two sets of eight
SETS = ("01-02-03", "04-05-06", "07-08-09", "10-11-12", "13-14-15", "01-02-03-04-05-06-07-08",
        "09-10-11-12-13-14-15-16")
SCALES = (1.0, 0.75, 0.5, 1.5)
CODECS = {"mpeg4": dict(bit_rate=2_000_000),
          "h264": dict(codec="libx264", options={"crf": "28", "preset": "ultrafast"})}
NORMAL_FRAMES = 90  # test 02's cyclist enters at frame 94


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data/ped2")
    ap.add_argument("--out", default="/tmp/motion_fewclips")
    ap.add_argument("--frames", type=int, default=60, help="first frames of each training clip (0: all)")
    ap.add_argument("--sets", nargs="*", default=list(SETS))
    ap.add_argument("--interval-ms", type=int, default=500, help="scoring interval (the shipped default: 500)")
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    out, data = Path(args.out), Path(args.data)
    out.mkdir(parents=True, exist_ok=True)
    tests = {}
    for codec, kw in CODECS.items():
        for sc in SCALES:
            p = out / f"test02_normal_{codec}_{sc}.mp4"
            if not p.exists():
                reencode(data / "test" / "02", p, scale=sc, max_frames=NORMAL_FRAMES, **kw)
            tests[f"{codec} {sc}x"] = p
    pipe = Pipeline(load_settings(overrides={"home": str(out / "home"), "embedding_cache": False}))
    report: dict = {"frames": args.frames, "interval_ms": args.interval_ms, "sets": {}}
    for name in args.sets:
        clips = []
        for c in name.split("-"):
            p = out / f"train{c}_{args.frames}.mp4"
            if not p.exists():
                reencode(data / "train" / c, p, bit_rate=2_000_000, max_frames=args.frames)
            clips.append(p)
        t0 = time.perf_counter()
        model = pipe.train(f"few-{name}", clips)
        row: dict = {"fit_s": round(time.perf_counter() - t0, 1), "warned": bool(model.extra.get("warning"))}
        for tname, p in tests.items():
            r = pipe.score(model, p, interval_ms=args.interval_ms)
            row[tname] = round(float(np.mean(np.asarray(r.smoothed_scores) < r.threshold)), 3)
        report["sets"][name] = row
        print(name, row, flush=True)
    for tname in tests:
        v = [row[tname] for row in report["sets"].values()]
        print(f"{tname}: normal frames flagged, mean over sets {np.mean(v):.3f}, worst {np.max(v):.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
