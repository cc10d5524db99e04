"""Clips stored turned, with a display matrix that turns them upright (a phone held upright, a
recorder set to rotate): read upright, as players and OpenCV show them. Before, their pictures
were analysed and shown on their side, and a clip filmed upside down was another camera's view."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vlm_anomaly.pipeline import Pipeline
from vlm_anomaly.synthetic import write_video
from vlm_anomaly.video import probe, sample_frames


@pytest.mark.parametrize("degrees", [90, -90, 180])
def test_frames_are_read_upright_as_players_show_them(tmp_path, degrees):
    upright = write_video(tmp_path / "upright.mp4", seconds=1, size=(320, 240), codec="libx264")
    turned = write_video(tmp_path / f"turned{degrees}.mp4", seconds=1, size=(320, 240), display_rotation=degrees)
    info = probe(turned)
    assert (info.width, info.height) == (320, 240)  # the size it is shown at
    a = [f.image for f in sample_frames(upright, interval_ms=0)]
    b = [f.image for f in sample_frames(turned, interval_ms=0)]
    assert len(a) == len(b) == 10 and b[0].shape == (240, 320, 3)
    assert max(np.abs(x.astype(int) - y).mean() for x, y in zip(a, b)) < 4  # the same pictures (two encodings)
    cap = cv2.VideoCapture(str(turned))  # OpenCV turns them by the same matrix
    ok, shown = cap.read()
    cap.release()
    assert ok and np.abs(shown[:, :, ::-1].astype(int) - b[0]).mean() < 1


def test_a_clip_filmed_upside_down_scores_as_its_camera(tmp_path, default_street_model):
    """The shipped default, trained on the street's upright clips (its first 12 s), scores a
    stretch of them stored upside down with a half-turn matrix: normal, as it is upright."""
    home = default_street_model.install(tmp_path / "home")
    pipe = Pipeline(default_street_model.settings.model_copy(update={"home": home}))
    clip = write_video(tmp_path / "phone.mp4", seconds=8, size=(320, 240), start_s=2.0, display_rotation=180)
    res = pipe.score("street", clip)
    assert res.n_frames >= 30
    assert res.anomaly_rate <= 0.1, [e.get("text") for e in res.explanations if e]
