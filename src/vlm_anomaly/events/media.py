"""Evidence files of an event: a JPEG snapshot of the worst frame and an MP4 clip of the event.

The snapshot is written to a temp file in the target folder and renamed, so a crash never leaves a
half-written one where the events store points. The clip of an open event grows as frames come
(:class:`ClipWriter`: fragmented MP4, one fragment per frame, handed to the OS as written), so a
process killed mid-event leaves a clip that plays up to its last frame or so; closing it remuxes it
into a plain MP4 (index in front, for browsers and players), again through a temp file and a rename.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import av
import numpy as np

from ..atomic import atomic_path, atomic_write_bytes
from ..video.render import AnnotatedVideoWriter
from ..video.thumbnails import encode_jpeg

log = logging.getLogger(__name__)

CLIP_MAX_SIDE = 640
#: fragmented MP4: an empty index up front, a fragment per frame, each written out at once
LIVE_MP4_OPTIONS = {"movflags": "frag_keyframe+empty_moov+default_base_moof+frag_every_frame",
                    "flush_packets": "1"}


def write_snapshot(path: str | Path, image: np.ndarray) -> int:
    """Save an RGB frame as JPEG; returns the file size."""
    data = encode_jpeg(image, 90)
    atomic_write_bytes(path, data)
    return len(data)


class ClipWriter(AnnotatedVideoWriter):
    """An event's clip, written frame by frame while the event is open: the annotated-video writer
    in fragmented-MP4 mode, no encoder delay, a keyframe every 10 s.

    What is on disk at any moment decodes (up to about the last frame written) even if the process
    is killed; :meth:`close` finishes it as a plain MP4. Errors are the caller's to catch
    (``OSError``, ``ValueError``, ``av.error.FFmpegError``).

    Example:
        >>> clip = ClipWriter("events/cam/event-1.mp4", fps=2)  # doctest: +SKIP
        >>> clip.write(frame); clip.close()  # doctest: +SKIP
    """

    def __init__(self, path: str | Path, fps: float, *, max_side: int = CLIP_MAX_SIDE):
        super().__init__(path, fps=fps, max_side=max_side, preset="ultrafast", crf=28)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._container = av.open(str(self.path), "w", format="mp4", options=dict(LIVE_MP4_OPTIONS))
        self.closed = False

    def _open_stream(self, w: int, h: int) -> None:
        super()._open_stream(w, h)
        # zerolatency: each frame's packet comes out of x264 at once, not frames later; a keyframe
        # every 10 s (seeking; what survives a kill does not depend on it: every frame is a fragment)
        # keeps clips about the size of ones written at the end (bench/event_evidence.py)
        self._stream.options = {**self._stream.options, "tune": "zerolatency",
                                "g": str(max(1, round(self.fps * 10)))}

    write = AnnotatedVideoWriter.write_raw  # evidence frames are written as they came

    def close(self) -> int:
        """Flush the encoder, close the file, remux it into a plain MP4; returns its size."""
        if not self.closed:
            self.closed = True
            self.__exit__(None, None, None)
            finalise_clip(self.path)
        return self.path.stat().st_size if self.path.exists() else 0


def finalise_clip(path: str | Path) -> int:
    """Remux a (possibly cut-off) fragmented MP4 clip into a plain MP4 in place; returns its size.

    Packets are copied, not re-encoded; a clip cut off mid-fragment keeps every whole packet. A
    file with nothing to keep is left as it is (it is still what the event has)."""
    path = Path(path)
    copied = 0
    try:
        with atomic_path(path) as tmp:
            with av.open(str(path)) as src, av.open(tmp, "w", format="mp4", options={"movflags": "+faststart"}) as dst:
                ist = src.streams.video[0]
                ost = dst.add_stream_from_template(ist)
                try:
                    for pkt in src.demux(ist):
                        if pkt.dts is None:  # the demuxer's end-of-stream marker
                            continue
                        pkt.stream = ost
                        dst.mux(pkt)
                        copied += 1
                except av.error.FFmpegError as exc:  # cut off by a crash: keep what came before
                    log.info("clip %s ends in a cut-off fragment (%s); %d packet(s) kept", path.name, exc, copied)
            if not copied:
                raise ValueError("no whole packet to keep")
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
    except (OSError, ValueError, IndexError, av.error.FFmpegError) as exc:
        log.warning("clip %s: cannot finalise (%s); the fragmented file stays", path.name, exc)
    return path.stat().st_size if path.exists() else 0
