"""vlm-anomaly: learn normal activity from a few videos, flag the frames that differ.

Example:
    >>> from vlm_anomaly import Pipeline, load_settings
    >>> pipe = Pipeline(load_settings(overrides={"encoder": "efficientnet"}))  # doctest: +SKIP
    >>> pipe.train("office-day", ["normal1.mp4", "normal2.mp4"])  # doctest: +SKIP
    >>> pipe.score("office-day", "test.mp4").summary()["anomalies"]  # doctest: +SKIP
"""

from . import threads as _threads  # noqa: F401 - first: sets OpenMP's wait policy before torch loads
from .config import Settings, load_settings
from .detectors import OneClassSVMDetector, create_detector, moving_average
from .encoders import Encoder, EncoderIdentity, build_prompts, create_encoder
from .errors import (
    CorruptModelError,
    EncoderMismatchError,
    EncoderUnavailableError,
    InvalidModelNameError,
    InvalidVideoError,
    ModelNotFoundError,
    VlmAnomalyError,
)
from .model import AnomalyModel
from .pipeline import EmbeddedVideo, Pipeline
from .results import ScoreResult
from .store import EmbeddingCache, ModelStore
from .video import Frame, VideoInfo, probe, sample_frames

# The seed's three roles under their plain names.
FrameExtractor = sample_frames
AnomalyDetector = AnomalyModel

__version__ = "0.1.0"

__all__ = [
    "AnomalyDetector",
    "AnomalyModel",
    "CorruptModelError",
    "EmbeddedVideo",
    "EmbeddingCache",
    "Encoder",
    "EncoderIdentity",
    "EncoderMismatchError",
    "EncoderUnavailableError",
    "Frame",
    "FrameExtractor",
    "InvalidModelNameError",
    "InvalidVideoError",
    "ModelNotFoundError",
    "ModelStore",
    "OneClassSVMDetector",
    "Pipeline",
    "ScoreResult",
    "Settings",
    "VideoInfo",
    "VlmAnomalyError",
    "build_prompts",
    "create_detector",
    "create_encoder",
    "load_settings",
    "moving_average",
    "probe",
    "sample_frames",
]
