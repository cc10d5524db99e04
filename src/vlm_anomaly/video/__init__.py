"""Decoding and sampling of video files, frame folders and streams."""

from .decode import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, list_frame_files
from .frames import Frame, VideoInfo
from .sampler import (
    analysed_size,
    batched,
    content_hash,
    prefetch,
    probe,
    sample_frames,
    source_kind,
)

__all__ = [
    "Frame",
    "VideoInfo",
    "IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "analysed_size",
    "batched",
    "content_hash",
    "list_frame_files",
    "prefetch",
    "probe",
    "sample_frames",
    "source_kind",
]
