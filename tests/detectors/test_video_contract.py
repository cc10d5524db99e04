"""A detector that reads the video plugs in through its own module and one registry line.

``example_video_detector`` touches nothing in ``src/``; here it trains through the pipeline, saves
and loads through the model store, scores a file, scores the same file live (the stream scorer that the
dashboard, ``watch``, the API and Ray run) with the same numbers, and is evaluated like any other detector.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from tests.scenes import write_clip
from vlm_anomaly import Pipeline, load_settings
from vlm_anomaly.detectors import detector_names
from vlm_anomaly.evaluation import PipelineScorer, create_scorer, evaluate, load_dataset
from vlm_anomaly.events.live_scoring import StreamScorer
from vlm_anomaly.events.sinks import StoreSink
from vlm_anomaly.events.store import EventStore
from vlm_anomaly.events.watcher import SourceWatcher
from vlm_anomaly.video import sample_frames
from vlm_anomaly.video.frames import PREVIOUS_GAP_S
from vlm_anomaly.video.sources import DEFAULT_FOLDER_FPS

from .example_video_detector import FrameDiffDetector

FAST = range(10, 22)  # frames where a fast square crosses the test clip


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    root = tmp_path_factory.mktemp("diff-scene")
    write_clip(root / "train" / "a", n=24, offset=0)
    write_clip(root / "train" / "b", n=24, offset=6)
    write_clip(root / "test" / "fast", n=28, offset=3, fast_span=FAST)
    labels = [int(i in FAST) for i in range(28)]
    (root / "test_labels.json").write_text(json.dumps({"fast": labels}))
    return root


@pytest.fixture(scope="module")
def pipe(scene, efficientnet_encoder, tmp_path_factory):
    home = tmp_path_factory.mktemp("diff-home")
    s = load_settings(overrides={"home": home, "encoder": "efficientnet", "detector": "frame-diff",
                                 "interval_ms": 0, "threads": 2, "event_min_duration_s": 0.0})
    return Pipeline(s, encoder=efficientnet_encoder)


def test_train_save_load_and_score_a_file(scene, pipe):
    assert "frame-diff" in detector_names()
    trained = pipe.train("diff", [str(scene / "train" / "a"), str(scene / "train" / "b")])
    model = pipe.store.load("diff")
    assert type(model.detector) is FrameDiffDetector
    np.testing.assert_array_equal(model.detector.state_, trained.detector.state_)
    assert [v.frames for v in model.videos] == [24, 24] and len(model.train_embeddings) == 48

    res = pipe.score("diff", str(scene / "test" / "fast"))
    assert len(res.raw_scores) == 28 and len(res.explanations) == 28
    assert "motion energy" in res.explanations[15]["text"]
    # the fast square's frames, and those right after it vanished whose earlier frame (the newest at
    # least PREVIOUS_GAP_S back: 3 frames in a folder read at 25 fps) still holds it
    back = math.ceil(PREVIOUS_GAP_S * DEFAULT_FOLDER_FPS - 1e-6)
    fast = np.isin(res.frame_indices, [*FAST, *range(FAST.stop, FAST.stop + back)])
    assert res.raw_scores[fast].max() < 0 < res.raw_scores[~fast].min()
    assert len(res.descriptions) == 28  # whole-frame embeddings feed the descriptions


def test_live_engine_and_watch_give_the_file_scores(scene, pipe):
    model = pipe.store.load("diff")
    offline = pipe.score(model, str(scene / "test" / "fast"), describe=False)

    scorer = StreamScorer(pipe, model)  # what the dashboard, watch, API and Ray run
    assert scorer.needs_previous
    frames = list(sample_frames(str(scene / "test" / "fast"), interval_ms=0, with_previous=True))
    live = [s.score for k in range(0, len(frames), 5) for s in scorer.score(frames[k:k + 5])]
    np.testing.assert_allclose(live, offline.raw_scores)

    store = EventStore.from_settings(pipe.settings)
    w = SourceWatcher(pipe, model, str(scene / "test" / "fast"), sinks=[StoreSink(store)], realtime=False)
    stats = w.run()
    assert stats.status == "ended" and stats.frames == 28
    assert stats.events >= 1
    assert all("motion energy" in d["text"] for ev in w.records for d in ev.descriptions)


def test_evaluated_like_any_detector(scene, pipe):
    scorer = create_scorer("frame-diff", pipe.settings)
    assert isinstance(scorer, PipelineScorer)
    report = evaluate(load_dataset(scene), scorer)
    assert report.pooled.auc > 0.9
