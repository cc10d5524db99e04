"""The fusion and region options of docs/motion.md item 27: one-sided fusion (`evidence_only`) and
moving regions at the frame's edge (`edge_regions`), and that models saved before them score as before."""

from __future__ import annotations

import numpy as np

from vlm_anomaly.motion.regions import at_edge
from vlm_anomaly.motion.scorer import MotionConfig, MotionScorer, MotionState


def _blob(x0: float, x1: float, y0: float, y1: float, w: int = 360, h: int = 240) -> list[float]:
    """A moving region's row (centre in frame fractions, width and height in frame heights)."""
    return [(x0 + x1) / 2 / w, (y0 + y1) / 2 / h, (x1 - x0) / h, (y1 - y0) / h, 0.7, 0.5, 0.1, 0.0]


def test_regions_touching_the_frame_edge_are_found_and_inner_ones_are_not():
    blobs = np.array([_blob(0, 18, 104, 176), _blob(352, 360, 151, 175), _blob(100, 140, 120, 160),
                      _blob(2, 30, 100, 150), _blob(200, 240, 0, 40), _blob(200, 240, 200, 240)], np.float32)
    assert at_edge(blobs, (360, 240), 160).tolist() == [True, True, False, False, True, True]


def test_one_sided_fusion_ignores_attributes_more_typical_than_usual():
    """A frame where one attribute is far below its median (few moving regions: a low worst-region
    distance) and another clearly above it: the plain sum hides the evidence, the one-sided sum keeps it."""
    z = {"object": np.array([4.0, 0.0]), "appearance": np.array([-3.5, 0.0]), "shape": np.array([0.5, -1.0])}
    has_motion = np.ones(2, bool)
    plain = MotionState(MotionConfig(fused=("object", "appearance", "shape")), 10, [])
    one_sided = MotionState(MotionConfig(fused=("object", "appearance", "shape"), evidence_only=True), 10, [])
    np.testing.assert_allclose(MotionScorer._fuse(plain, z, has_motion), [1.0, -1.0])
    np.testing.assert_allclose(MotionScorer._fuse(one_sided, z, has_motion), [4.5, 0.0])


def test_models_saved_before_the_options_keep_the_plain_sum_and_their_edge_regions():
    saved = MotionConfig().as_dict()
    for key in ("evidence_only", "edge_regions"):
        saved.pop(key)
    old = MotionConfig.from_dict(saved)
    assert old.evidence_only is False and old.edge_regions is True
    # and a model saved with the options keeps them
    new = MotionConfig.from_dict(MotionConfig(evidence_only=True, edge_regions=False).as_dict())
    assert new.evidence_only is True and new.edge_regions is False
