"""The one per-video feature store: embeddings (never frames) of a video in one ``.npz`` file.

:class:`EmbeddingCache` keys them by content + sampling + encoder, so re-training or re-scoring
the same video never decodes or encodes it again (an unwritable or full cache folder degrades to
"no cache" with a warning, never a failure); the dashboard's training set keeps its videos'
embeddings in the same file format (:func:`write_embeddings` / :func:`read_embeddings`).
"""

from __future__ import annotations

import hashlib
import io
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import atomic_write_bytes

log = logging.getLogger(__name__)


@dataclass
class CachedEmbeddings:
    indices: np.ndarray
    timestamps: np.ndarray
    embeddings: np.ndarray


def write_embeddings(path: Path, item: CachedEmbeddings) -> None:
    """Write one video's embeddings atomically (no pickle). Raises OSError."""
    buf = io.BytesIO()
    np.savez(buf, indices=item.indices, timestamps=item.timestamps, embeddings=item.embeddings)
    atomic_write_bytes(path, buf.getvalue())


def read_embeddings(path: Path, dim: int | None = None) -> CachedEmbeddings:
    """One video's embeddings, checked (one index and timestamp per 2-D row, ``dim`` columns when
    given). Raises OSError, KeyError or ValueError on a missing or inconsistent file."""
    with np.load(path, allow_pickle=False) as z:
        item = CachedEmbeddings(z["indices"], z["timestamps"], z["embeddings"].astype(np.float32))
    if item.embeddings.ndim != 2 or (dim is not None and item.embeddings.shape[1] != dim):
        raise ValueError(f"embeddings of shape {item.embeddings.shape}, expected (n, {dim or 'd'})")
    if not (len(item.indices) == len(item.timestamps) == len(item.embeddings)):
        raise ValueError("frame indices, timestamps and embeddings differ in length")
    return item


class EmbeddingCache:
    """Files ``<root>/embeddings/<key>.npz`` holding indices, timestamps and embeddings."""

    def __init__(self, root: str | Path | None, *, enabled: bool = True):
        self.root = Path(root).expanduser() / "embeddings" if root else None
        self.enabled = enabled and root is not None

    @staticmethod
    def key(content_sha256: str, encoder_key: str, interval_ms: int, max_side: int, max_frames: int,
            max_duration_s: float = 0) -> str:
        raw = f"{content_sha256}|{encoder_key}|{interval_ms}|{max_side}|{max_frames}|v1"
        if max_duration_s:  # a truncated video has other embeddings (keys without a limit unchanged)
            raw += f"|d{max_duration_s:g}"
        return hashlib.sha256(raw.encode()).hexdigest()[:32]

    def get(self, key: str, dim: int) -> CachedEmbeddings | None:
        if not self.enabled:
            return None
        path = self.root / f"{key}.npz"
        try:
            if not path.is_file():
                return None
            return read_embeddings(path, dim)
        except Exception as exc:  # noqa: BLE001 - a damaged cache entry only costs re-encoding
            log.warning("ignoring unreadable cache entry %s: %s", path.name, exc)
            return None

    def put(self, key: str, item: CachedEmbeddings) -> None:
        if not self.enabled:
            return
        try:
            write_embeddings(self.root / f"{key}.npz", item)
        except OSError as exc:  # once: the cache is off from here on
            log.warning("embedding cache disabled: cannot write to %s (%s)", self.root, exc)
            self.enabled = False

    def clear(self) -> int:
        if not self.root or not self.root.is_dir():
            return 0
        n = 0
        for p in self.root.glob("*.npz"):
            p.unlink(missing_ok=True)
            n += 1
        return n
