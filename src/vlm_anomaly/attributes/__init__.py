"""Attribute-based anomaly scoring (Reiss & Hoshen style): how objects move and look, k-NN density.

Modules: ``flow`` (optical flow vs the source's previous frame), ``regions`` (moving blobs -> boxes),
``features`` (velocity, geometry, crop and frame embeddings), ``density`` (k-NN + calibration),
``scorer`` (fit/score/explain), ``detector`` (the registered video detector: the pipeline, live
loops and evaluation reach the scorer through it).
"""

from .detector import AttributeDetector
from .features import FeatureExtractor, MotionConfig, SourceFeatures
from .scorer import ALL_ATTRIBUTES, DEFAULT_FUSED, AttributeConfig, AttributeScorer, AttributeScores, explanation_text

__all__ = [
    "ALL_ATTRIBUTES",
    "DEFAULT_FUSED",
    "AttributeConfig",
    "AttributeDetector",
    "AttributeScorer",
    "AttributeScores",
    "FeatureExtractor",
    "MotionConfig",
    "SourceFeatures",
    "explanation_text",
]

