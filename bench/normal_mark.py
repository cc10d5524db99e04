"""Time of "this was normal" on a 30-s clip with the shipped default detector, against retraining
with that clip added (what a user had to do before), in the same run.

    PYTHONPATH=src python bench/normal_mark.py [--seconds 30] [--fps 30] [--repeats 3] [--json out.json]

Clips (written once into --workdir): two normal clips of the synthetic street and one clip of a
later moment with an intruder, each --seconds long, 640x480 H.264 at --fps (a camera's main
stream). The model is trained with the shipped defaults on the two normal clips; the training
clips are then moved aside (marking must not read them). Marking the whole intruder clip is
timed --repeats times (undone between runs; median reported) through one pipeline, as the
dashboard, the API and the Home Assistant button do (its encoder already loaded, by training);
the baseline trains a fresh model on all three clips once. Also reported: whether the clip
raises an anomaly before and after marking.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from pathlib import Path

from vlm_anomaly.config import load_settings
from vlm_anomaly.normal import mark_normal, undo_normal
from vlm_anomaly.pipeline import Pipeline
from vlm_anomaly.synthetic import write_video


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workdir", type=Path, default=Path(".bench-normal"))
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()

    w = a.workdir
    shutil.rmtree(w, ignore_errors=True)
    (w / "train").mkdir(parents=True)
    size, sec = (640, 480), a.seconds
    train = [write_video(w / "train" / f"normal{i}.mp4", seconds=sec, fps=a.fps, size=size, start_s=i * sec)
             for i in range(2)]
    clip = write_video(w / "intruder.mp4", seconds=sec, fps=a.fps, size=size, start_s=2 * sec + 10,
                       anomaly_span=(sec * 0.3, sec * 0.5))
    s = load_settings(overrides={"home": w / "home"})  # the shipped defaults
    pipe = Pipeline(s)
    pipe.train("street", train)
    shutil.move(w / "train", w / "moved-away")
    before = pipe.score("street", clip, describe=False).n_anomalies

    times = []
    after = None
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        add = mark_normal(pipe.store, "street", clip, pipeline=pipe)
        times.append(time.perf_counter() - t0)
        after = Pipeline(s).score("street", clip, describe=False).n_anomalies
        undo_normal(pipe.store, "street", add.id, pipeline=pipe)

    t0 = time.perf_counter()
    Pipeline(load_settings(overrides={"home": w / "home-retrain"})).train(
        "street", [*sorted((w / "moved-away").glob("*.mp4")), clip])
    retrain = time.perf_counter() - t0

    res = {"clip_s": sec, "fps": a.fps, "size": list(size), "interval_ms": s.interval_ms,
           "frames_learnt": add.frames, "mark_s": [round(t, 3) for t in times],
           "mark_median_s": round(statistics.median(times), 3), "retrain_s": round(retrain, 3),
           "speedup_vs_retrain": round(retrain / statistics.median(times), 1),
           "anomalous_frames_before": int(before), "anomalous_frames_after": int(after or 0)}
    print(json.dumps(res, indent=2))
    if a.json:
        a.json.write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
