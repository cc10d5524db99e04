"""How many cameras one box watches: N cameras at 5 frames/s each (every 200 ms), played in real
time from 30 fps H.264 files of real footage (UCSD Ped2 test clips, upscaled to about 640x480), with
the shipped default detector. Reports sampled frames dropped, CPU used (cores) and peak memory, per
camera count, so "cameras held with 0 drops" can be read off; ``--mode`` picks how the cameras run
(the same run can compare two).

    PYTHONPATH=src python bench/house.py --data ../shared/data/ped2 --cameras 4 8 --seconds 30 \
        [--mode threads processes] [--json docs/performance-results/house.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import tempfile
import time
from pathlib import Path

from vlm_anomaly.cameras import Camera
from vlm_anomaly.config import load_settings
from vlm_anomaly.pipeline import Pipeline
from vlm_anomaly.synthetic import reencode

TEST_CLIPS = ["01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12"]


def peak_rss_mb() -> float:
    """Peak resident memory of this process and of its finished children (MiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + kids) / 1024


def cpu_s() -> float:
    r, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime + c.ru_utime + c.ru_stime


def render(data: Path, work: Path, seconds: float) -> tuple[list[Path], list[Path]]:
    """Training exports (train 01-04 as 10 fps MP4) and camera streams (test clips as 30 fps H.264,
    each 10 fps frame 3 times so the scene keeps its speed, looped to ``seconds``)."""
    train = [reencode(data / "train" / c, work / f"train{c}.mp4", codec="mpeg4", fps=10, qscale=3)
             for c in ("01", "02", "03", "04")]
    cams = []
    for c in TEST_CLIPS:
        folder = looped(sorted((data / "test" / c).glob("*.jpg")), work / f"cam{c}", int(seconds * 10))
        cams.append(reencode(folder, work / f"cam{c}.mp4", codec="libx264", fps=30, repeat=3,
                             scale=640 / 360, options={"crf": "23", "preset": "veryfast"}))
    return train, cams


def looped(frames: list[Path], out: Path, n: int) -> Path:
    """A frame folder of ``n`` frames: ``frames`` over and over (symlinks, no copies)."""
    out.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (out / f"{i:05d}.jpg").symlink_to(frames[i % len(frames)].resolve())
    return out


def run(settings, cams: list[Path], n: int, seconds: float, mode: str) -> dict:
    from vlm_anomaly.service import watch_cameras

    cameras = [Camera(f"cam{i + 1}", str(cams[i % len(cams)]), "house") for i in range(n)]
    s = settings.model_copy(update={"interval_ms": 200, "watch_processes": 1 if mode == "threads" else 0})
    c0, t0 = cpu_s(), time.monotonic()
    rows, _ = watch_cameras(s, cameras, realtime=True, max_seconds=seconds + 30)
    wall = time.monotonic() - t0
    cpu = cpu_s() - c0
    frames = sum(r["frames"] for r in rows)
    dropped = sum(r["dropped"] for r in rows)
    return {"mode": mode, "cameras": n, "wall_s": round(wall, 1), "frames_scored": frames,
            "frames_dropped": dropped, "dropped_pct": round(100 * dropped / max(1, frames + dropped), 2),
            "cores_used": round(cpu / wall, 2), "peak_rss_mb": round(peak_rss_mb(), 0),
            "per_camera": [{k: r[k] for k in ("camera", "frames", "dropped", "status")} for r in rows]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data/ped2"))
    ap.add_argument("--cameras", type=int, nargs="+", default=[8])
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--mode", nargs="+", default=["threads"], choices=["threads", "processes"])
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="house-"))
    try:
        train, cams = render(args.data, work, args.seconds)
        settings = load_settings(overrides={"home": work / "home", "events_dir": str(work / "events"),
                                            "events_db_url": f"sqlite:///{work}/events.db"})
        t0 = time.monotonic()
        Pipeline(settings).train("house", [str(p) for p in train])
        print(f"trained the default detector on 4 exports in {time.monotonic() - t0:.0f} s", flush=True)
        results = []
        for mode in args.mode:
            for n in args.cameras:
                r = run(settings, cams, n, args.seconds, mode)
                results.append(r)
                print(f"{mode:9s} {n} cameras x 5 frames/s: {r['frames_scored']} scored, {r['frames_dropped']} "
                      f"dropped ({r['dropped_pct']} %), {r['cores_used']} cores, peak RSS {r['peak_rss_mb']:.0f} MiB",
                      flush=True)
        if args.json:
            args.json.write_text(json.dumps({"command": "bench/house.py", "seconds": args.seconds,
                                             "results": results}, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
