"""Detectors (one file each) and the short-name registry used by configs and saved models."""

from __future__ import annotations

from ..smoothing import CausalSmoother, moving_average
from .base import BaseDetector
from .ensemble import EnsembleDetector
from .gaussian import GaussianDetector
from .iforest import IsolationForestDetector
from .knn import KNNDetector
from .ocsvm import OneClassSVMDetector
from .padim import PaDiMDetector
from .patch_knn import PatchKNNDetector
from .patchcore import PatchCoreDetector
from .registry import DETECTORS, PLUGINS, create_detector, detector_names, get_detector_class, register_detector
from .video import VideoContext, VideoDetector, VideoScorer, VideoScores

# built-in detectors over frame embeddings, in the order the dashboard lists them
for _cls in (OneClassSVMDetector, KNNDetector, GaussianDetector, IsolationForestDetector, EnsembleDetector,
             PatchKNNDetector, PatchCoreDetector, PaDiMDetector):
    register_detector(_cls)


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
