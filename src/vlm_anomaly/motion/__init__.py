"""Motion detector (the default): per-location densities of how things move and what moving things
look like, at a fixed working resolution in resolution- and frame-rate-free units, calibrated on
held-out normal clips to a target false-alarm rate.

Modules: ``features`` (working frames, DIS flow, cell features, reference frames), ``extract``
(sources -> cell features), ``density`` (per-cell KD-tree k-NN), ``scorer`` (fit/score/explain),
``detector`` (ModelStore-compatible video detector).
"""

from .detector import MotionDetector
from .features import GridConfig
from .scorer import MotionConfig, MotionScorer, MotionScores, motion_text

__all__ = ["GridConfig", "MotionConfig", "MotionDetector", "MotionScorer", "MotionScores", "motion_text"]
