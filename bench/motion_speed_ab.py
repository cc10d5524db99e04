"""End-to-end speed of the default at ``--interval-ms 100`` on a 720x480 clip (the pixel count of
640x480 at Ped2's aspect) for whichever ``vlm_anomaly`` is on PYTHONPATH: a short A/B against
another checkout, run alternately in one session so both see the same load (the full
``motion_speed.py`` takes too long to run twice on the shared machine).

    for i in 1 2; do PYTHONPATH=../main-src python bench/motion_speed_ab.py main
                     PYTHONPATH=src python bench/motion_speed_ab.py branch; done

Clip: Ped2 test 01-02 upscaled 2x, rendered as H.264 at 30 fps (each 10 fps frame 3 times); model
fitted on Ped2 train 01-02 with the default settings at 100 ms. Prints the best of two timed runs,
and the best of two live runs: the clip's first 300 frames, decoded beforehand, scored one at a
time through the stream scorer (as ``watch`` scores a camera).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from vlm_anomaly.config import load_settings
from vlm_anomaly.pipeline import Pipeline
from vlm_anomaly.synthetic import reencode
from vlm_anomaly.video.sampling import sample_frames


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("tag")
    ap.add_argument("--data", default="../shared/data/ped2")
    ap.add_argument("--out", default="/tmp/motion_speed_ab")
    args = ap.parse_args()
    out, data = Path(args.out), Path(args.data)
    out.mkdir(parents=True, exist_ok=True)
    clip = out / "ped2_480p_30fps.mp4"
    if not clip.exists():
        frames = out / "frames"
        frames.mkdir(exist_ok=True)
        n = 0
        for c in ("01", "02"):
            for f in sorted((data / "test" / c).glob("*.jpg")):
                dst = frames / f"{n:05d}.jpg"
                if not dst.exists():
                    dst.symlink_to(f.resolve())
                n += 1
        reencode(frames, clip, codec="libx264", options={"crf": "23", "preset": "ultrafast"}, fps=30, repeat=3,
                 scale=2.0)
    pipe = Pipeline(load_settings(overrides={"interval_ms": 100, "home": str(out / f"home_{args.tag}"),
                                             "embedding_cache": False}))
    model = pipe.fit([str(data / "train" / c) for c in ("01", "02")])
    pipe.score(model, clip, interval_ms=100, describe=False)  # warm-up
    best, n = 0.0, 0
    for _ in range(2):
        t0 = time.perf_counter()
        r = pipe.score(model, clip, interval_ms=100)
        n = len(r.raw_scores)
        best = max(best, n / (time.perf_counter() - t0))
    frames = list(sample_frames(str(clip), interval_ms=0, with_previous=True, max_frames=300))
    live = 0.0
    for _ in range(2):
        scorer = model.detector.scorer(encoder=pipe.encoder_for(model))
        t0 = time.perf_counter()
        k = sum(1 for _ in scorer.score_stream(frames))
        live = max(live, k / (time.perf_counter() - t0))
    print(json.dumps({"src": args.tag, "frames": n, "frames_per_s": round(best, 1),
                      "live_frames": len(frames), "live_frames_per_s": round(live, 1)}), flush=True)


if __name__ == "__main__":
    main()
