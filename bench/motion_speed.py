"""Speed of the default (motion) detector against the old default (One-Class SVM on EfficientNet-Lite0
frame embeddings) in the same run: end-to-end ``Pipeline.score`` at --interval-ms 100, live scoring
of every frame, where the time per frame goes, and peak memory against video length.

    PYTHONPATH=src python bench/motion_speed.py --data ../shared/data/ped2 [--ocsvm] [--json out.json]

Clips: Ped2 test 01-04 concatenated and rendered as H.264 at 30 fps (each 10 fps frame 3 times,
so the scene keeps its speed): what a camera export looks like; and 720x480 and 1280x720 upscales of it.
"""

from __future__ import annotations

import argparse
import json
import time
import tracemalloc
from dataclasses import replace
from pathlib import Path

import numpy as np

from vlm_anomaly.config import load_settings
from vlm_anomaly.pipeline import Pipeline
from vlm_anomaly.synthetic import reencode
from vlm_anomaly.video import sample_frames


def concat_folder(data: Path, clips: list[str], out: Path) -> Path:
    """A frame folder holding several Ped2 clips one after another (symlinks, no copies)."""
    out.mkdir(parents=True, exist_ok=True)
    n = 0
    for c in clips:
        for f in sorted((data / "test" / c).glob("*.jpg")):
            dst = out / f"{n:05d}.jpg"
            if not dst.exists():
                dst.symlink_to(f.resolve())
            n += 1
    return out


_DEFAULT_CONFIG = None


def _set_fused(fused: tuple[str, ...] | None, grid: dict | None = None, fields: dict | None = None) -> None:
    """Make the motion detector fuse ``fused`` (None: the shipped default's attributes), measure
    with ``grid``'s GridConfig fields changed (None: the shipped grid) and score with ``fields``'
    MotionConfig fields changed, for the baseline row."""
    import vlm_anomaly.motion.detector as md

    global _DEFAULT_CONFIG
    if _DEFAULT_CONFIG is None:
        _DEFAULT_CONFIG = md.motion_config

    def config(settings):
        cfg = _DEFAULT_CONFIG(settings)
        if fused is not None:
            cfg = replace(cfg, fused=fused)
        if grid:
            cfg = replace(cfg, grid=replace(cfg.grid, **grid))
        return replace(cfg, **(fields or {}))

    md.motion_config = _DEFAULT_CONFIG if fused is None and not grid and not fields else config


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data/ped2")
    ap.add_argument("--out", default="/tmp/motion_speed")
    ap.add_argument("--ocsvm", action="store_true")
    ap.add_argument("--json", default="")
    ap.add_argument("--only-ocsvm", action="store_true")
    ap.add_argument("--baseline", default="object,appearance,shape",
                    help="also time the motion detector fusing these attributes (the v5 default), in the same "
                         "run; 'default' = the shipped default's attributes; '' = no baseline")
    ap.add_argument("--baseline-grid", default="{}",
                    help='GridConfig fields of the baseline, as JSON: {"flow_finest_scale": 2} is v9\'s flow')
    ap.add_argument("--baseline-config", default="{}",
                    help='MotionConfig fields of the baseline, as JSON: {"scene_hold_s": 0, "scene_follow": false} '
                         "is v10's scene")
    args = ap.parse_args()
    data, out = Path(args.data), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    folder = concat_folder(data, ["01", "02", "03", "04"], out / "frames")
    clip = out / "ped2_30fps.mp4"
    if not clip.exists():
        reencode(folder, clip, codec="libx264", options={"crf": "23", "preset": "ultrafast"}, fps=30, repeat=3)
    hd = out / "ped2_720p_30fps.mp4"
    if not hd.exists():
        reencode(folder, hd, codec="libx264", options={"crf": "23", "preset": "ultrafast"}, fps=30, repeat=3,
                 scale=3.0)
    # 720x480: the pixel count of the issue's 640x480 target at Ped2's aspect
    sd = out / "ped2_480p_30fps.mp4"
    if not sd.exists():
        reencode(folder, sd, codec="libx264", options={"crf": "23", "preset": "ultrafast"}, fps=30, repeat=3,
                 scale=2.0)
    train = [str(data / "train" / c) for c in ("01", "02", "03", "04")]
    report: dict = {}
    runs = (["motion"] if not args.only_ocsvm else []) + (["baseline"] if args.baseline and not args.only_ocsvm
                                                          else []) + (["ocsvm"] if args.ocsvm else [])
    for run in runs:
        det = "motion" if run == "baseline" else run
        extra = {"encoder": "efficientnet"} if det == "ocsvm" else {}  # the old default, as it shipped
        s = load_settings(overrides={"detector": det, "interval_ms": 100, "home": str(out / "home"),
                                     "embedding_cache": False, **extra})
        pipe = Pipeline(s)
        if run == "baseline":
            _set_fused(None if args.baseline == "default" else tuple(args.baseline.split(",")),
                       json.loads(args.baseline_grid), json.loads(args.baseline_config))
        else:
            _set_fused(None)
        t0 = time.perf_counter()
        model = pipe.fit(train)
        rows: dict = {"fit_s": round(time.perf_counter() - t0, 2)}
        for name, p in (("360x240 H.264 30 fps", clip), ("720x480 H.264 30 fps", sd),
                        ("1280x720 H.264 30 fps", hd)):
            pipe.score(model, p, interval_ms=100, describe=False, progress=None)  # warm-up (ONNX export etc.)
            t0 = time.perf_counter()
            r = pipe.score(model, p, interval_ms=100)
            dt = time.perf_counter() - t0
            rows[f"score {name}, interval 100 ms"] = {"frames": len(r.raw_scores), "seconds": round(dt, 2),
                                                      "frames_per_s": round(len(r.raw_scores) / dt, 1),
                                                      "timing": r.timing}
            print(run, name, rows[f"score {name}, interval 100 ms"], flush=True)
        # live: every frame of the 30 fps clip, one at a time, through the stream scorer
        if det == "motion":
            # where the time goes, offline at interval 100 ms: decoding alone, then the scorer's stages
            from vlm_anomaly.motion.extract import iter_source

            for name, p in (("360x240", clip), ("1280x720", hd)):
                t0 = time.perf_counter()
                n = sum(1 for _ in iter_source(str(p), interval_ms=100))
                decode = time.perf_counter() - t0
                sc = model.detector.scorer(interval_ms=100, encoder=pipe.encoder_for(model))
                t0 = time.perf_counter()
                res = sc.score_detailed(str(p))
                total = time.perf_counter() - t0
                tm = sc.timing
                k = len(res.scores)
                crops = sc.embedder.timing if sc.embedder is not None else {"crop_embed_s": 0.0, "crops": 0}
                rows[f"stages ms/frame {name}"] = {
                    "decode+convert": round(1000 * decode / k, 2), "resize+blur": round(1000 * tm["prepare_s"] / k, 2),
                    "flow+features": round(1000 * tm["features_s"] / k, 2),
                    "crop embedding": round(1000 * crops["crop_embed_s"] / k, 2),
                    "crops per frame": round(crops["crops"] / k, 2),
                    "k-NN+explanations": round(1000 * (total - decode - tm["prepare_s"] - tm["features_s"]
                                                       - crops["crop_embed_s"]) / k, 2),
                    "total": round(1000 * total / k, 2), "decoded frames per sample": round(n / k, 2)}
                print(det, "stages", name, rows[f"stages ms/frame {name}"], flush=True)
            scorer = model.detector.scorer(encoder=pipe.encoder_for(model))
            frames = list(sample_frames(str(clip), interval_ms=0, with_previous=True, max_frames=300))
            t0 = time.perf_counter()
            n = sum(1 for _ in scorer.score_stream(frames))
            dt = time.perf_counter() - t0
            rows["live, every frame (decoded beforehand)"] = {"frames": n, "frames_per_s": round(n / dt, 1),
                                                              "stages_s": scorer.timing}
            print(det, "live", rows["live, every frame (decoded beforehand)"], flush=True)
            # memory: peak Python allocations scoring 1x and 4x the same length
            peaks = {}
            for reps in (1, 4):
                long_clip = out / f"long{reps}.mp4"
                if not long_clip.exists():
                    fr = concat_folder(data, ["01", "02", "03", "04"] * reps, out / f"frames{reps}")
                    reencode(fr, long_clip, codec="libx264", options={"crf": "23", "preset": "ultrafast"}, fps=10)
                tracemalloc.start()
                pipe.score(model, long_clip, interval_ms=100, describe=True)
                peaks[reps] = tracemalloc.get_traced_memory()[1] / 2**20
                tracemalloc.stop()
            rows["peak MiB (1x, 4x length)"] = [round(peaks[1], 1), round(peaks[4], 1)]
            print(det, "memory", rows["peak MiB (1x, 4x length)"], flush=True)
        base = f"motion (baseline: {args.baseline} {args.baseline_grid} {args.baseline_config})"
        report[base if run == "baseline" else det] = rows
    _set_fused(None)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=lambda o: float(np.asarray(o))))


if __name__ == "__main__":
    main()
