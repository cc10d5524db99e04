"""Source kinds (video files, frame folders, stream URLs, cameras): telling them apart, probing,
opening a connection to read, checking a spec, and a source's content hash.

Why one place: the offline sampler, the live reader and every shell agree on what a source string
means; adding a source kind starts here.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import av
import cv2
import numpy as np

from ..config import STREAM_SCHEMES
from ..errors import InvalidVideoError, VlmAnomalyError
from ..redact import redact_url
from ..threads import decoder_threads
from .decode import (
    FALLBACK_FPS,
    MAX_PIXELS,
    BitDepth,
    check_duration,
    check_pixels,
    declared_duration,
    declared_length,
    decode_frames,
    first_rotation,
    first_video_stream,
    open_failure,
    open_input,
    read_image,
    resize_to,
    scaled_size,
    stream_fps,
    to_rgb,
    warn_untimed,
)
from .frames import VideoInfo

log = logging.getLogger(__name__)

#: video files the dashboard, the training set and datasets accept (any file FFmpeg reads can be
#: given by path): camcorders' AVCHD (.mts/.m2ts), old phones' .3gp, Windows recorders' .wmv/.asf
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".m2ts", ".mts",
                    ".3gp", ".wmv", ".asf", ".flv")


IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


DEFAULT_FOLDER_FPS = 25.0


def _natural_key(name: str) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


#: frame folders a client named (approved by the source policy of the API or dashboard): their
#: images are read only where they resolve inside the folder. The owner's own CLI and library calls
#: are not confined (a dataset subset made of symlinks is a normal thing to build).
_CONFINED: set[Path] = set()


def confine_frame_folder(folder: str | Path) -> None:
    """Read ``folder``'s images (and its sub-folders') from now on only where they resolve inside it."""
    _CONFINED.add(Path(folder).resolve())


def _confined(root: Path) -> bool:
    return any(base in _CONFINED for base in (root, *root.parents))


def list_frame_files(folder: Path) -> list[Path]:
    """Image files of a frame folder, sorted numerically (``2.png`` before ``10.png``).

    In a folder a client named (:func:`confine_frame_folder`), only images that resolve inside it
    count: a symlink to a file elsewhere is left out (with a warning), so that a folder a client may
    name never reads files outside it.
    """
    root = Path(folder).resolve()
    confined = _confined(root)
    files, outside = [], []
    for p in Path(folder).iterdir():
        if p.suffix.lower() not in IMAGE_EXTENSIONS or not p.is_file():
            continue
        try:
            real = p.resolve(strict=True)
        except (OSError, RuntimeError):
            continue
        (files if not confined or real.parent == root or root in real.parents else outside).append(p)
    if outside:
        log.warning("%s: %d image(s) left out: they link outside the folder (%s)", folder,
                    len(outside), ", ".join(sorted(p.name for p in outside)[:3]))
    return sorted(files, key=lambda p: _natural_key(p.name))


def frame_files(folder: Path) -> list[Path]:
    """:func:`list_frame_files`, refusing a folder without any; one that holds videos instead says
    so (a folder of recordings given where its files were meant: ``batch/*``, not ``batch``)."""
    files = list_frame_files(folder)
    if not files:
        videos = sorted(p.name for p in Path(folder).iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS)
        hint = (f"; it holds {len(videos)} video file(s) ({', '.join(videos[:3])}{', ...' if len(videos) > 3 else ''}):"
                " give them one by one" if videos else "")
        raise InvalidVideoError(f"{folder}: folder holds no image frames ({', '.join(IMAGE_EXTENSIONS)}){hint}")
    return files


def is_stream_url(source: str) -> bool:
    scheme, sep, _ = str(source).partition("://")
    return bool(sep) and scheme.lower() in STREAM_SCHEMES


def is_camera_index(source: str) -> bool:
    """A webcam index: ASCII digits only ("²" and "٣" are digits to ``str.isdigit`` too)."""
    return source.isascii() and source.isdigit()


def source_kind(source: str | Path) -> str:
    s = str(source)
    if is_stream_url(s):
        return "stream"
    if is_camera_index(s):
        return "webcam"
    return "folder" if Path(s).is_dir() else "file"


def check_file(path: Path) -> None:
    if not path.exists():
        raise InvalidVideoError(f"{path}: no such file or folder")
    if not path.is_file():
        raise InvalidVideoError(f"{path}: not a regular file")
    if path.stat().st_size == 0:
        raise InvalidVideoError(f"{path}: empty file")


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
        files = frame_files(path)
        first = next((img for img in map(read_image, files) if img is not None), None)
        if first is None:
            raise InvalidVideoError(f"{path}: unreadable image frames ({files[0].name}, ...)")
        check_duration(src, (len(files) - 1) / folder_fps, max_duration_s)
        return VideoInfo(src, "folder", first.shape[1], first.shape[0], folder_fps, len(files))
    container, st = open_video(src, max_duration_s=max_duration_s)
    with container:
        fps = stream_fps(st)
        count = st.frames or 0
        if not count and container.duration and fps:
            count = int(container.duration / av.time_base * fps)
        cc = st.codec_context
        if is_stream_url(src):
            return VideoInfo(src, "stream", cc.width, cc.height, fps, count, cc.name or "")
        length = declared_length(container, st)
        w, h = (cc.height, cc.width) if first_rotation(container, st) % 2 else (cc.width, cc.height)
        return VideoInfo(src, "file", w, h, fps, count, cc.name or "", length)


def video_rate(sources: Iterable[str]) -> float:
    """The median frame rate the video files and streams among ``sources`` declare; 0.0 when none
    does (frame folders carry no timing; an unreadable source gives its error when it is read)."""
    rates = []
    for src in sources:
        if Path(src).is_dir():
            continue
        with contextlib.suppress(VlmAnomalyError):
            if (fps := probe(src).fps) > 0:
                rates.append(fps)
    return float(np.median(rates)) if rates else 0.0


def open_video(source: str, *, max_duration_s: float = 0, timeout: float | tuple[float, float] = 10.0,
               refusal: str = "not a readable video"):
    """``(container, first video stream)`` of a video file or stream, checked and set to decode.

    Why one place: the sampler, :func:`probe` and the live reader refuse the same sources with the
    same errors (:class:`InvalidVideoError`; :class:`VideoTooLongError` for frame size, and for a
    declared length over ``max_duration_s`` in files). The caller closes the container.
    """
    shown = redact_url(source)
    if not is_stream_url(source):
        check_file(Path(source))
    try:
        container = open_input(source, timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - hostile files make FFmpeg/PyAV raise many kinds
        raise InvalidVideoError(f"{shown}: {refusal} ({open_failure(source, exc)})") from None
    try:
        st = first_video_stream(container, shown)
        check_pixels(shown, st.codec_context.width, st.codec_context.height)
        if not is_stream_url(source):
            check_duration(shown, declared_duration(container, st), max_duration_s)
        # one decoder thread per camera or file on a small machine: FFmpeg's own count (one per core)
        # costs 8-25 % more CPU for the same pixels (bench/live_decode.py), and the cores are the encoder's
        st.thread_type = "AUTO"
        st.thread_count = decoder_threads()
    except BaseException:
        container.close()
        raise
    return container, st


def analysed_size(source: str | Path, max_side: int) -> tuple[int, int]:
    """(w, h) of the frames the library analyses from ``source`` (after the ``max_side`` downscale),
    the coordinates that boxes in explanations are given in."""
    info = probe(source)
    return scaled_size(info.width, info.height, max_side)


def content_hash(source: str | Path) -> str:
    """SHA-256 of a video file's bytes, or of a frame folder's names and bytes.

    Why content, not path: the embedding cache and the training summary must notice a changed file
    and recognise the same video uploaded under another name.
    """
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


#: (source time in seconds or None = "use the wall clock", lazy RGB conversion)
RawFrame = tuple[float | None, Callable[[], np.ndarray | None]]


class Reader:
    """One connection to a source; :meth:`frames` yields raw frames until it ends or fails."""

    #: True when frame times are media times (files, folders); False = wall clock
    media_time = True
    #: True when a frame's lazy converter still works after later frames were read
    stable_convert = True
    #: seconds of video a file declares (0.0: none), to see a file that ends short
    length_s = 0.0

    def frames(self) -> Iterator[RawFrame]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class AvReader(Reader):
    """Video files and network streams (RTSP, HTTP/MJPEG, HLS...) through PyAV/FFmpeg."""

    def __init__(self, source: str, *, max_side: int = 0, read_timeout_s: float = 10.0, media_time: bool = True):
        self.source = source
        self.max_side = max_side
        self.media_time = media_time
        self.container, self._stream = open_video(source, timeout=(read_timeout_s, read_timeout_s),
                                                  refusal="cannot open")
        if media_time and not is_stream_url(source):
            self.length_s = declared_length(self.container, self._stream)

    def frames(self) -> Iterator[RawFrame]:
        st = self._stream
        fps = stream_fps(st) or FALLBACK_FPS
        if self.media_time:
            warn_untimed(self.container, st, redact_url(self.source))
        # times made monotonic: the live reader paces and samples by them, and a file whose
        # timestamps restart (concatenated recordings) would otherwise sample nothing until they caught up
        for _, t, frame in decode_frames(self.container, st, fps=fps):
            # a stream may change its size mid-way (a new header): the limit holds there too
            if frame.width * frame.height > MAX_PIXELS:
                check_pixels(redact_url(self.source), frame.width, frame.height)

            def convert(frame=frame) -> np.ndarray:
                return to_rgb(frame, *scaled_size(frame.width, frame.height, self.max_side))

            yield (float(t) if self.media_time else None), convert

    def close(self) -> None:
        self.container.close()


class CvReader(Reader):
    """Webcams by index (and any URL OpenCV's backends open), via ``cv2.VideoCapture``."""

    media_time = False
    stable_convert = False  # retrieve() returns the last grabbed frame only

    def __init__(self, source: str, *, max_side: int = 0):
        target: int | str = int(source) if is_camera_index(source) else source
        self.cap = cv2.VideoCapture(target)
        self.max_side = max_side
        self.source = redact_url(source)
        if not self.cap.isOpened():
            raise InvalidVideoError(f"{self.source}: cannot open camera or stream")
        self.cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        w, h = (int(self.cap.get(p)) for p in (cv2.CAP_PROP_FRAME_WIDTH, cv2.CAP_PROP_FRAME_HEIGHT))
        if w * h > MAX_PIXELS:
            self.cap.release()
            check_pixels(self.source, w, h)

    def frames(self) -> Iterator[RawFrame]:
        while self.cap.grab():  # grab without decoding/converting; retrieve only sampled frames

            def convert() -> np.ndarray | None:
                ok, bgr = self.cap.retrieve()
                if not ok or bgr is None:
                    return None
                return cv2.cvtColor(resize_to(bgr, self.max_side), cv2.COLOR_BGR2RGB)

            yield None, convert

    def close(self) -> None:
        self.cap.release()


class FolderReader(Reader):
    """A folder of image frames played at ``fps``."""

    def __init__(self, folder: str, *, fps: float = DEFAULT_FOLDER_FPS, max_side: int = 0):
        self.files = frame_files(Path(folder))
        self.fps = fps
        self.max_side = max_side
        self.depth = BitDepth()  # one rule for the folder's 16-bit images

    def frames(self) -> Iterator[RawFrame]:
        for i, f in enumerate(self.files):

            def convert(f=f) -> np.ndarray | None:
                img = read_image(f, self.depth)
                return resize_to(img, self.max_side) if img is not None else None

            yield i / self.fps, convert


def open_reader(source: str, *, max_side: int = 0, folder_fps: float = DEFAULT_FOLDER_FPS,
                read_timeout_s: float = 10.0) -> Reader:
    """The right reader for a source string: webcam index, URL, file or folder."""
    kind = source_kind(source)
    if kind == "webcam":
        return CvReader(source, max_side=max_side)
    if kind == "folder":
        return FolderReader(source, fps=folder_fps, max_side=max_side)
    return AvReader(source, max_side=max_side, read_timeout_s=read_timeout_s, media_time=kind == "file")


def check_source(spec: str) -> str:
    """The source spec, stripped, after the checks a person wants answered at once.

    An empty spec, a missing or corrupt file and a camera that is not there fail here with a clear
    message, in the caller; a stream that drops later is reconnected by :class:`LiveSource`.
    """
    spec = str(spec).strip()
    if not spec:
        raise InvalidVideoError("no source given: a camera index, a stream URL or a video file")
    kind = source_kind(spec)
    if kind == "webcam":
        try:
            open_reader(spec).close()
        except InvalidVideoError:
            raise InvalidVideoError(f"camera {spec} is not available on this machine") from None
    elif kind in ("file", "folder"):
        if not Path(spec).exists():
            raise InvalidVideoError(f"{spec}: no such file, and not a camera index or stream URL")
        probe(spec)  # a corrupt file fails here
    return spec
