"""Detectors (one file each) and the short-name registry used by configs and saved models."""

from __future__ import annotations

import sys
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


# attribute-based scorer (issue 8): velocity + appearance + whole frame, k-NN density. It lives in
# its own sub-package and registers itself; importing it here makes the registry complete whichever
# of the two packages is imported first (when it is the one importing us, it is skipped here).
if "vlm_anomaly.attributes.detector" not in sys.modules:
    import_module("vlm_anomaly.attributes.detector")
# the motion detector (the default) registers itself the same way
if "vlm_anomaly.motion.detector" not in sys.modules:
    import_module("vlm_anomaly.motion.detector")


def get_detector_class(name: str) -> type[BaseDetector]:
    try:
        return DETECTORS[name]
    except KeyError:
        raise ConfigError(f"unknown detector {name!r}; choose from {', '.join(sorted(DETECTORS))}") from None


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
    "create_detector",
    "get_detector_class",
    "moving_average",
    "register_detector",
]
