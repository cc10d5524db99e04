"""The camera attribute says "camera view moved" only where enough of the view stands still to tell."""

from __future__ import annotations

import cv2
import numpy as np

from vlm_anomaly import Pipeline
from vlm_anomaly.synthetic import write_video
from vlm_anomaly.video import Frame, sample_frames

PACE_S = 0.1016  # a 10 fps MJPEG camera's real pace (the tests' server: 100 ms sleep plus writing)


def test_a_car_hiding_most_of_the_path_is_not_a_moved_camera(default_street_model, tmp_path):
    """The intruder clip as an MJPEG camera sends it (JPEG frames, a little under 10 fps), scored
    live every 250 ms from several starting points, as after a reconnection. In the car's last
    second in view, moving things hide most of the path's edges (the view's only structure); the
    few edge cells left matched a shifted background, and a frame was reported as
    "camera view moved" although the camera never moved."""
    clip = write_video(tmp_path / "intruder.mp4", seconds=12, seed=0, anomaly_span=(4.0, 8.0))
    jpg = [cv2.imdecode(cv2.imencode(".jpg", np.ascontiguousarray(f.image[:, :, ::-1]))[1], cv2.IMREAD_COLOR)
           for f in sample_frames(clip, interval_ms=100)]
    jpg = [np.ascontiguousarray(im[:, :, ::-1]) for im in jpg]
    pipe = Pipeline(default_street_model.settings)
    said = []
    for start in range(50, 75, 3):  # 5.1-7.6 s: the car's last seconds in view
        idx = [start + int(round(k * 2.5)) for k in range(12)]
        frames = [Frame(i, round(i * PACE_S, 4), jpg[i], "cam", jpg[i - 1], round((i - 1) * PACE_S, 4))
                  for i in idx if i < len(jpg)]
        res = pipe.scorer(default_street_model.model, interval_ms=250).score_frames(frames)
        said += [(start, f.index, e.get("text")) for f, e in zip(frames, res.explanations) if e.get("kind") == "camera"]
    assert not said, said
