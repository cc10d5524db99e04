"""Evidence files of an event: a JPEG snapshot of the worst frame and a short MP4 clip around it.

Both are written to a temp file in the target folder and renamed, so a crash never leaves a
half-written snapshot or clip where the events store points.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from ..atomic import atomic_write_bytes
from ..video.render import AnnotatedVideoWriter

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


def write_clip(path: str | Path, frames: Sequence[np.ndarray], fps: float) -> int:
    """Encode RGB frames (any sizes; resized to the first one's) as H.264 MP4; returns the size.

    The video writer of annotated results does the encoding; here it is written to a temp file
    in the target folder and renamed once complete."""
    if not frames:
        raise ValueError("a clip needs at least one frame")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".mp4", dir=path.parent)
    os.close(fd)
    try:
        with AnnotatedVideoWriter(tmp, fps=fps, max_side=CLIP_MAX_SIDE, preset="ultrafast", crf=28) as out:
            for img in frames:
                out.write_raw(img)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path.stat().st_size
