"""Decoding, shared by every reader: the checks made before decoding (frame size, declared length),
the one loop that decodes a container's frames with their times, reading one image, error reasons.

Why a module of its own: the offline sampler, the live reader, thumbnails and the motion
detector's extractor all decode; they share this loop and these checks by their public names
instead of each keeping its own copy.
"""

from __future__ import annotations

import logging
import math
import os
import re
import warnings
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import numpy as np

from ..errors import InvalidVideoError, VideoTooLongError
from ..redact import redact_url
from ..threads import decoder_threads
from ..values import Gap

log = logging.getLogger(__name__)

FALLBACK_FPS = 30.0


#: Frames larger than this are refused before decoding (8192 x 8192: covers 8K UHD and DCI 8K).
#: Why: one decoded frame of a forged 30000 x 30000 video or image would need gigabytes.
MAX_PIXELS = 8192 * 8192


#: Sampling tolerance: a frame a hair before the grid point still counts (timestamps are rounded).
TIME_EPS = 1e-3

# No Python log callback: with PANIC (or any level) PyAV routes FFmpeg *error* logs through a
# callback that takes the GIL from FFmpeg's decoder threads, which deadlocks when a damaged file
# makes a worker thread log while the main thread closes the decoder (found by the bad-media
# corpus: a zeroed H.264 payload hung the process). ``None`` is PyAV's safe, silent default.
av.logging.set_level(None)

os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
# cv2 read the variable at import; set the level directly so damaged images do not print
# "[ WARN:...] libpng ..." lines on stderr (the sampler logs its own one-line warning).
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


#: Demuxers the library reads: each reads only the bytes of the one input it was given. Never a
#: playlist or session file that names other inputs (hls, dash, concat, sdp, image2's file
#: patterns...): an uploaded ``.m3u8`` or a redirecting camera could make those fetch any URL or
#: read any local file. (mov's external references stay off: FFmpeg's ``enable_drefs`` is 0.)
INPUT_FORMATS = (
    "mov,matroska,avi,mpegts,mpeg,flv,live_flv,asf,ogg,nut,ivf,dv,mjpeg,mpjpeg,h264,hevc,m4v,vc1,"
    "mpegvideo,obu,yuv4mpegpipe,png_pipe,jpeg_pipe,bmp_pipe,tiff_pipe,webp_pipe,gif,rtsp"
)

#: FFmpeg protocols each URL scheme may use, itself and underneath: never local ones (file, pipe,
#: fd, concat, subfile, data...), never another scheme's.
SCHEME_PROTOCOLS = {
    "http": "http,tcp,httpproxy",
    "https": "https,tls,tcp,httpproxy",
    "rtsp": "rtsp,tcp",
    "rtsps": "rtsps,tls,tcp",
    "rtmp": "rtmp,tcp",
    "rtmps": "rtmps,tls,tcp",
    "rtmpt": "rtmpt,rtmphttp,http,tcp",
    "rtmpts": "rtmpts,rtmphttp,https,tls,tcp",
    "tcp": "tcp",
    "tls": "tls,tcp",
    "udp": "udp",
    "rtp": "rtp,udp",
}


def input_options(source: str) -> dict[str, str]:
    """FFmpeg options that keep opening ``source`` to that one input, on every hop.

    A URL may use only its own scheme's protocols and never follows an HTTP redirect (the allow-list
    checked the host the client named; a ``Location`` could name any other), and RTSP runs over TCP.
    A local path is read with the file protocol only. Either way only :data:`INPUT_FORMATS` are
    demuxed, so no playlist can lead elsewhere.
    """
    src = str(source)
    m = re.match(r"^([A-Za-z][A-Za-z0-9+.\-]*)://", src)
    if m:
        scheme = m.group(1).lower()
        options = {"protocol_whitelist": SCHEME_PROTOCOLS.get(scheme, scheme)}
        if scheme in ("http", "https", "rtmpt", "rtmpts"):
            options["max_redirects"] = "0"
        if scheme in ("rtsp", "rtsps"):
            options["rtsp_transport"] = "tcp"
    else:
        options = {"protocol_whitelist": "file"}
    options["format_whitelist"] = INPUT_FORMATS
    return options


def open_input(source: str, *, timeout: float | tuple[float, float] | None = 10.0):
    """``av.open`` for reading, restricted by :func:`input_options`. Raises what PyAV raises.

    ``rtsp``/``rtsps`` go through a :class:`~.rtsp_relay.RtspRelay`, which connects only to the
    URL's own host and port and refuses the camera's redirects (FFmpeg would follow them to any
    host); opening then fails with :class:`~.rtsp_relay.RedirectRefusedError`. The relay ends when
    the container is closed.
    """
    src = str(source)
    if not re.match(r"^rtsps?://", src, re.I):
        return av.open(src, timeout=timeout, options=input_options(src))
    from .rtsp_relay import REDIRECT_REASON, RedirectRefusedError, RtspRelay

    open_s = timeout[0] if isinstance(timeout, tuple) else timeout
    relay = RtspRelay(src, timeout=float(open_s or 10.0))
    try:
        return av.open(relay.url, timeout=timeout, options=input_options(relay.url))
    except Exception:
        relay.close()
        if relay.refused:
            raise RedirectRefusedError(REDIRECT_REASON) from None
        if relay.failure:  # the camera's own reason, not FFmpeg's view of the closed relay
            raise ConnectionError(relay.failure) from None
        if relay.connections and not relay.received:  # FFmpeg gave up (its timeout) or the camera
            raise ConnectionError("no reply from the camera") from None  # hung up: not "Invalid data"
        raise


def open_failure(source: str, exc: BaseException) -> str:
    """Why opening ``source`` failed, in a few words: FFmpeg's reason and what is refused on purpose."""
    why = short_error(exc)[:80]
    src = str(source)
    if isinstance(exc, av.error.ExitError):  # FFmpeg's "Immediate exit requested": our open timeout fired
        return "no answer in time (timed out)"
    if re.match(r"^https?://", src, re.I):
        return f"{why}; redirects and playlists are not followed"
    if "://" not in src and os.path.isfile(src):  # a regular file only: never block on a FIFO
        try:
            with open(src, "rb") as fh:
                head = fh.read(64).lstrip(b"\xef\xbb\xbf \t\r\n").lower()
        except OSError:
            head = b""
        if head.startswith((b"#extm3u", b"ffconcat", b"<?xml", b"<mpd", b"v=0", b"file ")):
            return f"{why}: playlists (HLS, DASH, concat, SDP) are not opened"
    return why


def scaled_size(w: int, h: int, max_side: int) -> tuple[int, int]:
    if max_side <= 0 or max(w, h) <= max_side:
        return w, h
    s = max_side / max(w, h)
    return max(2, int(round(w * s)) // 2 * 2), max(2, int(round(h * s)) // 2 * 2)


def short_error(exc: BaseException) -> str:
    """One short line saying why: FFmpeg's reason without its errno and the repeated path."""
    if isinstance(exc, av.FFmpegError) and getattr(exc, "strerror", None):
        return str(exc.strerror)[:200]
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return msg[:200]


def first_video_stream(container, src: str):
    """The first video stream, if FFmpeg has a decoder for it."""
    if not container.streams.video:
        raise InvalidVideoError(f"{src}: no video stream")
    st = container.streams.video[0]
    if st.codec_context is None:  # PyAV gives no codec context when no decoder exists
        raise InvalidVideoError(f"{src}: unsupported or unrecognised video codec")
    return st


def check_pixels(src: str, width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise VideoTooLongError(
            f"{src}: frame size {width}x{height} is over the limit of {MAX_PIXELS // 1_000_000} "
            "megapixels"
        )


def check_duration(src: str, duration_s: float, limit_s: float) -> None:
    """Refuse up front a source whose declared length is over ``limit_s`` (0 = no limit)."""
    if limit_s > 0 and duration_s > limit_s + TIME_EPS:
        raise VideoTooLongError(f"{src}: {duration_s:.1f} s long, over the limit of {limit_s:g} s (max_duration_s)")


def declared_duration(container, st) -> float:
    if st.duration and st.time_base:
        return float(st.duration * st.time_base)
    if container.duration:
        return container.duration / av.time_base
    return 0.0


def declared_length(container, st) -> float:
    """Seconds of video a file's header promises (0.0 when it promises none), to tell a file that
    ends short - cut off in a download or a recorder's crash, damaged part way - from one that
    ends where it should. The longest of: the stream's duration, its frame count at its rate and,
    for a file with no other stream (whose length could be an audio track's), the container's.
    An AVI's index, like what is left of it, can be short while its header still counts every
    frame; an MPEG-TS declares nothing, and nothing is said there."""
    fps = stream_fps(st)
    lengths = [float(st.duration * st.time_base) if st.duration and st.time_base else 0.0,
               st.frames / fps if st.frames and fps else 0.0,
               container.duration / av.time_base if container.duration and len(container.streams) == 1 else 0.0]
    return max(lengths)


def stream_fps(st) -> float:
    for rate in (st.average_rate, st.guessed_rate, st.base_rate):
        try:
            if rate and float(rate) > 0 and math.isfinite(float(rate)) and float(rate) < 1000:
                return float(rate)
        except (ZeroDivisionError, TypeError):
            continue
    return 0.0


#: demuxers of raw elementary streams: their frames carry no timestamps of their own
UNTIMED_FORMATS = ("mjpeg", "h264", "hevc", "m4v", "vc1")


def warn_untimed(container, st, shown: str) -> None:
    """Say when a file's times are assumed: a raw stream (``.mjpeg``, ``.h264``) has no timestamps,
    so times, and motion per second, follow the rate it declares or FFmpeg's default of 25 fps."""
    if container.format.name in UNTIMED_FORMATS:
        log.warning("%s: a raw %s stream carries no timestamps; its times assume %g fps", shown,
                    container.format.name, stream_fps(st) or FALLBACK_FPS)


#: a timestamp more than this far behind the previous frame's is a reset (concatenated recordings,
#: a restarted encoder), not jitter: later frames keep their own spacing from there on
RESET_S = 1.0


#: a step between a file's frames past a stall timeout and this many times its usual spacing is a
#: hole (a recorder that paused, frames cut out), reported as a gap like a live stall; a time-lapse
#: whose frames are always far apart has none
HOLE_SPACINGS = 10


class FrameSpacing:
    """The usual time between a source's frames: the median of its last 31 spacings.

    Why measured, not ``1 / fps``: a header may give no usable rate. Decoding repairs broken
    timestamps at this spacing, and a step far past it is a hole (:meth:`hole`), found the same way
    by the live reader (every frame) and for offline results (their sampled frames).
    """

    def __init__(self) -> None:
        self._steps: deque[float] = deque(maxlen=31)

    def median(self, default: float) -> float:
        return float(np.median(self._steps)) if self._steps else default

    def add(self, step: float) -> None:
        self._steps.append(step)

    def hole(self, step: float, min_s: float, frames: int = 1) -> float:
        """Seconds missing from ``step``, the time to a frame ``frames`` source frames later (the
        frames between taken at the usual spacing): a hole past ``min_s`` and ``HOLE_SPACINGS``
        usual spacings. 0.0 when there is none, and then the spacing is recorded."""
        if step > min_s and self._steps:  # the cheap bound first: the median only for a long step
            missing = step - (frames - 1) * self.median(0.0)
            if self.exceeds(missing, min_s):
                return missing
        self.add(step / max(1, frames))
        return 0.0

    def exceeds(self, missing: float, min_s: float) -> bool:
        """Whether ``missing`` seconds make a hole: past ``min_s`` and ``HOLE_SPACINGS`` usual
        spacings (past ``min_s`` alone while no spacing is known, as after a single frame)."""
        return missing > min_s and missing > HOLE_SPACINGS * self.median(0.0)


def decode_frames(container, st, *, fps: float) -> Iterator[tuple[int, float, av.VideoFrame]]:
    """``(index, seconds since the first frame, frame)`` for every decoded frame of stream ``st``.

    Times come from the frames' timestamps (``index / fps`` when a frame has none). A broken or
    duplicate timestamp is moved one frame interval after the previous frame's time so time never
    runs backwards (sampling, pacing and motion all need that); after a reset (a jump back of more than ``RESET_S``)
    the following frames keep their own spacing from there. The frame interval is the median
    spacing of the timestamps seen so far, not ``1 / fps``: a file whose header gives no usable
    rate would otherwise run at the fallback rate, and motion measured per second with it.
    Frames are not converted to RGB: the caller converts only those it keeps.
    """
    tb = float(st.time_base) if st.time_base else 0.0
    first_pts: int | None = None
    last_t = -1.0
    offset = 0.0  # added to the timestamps after a reset
    spacing = FrameSpacing()  # of good timestamps
    for index, frame in enumerate(_decoded(container, st)):
        if frame.pts is not None and tb > 0:
            if first_pts is None:
                first_pts = frame.pts
            t = (frame.pts - first_pts) * tb + offset
        else:
            t = index / fps
        if t <= last_t:  # broken/duplicate timestamps: keep time monotonic
            step = spacing.median(1.0 / fps)
            if last_t - t > RESET_S:
                offset += last_t + step - t
            t = last_t + step
        elif index > 0:
            spacing.add(t - last_t)
        last_t = t
        yield index, t, frame


#: consecutive packets that fail to decode before the stream counts as undecodable from there
MAX_DAMAGED_RUN = 250


def _decoded(container, st) -> Iterator[av.VideoFrame]:
    """The frames of ``st``, decoding packet by packet and skipping a packet the decoder refuses.

    Why not ``container.decode``: it stops at the first damaged packet, so a file with a few
    damaged kilobytes in the middle lost everything after them (an MP4 with 20 kB overwritten
    half way: 81 of its 180 frames), where players carry on from the next keyframe (167). What
    is skipped is logged; the time it covered becomes a gap where it is long enough to be one.
    A stream that decodes nothing, or only fails for ``MAX_DAMAGED_RUN`` packets in a row,
    raises the decoder's error as before.
    """
    shown = redact_url(str(container.name))
    damaged = run = frames = 0
    try:
        for packet in container.demux(st):
            try:
                decoded = packet.decode()
            except av.error.InvalidDataError:
                damaged += 1
                run += 1
                if run == 1 and frames:
                    log.warning("%s: damaged data after frame %d skipped", shown, frames - 1)
                if run >= MAX_DAMAGED_RUN or packet.size == 0:
                    raise
                continue
            run = 0
            for frame in decoded:
                frames += 1
                yield frame
        if damaged and not frames:  # nothing decodable: say why, as the first refusal did
            raise InvalidVideoError(f"{shown}: cannot decode (no frame in {damaged} damaged packet(s))")
    finally:
        if damaged and frames:
            log.warning("%s: %d damaged packet(s) skipped in all", shown, damaged)


def to_rgb(frame: av.VideoFrame, w: int | None = None, h: int | None = None) -> np.ndarray:
    """A decoded frame as an RGB array of size ``w`` x ``h`` (default: its own; rescaled only when
    that differs).

    Why the thread count: FFmpeg's scaler starts a thread per core for each conversion by default,
    which on a small machine costs about 6 times the CPU of one thread for the same pixels
    (bench/live_decode.py), and every sampled frame of every camera is converted.
    """
    w, h = w or frame.width, h or frame.height
    return upright(frame.to_ndarray(width=w, height=h, format="rgb24", threads=decoder_threads()), rotation(frame))


def rotation(frame: av.VideoFrame) -> int:
    """Quarter turns counter-clockwise that bring a frame upright, as its display matrix says: a
    phone stores a portrait clip as landscape pictures with a matrix, as the rotated camera of
    some recorders does. Ignored, such a clip was analysed and shown on its side, and one filmed
    upside down looked like another camera's view."""
    return round(getattr(frame, "rotation", 0) / 90) % 4  # PyAV reads the matrix from version 14


def first_rotation(container, st) -> int:
    """The quarter turns that bring the file's frames upright (:func:`rotation`), from its
    first frame: PyAV reads the display matrix from frames. 0 when no frame decodes (reading the
    file then says why)."""
    try:
        return rotation(next(decode_frames(container, st, fps=FALLBACK_FPS))[2])
    except Exception:  # noqa: BLE001 - a damaged file raises many kinds; its reader reports it
        return 0


def upright(img: np.ndarray, quarter_turns: int) -> np.ndarray:
    return np.ascontiguousarray(np.rot90(img, quarter_turns)) if quarter_turns else img


def resize_to(img: np.ndarray, max_side: int) -> np.ndarray:
    """An RGB array downscaled so its longer side is at most ``max_side`` (0 = unchanged)."""
    if max_side:
        w, h = scaled_size(img.shape[1], img.shape[0], max_side)
        if (w, h) != (img.shape[1], img.shape[0]):
            img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
    return img


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


class BitDepth:
    """How a source's 16-bit images become 8-bit: shifted by the bits its first image uses (10, 12,
    14 or 16), the same for every image after it. Why: lab and machine-vision cameras store 10- to
    16-bit samples in 16-bit PNG or TIFF; cut to their top 8 bits, a 12-bit frame's values all lay
    under 16 and its walkers vanished into the dark; scaled image by image, brightness would jump."""

    def __init__(self) -> None:
        self.bits = 0

    def to_8bit(self, img: np.ndarray) -> np.ndarray:
        used = int(img.max()).bit_length()
        if not self.bits and used:  # an all-black first image fixes nothing
            self.bits = min(16, max(10, used + used % 2))
        return np.minimum(img >> ((self.bits or 10) - 8), 255).astype(np.uint8)


def read_image(path: Path, depth: BitDepth | None = None) -> np.ndarray | None:
    """RGB array of an image file, or None when it is unreadable or over :data:`MAX_PIXELS`.
    ``depth``: the source's rule for 16-bit images (default: this image's own)."""
    if _image_pixels(path) > MAX_PIXELS:
        log.warning("%s: image over %d pixels refused", path, MAX_PIXELS)
        return None
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError:
        return None
    if data.size == 0:
        return None
    img = cv2.imdecode(data, cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR)
    if img is not None and img.dtype == np.uint16:
        img = (depth or BitDepth()).to_8bit(img)
    elif img is not None and img.dtype != np.uint8:  # floating point and the like: OpenCV's own 8-bit BGR
        img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if img is None or img.ndim not in (2, 3) or img.shape[0] == 0 or img.shape[1] == 0:
        return None
    if img.ndim == 2 or img.shape[2] == 1:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB if img.shape[2] == 4 else cv2.COLOR_BGR2RGB)


#: why a hole in a file's timestamps is a gap
HOLE_REASON = "frames missing: the file's timestamps jump"


def short_end(last_t: float, length_s: float, spacing: FrameSpacing, min_s: float) -> str:
    """Why a file's frames stop at ``last_t`` when its header declares ``length_s`` seconds (""
    when they do not stop short): a missing end counts like a hole inside
    (:meth:`FrameSpacing.exceeds`), so a file cut short shows the time it lost like any other gap."""
    if length_s <= 0 or not spacing.exceeds(length_s - last_t, min_s):
        return ""
    return f"the file ends at {last_t:.1f} s of the {length_s:.1f} s its header declares (cut short or damaged)"


def file_gaps(source: str, frame_indices, timestamps, min_s: float, length_s: float = 0.0) -> list[Gap]:
    """The holes in a file's timestamps among its scored frames (offline results), found as the live
    reader finds them among all of its frames (:meth:`FrameSpacing.hole`, with ``min_s``
    its stall timeout), so ``score`` and ``watch`` report the same gaps; and the end missing when
    the frames stop short of the ``length_s`` the file declares (:func:`short_end`)."""
    spacing, gaps = FrameSpacing(), []
    for i0, i1, t0, t1 in zip(frame_indices[:-1], frame_indices[1:], timestamps[:-1], timestamps[1:]):
        missing = spacing.hole(float(t1 - t0), min_s, int(i1 - i0))
        if missing:
            gaps.append(Gap(redact_url(source), float(t1) - missing, float(t1), HOLE_REASON, 0))
    if len(timestamps) and (why := short_end(float(timestamps[-1]), length_s, spacing, min_s)):
        gaps.append(Gap(redact_url(source), float(timestamps[-1]), length_s, why, 0))
    return gaps
