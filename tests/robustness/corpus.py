"""A corpus of malformed and awkward media, generated on the fly with real encoders.

Each case names what a user would expect: ``"error"`` (a clear :class:`InvalidVideoError`),
``"frames"`` (a correct, possibly partial, result) or ``"either"`` (a truncated or damaged file:
whatever can be decoded, or a clear error - never a hang, crash or traceback).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from vlm_anomaly.synthetic import render_frame, write_frames, write_video


@dataclass(frozen=True)
class Case:
    name: str
    path: Path
    expect: str  # "error" | "frames" | "either"
    min_frames: int = 0
    max_frames: int | None = None


def encode(path: Path, frames: int, size: tuple[int, int], *, codec: str = "libx264",
           pix_fmt: str = "yuv420p", fps: int = 10, fmt: str | None = None,
           options: dict | None = None, container_options: dict | None = None,
           pts_ms: list[int] | None = None) -> Path:
    """Encode ``frames`` synthetic frames; ``pts_ms`` gives explicit (variable) timestamps."""
    w, h = size
    with av.open(str(path), "w", format=fmt, options=container_options or {}) as out:
        st = out.add_stream(codec, rate=fps)
        st.width, st.height, st.pix_fmt = w, h, pix_fmt
        if options:
            st.options = options
        if frames == 0:
            out.start_encoding()  # header only: a video stream without a single frame
        if pts_ms is not None:
            st.codec_context.time_base = Fraction(1, 1000)
            st.time_base = Fraction(1, 1000)
        for i in range(frames):
            img = render_frame(i / fps, max(w, 8), max(h, 8))
            img = np.ascontiguousarray(cv2.resize(img, (w, h)) if (w, h) != img.shape[1::-1] else img)
            vf = av.VideoFrame.from_ndarray(img, format="rgb24")
            if pts_ms is not None:
                vf.pts = pts_ms[i]
                vf.time_base = Fraction(1, 1000)
            for pkt in st.encode(vf):
                out.mux(pkt)
        for pkt in st.encode():
            out.mux(pkt)
    return path


def _x264(extra: dict | None = None) -> dict:
    return {"preset": "ultrafast", **(extra or {})}


def build_corpus(root: Path) -> list[Case]:
    """Write the corpus under ``root``; returns one :class:`Case` per input (well over 50)."""
    root.mkdir(parents=True, exist_ok=True)
    cases: list[Case] = []

    def add(name, path, expect, lo=0, hi=None):
        cases.append(Case(name, Path(path), expect, lo, hi))

    # -- empty, junk and non-video files ------------------------------------------------------
    (root / "empty.mp4").write_bytes(b"")
    add("empty file", root / "empty.mp4", "error")
    rng = np.random.default_rng(1234)
    for ext in (".mp4", ".avi", ".mov", ".mkv", ".webm", ".ts"):
        p = root / f"random{ext}"
        p.write_bytes(rng.integers(0, 256, 64 * 1024, dtype=np.uint8).tobytes())
        add(f"random bytes {ext}", p, "error")
    (root / "text.mp4").write_text("this is not a video\n" * 200)
    add("text file .mp4", root / "text.mp4", "error")
    (root / "readme.avi").write_text("hello")
    add("tiny text file .avi", root / "readme.avi", "error")
    (root / "zeros.mkv").write_bytes(bytes(256 * 1024))
    add("all-zero bytes .mkv", root / "zeros.mkv", "error")
    img = render_frame(0.0, 160, 120)
    cv2.imwrite(str(root / "still.png"), img)
    os.replace(root / "still.png", root / "png_renamed.mp4")
    # FFmpeg may sniff the PNG and decode it as one frame: a correct result, or a clear error.
    add("PNG renamed .mp4", root / "png_renamed.mp4", "either", 0, 1)
    cv2.imwrite(str(root / "still.jpg"), img)
    os.replace(root / "still.jpg", root / "jpg_renamed.mov")
    add("JPEG renamed .mov", root / "jpg_renamed.mov", "either", 0, 1)
    add("missing file", root / "does-not-exist.mp4", "error")
    (root / "folder.mp4").mkdir()
    add("folder named .mp4 without images", root / "folder.mp4", "error")
    os.symlink(root / "gone.mp4", root / "dangling.mp4")
    add("dangling symlink", root / "dangling.mp4", "error")
    os.mkfifo(root / "fifo.mp4")
    add("FIFO named .mp4 (would block a reader)", root / "fifo.mp4", "error")
    add("character device", Path("/dev/zero"), "error")

    # -- audio only, zero and one frame ----------------------------------------------------------
    p = root / "audio_only.mp4"
    with av.open(str(p), "w") as out:
        st = out.add_stream("aac", rate=16000)
        n = 0
        for _ in range(20):
            fr = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            fr.sample_rate, fr.pts = 16000, n
            n += 1024
            for pkt in st.encode(fr):
                out.mux(pkt)
        for pkt in st.encode():
            out.mux(pkt)
    add("audio-only mp4", p, "error")
    for ext in (".mp4", ".mkv", ".mov"):
        add(f"zero-frame video {ext}", encode(root / f"zero_frames{ext}", 0, (64, 48),
                                              options=_x264()), "error")
    add("zero-frame video .avi", encode(root / "zero_frames.avi", 0, (64, 48), codec="mpeg4"), "error")
    add("one-frame video", encode(root / "one_frame.mp4", 1, (64, 48), options=_x264()), "frames", 1, 1)

    # -- no container timing: raw elementary streams ----------------------------------------------
    add("raw H.264 stream (no fps)", encode(root / "raw.h264", 12, (64, 48), fmt="h264",
                                           options=_x264()), "frames", 1, 12)
    add("raw MJPEG stream (no fps)", encode(root / "raw.mjpeg", 12, (64, 48), codec="mjpeg",
                                           pix_fmt="yuvj420p", fmt="mjpeg"), "frames", 1, 12)

    # -- sizes -------------------------------------------------------------------------------------
    add("8K video", encode(root / "8k.mp4", 2, (7680, 4320), options=_x264()), "frames", 1, 2)
    add("1x1 video", encode(root / "1x1.mkv", 4, (1, 1), codec="ffv1", pix_fmt="yuv444p"), "frames", 1, 4)
    add("3x5 video", encode(root / "3x5.mp4", 4, (3, 5), pix_fmt="yuv444p", options=_x264()), "frames", 1, 4)
    add("odd 321x241 video", encode(root / "odd.avi", 4, (321, 241), codec="ffv1",
                                    pix_fmt="yuv420p"), "frames", 1, 4)

    # -- unsupported codec: a valid file whose codec tag is unknown to FFmpeg ------------------------
    good = write_video(root / "good.mp4", seconds=2, fps=10, size=(64, 48))
    data = good.read_bytes()
    assert b"avc1" in data
    (root / "unknown_codec.mp4").write_bytes(data.replace(b"avc1", b"zzz9"))
    add("unsupported codec tag", root / "unknown_codec.mp4", "error")
    avi = write_video(root / "good.avi", seconds=2, fps=10, size=(64, 48))
    adata = avi.read_bytes()
    (root / "unknown_codec.avi").write_bytes(adata.replace(b"FMP4", b"QQQQ").replace(b"fmp4", b"qqqq"))
    add("unsupported codec fourcc (avi)", root / "unknown_codec.avi", "either")

    # -- truncation at many offsets, moov at the end (plain) and at the start (faststart) ------------
    fast = encode(root / "fast.mp4", 20, (64, 48), options=_x264(),
                  container_options={"movflags": "faststart"})
    for label, src in (("mp4", good), ("faststart mp4", fast), ("avi", avi)):
        blob = src.read_bytes()
        for frac in (0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.97):
            cut = max(1, int(len(blob) * frac))
            p = root / f"trunc_{label.replace(' ', '_')}_{int(frac * 100):02d}{src.suffix}"
            p.write_bytes(blob[:cut])
            add(f"truncated {label} at {frac:.0%}", p, "either")
    # damaged payload: the index is intact but the frame data is zeroed
    blob = bytearray(good.read_bytes())
    mdat = blob.find(b"mdat")
    blob[mdat + 64 : mdat + 64 + 2000] = bytes(2000)
    (root / "zeroed_payload.mp4").write_bytes(bytes(blob))
    add("zeroed frame data", root / "zeroed_payload.mp4", "either")

    # -- variable frame rate: explicit irregular timestamps ----------------------------------------
    vfr_pts = [0, 40, 80, 500, 520, 1400, 1410, 1420, 2600, 2700]
    add("variable frame rate", encode(root / "vfr.mkv", len(vfr_pts), (64, 48), options=_x264(),
                                      pts_ms=vfr_pts), "frames", 1, 10)

    # -- frame folders -------------------------------------------------------------------------------
    mixed = write_frames(root / "mixed_frames", n=6, size=(48, 32))
    (mixed / "6.png").write_bytes(b"")  # empty image
    (mixed / "7.jpg").write_text("not a jpeg")  # text with an image extension
    (mixed / "8.png").write_bytes((mixed / "0.png").read_bytes()[:60])  # truncated PNG
    (mixed / "notes.txt").write_text("ignored")
    (mixed / "sub").mkdir()
    cv2.imwrite(str(mixed / "9.bmp"), cv2.cvtColor(render_frame(0, 20, 10), cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(mixed / "10.tif"), np.full((32, 48), 7, np.uint16))  # 16-bit grayscale
    add("folder with mixed/unreadable images", mixed, "frames", 8, 8)
    bad = root / "bad_frames"
    bad.mkdir()
    for i in range(3):
        (bad / f"{i}.png").write_text("junk")
    add("folder of unreadable images only", bad, "error")
    (root / "empty_folder").mkdir()
    add("empty folder", root / "empty_folder", "error")
    return cases
