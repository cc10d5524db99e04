"""Does a shadow that moves with the sun keep the default alarming, and does a person who stops
in it still count? Before/after in one run: the same trained model with ``scene_follow`` off
(judged against training alone, as before) and on (the default: ``scene.follow_gradual``).

Trains the default as ``bench/motion_nuisance.py`` does (9 clips of 15 s of the plaza of
``vlm_anomaly.synthetic_nuisance``, scene time 0-135 s, the same files) and scores one continuous
240 s clip that starts where training ends (scene time 135-375 s): the building's shadow edge moves
0.6 px/s, so after the first minute it lies where no training clip had it, as a camera trained in
the morning sees the afternoon. A person walks in and stands from 180 to 195 s of that clip.
Reports the share of normal frames flagged (outside 176-199 s), of the standing frames flagged
after their first second, and the events of ``watch --fast`` (the live Monitor) on the clip.
Nothing is tuned on it.

    PYTHONPATH=src python bench/motion_drift.py --json docs/motion_cv/nuisance/drift.json
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from motion_nuisance import _watch  # bench/ is on the path of a script run from it

from vlm_anomaly.config import load_settings
from vlm_anomaly.pipeline import Pipeline
from vlm_anomaly.synthetic_nuisance import FPS, write_scene

SPAN = (180.0, 195.0)
SECONDS = 240.0
TRAIN = 9, 15.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scene", default="day_flicker_foliage_shadow")
    ap.add_argument("--train-dir", default="", help="default: /tmp/motion_nuisance/15fps/SCENE (shared)")
    ap.add_argument("--out", default="/tmp/motion_drift")
    ap.add_argument("--no-watch", action="store_true")
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    t0 = time.time()
    tdir = Path(args.train_dir or f"/tmp/motion_nuisance/{FPS:g}fps/{args.scene}")
    tdir.mkdir(parents=True, exist_ok=True)
    n, secs = TRAIN
    train = []
    for i in range(n):
        p = tdir / f"train{i}.mp4"
        if not p.exists():
            write_scene(p, args.scene, seconds=secs, start_s=i * secs, fps=FPS)
        train.append(p)
    d = Path(args.out) / args.scene
    d.mkdir(parents=True, exist_ok=True)
    clip = d / "continuous.mp4"
    if not clip.exists():
        write_scene(clip, args.scene, seconds=SECONDS, start_s=n * secs, incident="standing", span=SPAN, fps=FPS)
    pipe = Pipeline(load_settings(overrides={"home": str(d / "home")}))
    pipe.train("follow", train)
    off = pipe.load("follow")
    off.detector.state_.config = replace(off.detector.state_.config, scene_follow=False)
    pipe.store.save(off, "before", overwrite=True)
    report: dict = {"scene": args.scene, "fps": FPS, "train": f"{n} x {secs:g} s (scene time 0-{n * secs:g} s)",
                    "clip": f"{SECONDS:g} s from scene time {n * secs:g} s", "standing_s": SPAN, "runs": {}}
    for name in ("before", "follow"):
        r = pipe.score(name, clip)
        lab, t = np.asarray(r.labels, bool), np.asarray(r.timestamps)
        inside = (t >= SPAN[0] + 1.0) & (t < SPAN[1])
        normal = (t < SPAN[0] - 4.0) | (t >= SPAN[1] + 4.0)
        flagged_t = t[normal & lab]
        run = {"normal_flagged_pct": round(100 * float(lab[normal].mean()), 1),
               "normal_flagged_by_minute_pct": [round(100 * float(lab[normal & (t >= m) & (t < m + 60)].mean()), 1)
                                                for m in range(0, int(SECONDS), 60)],
               "first_normal_flag_s": round(float(flagged_t[0]), 1) if len(flagged_t) else None,
               "standing_flagged_after_first_second_pct": round(100 * float(lab[inside].mean()), 1)}
        if not args.no_watch:
            (d / name).mkdir(exist_ok=True)
            ev = _watch(d / "home", name, clip, d / name)
            run["watch_events"] = ev
            run["watch_standing_one_event"] = sum(1 for e in ev if e["end_s"] > SPAN[0] and e["start_s"] < SPAN[1]) == 1
        report["runs"][name] = run
        print(name, json.dumps(run, indent=1), flush=True)
    report["seconds"] = round(time.time() - t0, 1)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
