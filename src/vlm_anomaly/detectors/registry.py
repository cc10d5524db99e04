"""The short-name registry of detectors, used by configs and saved models.

A module of its own (importing no detector) so that a detector may look others up without
importing the package that imports it.
"""

from __future__ import annotations

import inspect
from importlib import import_module

from ..config import REMOVED_DETECTORS, removed_detector_message
from ..errors import ConfigError
from .contract import Detector

#: detectors by short name, filled by the package (built-ins) and :func:`register_detector`
DETECTORS: dict[str, type[Detector]] = {}

#: detectors in packages of their own, imported on first use ("module:Class"): they pull in
#: heavy libraries (OpenCV) that the embedding detectors do not need. A new one = one line here.
PLUGINS: dict[str, str] = {
    "motion": "vlm_anomaly.motion.detector:MotionDetector",
}


def register_detector(cls: type[Detector]) -> type[Detector]:
    """Class decorator adding a detector to the registry under ``cls.name``."""
    DETECTORS[cls.name] = cls
    return cls


def _load(name: str) -> type[Detector] | None:
    spec = PLUGINS.get(name)
    if spec is None:
        return None
    module, cls = spec.split(":")
    DETECTORS[name] = getattr(import_module(module), cls)
    return DETECTORS[name]


def detector_names() -> list[str]:
    """Every detector name a config or a model may use (built-in ones first, in registry order)."""
    return [*DETECTORS, *(n for n in PLUGINS if n not in DETECTORS)]


def get_detector_class(name: str) -> type[Detector]:
    cls = DETECTORS.get(name) or _load(name)
    if cls is None and name in REMOVED_DETECTORS:
        raise ConfigError(removed_detector_message(name, ", ".join(detector_names())))
    if cls is None:
        raise ConfigError(f"unknown detector {name!r}; choose from {', '.join(detector_names())}")
    return cls


def construct(cls: type[Detector], **params) -> Detector:
    """``cls`` built with the ``params`` its constructor takes (the others, and None values, ignored)."""
    accepted = inspect.signature(cls.__init__).parameters
    return cls(**{k: v for k, v in params.items() if k in accepted and v is not None})


def create_detector(name: str = "ocsvm", **params) -> Detector:
    """Build a detector by short name; parameters it does not take are ignored."""
    return construct(get_detector_class(name), **params)
