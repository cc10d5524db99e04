"""Few short training clips: the user is told at training time what to expect.

A threshold calibrated on three short clips covers only the moments they show: on Ped2, three
60-frame training clips flagged 0-100 % of test 02's normal start depending on *which* clips, at
every frame size alike (docs/motion.md, item 24). Nothing in the scores can know what the clips
left out, so training says so, in the CLI and in the model file.
"""

from __future__ import annotations

import pytest

from vlm_anomaly import Pipeline, load_settings
from vlm_anomaly.motion.calibration import MIN_CALIBRATION_CLIPS, few_clips_warning
from vlm_anomaly.synthetic import reencode, write_video


@pytest.mark.slow
def test_training_on_three_short_clips_warns_and_scoring_at_half_size_still_runs(tmp_path, run_cli):
    """The user's case: three 4 s clips of a street camera, then its half-size sub-stream."""
    clips = [write_video(tmp_path / f"normal{i}.mp4", seconds=4, seed=0, start_s=4.0 * i) for i in range(3)]
    home = tmp_path / "home"
    r = run_cli("train", "few", *map(str, clips), home=home)
    assert r.returncode == 0, r.stderr
    assert "warning: the threshold was calibrated on only 3 training clips" in r.stdout
    assert "add clips from other times of day" in r.stdout
    model = Pipeline(load_settings(overrides={"home": str(home)})).load("few")
    assert model.extra["calibration_clips"] == 3
    assert "only 3 training clips" in model.extra["warning"]
    # the same scene at half size, a later moment: scored with the model that warned
    later = write_video(tmp_path / "later.mp4", seconds=4, seed=0, start_s=20.0)
    half = reencode(later, tmp_path / "later_half.mp4", scale=0.5)
    r = run_cli("score", "few", str(half), home=home)
    assert r.returncode == 0, r.stderr


def test_the_warning_names_the_chance_and_stops_at_enough_clips():
    assert "about 1 in 2" in few_clips_warning(1) and "1 training clip:" in few_clips_warning(1)
    assert "about 1 in 4" in few_clips_warning(3)
    assert few_clips_warning(MIN_CALIBRATION_CLIPS - 1)
    assert few_clips_warning(MIN_CALIBRATION_CLIPS) == ""
