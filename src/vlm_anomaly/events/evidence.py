"""An event's evidence, on disk from the moment the event opens: nothing is lost if the process dies.

Why not at the end: a crash, a kill or a power cut during the incident would keep nothing of it.
So the snapshot (the worst frame so far) is written, atomically, as the event opens and again when
a worse frame comes (at most every ``snapshot_every_s``); the clip starts with the frames just
before the event and grows with every frame while it is open (:class:`~.media.ClipWriter`), and is
finished as a plain MP4 when the event closes.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import Sequence
from pathlib import Path

import av
import numpy as np

from ..redact import source_slug
from .media import ClipWriter, write_snapshot

log = logging.getLogger(__name__)

#: the clip stops growing after this many frames (an hour-long event must not fill the disk);
#: the snapshot goes on following the worst frame
MAX_CLIP_FRAMES = 3000
#: frames held in memory before the event has its id (the pre-roll and the pending start: seconds)
MAX_PENDING_FRAMES = 300
_ERRORS = (OSError, ValueError, RuntimeError, av.error.FFmpegError)


def evidence_base(label: str, wall_start, event_id: int) -> str:
    """``<camera>/<day>/event-<id>-<random>``: the snapshot's and clip's path under the media root,
    without extension (the random part: ids restart when a database is replaced, files must not clash)."""
    return f"{source_slug(label)}/{wall_start.strftime('%Y%m%d')}/event-{event_id}-{uuid.uuid4().hex[:6]}"


class EventEvidence:
    """The snapshot and clip of one event: frames buffered while it is pending, on disk once open.

    Example:
        >>> ev = EventEvidence(store.media_root, fps=2, pre_roll=[f0, f1])  # doctest: +SKIP
        >>> ev.worst(f1); paths = ev.open("cam/20250101/event-7-ab12cd")  # doctest: +SKIP
        >>> ev.add(f2); store.update(7, **ev.close())  # doctest: +SKIP
    """

    def __init__(self, media_root: str | Path, *, fps: float, pre_roll: Sequence[np.ndarray] = (),
                 snapshot_every_s: float = 1.0, max_frames: int = MAX_CLIP_FRAMES):
        self.media_root = Path(media_root)
        self.fps = fps
        self.snapshot_every_s = snapshot_every_s
        self.max_frames = max_frames
        self._pending: deque[np.ndarray] = deque(pre_roll, maxlen=MAX_PENDING_FRAMES)  # the latest, when long
        self._worst: np.ndarray | None = None
        self._worst_saved = True
        self._snap_at = 0.0
        self._clip: ClipWriter | None = None
        self.base: str | None = None
        self.snapshot: str | None = None
        self.clip: str | None = None
        self.snapshot_bytes = 0

    @property
    def is_open(self) -> bool:
        return self.base is not None

    def add(self, image: np.ndarray) -> None:
        """A frame of the event (or of its pending start): into the clip, or buffered until it opens."""
        if not self.is_open:
            self._pending.append(image)
            return
        if self._clip is None or self._clip.frames_written >= self.max_frames:
            return
        try:
            self._clip.write(image)
        except _ERRORS as exc:
            self._clip_failed(exc)

    def worst(self, image: np.ndarray) -> None:
        """A new worst frame: the snapshot follows it (now, unless one was written very recently)."""
        self._worst, self._worst_saved = image, False
        if self.is_open and time.monotonic() - self._snap_at >= self.snapshot_every_s:
            self._save_snapshot()

    def open(self, base: str) -> dict:
        """The event got its id: write the snapshot and start the clip; returns the paths to store."""
        self.base = base
        if self._worst is None and self._pending:
            self._worst = self._pending[-1]
        self._save_snapshot()
        frames, self._pending = self._pending, deque(maxlen=MAX_PENDING_FRAMES)
        if frames:
            try:
                self._clip = ClipWriter(self.media_root / f"{base}.mp4", self.fps)
                self.clip = f"{base}.mp4"
                for img in frames:
                    self._clip.write(img)
            except _ERRORS as exc:
                self._clip_failed(exc)
        return {"snapshot": self.snapshot, "clip": self.clip}

    def close(self) -> dict:
        """The event closed: the last snapshot, the clip finished; returns the paths and their size."""
        if not self.is_open:
            return {}
        if not self._worst_saved:
            self._save_snapshot()
        clip_bytes = 0
        if self._clip is not None:
            try:
                clip_bytes = self._clip.close()
            except _ERRORS as exc:
                self._clip_failed(exc)
            self._clip = None
        if self.clip is not None and clip_bytes == 0:
            p = self.media_root / self.clip
            clip_bytes = p.stat().st_size if p.exists() else 0
        return {"snapshot": self.snapshot, "clip": self.clip if clip_bytes else None,
                "media_bytes": self.snapshot_bytes + clip_bytes}

    def _save_snapshot(self) -> None:
        if self._worst is None or self.base is None:
            return
        try:
            self.snapshot_bytes = write_snapshot(self.media_root / f"{self.base}.jpg", self._worst)
            self.snapshot = f"{self.base}.jpg"
            self._worst_saved, self._snap_at = True, time.monotonic()
        except _ERRORS as exc:
            log.warning("event evidence %s: cannot write the snapshot: %s", self.base, exc)

    def _clip_failed(self, exc: BaseException) -> None:
        """A full disk or a broken encoder stops the clip, never the watcher; what was written stays."""
        log.warning("event evidence %s: clip stopped: %s", self.base, exc)
        if self._clip is not None:
            clip, self._clip = self._clip, None
            with contextlib.suppress(*_ERRORS):
                clip.close()
