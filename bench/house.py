"""How many cameras one box watches: N cameras at 5 frames/s each (every 200 ms), played in real
time from 30 fps H.264 files of real footage (UCSD Ped2 test clips, upscaled to about 640x480), with
the shipped default detector. Reports sampled frames dropped, CPU used (cores) and memory, in all
and per camera, per camera count, so "cameras held with 0 drops" can be read off; ``--mode`` picks
how the cameras run and ``--streams`` which stream is read (the same run compares them):

* ``main``: each camera's 640x426 stream (``source``), as a camera without a sub-stream is watched;
* ``detect``: the same cameras given a 320x214 sub-stream of the same footage (``detect_source``
  in the settings' ``cameras``), which is then the only stream read.

Memory is the peak, over the run, of the summed proportional set size (PSS: shared pages split
between the processes sharing them) of this process and its worker processes.

    PYTHONPATH=src python bench/house.py --data ../shared/data/ped2 --cameras 4 8 --seconds 30 \
        [--mode threads processes] [--streams main detect] [--json docs/performance-results/house.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

from vlm_anomaly.cameras import resolve_cameras
from vlm_anomaly.config import CameraSpec, load_settings
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


def render(data: Path, work: Path, seconds: float) -> tuple[list[Path], list[Path], list[Path]]:
    """Training exports (train 01-04 as 10 fps MP4) and camera streams (test clips as 30 fps H.264,
    each 10 fps frame 3 times so the scene keeps its speed, looped to ``seconds``): main streams at
    640x426 and sub-streams at 320x214."""
    train = [reencode(data / "train" / c, work / f"train{c}.mp4", codec="mpeg4", fps=10, qscale=3)
             for c in ("01", "02", "03", "04")]
    cams, subs = [], []
    for c in TEST_CLIPS:
        folder = looped(sorted((data / "test" / c).glob("*.jpg")), work / f"cam{c}", int(seconds * 10))
        for scale, out, name in ((640 / 360, cams, "cam"), (320 / 360, subs, "sub")):
            out.append(reencode(folder, work / f"{name}{c}.mp4", codec="libx264", fps=30, repeat=3,
                                scale=scale, options={"crf": "23", "preset": "veryfast"}))
    return train, cams, subs


def looped(frames: list[Path], out: Path, n: int) -> Path:
    """A frame folder of ``n`` frames: ``frames`` over and over (symlinks, no copies)."""
    out.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (out / f"{i:05d}.jpg").symlink_to(frames[i % len(frames)].resolve())
    return out


def tree_pss_mb() -> float:
    """Summed PSS of this process and its descendants (MiB), from /proc."""
    parents: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                parents[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, grew = {os.getpid()}, True
    while grew:
        kids = {p for p, pp in parents.items() if pp in tree} - tree
        tree |= kids
        grew = bool(kids)
    kb = 0
    for pid in tree:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    kb += int(line.split()[1])
        except (OSError, ValueError):
            continue
    return kb / 1024


def run(settings, cams: list[Path], subs: list[Path], n: int, seconds: float, mode: str, streams: str) -> dict:
    from vlm_anomaly.service import watch_cameras

    specs = [{"name": f"cam{i + 1}", "model": "house", "source": str(cams[i % len(cams)])} for i in range(n)]
    if streams == "detect":
        for i, spec in enumerate(specs):
            spec["detect_source"] = str(subs[i % len(subs)])
    s = settings.model_copy(update={"interval_ms": 200, "watch_processes": 1 if mode == "threads" else 0,
                                    "cameras": [CameraSpec(**spec) for spec in specs],
                                    "max_watchers": max(n, settings.max_watchers)})
    cameras, _ = resolve_cameras(s)
    peak = [0.0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.5):
            peak[0] = max(peak[0], tree_pss_mb())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    c0, t0 = cpu_s(), time.monotonic()
    rows, _ = watch_cameras(s, cameras, realtime=True, max_seconds=seconds + 30)
    wall = time.monotonic() - t0
    cpu = cpu_s() - c0
    done.set()
    sampler.join()
    frames = sum(r["frames"] for r in rows)
    dropped = sum(r["dropped"] for r in rows)
    cores = cpu / wall
    return {"mode": mode, "streams": streams, "cameras": n, "wall_s": round(wall, 1), "frames_scored": frames,
            "frames_dropped": dropped, "dropped_pct": round(100 * dropped / max(1, frames + dropped), 2),
            "cores_used": round(cores, 2), "cores_per_camera": round(cores / n, 3),
            # CPU seconds a camera costs per second of video (workers' start included), whatever the wall time
            "cpu_s_per_camera_s": round(cpu / (n * seconds), 3),
            # what one scored sample cost (decoding the frames between samples and the start included)
            "cpu_ms_per_scored_frame": round(1000 * cpu / max(1, frames), 1),
            "load_avg_1min_after": round(os.getloadavg()[0], 1),
            "pss_mb": round(peak[0]), "pss_mb_per_camera": round(peak[0] / n),
            "peak_rss_mb": round(peak_rss_mb(), 0),
            "per_camera": [{k: r[k] for k in ("camera", "source", "frames", "dropped", "status")} for r in rows]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data/ped2"))
    ap.add_argument("--cameras", type=int, nargs="+", default=[8])
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--mode", nargs="+", default=["processes"], choices=["threads", "processes"])
    ap.add_argument("--streams", nargs="+", default=["main"], choices=["main", "detect"])
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="house-"))
    try:
        train, cams, subs = render(args.data, work, args.seconds)
        settings = load_settings(overrides={"home": work / "home", "events_dir": str(work / "events"),
                                            "events_db_url": f"sqlite:///{work}/events.db"})
        t0 = time.monotonic()
        Pipeline(settings).train("house", [str(p) for p in train])
        print(f"trained the default detector on 4 exports in {time.monotonic() - t0:.0f} s", flush=True)
        results = []
        for mode in args.mode:  # the columns of one camera count back to back: under the same load
            for n in args.cameras:
                for streams in args.streams:
                    r = run(settings, cams, subs, n, args.seconds, mode, streams)
                    results.append(r)
                    print(f"{mode:9s} {streams:6s} {n:2d} cameras x 5 frames/s: {r['frames_scored']} scored, "
                          f"{r['frames_dropped']} dropped ({r['dropped_pct']} %), {r['cores_used']} cores, "
                          f"{r['cpu_s_per_camera_s']} CPU s a camera-second "
                          f"({r['cpu_ms_per_scored_frame']} ms a scored frame), PSS {r['pss_mb']} MiB "
                          f"({r['pss_mb_per_camera']} a camera)", flush=True)
        if args.json:
            args.json.write_text(json.dumps({"command": "bench/house.py " + " ".join(sys.argv[1:]),
                                             "seconds": args.seconds, "cpus": os.cpu_count(),
                                             "results": results}, indent=2) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
