"""The persistent training set: videos, embeddings, thumbnails and descriptions survive a restart."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vlm_anomaly import InvalidVideoError, Pipeline, VlmAnomalyError, create_encoder, load_settings
from vlm_anomaly.training_set import TrainingSet
from vlm_anomaly.video import sample_frames


@pytest.fixture(scope="module")
def clips(dash_clips) -> dict[str, Path]:
    return dash_clips


@pytest.fixture(scope="module")
def encoder():
    return create_encoder("efficientnet")


@pytest.fixture()
def pipe(tmp_path, tmp_path_factory, encoder) -> Pipeline:
    cache = tmp_path_factory.getbasetemp() / "dash-cache"
    return Pipeline(load_settings(overrides={"detector": "ocsvm", "home": tmp_path / "home", "cache_dir": cache,
                                             "encoder": "efficientnet", "interval_ms": 500}), encoder=encoder)


def test_add_persists_across_instances(pipe, clips):
    ts = TrainingSet.for_settings(pipe.settings)
    seen = []
    item = ts.add(pipe, clips["normal_a"], progress=lambda d, t, s: seen.append((d, t, s)))
    assert item.name == "normal_a.mp4"
    assert item.frames == 12  # 6 s at 500 ms: 0.0, 0.5, ... 5.5
    assert {s for _, _, s in seen} >= {"encoding", "thumbnails"}
    assert seen[-1][0] == seen[-1][1] == 12
    ts.add(pipe, clips["normal_b"])

    again = TrainingSet(ts.root)  # a browser refresh / restart: a fresh object over the same folder
    assert [i.name for i in again.items()] == ["normal_a.mp4", "normal_b.mp4"]
    assert again.summary() == {"videos": 2, "frames": 24, "duration_s": 11.0}
    assert all(again.video_path(i).is_file() for i in again.items())


def test_same_content_is_kept_once(pipe, clips, tmp_path):
    ts = TrainingSet.for_settings(pipe.settings)
    ts.add(pipe, clips["normal_a"])
    copy = tmp_path / "renamed.mp4"
    copy.write_bytes(clips["normal_a"].read_bytes())
    ts.add(pipe, copy)
    assert len(ts.items()) == 1


def test_review_rows_have_thumbnails_and_descriptions(pipe, clips):
    ts = TrainingSet.for_settings(pipe.settings)
    ts.add(pipe, clips["normal_a"])
    rows = ts.review_rows(pipe)
    assert len(rows) == 12
    assert [r["time"] for r in rows[:3]] == [0.0, 0.5, 1.0]
    for r in rows:
        assert Path(r["thumbnail"]).read_bytes()[:2] == b"\xff\xd8"  # a JPEG
        assert r["description"] and 0.0 < r["confidence"] <= 1.0
    # the thumbnail shows the frame it claims to (same picture, downscaled)
    import cv2

    frame5 = [f for f in sample_frames(clips["normal_a"], interval_ms=500)][5]
    thumb = cv2.cvtColor(cv2.imread(rows[5]["thumbnail"]), cv2.COLOR_BGR2RGB)
    assert thumb.shape == frame5.image.shape  # 320x240 stays 320x240
    assert np.abs(thumb.astype(int) - frame5.image.astype(int)).mean() < 6


def test_remove_deletes_files(pipe, clips):
    ts = TrainingSet.for_settings(pipe.settings)
    a = ts.add(pipe, clips["normal_a"])
    b = ts.add(pipe, clips["normal_b"])
    ts.remove(a.id)
    assert [i.id for i in ts.items()] == [b.id]
    assert not ts.video_path(a).exists()
    assert not (ts.root / "thumbs" / a.id).exists()
    assert not (ts.root / "embeddings" / f"{a.id}.npz").exists()
    with pytest.raises(VlmAnomalyError, match="no video"):
        ts.remove(a.id)


def test_train_from_set_and_nearest_normal_frame(pipe, clips):
    ts = TrainingSet.for_settings(pipe.settings)
    ts.add(pipe, clips["normal_a"])
    ts.add(pipe, clips["normal_b"])
    model = ts.train(pipe, "from-set")
    assert pipe.store.exists("from-set")
    assert [v.name for v in model.videos] == ["normal_a.mp4", "normal_b.mp4"]
    assert model.n_frames == 24 and model.train_embeddings.shape == (24, 1280)

    result = pipe.score("from-set", clips["intruder"])
    worst = int(np.argmin(result.smoothed_scores))
    assert 2.5 <= result.timestamps[worst] < 4.5 + 1.0  # the intruder's span (plus smoothing)
    near = ts.nearest_normal_frame(model, result.embeddings[0])
    # frame 0 of the intruder clip (no intruder yet) is frame 0 of normal_a: same picture
    assert near.video == "normal_a.mp4" and near.frame_index == 0 and near.similarity > 0.99
    assert near.jpeg[:2] == b"\xff\xd8"


def test_changed_interval_re_embeds_at_training(pipe, clips):
    ts = TrainingSet.for_settings(pipe.settings)
    item = ts.add(pipe, clips["normal_a"])
    faster = Pipeline(pipe.settings.model_copy(update={"interval_ms": 1000}), encoder=pipe.encoder)
    assert ts.is_stale(item, faster)
    model = ts.fit(faster)
    assert model.n_frames == 6 and model.interval_ms == 1000
    assert ts.items()[0].frames == 6 and not ts.is_stale(ts.items()[0], faster)


def test_params_round_trip(tmp_path):
    ts = TrainingSet(tmp_path / "ts")
    assert ts.load_params() == {}
    ts.save_params({"interval_ms": 250, "expected_objects": ["person", "cart"]})
    assert TrainingSet(tmp_path / "ts").load_params()["expected_objects"] == ["person", "cart"]
    assert json.loads((tmp_path / "ts" / "settings.json").read_text())["interval_ms"] == 250


def test_saved_params_are_a_layer_of_the_settings_loader(tmp_path, monkeypatch):
    """The Train page's saved parameters reach the settings through load_settings: above the
    file and the environment, below explicit overrides, validated like every other layer."""
    from vlm_anomaly.config import load_settings
    from vlm_anomaly.errors import ConfigError

    cfg = tmp_path / "config.yaml"
    cfg.write_text("interval_ms: 1000\nnu: 0.2\nbatch_size: 4\n")
    monkeypatch.setenv("VLM_ANOMALY_DETECTOR", "patch-knn")
    ts = TrainingSet(tmp_path / "ts")
    ts.save_params({"interval_ms": 250, "detector": "ocsvm", "expected_objects": ["person", "cart"]})
    s = ts.settings(cfg, overrides={"interval_ms": 500, "nu": None})
    assert (s.interval_ms, s.detector, s.expected_objects, s.nu, s.batch_size) == (
        500, "ocsvm", ["person", "cart"], 0.2, 4)
    assert s == load_settings(cfg, saved=ts.load_params(), overrides={"interval_ms": 500})
    assert ts.settings(cfg).interval_ms == 250

    with pytest.raises(ConfigError, match="invalid setting interval_ms"):
        ts.save_params({"interval_ms": 50})
    with pytest.raises(ConfigError, match="not a training parameter: home"):
        ts.save_params({"home": str(tmp_path)})
    assert ts.load_params()["interval_ms"] == 250  # nothing bad was written
    # a key that is not (or no longer) a training parameter in an old file sets nothing
    (tmp_path / "ts" / "settings.json").write_text(json.dumps({"interval_ms": 250, "max_watchers": 2}))
    assert ts.settings(cfg).max_watchers == load_settings(cfg).max_watchers == 8


def test_bad_input_is_refused(pipe, tmp_path):
    ts = TrainingSet.for_settings(pipe.settings)
    txt = tmp_path / "notes.txt"
    txt.write_text("hello")
    with pytest.raises(InvalidVideoError, match="not a video"):
        ts.add(pipe, txt)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 1000)
    with pytest.raises(InvalidVideoError):
        ts.add(pipe, broken)
    assert ts.items() == [] and not any((ts.root / "videos").glob("*"))
    with pytest.raises(InvalidVideoError, match="empty"):
        ts.fit(pipe)
