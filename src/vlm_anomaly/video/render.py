"""Annotated frames and videos: the score, label and description drawn on each frame.

Why a sink: the dashboard's download, the CLI and the API all want "the video, with what the
model thought written on it"; one writer keeps them identical.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import cv2
import numpy as np

from ..results import ScoreResult
from .thumbnails import iter_frames_at

ANOMALY_RGB = (220, 40, 40)
NORMAL_RGB = (40, 170, 70)


def annotate_frame(image: np.ndarray, *, score: float, anomaly: bool, time_s: float | None = None,
                   description: str = "", threshold: float | None = None, box: Sequence[float] | None = None,
                   box_frame_size: Sequence[int] | None = None) -> np.ndarray:
    """A copy of an RGB frame with a banner: label, score (and threshold), time, description.

    ``box`` (x0, y0, x1, y1) outlines where an attribute detector found the anomaly; it is given in a
    frame of ``box_frame_size`` (w, h) and scaled to this image.
    """
    img = np.ascontiguousarray(image).copy()
    h, w = img.shape[:2]
    scale = max(0.35, min(1.0, w / 640))
    thick = 1 if scale < 0.6 else 2
    line_h = int(26 * scale) + 4
    lines = [f"{'ANOMALY' if anomaly else 'normal'}  score {score:+.3f}"
             + (f" (thr {threshold:+.2f})" if threshold is not None else "")
             + (f"  t={time_s:.2f}s" if time_s is not None else "")]
    if description:
        lines.append(description[:60])
    banner = line_h * len(lines) + 6
    overlay = img.copy()
    cv2.rectangle(overlay, (0, 0), (w, banner), (0, 0, 0), -1)
    img = cv2.addWeighted(overlay, 0.55, img, 0.45, 0)
    colour = ANOMALY_RGB if anomaly else NORMAL_RGB
    for k, text in enumerate(lines):
        cv2.putText(img, text, (6, line_h * (k + 1)), cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale,
                    colour if k == 0 else (235, 235, 235), thick, cv2.LINE_AA)
    if anomaly:
        cv2.rectangle(img, (1, 1), (w - 2, h - 2), ANOMALY_RGB, max(2, int(4 * scale)))
    if box is not None and len(box) == 4:
        x0, y0, x1, y1 = scale_box(box, box_frame_size or (w, h), (w, h))
        cv2.rectangle(img, (x0, y0), (x1, y1), ANOMALY_RGB if anomaly else (255, 200, 0), max(2, int(3 * scale)))
    return img


def scale_box(box: Sequence[float], from_size: Sequence[int], to_size: Sequence[int]) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) given in a frame of ``from_size`` (w, h), in pixels of a ``to_size`` image."""
    sx, sy = to_size[0] / max(1, from_size[0]), to_size[1] / max(1, from_size[1])
    return tuple(int(round(v)) for v in (box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy))


def box_kwargs(explanation: dict | None) -> dict:
    """``annotate_frame`` keywords outlining the region an attribute detector blamed (none if none)."""
    if not explanation or "box" not in explanation:
        return {}
    return {"box": explanation["box"], "box_frame_size": explanation.get("frame_size")}


def explanation_box(result: ScoreResult, k: int) -> dict:
    """:func:`box_kwargs` of frame ``k`` of a result."""
    return box_kwargs(result.explanations[k] if k < len(result.explanations) else None)


class AnnotatedVideoWriter:
    """Context manager writing RGB frames to an H.264 MP4 (or by extension: webm, avi).

    Frames are resized to the first frame's size (even width/height, as yuv420p needs), or to at
    most ``max_side`` pixels on the longer side. ``preset``: the H.264 speed/size trade-off
    (``ultrafast`` with a higher ``crf`` for many small clips, e.g. event evidence).

    Example:
        >>> with AnnotatedVideoWriter("out.mp4", fps=2) as sink:  # doctest: +SKIP
        ...     sink.write(frame, score=-0.4, anomaly=True, time_s=1.5)
    """

    def __init__(self, path: str | Path, *, fps: float = 2.0, max_side: int = 0, preset: str = "veryfast",
                 crf: int = 23):
        self.path = Path(path)
        self.fps = min(60.0, max(0.5, float(fps)))
        self.max_side = max_side
        self.options = {"preset": preset, "crf": str(crf)}
        self.frames_written = 0
        self._container = None
        self._stream = None
        self._size: tuple[int, int] | None = None

    def __enter__(self) -> AnnotatedVideoWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._container = av.open(str(self.path), "w")
        return self

    def _open_stream(self, w: int, h: int) -> None:
        ext = self.path.suffix.lower()
        codec = {".webm": "libvpx", ".avi": "mpeg4"}.get(ext, "libx264")
        st = self._container.add_stream(codec, rate=Fraction(self.fps).limit_denominator(1001))
        st.width, st.height = w, h
        st.pix_fmt = "yuv420p"
        if codec == "libx264":
            st.options = dict(self.options)
        self._stream, self._size = st, (w, h)

    def write_raw(self, image: np.ndarray) -> None:
        """Write an RGB frame as it is (already annotated)."""
        if self._container is None:
            raise RuntimeError("use AnnotatedVideoWriter as a context manager")
        if self._stream is None:
            h, w = image.shape[:2]
            s = min(1.0, self.max_side / max(h, w)) if self.max_side > 0 else 1.0
            self._open_stream(max(2, int(w * s) // 2 * 2), max(2, int(h * s) // 2 * 2))
        w, h = self._size
        if image.shape[1] != w or image.shape[0] != h:
            image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image, np.uint8), format="rgb24")
        for pkt in self._stream.encode(frame):
            self._container.mux(pkt)
        self.frames_written += 1

    def write(self, image: np.ndarray, **annotation) -> None:
        """Annotate (see :func:`annotate_frame`) and write one frame."""
        self.write_raw(annotate_frame(image, **annotation))

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            if self._stream is not None:
                for pkt in self._stream.encode():
                    self._container.mux(pkt)
        finally:
            self._container.close()
            self._container = None
        if exc_type is not None or self.frames_written == 0:
            self.path.unlink(missing_ok=True)


def playback_fps(timestamps: np.ndarray) -> float:
    """Frame rate that plays sampled frames at their real pace (median spacing)."""
    if len(timestamps) < 2:
        return 1.0
    dt = float(np.median(np.diff(timestamps)))
    return 1.0 / dt if dt > 0 else 1.0


def write_annotated_video(result: ScoreResult, source: str | Path, path: str | Path, *, max_side: int = 640,
                          progress: Callable[[int, int, str], None] | None = None) -> Path:
    """Write every scored frame of ``source``, annotated with its row of ``result``, to ``path``.

    Decodes the source once more (results keep no frames); plays at the sampling pace.
    """
    pos = {int(ix): k for k, ix in enumerate(result.frame_indices)}
    labels = result.labels
    total = len(pos)
    with AnnotatedVideoWriter(path, fps=playback_fps(result.timestamps)) as sink:
        for done, (index, img) in enumerate(iter_frames_at(source, pos, max_side=max_side), 1):
            k = pos[index]
            sink.write(img, score=float(result.smoothed_scores[k]),
                       anomaly=bool(labels[k]), time_s=float(result.timestamps[k]),
                       description=result.descriptions[k] if k < len(result.descriptions) else "",
                       threshold=result.threshold, **explanation_box(result, k))
            if progress:
                progress(done, total, "writing video")
    return Path(path)
