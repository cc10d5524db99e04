"""vlm-anomaly: learn normal activity from a few videos, flag the frames that differ.

Example:
    >>> from vlm_anomaly import Pipeline, load_settings
    >>> pipe = Pipeline(load_settings(overrides={"encoder": "efficientnet"}))  # doctest: +SKIP
    >>> pipe.train("office-day", ["normal1.mp4", "normal2.mp4"])  # doctest: +SKIP
    >>> pipe.score("office-day", "test.mp4").summary()["anomalies"]  # doctest: +SKIP
"""

from . import threads as _threads  # noqa: F401 - first: sets OpenMP's wait policy before torch loads
from .config import Settings, load_settings
from .errors import (
    CorruptModelError,
    EncoderMismatchError,
    EncoderUnavailableError,
    InvalidModelNameError,
    InvalidVideoError,
    ModelNotFoundError,
    VlmAnomalyError,
)
from .redact import install_log_redaction as _install_log_redaction

# every log record of the process (the library's, uvicorn's access log, a caller's) is made
# without credentials: passwords in URLs are masked when the record is created
_install_log_redaction()

# The rest loads on first use (PEP 562): `vlm-anomaly models list` must not wait for PyTorch.
_LAZY = {
    "OneClassSVMDetector": ".detectors", "create_detector": ".detectors", "moving_average": ".detectors",
    "Encoder": ".encoders", "EncoderIdentity": ".encoders", "build_prompts": ".encoders",
    "create_encoder": ".encoders",
    "AnomalyModel": ".model", "AnomalyDetector": ".model",
    "EmbeddedVideo": ".pipeline", "Pipeline": ".pipeline",
    "ScoreResult": ".results",
    "EmbeddingCache": ".store", "ModelStore": ".store",
    "Frame": ".video", "VideoInfo": ".video", "probe": ".video", "sample_frames": ".video",
    "FrameExtractor": ".video",
}
#: role names for two of the three parts (frame extraction, detection), alongside their class names
_ALIASES = {"FrameExtractor": "sample_frames", "AnomalyDetector": "AnomalyModel"}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'vlm_anomaly' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_LAZY[name], __name__), _ALIASES.get(name, name))
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


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
