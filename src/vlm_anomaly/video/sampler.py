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
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TypeVar

import av
import cv2
import numpy as np

from ..errors import InvalidVideoError, VideoTooLongError, VlmAnomalyError
from ..redact import redact_text, redact_url
from ..threads import decoder_threads
from .frames import Frame, VideoInfo

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".ts")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
DEFAULT_FOLDER_FPS = 25.0
FALLBACK_FPS = 30.0
#: Frames larger than this are refused before decoding (8192 x 8192: covers 8K UHD and DCI 8K).
#: Why: one decoded frame of a forged 30000 x 30000 video or image would need gigabytes.
MAX_PIXELS = 8192 * 8192
# Sampling tolerance: a frame a hair before the grid point still counts (timestamps are rounded).
_EPS = 1e-3

# No Python log callback: with PANIC (or any level) PyAV routes FFmpeg *error* logs through a
# callback that takes the GIL from FFmpeg's decoder threads, which deadlocks when a damaged file
# makes a worker thread log while the main thread closes the decoder (found by the bad-media
# corpus: a zeroed H.264 payload hung the process). ``None`` is PyAV's safe, silent default.
av.logging.set_level(None)


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


def analysed_size(source: str | Path, max_side: int) -> tuple[int, int]:
    """(w, h) of the frames the library analyses from ``source`` (after the ``max_side`` downscale),
    the coordinates that boxes in explanations are given in."""
    info = probe(source)
    return _scaled_size(info.width, info.height, max_side)


def probe(source: str | Path, *, folder_fps: float = DEFAULT_FOLDER_FPS, max_duration_s: float = 0
          ) -> VideoInfo:
    """Read a source's metadata without decoding it; raises :class:`InvalidVideoError`.

    With ``max_duration_s``, a file or folder that declares a longer length raises
    :class:`VideoTooLongError` (the same check :func:`sample_frames` makes), so callers can refuse
    it before loading an encoder.
    """
    src = str(source)
    path = Path(src)
    if path.is_dir():
        files = list_frame_files(path)
        if not files:
            raise InvalidVideoError(f"{path}: folder holds no image frames ({', '.join(IMAGE_EXTENSIONS)})")
        first = next((img for img in map(_read_image, files) if img is not None), None)
        if first is None:
            raise InvalidVideoError(f"{path}: unreadable image frames ({files[0].name}, ...)")
        _check_duration(src, (len(files) - 1) / folder_fps, max_duration_s)
        return VideoInfo(src, "folder", first.shape[1], first.shape[0], folder_fps, len(files))
    if not is_stream_url(src):
        _check_file(path)
    try:
        with av.open(src, timeout=10.0) as container:
            st = _video_stream(container, src)
            fps = _stream_fps(st)
            count = st.frames or 0
            if not count and container.duration and fps:
                count = int(container.duration / av.time_base * fps)
            cc = st.codec_context
            _check_pixels(src, cc.width, cc.height)
            if not is_stream_url(src):
                _check_duration(src, _declared_duration(container, st), max_duration_s)
            return VideoInfo(src, "stream" if is_stream_url(src) else "file", cc.width, cc.height,
                             fps, count, cc.name or "")
    except VlmAnomalyError:
        raise
    except Exception as exc:  # noqa: BLE001 - hostile files make FFmpeg/PyAV raise many kinds
        raise InvalidVideoError(f"{src}: not a readable video ({_short(exc)})") from None


def _short(exc: BaseException) -> str:
    """One short line saying why: FFmpeg's reason without its errno and the repeated path."""
    if isinstance(exc, av.FFmpegError) and getattr(exc, "strerror", None):
        return str(exc.strerror)[:200]
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return msg[:200]


def _video_stream(container, src: str):
    """The first video stream, if FFmpeg has a decoder for it."""
    if not container.streams.video:
        raise InvalidVideoError(f"{src}: no video stream")
    st = container.streams.video[0]
    if st.codec_context is None:  # PyAV gives no codec context when no decoder exists
        raise InvalidVideoError(f"{src}: unsupported or unrecognised video codec")
    return st


def _check_pixels(src: str, width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise VideoTooLongError(
            f"{src}: frame size {width}x{height} is over the limit of {MAX_PIXELS // 1_000_000} "
            "megapixels"
        )


def _check_duration(src: str, duration_s: float, limit_s: float) -> None:
    """Refuse up front a source whose declared length is over ``limit_s`` (0 = no limit)."""
    if limit_s > 0 and duration_s > limit_s + _EPS:
        raise VideoTooLongError(
            f"{src}: {duration_s:.1f} s long, over the limit of {limit_s:g} s (max_duration_s)"
        )


def _declared_duration(container, st) -> float:
    if st.duration and st.time_base:
        return float(st.duration * st.time_base)
    if container.duration:
        return container.duration / av.time_base
    return 0.0


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


def _image_pixels(path: Path) -> int:
    """Pixel count from the image header alone (0 if unreadable), so bombs are never decoded."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                return im.width * im.height
    except Image.DecompressionBombError:
        return MAX_PIXELS + 1
    except (OSError, UnidentifiedImageError, ValueError):
        return 0


def _read_image(path: Path) -> np.ndarray | None:
    """RGB array of an image file, or None when it is unreadable or over :data:`MAX_PIXELS`."""
    if _image_pixels(path) > MAX_PIXELS:
        log.warning("%s: image over %d pixels refused", path, MAX_PIXELS)
        return None
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError:
        return None
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
    max_duration_s: float = 0,
    with_previous: bool = False,
) -> Iterator[Frame]:
    """Yield sampled frames of a video file, stream URL or frame folder.

    Args:
        source: path to a video file or a folder of image frames, or a stream URL.
        interval_ms: keep the first frame, then one frame per interval; 0 keeps every frame.
        max_side: downscale frames whose longer side exceeds this (0 = never).
        max_frames: stop after this many sampled frames (0 = no limit).
        folder_fps: frame rate assumed for frame folders (they carry no timing).
        max_duration_s: length limit for files and folders (0 = none; live streams are exempt).
            A source that declares a longer length is refused before decoding
            (:class:`VideoTooLongError`); one whose length only shows while decoding (no or wrong
            container duration) is truncated at the limit with a warning.
        with_previous: also decode the source frame just before each sampled one into
            ``Frame.previous`` (None for the first frame), for optical flow.

    Raises:
        InvalidVideoError: the source cannot be opened or yields no frame at all.
        VideoTooLongError: declared length or frame size over the limits.

    Example:
        >>> frames = list(sample_frames("clip.mp4", interval_ms=500))  # doctest: +SKIP
        >>> frames[0].index, frames[0].timestamp
        (0, 0.0)
    """
    src = str(source)
    limit = 0.0 if is_stream_url(src) else float(max_duration_s or 0)
    if Path(src).is_dir():
        it = _sample_folder(Path(src), interval_ms, max_side, folder_fps, limit, with_previous)
    else:
        it = _sample_container(src, interval_ms, max_side, limit, with_previous)
    n = 0
    for frame in it:
        if limit and frame.timestamp > limit + _EPS:
            log.warning("%s: truncated at max_duration_s=%g s", redact_url(src), limit)
            it.close()
            return
        yield frame
        n += 1
        if max_frames and n >= max_frames:
            log.info("%s: stopped at max_frames=%d", redact_url(src), max_frames)
            return
    if n == 0:
        raise InvalidVideoError(f"{src}: no decodable frame")


def _resize_to(img: np.ndarray, max_side: int) -> np.ndarray:
    if max_side:
        w, h = _scaled_size(img.shape[1], img.shape[0], max_side)
        if (w, h) != (img.shape[1], img.shape[0]):
            img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
    return img


def _sample_folder(folder: Path, interval_ms: int, max_side: int, fps: float,
                   limit_s: float = 0, with_previous: bool = False) -> Iterator[Frame]:
    files = list_frame_files(folder)
    if not files:
        raise InvalidVideoError(f"{folder}: folder holds no image frames ({', '.join(IMAGE_EXTENSIONS)})")
    _check_duration(str(folder), (len(files) - 1) / fps, limit_s)
    grid = _Grid(interval_ms)
    skipped = 0
    last: tuple[int, np.ndarray] | None = None  # the last image read, reused as a "previous" frame
    for i, f in enumerate(files):
        t = i / fps
        if not grid.take(t):
            continue
        img = _read_image(f)
        if img is None:
            skipped += 1
            log.warning("%s: unreadable image skipped", f)
            continue
        img = _resize_to(img, max_side)
        prev = None
        if with_previous and i > 0:
            if last is not None and last[0] == i - 1:
                prev = last[1]
            else:
                raw = _read_image(files[i - 1])
                prev = _resize_to(raw, max_side) if raw is not None else None
        last = (i, img)
        yield Frame(i, t, img, str(folder), prev, (i - 1) / fps if prev is not None else None)
    if skipped:
        log.warning("%s: %d unreadable image(s) skipped", folder, skipped)


def _sample_container(src: str, interval_ms: int, max_side: int, limit_s: float = 0,
                      with_previous: bool = False) -> Iterator[Frame]:
    if not is_stream_url(src):
        _check_file(Path(src))
    try:
        container = av.open(src, timeout=10.0)
    except Exception as exc:  # noqa: BLE001 - hostile files make FFmpeg/PyAV raise many kinds
        raise InvalidVideoError(f"{src}: not a readable video ({_short(exc)})") from None
    with container:
        st = _video_stream(container, src)
        _check_pixels(src, st.codec_context.width, st.codec_context.height)
        _check_duration(src, _declared_duration(container, st), limit_s)
        st.thread_type = "AUTO"
        st.thread_count = decoder_threads()  # 1 on small machines: the cores are the encoder's
        fps = _stream_fps(st) or FALLBACK_FPS
        tb = float(st.time_base) if st.time_base else 0.0
        grid = _Grid(interval_ms)
        first_pts: int | None = None
        last_t = -1.0
        index = -1
        decoded_any = False
        prev_frame = None  # the decoded frame before the current one (converted only if needed)
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
                before_t, last_t = last_t, t
                before, prev_frame = prev_frame, (frame if with_previous else None)
                if not grid.take(t):
                    continue
                w, h = _scaled_size(frame.width, frame.height, max_side)
                img = _to_rgb(frame, w, h)
                prev = _to_rgb(before, w, h) if before is not None else None
                yield Frame(index, round(t, 6), img, src, prev,
                            round(before_t, 6) if prev is not None else None)
        except VlmAnomalyError:
            raise
        except Exception as exc:  # noqa: BLE001 - a damaged stream: keep what decoded, say why
            if not decoded_any:
                raise InvalidVideoError(f"{src}: cannot decode ({_short(exc)})") from None
            log.warning("%s: decoding stopped after frame %d (%s); partial result", redact_url(src), index,
                        redact_text(_short(exc)))


def _to_rgb(frame, w: int, h: int) -> np.ndarray:
    if (w, h) != (frame.width, frame.height):
        return frame.reformat(width=w, height=h, format="rgb24").to_ndarray()
    return frame.to_ndarray(format="rgb24")


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
# cv2 read the variable at import; set the level directly so damaged images do not print
# "[ WARN:...] libpng ..." lines on stderr (the sampler logs its own one-line warning).
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
