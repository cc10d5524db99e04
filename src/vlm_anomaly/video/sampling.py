"""Sampling: one frame every ``interval_ms`` (0 = every frame) from a file, folder or stream,
and the helpers that feed sampled frames onward (background prefetch, batching).

Why a generator: memory stays flat in video length, and frames that are not sampled are decoded
but never converted to RGB (the colour conversion costs more than skipping).
"""

from __future__ import annotations

import logging
import math
import queue
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TypeVar

import numpy as np

from ..errors import InvalidVideoError, VlmAnomalyError
from ..redact import redact_text, redact_url
from .decode import (
    FALLBACK_FPS,
    TIME_EPS,
    BitDepth,
    check_duration,
    decode_frames,
    read_image,
    resize_to,
    scaled_size,
    short_error,
    stream_fps,
    to_rgb,
    warn_untimed,
)
from .frames import Frame, FrameBefore
from .sources import DEFAULT_FOLDER_FPS, frame_files, is_stream_url, open_video

log = logging.getLogger(__name__)

class SampleGrid:
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
        if t + TIME_EPS >= self.next_t:
            self.next_t = (math.floor((t + TIME_EPS) / self.interval) + 1) * self.interval
            return True
        return False


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
        with_previous: also decode an earlier source frame into each sample's ``Frame.previous``
            (the newest at least ``PREVIOUS_GAP_S`` older; None for the first frame), for optical flow.

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
        if limit and frame.timestamp > limit + TIME_EPS:
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


def _sample_folder(folder: Path, interval_ms: int, max_side: int, fps: float,
                   limit_s: float = 0, with_previous: bool = False) -> Iterator[Frame]:
    files = frame_files(folder)
    check_duration(str(folder), (len(files) - 1) / fps, limit_s)
    grid = SampleGrid(interval_ms)
    skipped = 0
    last: tuple[int, np.ndarray] | None = None  # the last image read, reused as a "previous" frame
    recent: FrameBefore[int] = FrameBefore()  # file numbers only: no image is read that is not used
    depth = BitDepth()  # one rule for the folder's 16-bit images
    for i, f in enumerate(files):
        t = i / fps
        got = recent.before(t)
        recent.add(t, i)
        if not grid.take(t):
            continue
        img = read_image(f, depth)
        if img is None:
            skipped += 1
            log.warning("%s: unreadable image skipped", f)
            continue
        img = resize_to(img, max_side)
        prev = None
        if with_previous and got is not None:
            j = got[1]
            if last is not None and last[0] == j:
                prev = last[1]
            else:
                raw = read_image(files[j], depth)
                prev = resize_to(raw, max_side) if raw is not None else None
        last = (i, img)
        yield Frame(i, t, img, str(folder), prev, got[0] if prev is not None else None)
    if skipped:
        log.warning("%s: %d unreadable image(s) skipped", folder, skipped)


def _sample_container(src: str, interval_ms: int, max_side: int, limit_s: float = 0,
                      with_previous: bool = False) -> Iterator[Frame]:
    container, st = open_video(src, max_duration_s=limit_s)
    shown = redact_url(src)
    with container:
        fps = stream_fps(st) or FALLBACK_FPS
        warn_untimed(container, st, shown)
        grid = SampleGrid(interval_ms)
        index = -1
        recent: FrameBefore | None = FrameBefore() if with_previous else None  # decoded, converted if needed
        try:
            for index, t, frame in decode_frames(container, st, fps=fps):
                take = grid.take(t)
                got = recent.before(t) if recent is not None and take else None
                if recent is not None:
                    recent.add(t, frame)
                if not take:
                    continue
                w, h = scaled_size(frame.width, frame.height, max_side)
                img = to_rgb(frame, w, h)
                prev = to_rgb(got[1], w, h) if got is not None else None
                yield Frame(index, round(t, 6), img, src, prev, round(got[0], 6) if got is not None else None)
        except VlmAnomalyError:
            raise
        except Exception as exc:  # noqa: BLE001 - a damaged stream: keep what decoded, say why
            if index < 0:  # not one frame decoded
                raise InvalidVideoError(f"{shown}: cannot decode ({short_error(exc)})") from None
            log.warning("%s: decoding stopped after frame %d (%s); partial result", shown, index,
                        redact_text(short_error(exc)))


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
