"""Decode videos and frame folders, keeping one frame every ``interval_ms`` (0 = every frame).

Why a generator: memory stays flat in video length, and frames that are not sampled are decoded
but never converted to RGB (the colour conversion costs more than skipping).
"""

from __future__ import annotations

import logging
import math
import os
import queue
import re
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TypeVar

import av
import cv2
import numpy as np

from ..errors import InvalidVideoError
from ..threads import decoder_threads
from .frames import Frame, VideoInfo

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".ts")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
DEFAULT_FOLDER_FPS = 25.0
FALLBACK_FPS = 30.0
# Sampling tolerance: a frame a hair before the grid point still counts (timestamps are rounded).
_EPS = 1e-3

av.logging.set_level(av.logging.PANIC)


def _natural_key(name: str) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def list_frame_files(folder: Path) -> list[Path]:
    """Image files of a frame folder, sorted numerically (``2.png`` before ``10.png``)."""
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
    return sorted(files, key=lambda p: _natural_key(p.name))


def is_stream_url(source: str) -> bool:
    return bool(re.match(r"^(rtsp|rtsps|rtmp|http|https|udp|tcp)://", str(source), re.I))


class _Grid:
    """Decides which timestamps are sampled: the first frame, then one per interval grid cell."""

    def __init__(self, interval_ms: int):
        self.interval = interval_ms / 1000.0
        self.next_t: float | None = None

    def take(self, t: float) -> bool:
        if self.interval <= 0:
            return True
        if self.next_t is None:  # first frame, always
            self.next_t = self.interval
            return True
        if t + _EPS >= self.next_t:
            self.next_t = (math.floor((t + _EPS) / self.interval) + 1) * self.interval
            return True
        return False


def _scaled_size(w: int, h: int, max_side: int) -> tuple[int, int]:
    if max_side <= 0 or max(w, h) <= max_side:
        return w, h
    s = max_side / max(w, h)
    return max(2, int(round(w * s)) // 2 * 2), max(2, int(round(h * s)) // 2 * 2)


def probe(source: str | Path, *, folder_fps: float = DEFAULT_FOLDER_FPS) -> VideoInfo:
    """Read a source's metadata without decoding it; raises :class:`InvalidVideoError`."""
    src = str(source)
    path = Path(src)
    if path.is_dir():
        files = list_frame_files(path)
        if not files:
            raise InvalidVideoError(f"{path}: folder holds no image frames ({', '.join(IMAGE_EXTENSIONS)})")
        first = _read_image(files[0])
        if first is None:
            raise InvalidVideoError(f"{files[0]}: unreadable image")
        return VideoInfo(src, "folder", first.shape[1], first.shape[0], folder_fps, len(files))
    if not is_stream_url(src):
        _check_file(path)
    try:
        with av.open(src, timeout=10.0) as container:
            if not container.streams.video:
                raise InvalidVideoError(f"{src}: no video stream")
            st = container.streams.video[0]
            fps = _stream_fps(st)
            count = st.frames or 0
            if not count and container.duration and fps:
                count = int(container.duration / av.time_base * fps)
            cc = st.codec_context
            return VideoInfo(src, "stream" if is_stream_url(src) else "file", cc.width, cc.height,
                             fps, count, cc.name or "")
    except InvalidVideoError:
        raise
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise InvalidVideoError(f"{src}: not a readable video ({_short(exc)})") from None


def _short(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return msg[:200]


def _check_file(path: Path) -> None:
    if not path.exists():
        raise InvalidVideoError(f"{path}: no such file or folder")
    if not path.is_file():
        raise InvalidVideoError(f"{path}: not a regular file")
    if path.stat().st_size == 0:
        raise InvalidVideoError(f"{path}: empty file")


def _stream_fps(st) -> float:
    for rate in (st.average_rate, st.guessed_rate, st.base_rate):
        try:
            if rate and float(rate) > 0 and math.isfinite(float(rate)) and float(rate) < 1000:
                return float(rate)
        except (ZeroDivisionError, TypeError):
            continue
    return 0.0


def _read_image(path: Path) -> np.ndarray | None:
    data = np.fromfile(str(path), dtype=np.uint8)
    if data.size == 0:
        return None
    img = cv2.imdecode(data, cv2.IMREAD_COLOR)  # grayscale and 16-bit are converted to 8-bit BGR
    if img is None or img.ndim != 3 or img.shape[0] == 0 or img.shape[1] == 0:
        return None
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def sample_frames(
    source: str | Path,
    *,
    interval_ms: int = 500,
    max_side: int = 0,
    max_frames: int = 0,
    folder_fps: float = DEFAULT_FOLDER_FPS,
) -> Iterator[Frame]:
    """Yield sampled frames of a video file, stream URL or frame folder.

    Args:
        source: path to a video file or a folder of image frames, or a stream URL.
        interval_ms: keep the first frame, then one frame per interval; 0 keeps every frame.
        max_side: downscale frames whose longer side exceeds this (0 = never).
        max_frames: stop after this many sampled frames (0 = no limit).
        folder_fps: frame rate assumed for frame folders (they carry no timing).

    Raises:
        InvalidVideoError: the source cannot be opened or yields no frame at all.

    Example:
        >>> frames = list(sample_frames("clip.mp4", interval_ms=500))  # doctest: +SKIP
        >>> frames[0].index, frames[0].timestamp
        (0, 0.0)
    """
    src = str(source)
    if Path(src).is_dir():
        it = _sample_folder(Path(src), interval_ms, max_side, folder_fps)
    else:
        it = _sample_container(src, interval_ms, max_side)
    n = 0
    for frame in it:
        yield frame
        n += 1
        if max_frames and n >= max_frames:
            log.info("%s: stopped at max_frames=%d", src, max_frames)
            return
    if n == 0:
        raise InvalidVideoError(f"{src}: no decodable frame")


def _sample_folder(folder: Path, interval_ms: int, max_side: int, fps: float) -> Iterator[Frame]:
    files = list_frame_files(folder)
    if not files:
        raise InvalidVideoError(f"{folder}: folder holds no image frames ({', '.join(IMAGE_EXTENSIONS)})")
    grid = _Grid(interval_ms)
    skipped = 0
    for i, f in enumerate(files):
        t = i / fps
        if not grid.take(t):
            continue
        img = _read_image(f)
        if img is None:
            skipped += 1
            log.warning("%s: unreadable image skipped", f)
            continue
        if max_side:
            w, h = _scaled_size(img.shape[1], img.shape[0], max_side)
            if (w, h) != (img.shape[1], img.shape[0]):
                img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
        yield Frame(i, t, img, str(folder))
    if skipped:
        log.warning("%s: %d unreadable image(s) skipped", folder, skipped)


def _sample_container(src: str, interval_ms: int, max_side: int) -> Iterator[Frame]:
    if not is_stream_url(src):
        _check_file(Path(src))
    try:
        container = av.open(src, timeout=10.0)
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise InvalidVideoError(f"{src}: not a readable video ({_short(exc)})") from None
    with container:
        if not container.streams.video:
            raise InvalidVideoError(f"{src}: no video stream")
        st = container.streams.video[0]
        st.thread_type = "AUTO"
        st.thread_count = decoder_threads()  # 1 on small machines: the cores are the encoder's
        fps = _stream_fps(st) or FALLBACK_FPS
        tb = float(st.time_base) if st.time_base else 0.0
        grid = _Grid(interval_ms)
        first_pts: int | None = None
        last_t = -1.0
        index = -1
        decoded_any = False
        try:
            for frame in container.decode(st):
                index += 1
                decoded_any = True
                if frame.pts is not None and tb > 0:
                    if first_pts is None:
                        first_pts = frame.pts
                    t = (frame.pts - first_pts) * tb
                else:
                    t = index / fps
                if t <= last_t:  # broken/duplicate timestamps: keep time monotonic
                    t = last_t + 1.0 / fps
                last_t = t
                if not grid.take(t):
                    continue
                w, h = _scaled_size(frame.width, frame.height, max_side)
                if (w, h) != (frame.width, frame.height):
                    img = frame.reformat(width=w, height=h, format="rgb24").to_ndarray()
                else:
                    img = frame.to_ndarray(format="rgb24")
                yield Frame(index, round(t, 6), img, src)
        except (av.FFmpegError, ValueError, MemoryError) as exc:
            if not decoded_any:
                raise InvalidVideoError(f"{src}: cannot decode ({_short(exc)})") from None
            log.warning("%s: decoding stopped after frame %d (%s); partial result", src, index, _short(exc))


T = TypeVar("T")
_END = object()


def prefetch(items: Iterable[T], *, maxsize: int = 64) -> Iterator[T]:
    """Run ``items`` in a background thread feeding a bounded queue.

    Why: decoding (FFmpeg releases the GIL) overlaps with encoding in the caller; the bound keeps
    memory flat. Exceptions are re-raised in the consumer, and closing the consumer stops the thread.
    """
    q: queue.Queue = queue.Queue(maxsize=maxsize)
    stop = threading.Event()

    def work() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            q.put(exc)

    t = threading.Thread(target=work, name="frame-prefetch", daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        # drain so a blocked producer can see the stop flag
        try:
            while True:
                q.get_nowait()
        except queue.Empty:
            pass


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Group an iterable into lists of ``size`` (the last one shorter)."""
    batch: list[T] = []
    for it in items:
        batch.append(it)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def content_hash(source: str | Path) -> str:
    """SHA-256 of a video file's bytes, or of a frame folder's names and bytes.

    Why content, not path: the embedding cache and the training summary must notice a changed file
    and recognise the same video uploaded under another name.
    """
    import hashlib

    p = Path(source)
    h = hashlib.sha256()
    if p.is_dir():
        for f in list_frame_files(p):
            h.update(f.name.encode() + b"\0")
            with open(f, "rb") as fh:
                h.update(hashlib.file_digest(fh, "sha256").digest())
    elif p.is_file():
        with open(p, "rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()
    else:
        h.update(str(source).encode())  # a stream has no stable content
    return h.hexdigest()


def source_kind(source: str | Path) -> str:
    s = str(source)
    if is_stream_url(s):
        return "stream"
    if s.isdigit():
        return "webcam"
    return "folder" if Path(s).is_dir() else "file"


__all__ = [
    "VIDEO_EXTENSIONS",
    "IMAGE_EXTENSIONS",
    "sample_frames",
    "probe",
    "prefetch",
    "batched",
    "content_hash",
    "list_frame_files",
    "source_kind",
    "is_stream_url",
]

os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
