"""What cheaper decoding of a live camera saves, and whether it keeps the sampled frames (and so the
scores) the same: decoder CPU per second of video, per option, on camera-like streams rendered from
real footage (UCSD Ped2 test clips at 30 fps, every frame different), sampled every 200 ms as the
default ``watch`` of the house bench does.

Options measured (each against the live reader's settings before this change, FFmpeg's automatic
thread counts for the decoder and the RGB conversion, in the same run):

* ``decoder 1 thread``: one decoder thread per camera;
* ``decoder + RGB conversion 1 thread``: and one scaler thread for each sampled frame's conversion
  (``decoder_threads()`` on a small machine: what the live reader does now);
* ``skip NONREF``: FFmpeg skips frames no other frame refers to (B-frames); cameras rarely send any;
* ``skip NONKEY``: keyframes only (a few a minute on a camera: far below 5 frames/s);
* ``lowres 1`` (MJPEG): decode at half size in the DCT;
* ``RGB at half size in the scaler``: downscale while converting (FFmpeg's default bilinear);
* ``detect stream``: the same footage as a 320x240 sub-stream.

"same frames" says whether the sampled frames (200 ms grid, with the frame before each, as motion
gets them) are pixel-identical to the baseline's.

    PYTHONPATH=src python bench/live_decode.py --data ../shared/data/ped2 \
        [--json docs/performance-results/live_decode.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import tempfile
from pathlib import Path

import av
import numpy as np

from vlm_anomaly.synthetic import reencode
from vlm_anomaly.video.sampling import SampleGrid

CLIPS = ("01", "04")


def thread_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def decode(path: Path, *, threads: int | None = None, convert_threads: int = 0, skip: str | None = None,
           options: dict | None = None, half: bool = False,
           interval_ms: int = 200) -> tuple[float, float, list[np.ndarray]]:
    """(CPU seconds, media seconds, sampled images with the frame before each) of one pass."""
    grid = SampleGrid(interval_ms)
    kept: list[np.ndarray] = []
    with av.open(str(path)) as c:
        st = c.streams.video[0]
        st.thread_type = "AUTO"
        if threads is not None:
            st.thread_count = threads
        if skip:
            st.codec_context.skip_frame = skip
        if options:
            st.codec_context.options = dict(options)
        tb = float(st.time_base)
        c0 = thread_cpu()
        prev = None
        length = c.duration / av.time_base if c.duration else 0.0
        for f in c.decode(st):
            t = f.pts * tb
            if grid.take(t):
                size = {"width": f.width // 2, "height": f.height // 2} if half else {}
                kept.append(f.to_ndarray(format="rgb24", threads=convert_threads, **size))
                if prev is not None:
                    kept.append(prev.to_ndarray(format="rgb24", threads=convert_threads, **size))
            prev = f
        return thread_cpu() - c0, length, kept


def render(data: Path, work: Path) -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {}
    kinds = {
        "h264 640x426 (B-frames, x264 default)": dict(codec="libx264", scale=640 / 360,
                                                      options={"crf": "23", "preset": "veryfast"}),
        "h264 640x426 (no B-frames, as cameras)": dict(codec="libx264", scale=640 / 360,
                                                       options={"crf": "23", "preset": "veryfast", "bf": "0"}),
        "h264 1280x852 (no B-frames)": dict(codec="libx264", scale=1280 / 360,
                                            options={"crf": "23", "preset": "veryfast", "bf": "0"}),
        "mjpeg 640x426": dict(codec="mjpeg", scale=640 / 360, qscale=5),
        "h264 320x214 detect stream (no B-frames)": dict(codec="libx264", scale=320 / 360,
                                                         options={"crf": "23", "preset": "veryfast", "bf": "0"}),
    }
    for i, (name, kw) in enumerate(kinds.items()):
        out[name] = [reencode(data / "test" / c, work / f"k{i}_{c}.{'avi' if 'mjpeg' in name else 'mp4'}",
                              fps=30, **kw) for c in CLIPS]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data/ped2"))
    ap.add_argument("--repeats", type=int, default=3, help="passes per option; the least CPU counts")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="live-decode-"))
    rows = []
    try:
        streams = render(args.data, work)
        for name, paths in streams.items():
            one = {"threads": 1, "convert_threads": 1}
            options: dict[str, dict] = {"before (FFmpeg's thread counts)": {}, "decoder 1 thread": {"threads": 1},
                                        "decoder + RGB conversion 1 thread": one,
                                        "skip NONREF": {**one, "skip": "NONREF"},
                                        "skip NONKEY": {**one, "skip": "NONKEY"},
                                        "RGB at half size in the scaler": {**one, "half": True}}
            if name.startswith("mjpeg"):
                options["lowres 1"] = {**one, "options": {"lowres": "1"}}
            base_cpu = None
            base_frames: list[list[np.ndarray]] = []
            for label, kw in options.items():
                cpu = media = 0.0
                same = True
                for j, p in enumerate(paths):
                    best = None
                    for _ in range(args.repeats):
                        c, m, kept = decode(p, **kw)
                        best = c if best is None else min(best, c)
                    cpu += best
                    media += m
                    if base_cpu is None:
                        base_frames.append(kept)
                    else:
                        ref = base_frames[j]
                        same = same and len(ref) == len(kept) and all(
                            a.shape == b.shape and np.array_equal(a, b) for a, b in zip(ref, kept))
                if base_cpu is None:
                    base_cpu = cpu
                row = {"stream": name, "option": label, "cpu_ms_per_video_s": round(1000 * cpu / media, 1),
                       "vs_before": round(cpu / base_cpu, 2), "same_frames": same}
                rows.append(row)
                print(f"{name:42s} {label:36s} {row['cpu_ms_per_video_s']:7.1f} ms CPU / s of video "
                      f"({row['vs_before']:.2f}x)  same frames: {same}", flush=True)
        if args.json:
            args.json.write_text(json.dumps({"command": "bench/live_decode.py", "clips": CLIPS,
                                             "repeats": args.repeats, "results": rows}, indent=2) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
