"""The flow's reference at the frame rates cameras use: every sample measures motion over about
0.1 s, as training (sampled every 100 ms) does, at 10, 15, 25 or 30 fps. Before, the sampler handed
over only the frame just before a sample (33-67 ms old at 15-30 fps, too close to measure), so
motion fell back to the previous sample, 0.5 s back: a walker near the camera then drew an
"unusual shape" (a plaza at 15 fps flagged a third of its normal frames). At 15 or 25 fps it was
worse: the samples fall 0.47/0.53 or 0.48/0.52 s apart by turns, and every other one was measured
against the 40-67 ms neighbour instead."""

from __future__ import annotations

import numpy as np
import pytest

from vlm_anomaly.motion.extract import iter_source
from vlm_anomaly.motion.features import GridConfig, ReferenceBuffer
from vlm_anomaly.synthetic import write_video


def _reference_gaps(path, interval_ms: int) -> list[float]:
    """The gap each sampled frame's motion is measured over, fed as ``CellStream.features`` feeds
    its buffer: the source frame before the sample (when the sampler hands it over), then the sample."""
    cfg = GridConfig()
    refs, gaps, shape = ReferenceBuffer(cfg), [], (4, 4)
    for frame, sampled in iter_source(str(path), interval_ms=interval_ms, config=cfg):
        if not sampled:
            refs.add(frame.timestamp, np.zeros(shape))
            continue
        if frame.previous is not None and frame.previous_timestamp is not None:
            refs.add(frame.previous_timestamp, np.zeros(shape))
        _, gap = refs.reference(frame.timestamp, shape)
        gaps.append(gap)
        refs.add(frame.timestamp, np.zeros(shape))
    return gaps[1:]  # the first sample has no earlier frame


@pytest.mark.parametrize("fps", [10, 15, 25, 30])
def test_every_sample_measures_motion_over_a_usable_gap(tmp_path, fps):
    path = write_video(tmp_path / f"street{fps}.mp4", seconds=6, fps=fps, seed=0)
    cfg = GridConfig()
    for interval_ms in (500, 100):
        gaps = _reference_gaps(path, interval_ms)
        assert len(gaps) >= 6_000 // interval_ms - 2
        assert min(gaps) >= cfg.min_gap_s - 1e-3, (fps, interval_ms, [round(g, 3) for g in gaps])
        assert max(gaps) <= 0.2 + 1e-3, (fps, interval_ms, [round(g, 3) for g in gaps])  # about 0.1 s, as in training
        # one kind of gap per stream: the samples' own spacing (0.5 s), or the frame before them where
        # that is old enough (100 ms at 10 fps), never a mix of the two
        assert max(gaps) - min(gaps) < 0.1, (fps, interval_ms, [round(g, 3) for g in gaps])


def test_a_frame_folder_of_the_camera_runs_at_the_training_videos_rate(tmp_path, default_street_model):
    """A folder of frames carries no timing. Read at a guessed 25 fps, frames of a 10 fps camera
    made every motion 2.5 times faster than normal: the model's own training footage, exported as
    images, was flagged as "fast objects" throughout. The model keeps its videos' rate and reads
    a folder at it, on the saved model too (score, live)."""
    from vlm_anomaly.events.watcher import SourceWatcher
    from vlm_anomaly.normal import mark_normal
    from vlm_anomaly.pipeline import Pipeline
    from vlm_anomaly.synthetic import write_frames

    home = default_street_model.install(tmp_path / "home")
    pipe = Pipeline(default_street_model.settings.model_copy(update={"home": home}))
    model = pipe.load("street")
    assert model.detector.state_.fps == pytest.approx(10.0)  # street-normal.mp4/.avi: 10 fps
    folder = write_frames(tmp_path / "exported", n=80, size=(320, 240), seed=0, fps=10.0)
    res = pipe.score("street", folder)
    assert res.anomaly_rate <= 0.1, res.smoothed_scores
    assert res.n_frames >= 30  # 8 s at 250 ms
    stats = SourceWatcher(pipe, model, str(folder), realtime=False).run()  # `watch` on the folder
    assert stats.frames >= 30 and stats.events == 0, stats
    # its last seconds marked normal: 5-8 s of 8, past the end at 25 fps (3.2 s)
    added = mark_normal(pipe.store, "street", folder, start_s=5.0, settings=pipe.settings)
    assert added.frames >= 10


def test_a_time_lapse_folder_runs_at_the_rate_the_user_gives(tmp_path, default_street_model):
    """A time-lapse or a lab's image sequence is a folder at a rate no file says (here 2 frames a
    second). The setting ``folder_fps`` says it: a model trained on such folders keeps that rate,
    and scoring and watching a folder read it at that rate, so times are the scene's own (40
    frames = 19.5 s, not the 1.6 s of 25 fps)."""
    from vlm_anomaly.events.watcher import SourceWatcher
    from vlm_anomaly.pipeline import Pipeline
    from vlm_anomaly.synthetic import write_frames

    folder = write_frames(tmp_path / "lapse", n=40, size=(320, 240), seed=0, fps=2.0)
    home = default_street_model.install(tmp_path / "home")
    settings = default_street_model.settings.model_copy(update={"home": home})
    settings.folder_fps = 2.0
    pipe = Pipeline(settings)
    res = pipe.score("street", folder)  # a video-trained model: the user's rate wins for folders
    assert res.timestamps[-1] == pytest.approx(19.5, abs=0.01)
    model = pipe.load("street")
    stats = SourceWatcher(pipe, model, str(folder), realtime=False).run()  # `watch` on the folder
    assert stats.last_time == pytest.approx(19.5, abs=0.01), stats

    trained = pipe.fit([folder])  # folders only: the model keeps the rate it was given
    assert trained.detector.state_.fps == pytest.approx(2.0)
    settings.folder_fps = 0.0
    assert Pipeline(settings).fit([folder]).detector.state_.fps == 0.0  # unknown: 25 fps at use
