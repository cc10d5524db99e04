"""Detectors (one file each) and the short-name registry used by configs and saved models."""

from __future__ import annotations

from ..smoothing import CausalSmoother, moving_average
from .base import BaseDetector, EmbeddingScorer
from .contract import Detector, DetectorContext, LearnsNormal, Scorer, learner
from .ocsvm import OneClassSVMDetector
from .patch_knn import PatchKNNDetector
from .registry import DETECTORS, PLUGINS, create_detector, detector_names, get_detector_class, register_detector
from .video import VideoDetector

# built-in detectors over frame embeddings, in the order the dashboard lists them
for _cls in (OneClassSVMDetector, PatchKNNDetector):
    register_detector(_cls)


__all__ = [
    "BaseDetector",
    "CausalSmoother",
    "DETECTORS",
    "Detector",
    "DetectorContext",
    "EmbeddingScorer",
    "LearnsNormal",
    "OneClassSVMDetector",
    "PatchKNNDetector",
    "PLUGINS",
    "VideoDetector",
    "learner",
    "create_detector",
    "detector_names",
    "get_detector_class",
    "moving_average",
    "register_detector",
    "Scorer",
]
