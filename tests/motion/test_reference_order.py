"""The flow reference of each sample is the source frame the sample brings (the newest at least
``PREVIOUS_GAP_S`` older), also when the sample before it is nearer in time."""

from __future__ import annotations

import pytest

from vlm_anomaly.motion.features import GridConfig, ReferenceBuffer, work_gray
from vlm_anomaly.synthetic import write_video
from vlm_anomaly.video import sample_frames


@pytest.mark.parametrize("fps", [15, 25])
def test_each_sample_is_measured_against_the_frame_it_brings(tmp_path, fps):
    """A 15 or 25 fps file sampled every 100 ms (how the default trains): samples fall 0.12-0.13 and
    0.07-0.08 s apart by turns, so every other sample's own earlier frame is older than the sample
    before it. The buffer dropped it, and motion was measured 0.2 s back instead of 0.12-0.13 s."""
    cfg = GridConfig()
    refs = ReferenceBuffer(cfg)
    spans = []
    for f in sample_frames(write_video(tmp_path / f"c{fps}.mp4", seconds=2, fps=fps), interval_ms=100,
                           with_previous=True):
        gray = work_gray(f.image, cfg)
        if f.previous is not None:  # as CellStream.features hands them over
            refs.add(f.previous_timestamp, work_gray(f.previous, cfg))
            ref, gap = refs.reference(f.timestamp, gray.shape)
            spans.append((round(f.timestamp - f.previous_timestamp, 3), round(gap, 3)))
        refs.add(f.timestamp, gray)
    assert len(spans) >= 15
    assert all(gap == brought for brought, gap in spans), spans
    assert max(gap for _, gap in spans) < 0.14
