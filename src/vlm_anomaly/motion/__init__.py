"""Motion detector (the default): how fast and how big moving things are (position-free, in units
of a normal object's height at that place) and what moving things look like per place, at a fixed
working resolution in resolution- and frame-rate-free units, calibrated on held-out normal clips to
a target false-alarm rate.

Modules: ``features`` (working frames, DIS flow, cell features, moving regions, reference frames),
``objects`` (position-free object features, perspective), ``extract`` (sources -> features, chunk
by chunk), ``density`` (per-cell KD-tree k-NN), ``scorer`` (fit/score/explain), ``detector`` (the
video detector the ModelStore saves).
"""

from .detector import MotionDetector
from .features import GridConfig
from .scorer import MotionConfig, MotionScorer, MotionScores, motion_text

__all__ = ["GridConfig", "MotionConfig", "MotionDetector", "MotionScorer", "MotionScores", "motion_text"]
