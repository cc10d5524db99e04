"""Evidence files of an event: a JPEG snapshot of the worst frame and a short MP4 clip around it.

Both are written to a temp file in the target folder and renamed, so a crash never leaves a
half-written snapshot or clip where the events store points.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from ..atomic import atomic_write_bytes

CLIP_MAX_SIDE = 640


def write_snapshot(path: str | Path, image: np.ndarray, *, quality: int = 90) -> int:
    """Save an RGB frame as JPEG; returns the file size."""
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:
        raise OSError(f"cannot encode snapshot {path}")
    data = buf.tobytes()
    atomic_write_bytes(path, data)
    return len(data)


def _even_size(img: np.ndarray, max_side: int) -> tuple[int, int]:
    h, w = img.shape[:2]
    s = min(1.0, max_side / max(h, w))
    return max(2, int(w * s) // 2 * 2), max(2, int(h * s) // 2 * 2)


def write_clip(path: str | Path, frames: Sequence[np.ndarray], fps: float) -> int:
    """Encode RGB frames (any sizes; resized to the first one's) as H.264 MP4; returns the size."""
    if not frames:
        raise ValueError("a clip needs at least one frame")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    w, h = _even_size(frames[0], CLIP_MAX_SIDE)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".mp4", dir=path.parent)
    os.close(fd)
    try:
        with av.open(tmp, "w", format="mp4") as out:
            st = out.add_stream("libx264", rate=Fraction(max(fps, 0.5)).limit_denominator(1000))
            st.width, st.height, st.pix_fmt = w, h, "yuv420p"
            st.options = {"preset": "ultrafast", "crf": "28"}
            for img in frames:
                if img.shape[1] != w or img.shape[0] != h:
                    img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
                for pkt in st.encode(
                    av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
                ):
                    out.mux(pkt)
            for pkt in st.encode():
                out.mux(pkt)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path.stat().st_size
