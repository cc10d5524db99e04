"""Detectors (one file each) and the short-name registry used by configs and saved models."""

from __future__ import annotations

from importlib import import_module

from ..errors import ConfigError
from .base import BaseDetector
from .ensemble import EnsembleDetector
from .gaussian import GaussianDetector
from .iforest import IsolationForestDetector
from .knn import KNNDetector
from .ocsvm import OneClassSVMDetector
from .padim import PaDiMDetector
from .patch_knn import PatchKNNDetector
from .patchcore import PatchCoreDetector
from .smoothing import CausalSmoother, moving_average
from .video import VideoContext, VideoDetector, VideoScorer, VideoScores

DETECTORS: dict[str, type[BaseDetector]] = {
    OneClassSVMDetector.name: OneClassSVMDetector,
    # issue 4: more detectors behind the same interface
    KNNDetector.name: KNNDetector,
    GaussianDetector.name: GaussianDetector,
    IsolationForestDetector.name: IsolationForestDetector,
    EnsembleDetector.name: EnsembleDetector,
    PatchKNNDetector.name: PatchKNNDetector,
    PatchCoreDetector.name: PatchCoreDetector,
    PaDiMDetector.name: PaDiMDetector,
}


def register_detector(cls: type[BaseDetector]) -> type[BaseDetector]:
    """Class decorator adding a detector to the registry under ``cls.name``."""
    DETECTORS[cls.name] = cls
    return cls


#: detectors in packages of their own, imported on first use ("module:Class"): they pull in
#: heavy libraries (OpenCV) that the embedding detectors do not need
PLUGINS: dict[str, str] = {
    "attributes": "vlm_anomaly.attributes.detector:AttributeDetector",
}


def _load(name: str) -> type[BaseDetector] | None:
    spec = PLUGINS.get(name)
    if spec is None:
        return None
    module, cls = spec.split(":")
    DETECTORS[name] = getattr(import_module(module), cls)
    return DETECTORS[name]


def detector_names() -> list[str]:
    """Every detector name a config or a model may use (built-in ones first, in registry order)."""
    return [*DETECTORS, *(n for n in PLUGINS if n not in DETECTORS)]


def get_detector_class(name: str) -> type[BaseDetector]:
    cls = DETECTORS.get(name) or _load(name)
    if cls is None:
        raise ConfigError(f"unknown detector {name!r}; choose from {', '.join(detector_names())}")
    return cls


def create_detector(name: str = "ocsvm", **params) -> BaseDetector:
    """Build a detector by short name; parameters it does not take are ignored."""
    import inspect

    cls = get_detector_class(name)
    accepted = inspect.signature(cls.__init__).parameters
    return cls(**{k: v for k, v in params.items() if k in accepted and v is not None})


__all__ = [
    "BaseDetector",
    "CausalSmoother",
    "DETECTORS",
    "EnsembleDetector",
    "GaussianDetector",
    "IsolationForestDetector",
    "KNNDetector",
    "OneClassSVMDetector",
    "PaDiMDetector",
    "PatchCoreDetector",
    "PatchKNNDetector",
    "PLUGINS",
    "VideoContext",
    "VideoDetector",
    "VideoScorer",
    "VideoScores",
    "create_detector",
    "detector_names",
    "get_detector_class",
    "moving_average",
    "register_detector",
]
