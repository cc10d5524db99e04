"""Small images of sampled frames: thumbnails, JPEG bytes, and fetching chosen frames again.

Why: results keep embeddings, never frames (memory stays flat). When a person wants to *see* a
frame - in a gallery, a review table or an annotated video - it is decoded again, once, by index.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import av
import cv2
import numpy as np

from ..errors import InvalidVideoError
from .decode import FALLBACK_FPS, BitDepth, decode_frames, read_image, short_error, to_rgb
from .sources import list_frame_files, open_video


def thumbnail(image: np.ndarray, max_side: int = 320) -> np.ndarray:
    """Downscale an RGB frame so its longer side is at most ``max_side`` (never upscales)."""
    h, w = image.shape[:2]
    if max_side <= 0 or max(h, w) <= max_side:
        return image
    s = max_side / max(h, w)
    return cv2.resize(image, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


def encode_jpeg(image: np.ndarray, quality: int = 85) -> bytes:
    """RGB array -> JPEG bytes."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


def decode_image(data: bytes) -> np.ndarray:
    """JPEG/PNG bytes (a camera snapshot, an uploaded picture) -> RGB array."""
    arr = np.frombuffer(data, np.uint8)
    img = cv2.imdecode(arr, cv2.IMREAD_COLOR) if arr.size else None
    if img is None or img.ndim != 3:
        raise InvalidVideoError("the picture could not be decoded (not a JPEG/PNG image?)")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def iter_frames_at(source: str | Path, indices: Iterable[int], *, max_side: int = 0
                   ) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(index, RGB frame)`` for the wanted frame indices, in source order, in one pass.

    Indices count decoded frames from 0, as :func:`~vlm_anomaly.video.sample_frames` does; frames
    that are not wanted are decoded but never converted to RGB.
    """
    wanted = sorted({int(i) for i in indices if int(i) >= 0})
    if not wanted:
        return
    path = Path(source)
    if path.is_dir():
        files, depth = list_frame_files(path), BitDepth()
        for i in wanted:
            if i < len(files) and (img := read_image(files[i], depth)) is not None:
                yield i, thumbnail(img, max_side)
        return
    todo = set(wanted)
    last = wanted[-1]
    container, st = open_video(str(path))  # the checks and decoder set-up every reader shares
    try:
        with container:
            for index, _t, frame in decode_frames(container, st, fps=FALLBACK_FPS):
                if index in todo:
                    yield index, thumbnail(to_rgb(frame), max_side)
                if index >= last:
                    return
    except (av.FFmpegError, ValueError) as exc:
        raise InvalidVideoError(f"{path}: cannot decode ({short_error(exc)})") from None


def grab_frames(source: str | Path, indices: Iterable[int], *, max_side: int = 0) -> dict[int, np.ndarray]:
    """The wanted frames of a source as ``{index: RGB array}`` (missing indices are left out)."""
    return dict(iter_frames_at(source, indices, max_side=max_side))
