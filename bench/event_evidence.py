"""Benchmark: what writing an event's clip as it grows costs against writing it once at the end.

The growing clip (``events.media.ClipWriter``: fragmented MP4, a fragment per frame, x264
``zerolatency``, flushed per packet, remuxed into a plain MP4 at close) against the way clips were
written before (the same annotated-video writer, ``ultrafast``/crf 28, all frames at the event's
end into a temp file then renamed), on the same frames, in the same run. Also the atomic snapshot.

    python bench/event_evidence.py                 # 120 frames of 640x480, 3 repeats (about 30 s)
    python bench/event_evidence.py --frames 40 --repeats 1

Prints a table and writes JSON (--out, default bench/event_evidence.json).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "src") not in sys.path:
    sys.path.insert(0, str(REPO / "src"))

from vlm_anomaly.events.media import CLIP_MAX_SIDE, ClipWriter, write_snapshot  # noqa: E402
from vlm_anomaly.synthetic import render_frame  # noqa: E402
from vlm_anomaly.video.render import AnnotatedVideoWriter  # noqa: E402


def at_end(path: Path, frames, fps: float) -> None:
    """The former ``write_clip``: every frame at the end, temp file, rename."""
    tmp = path.with_name(f".{path.name}.tmp.mp4")
    with AnnotatedVideoWriter(tmp, fps=fps, max_side=CLIP_MAX_SIDE, preset="ultrafast", crf=28) as out:
        for img in frames:
            out.write_raw(img)
    os.replace(tmp, path)


def growing(path: Path, frames, fps: float) -> None:
    clip = ClipWriter(path, fps)
    for img in frames:
        clip.write(img)
    clip.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(REPO / "bench" / "event_evidence.json"))
    a = ap.parse_args()
    frames = [render_frame(i / 2, 640, 480, anomaly=True, seed=0) for i in range(a.frames)]
    best: dict[str, float] = {}
    sizes: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as d:
        for _ in range(a.repeats):
            for name, fn in (("at_end", at_end), ("growing", growing)):
                p = Path(d) / f"{name}.mp4"
                t0 = time.perf_counter()
                fn(p, frames, 2.0)
                best[name] = min(best.get(name, float("inf")), time.perf_counter() - t0)
                sizes[name] = p.stat().st_size
            t0 = time.perf_counter()
            for img in frames[:20]:
                write_snapshot(Path(d) / "snap.jpg", img)
            best["snapshot"] = min(best.get("snapshot", float("inf")), (time.perf_counter() - t0) / 20)
    res = {
        "frames": a.frames, "size": "640x480", "repeats": a.repeats,
        "ms_per_frame_at_end": round(1000 * best["at_end"] / a.frames, 2),
        "ms_per_frame_growing": round(1000 * best["growing"] / a.frames, 2),
        "ratio_growing_vs_at_end": round(best["growing"] / best["at_end"], 2),
        "bytes_at_end": sizes["at_end"], "bytes_growing": sizes["growing"],
        "ms_per_snapshot": round(1000 * best["snapshot"], 2),
    }
    for k, v in res.items():
        print(f"{k:28s} {v}")
    Path(a.out).write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
