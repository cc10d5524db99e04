"""Live reading: sampled frames from a source that may stall, drop or end, reconnecting with
back-off (:class:`LiveSource`), or frames pushed by a callback such as a browser camera (:class:`PushSource`).

Why a watchdog: a camera that stalls, drops or ends must not silently freeze monitoring. Each
connection is read by its own thread into a small queue; when no frame arrives for
``stall_timeout_s`` (or the stream errors or ends) the source reconnects with exponential back-off
and yields a :class:`Gap` saying how much time was missed, instead of silently skipping it.

Time: files and folders use their media time; streams and webcams use seconds since the source
was started (wall clock), so time keeps running across reconnections and gaps are measurable.
Opening a connection (the readers) lives in :mod:`.sources`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from ..config import SamplingSettings
from ..errors import InvalidVideoError, VideoTooLongError, VlmAnomalyError
from ..redact import redact_text, redact_url
from ..values import Gap
from .decode import HOLE_REASON, FrameSpacing, short_end, short_error
from .frames import Frame, FrameBefore
from .sampling import SampleGrid
from .sources import DEFAULT_FOLDER_FPS, Reader, open_reader, source_kind

log = logging.getLogger(__name__)


_END = object()


@dataclass
class _Failed:
    error: BaseException


@dataclass
class _Hole:
    """Frames missing from a file: its timestamps jump from ``start`` to ``end``, or it ends short."""

    start: float
    end: float
    reason: str = HOLE_REASON


def _drop_oldest(q: queue.Queue) -> int:
    """Make room in a full queue by dropping its oldest item; 1 if one was dropped."""
    try:
        q.get_nowait()
    except queue.Empty:
        return 0
    return 1


class _Stoppable:
    _stop: threading.Event

    def stop(self) -> None:
        """Ask the iteration to end (from any thread); it returns within ~0.1 s."""
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()


class LiveSource(_Stoppable):
    """Iterate sampled :class:`Frame` objects (and :class:`Gap` reports) from a live source.

    Args:
        source: webcam index ("0"), stream URL, video file or frame folder.
        interval_ms: keep one frame per interval (0 = every frame).
        realtime: play files and folders at their own rate (True) or as fast as possible (False);
            streams and webcams are always real time.
        stall_timeout_s: no frame for this long means the source stalled.
        max_reconnects: give up after this many failed reconnections in a row (None = never).

    Example:
        >>> for item in LiveSource("rtsp://cam/1", interval_ms=500):  # doctest: +SKIP
        ...     print(item)
    """

    def __init__(self, source: str | int, *, interval_ms: int = 500, realtime: bool = True,
                 stall_timeout_s: float = 5.0, backoff_initial_s: float = 0.5, backoff_max_s: float = 30.0,
                 max_reconnects: int | None = None, max_side: int = 0, folder_fps: float = DEFAULT_FOLDER_FPS,
                 queue_size: int = 4, reader_factory: Callable[[], Reader] | None = None, with_previous: bool = False,
                 on_drop: Callable[[float, str], None] | None = None):
        self.source = str(source)
        # called (in the consuming thread) the moment a connection is lost, with the source time of the
        # last frame and the reason, so that a consumer can say "offline" before any reconnection
        self.on_drop = on_drop
        #: what logs, gaps and frames call the source: credentials masked
        self.label = redact_url(self.source)
        self.with_previous = with_previous  # also hand over an earlier frame with each sample (motion)
        self.kind = source_kind(self.source)
        self.finite = self.kind in ("file", "folder")
        self.interval_ms = interval_ms
        self.realtime = realtime or not self.finite
        self.stall_timeout_s = stall_timeout_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.max_reconnects = max_reconnects
        self.queue_size = queue_size
        self._factory = reader_factory or (
            lambda: open_reader(self.source, max_side=max_side, folder_fps=folder_fps,
                                read_timeout_s=max(stall_timeout_s * 2, 2.0))
        )
        self._stop = threading.Event()
        self.gaps: list[Gap] = []
        self.dropped = 0  # sampled frames dropped because the consumer was slower than real time
        # the watchdog's verdict, for availability reports (Home Assistant): frames are flowing now
        self.online = False

    @classmethod
    def from_settings(cls, source: str | int, sampling: SamplingSettings, *, interval_ms: int | None = None,
                      **kwargs) -> LiveSource:
        """A source read as the ``sampling`` section (``settings.sampling``) says: its interval
        (unless ``interval_ms`` is given, e.g. the model's own), frame size and stall/reconnect timings."""
        return cls(source, interval_ms=sampling.interval_ms if interval_ms is None else interval_ms,
                   stall_timeout_s=sampling.stream_stall_timeout_s, backoff_initial_s=sampling.stream_backoff_initial_s,
                   backoff_max_s=sampling.stream_backoff_max_s, max_side=sampling.max_side, **kwargs)

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before reconnection number ``attempt`` (1, 2, ...)."""
        return min(self.backoff_max_s, self.backoff_initial_s * 2 ** max(0, attempt - 1))

    # -- reader thread ---------------------------------------------------------------------
    def _pump(self, reader: Reader, q: queue.Queue, halt: threading.Event, grid: SampleGrid, t0: float,
              counter: list[int]) -> None:
        wall0: float | None = None
        media0 = 0.0
        prev_t: float | None = None
        spacing = FrameSpacing()  # of a file's frames: a step far past it is a hole
        try:
            recent: FrameBefore[Callable[[], np.ndarray | None]] = FrameBefore()
            for t_media, convert in reader.frames():
                if halt.is_set() or self._stop.is_set():
                    return
                if self.with_previous and not reader.stable_convert:  # e.g. a grab() overwrites it
                    img_now = convert()
                    convert = lambda img_now=img_now: img_now  # noqa: E731
                counter[0] += 1
                if t_media is None or not reader.media_time:
                    t = time.monotonic() - t0
                else:
                    t = t_media
                    if self.realtime:  # pace a file at its own rate
                        if wall0 is None:
                            wall0, media0 = time.monotonic(), t
                        delay = wall0 + (t - media0) - time.monotonic()
                        if delay > 0 and halt.wait(delay):
                            return
                take = grid.take(t)
                got = recent.before(t) if self.with_previous and take else None
                if self.with_previous:
                    recent.add(t, convert)
                before_t, prev_t = prev_t, t
                if self.finite and before_t is not None and spacing.hole(t - before_t, self.stall_timeout_s):
                    self._put(q, _Hole(before_t, t), halt, drop=False)
                if not take:
                    continue
                img = convert()
                if img is None:
                    continue
                previous = got[1]() if got is not None else None
                self._put(q, Frame(counter[0] - 1, round(t, 6), img, self.label, previous,
                                   round(got[0], 6) if previous is not None and got is not None else None),
                          halt)
            self._put_short_end(q, halt, reader, prev_t, spacing)
            self._put(q, _END, halt, drop=False)
        except Exception as exc:  # noqa: BLE001 - handed to the consumer as a drop
            if self.finite and not isinstance(exc, VideoTooLongError):
                self._put_short_end(q, halt, reader, prev_t, spacing)
            self._put(q, _Failed(exc), halt, drop=False)
        finally:
            try:
                reader.close()
            except Exception:  # noqa: BLE001 - closing a broken stream may fail too
                pass

    def _put_short_end(self, q: queue.Queue, halt: threading.Event, reader: Reader, last_t: float | None,
                       spacing: FrameSpacing) -> None:
        """A file whose frames stop short of the length it declares: the end it lacks, as a hole."""
        if self.finite and last_t is not None and (why := short_end(last_t, reader.length_s, spacing,
                                                                     self.stall_timeout_s)):
            self._put(q, _Hole(last_t, reader.length_s, why), halt, drop=False)

    def _put(self, q: queue.Queue, item, halt: threading.Event, drop: bool | None = None) -> None:
        drop = self.realtime if drop is None else drop
        while not halt.is_set() and not self._stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return
            except queue.Full:
                if drop:  # live: keep the newest frames, count what is lost
                    self.dropped += _drop_oldest(q)

    # -- consumer ----------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Frame | Gap]:
        t0 = time.monotonic()
        grid = SampleGrid(self.interval_ms)
        counter = [0]
        attempt = 0
        last_t: float | None = None
        pending: str | None = None
        while not self._stop.is_set():
            try:
                reader = self._factory()
            except VideoTooLongError:  # over a limit: reconnecting would not change that
                raise
            except Exception as exc:  # noqa: BLE001 - any failure to connect is retried
                if self.finite:
                    raise
                attempt += 1
                if pending is None and self.on_drop is not None:  # never connected, or lost: say so now
                    self.on_drop(last_t if last_t is not None else 0.0,
                                 f"cannot connect ({redact_text(short_error(exc))})")
                pending = pending or f"cannot connect ({redact_text(short_error(exc))})"
                log.warning("%s: connection failed (%s); retry %d in %.1f s", self.label,
                            redact_text(short_error(exc)), attempt, self.backoff(attempt))
                if self._give_up(attempt) or self._stop.wait(self.backoff(attempt)):
                    break
                continue
            q: queue.Queue = queue.Queue(maxsize=self.queue_size)
            halt = threading.Event()
            if self.finite:
                grid, counter = SampleGrid(self.interval_ms), [0]
            threading.Thread(target=self._pump, args=(reader, q, halt, grid, t0, counter),
                             name=f"live-{self.label[:20]}", daemon=True).start()
            reason = "stopped"
            last_wall = time.monotonic()  # connection start, then each frame
            while not self._stop.is_set():
                try:
                    item = q.get(timeout=0.1)
                except queue.Empty:
                    if not self.finite and time.monotonic() - last_wall > self.stall_timeout_s:
                        reason = f"stalled (no frame for {self.stall_timeout_s:g} s)"
                        break
                    continue
                if item is _END:
                    reason = "ended"
                    break
                if isinstance(item, _Hole):
                    gap = self._gap(item.start, item.end, item.reason, 0)
                    log.warning("%s: %.1f s without frames at %.1f s (%s)", self.label, gap.missed_s,
                                gap.start_time, gap.reason)
                    yield gap
                    continue
                if isinstance(item, _Failed):
                    if isinstance(item.error, VideoTooLongError):
                        raise item.error  # a frame over the size limit: refused, not retried
                    if self.finite and last_t is None:  # a file that gives no frame at all fails, as offline
                        if isinstance(item.error, VlmAnomalyError):
                            raise item.error
                        raise InvalidVideoError(f"{self.label}: cannot decode ({short_error(item.error)})")
                    reason = f"dropped ({redact_text(short_error(item.error))})"
                    break
                if pending is not None:
                    gap = self._gap(last_t, item.timestamp, pending, attempt)
                    log.warning("%s: reconnected after %.1f s gap (%s)", self.label, gap.missed_s, pending)
                    yield gap
                pending = None
                attempt = 0
                last_t = item.timestamp
                last_wall = time.monotonic()
                self.online = True
                yield item
            self.online = False
            halt.set()
            if self._stop.is_set():
                break
            if self.finite:
                if reason != "ended":
                    log.warning("%s: reading stopped early: %s", self.label, reason)
                break
            attempt += 1
            if pending is None and self.on_drop is not None:
                self.on_drop(last_t if last_t is not None else 0.0, reason)
            pending = pending or reason
            log.warning("%s: %s; reconnecting in %.1f s (attempt %d)", self.label, reason,
                        self.backoff(attempt), attempt)
            if self._give_up(attempt) or self._stop.wait(self.backoff(attempt)):
                break
        if pending is not None:  # the source never came back
            yield self._gap(last_t, time.monotonic() - t0, pending + "; gave up", attempt)

    def _gap(self, last_t: float | None, end: float, reason: str, attempt: int) -> Gap:
        """A gap from the last frame's time (0 before any) to ``end``, recorded in :attr:`gaps`."""
        start = last_t if last_t is not None else 0.0
        gap = Gap(self.label, start, max(end, start), reason, attempt)
        self.gaps.append(gap)
        return gap

    def _give_up(self, attempt: int) -> bool:
        return self.max_reconnects is not None and attempt > self.max_reconnects


class PushSource(_Stoppable):
    """A live source fed by a callback (e.g. a browser camera over WebRTC) instead of a reader thread.

    :meth:`push` is called with every frame the camera delivers; one frame per ``interval_ms`` is kept
    (with the frame before it for motion) and handed to the consumer iterating this source. When no
    frame arrives for ``stall_timeout_s`` the camera counts as dropped and the iteration ends, so an
    open event is closed and the source shown offline even if nobody presses stop.

    Example:
        >>> src = PushSource("browser camera", interval_ms=500)  # doctest: +SKIP
        >>> src.push(rgb, t=0.0)  # from the camera callback  # doctest: +SKIP
    """

    finite = False

    def __init__(self, source: str = "browser camera", *, interval_ms: int = 500, stall_timeout_s: float = 10.0,
                 queue_size: int = 4, with_previous: bool = False):
        self.source = source
        self.interval_ms = interval_ms
        self.stall_timeout_s = stall_timeout_s
        self.with_previous = with_previous
        self.realtime = True
        self.dropped = 0  # samples lost because scoring was slower than the camera
        self.end_reason = ""
        self.gaps: list[Gap] = []
        self._q: queue.Queue = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._last_t: float | None = None
        self._recent: FrameBefore[np.ndarray] = FrameBefore()
        self._n = 0
        self._last_push = time.monotonic()

    def push(self, image: np.ndarray, t: float) -> bool:
        """Offer one RGB frame taken at ``t`` seconds; True if it was kept as a sample."""
        if self._stop.is_set():
            return False
        self._last_push = time.monotonic()
        take = self._last_t is None or t - self._last_t >= self.interval_ms / 1000.0
        got = self._recent.before(t) if self.with_previous and take else None
        if self.with_previous:
            self._recent.add(t, image)
        if not take:
            return False
        self._last_t = t
        # an earlier frame, with its time: motion is measured against it (without the time it is not)
        frame = Frame(self._n, round(float(t), 6), image, self.source, got[1] if got is not None else None,
                      round(float(got[0]), 6) if got is not None else None)
        self._n += 1
        try:
            self._q.put_nowait(frame)
        except queue.Full:  # keep the newest, count the loss
            self.dropped += _drop_oldest(self._q)
            self._q.put_nowait(frame)
        return True

    @property
    def online(self) -> bool:
        """Frames are arriving (availability reports ask every source this)."""
        return not self.stopped and not self.end_reason and time.monotonic() - self._last_push < self.stall_timeout_s

    def __iter__(self) -> Iterator[Frame]:
        while not self._stop.is_set():
            try:
                yield self._q.get(timeout=0.1)
            except queue.Empty:
                if time.monotonic() - self._last_push > self.stall_timeout_s:
                    self.end_reason = f"dropped (no frame from the camera for {self.stall_timeout_s:g} s)"
                    return
