"""Flow and region extraction on generated clips: a fast object among slow ones is found in place."""

from __future__ import annotations

import numpy as np

from vlm_anomaly.attributes.features import MotionConfig, moving_objects
from vlm_anomaly.attributes.flow import motion_field
from vlm_anomaly.attributes.regions import Box, find_regions, merge_boxes
from vlm_anomaly.video import sample_frames

from .scenes import FAST_SPEED, SIDE, background, coverage, fast_position, iou, render, slow_positions


def test_flow_measures_speed_in_source_pixels():
    bg = background()
    prev, _ = render(11, offset=0, fast_span=range(10, 20), bg=bg)
    cur, _ = render(12, offset=0, fast_span=range(10, 20), bg=bg)
    for scale in (0.5, 1.0):
        mf = motion_field(prev, cur, scale=scale)
        x, y = fast_position(12, 10)
        s = scale
        inner = mf.flow[int((y + 4) * s) : int((y + SIDE - 4) * s), int((x + 4) * s) : int((x + SIDE - 4) * s)]
        med = np.median(inner.reshape(-1, 2), axis=0)
        assert abs(med[0] - FAST_SPEED) < 2.0 and abs(med[1]) < 1.0, (scale, med)
    # no previous frame: nothing moves
    assert not motion_field(None, cur).mask.any()


def test_regions_find_every_moving_square_and_the_fast_one_is_fastest():
    bg = background()
    t, span = 13, range(10, 20)
    prev, _ = render(t - 1, offset=0, fast_span=span, bg=bg)
    cur, fast_box = render(t, offset=0, fast_span=span, bg=bg)
    boxes, vel = moving_objects(cur, prev, MotionConfig())
    truth = [(x, y, x + SIDE, y + SIDE) for x, y in slow_positions(t, 0)]
    assert len(boxes) == 4, [b.as_list() for b in boxes]
    for tb in truth:
        assert max(iou(b.as_list(), tb) for b in boxes) > 0.3, (tb, [b.as_list() for b in boxes])
    speeds = np.array([v[-1] for v in vel])
    fastest = boxes[int(np.argmax(speeds))].as_list()
    # a moving object's region spans where it is and where it just was (one frame = 7 px back)
    assert coverage(fastest, fast_box) > 0.8 and iou(fastest, fast_box) > 0.2, (fastest, fast_box)
    assert speeds.max() > FAST_SPEED - 2.5
    slow = [s for b, s in zip(boxes, speeds) if max(iou(b.as_list(), tb) for tb in truth) > 0.3]
    assert slow and max(slow) < 2.5


def test_merge_boxes_joins_touching_parts_only():
    boxes = [Box(0, 0, 10, 10), Box(11, 0, 20, 10), Box(50, 50, 60, 60)]
    merged = merge_boxes(boxes, gap=2)
    assert sorted(b.as_list() for b in merged) == [[0, 0, 20, 10], [50, 50, 60, 60]]


def test_find_regions_drops_specks_and_scales_to_source():
    mask = np.zeros((60, 80), bool)
    mask[10:20, 10:16] = True  # an object
    mask[40, 70] = True  # a speck
    boxes = find_regions(mask, 0.5, (160, 120), min_area_frac=0.005)
    assert [b.as_list() for b in boxes] == [[20, 20, 32, 40]]


def test_sampler_gives_the_source_neighbour_not_the_previous_sample(squares):
    every = {f.index: f.image for f in sample_frames(squares["test"], interval_ms=0)}
    sampled = list(sample_frames(squares["test"], interval_ms=200, with_previous=True))
    assert [f.index for f in sampled][:3] == [0, 5, 10]  # 25 fps folder, 200 ms
    assert sampled[0].previous is None
    for f in sampled[1:]:
        assert np.array_equal(f.previous, every[f.index - 1])


def test_sampler_previous_frame_from_a_video_file(tmp_path):
    from vlm_anomaly.synthetic import write_video

    path = write_video(tmp_path / "clip.avi", seconds=1.0, fps=10)
    every = [f.image for f in sample_frames(path, interval_ms=0)]
    for f in sample_frames(path, interval_ms=300, with_previous=True):
        if f.index == 0:
            assert f.previous is None
        else:
            assert np.array_equal(f.previous, every[f.index - 1])
