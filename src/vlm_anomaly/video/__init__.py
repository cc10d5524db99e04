"""Video: sources (sources.py), decoding (decode.py), sampling (sampling.py), live reading (live.py),
thumbnails and rendering (thumbnails.py, render.py)."""

from .frames import Frame, VideoInfo
from .sampling import batched, prefetch, sample_frames
from .sources import (
    IMAGE_EXTENSIONS,
    VIDEO_EXTENSIONS,
    analysed_size,
    content_hash,
    list_frame_files,
    probe,
    source_kind,
    video_rate,
)

__all__ = [
    "Frame", "VideoInfo", "IMAGE_EXTENSIONS", "VIDEO_EXTENSIONS", "analysed_size", "batched", "content_hash",
    "list_frame_files", "prefetch", "probe", "sample_frames", "source_kind",
    "video_rate",
]
