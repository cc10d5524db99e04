"""The attribute scorer end to end on generated clips: what fires, where, and the safe round trip."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from vlm_anomaly.attributes import AttributeDetector, AttributeScorer
from vlm_anomaly.detectors import create_detector

from .conftest import FAST_SPAN
from .scenes import coverage

REPO = Path(__file__).resolve().parents[2]


def test_fast_square_gets_the_lowest_scores_and_fires_velocity_where_it_is(squares, trained):
    pipe, model = trained["pipe"], trained["model"]
    result = pipe.score(model, squares["test"])
    raw = result.raw_scores
    fast = np.isin(result.frame_indices, list(FAST_SPAN))
    assert roc_auc_score(fast, -raw) >= 0.95
    assert int(result.frame_indices[np.argmin(raw)]) in FAST_SPAN
    assert len(result.explanations) == result.n_frames
    # while the fast square crosses (after its first frame), velocity fires, at the fast square
    for i in np.flatnonzero(fast)[1:]:
        e = result.explanations[i]
        assert e["attribute"] == "velocity" and "velocity" in e["fired"], e
        assert coverage(e["box"], squares["fast_boxes"][result.frame_indices[i]]) > 0.8, e
        assert e["speed"] > e["normal_speed"]["p99"], e
        nn = e["nearest_normal"]
        assert nn["source"] in ("train1", "train2") and len(nn["box"]) == 4
        assert "velocity fired" in e["text"]
    assert raw[fast].max() < 0 < np.median(raw[~fast])
    # the JSON export carries the explanations; the CSV a one-line text
    doc = json.loads(result.to_json())
    assert doc["frames"][int(np.argmin(raw))]["explanation"]["attribute"] == "velocity"
    assert "explanation" in result.to_csv().splitlines()[0]


def test_save_load_round_trip_reproduces_scores(squares, trained):
    pipe, model = trained["pipe"], trained["model"]
    path = pipe.store.path_for("squares")
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        meta = json.loads(zf.read("model.json"))
    assert all(n == "model.json" or (n.startswith("arrays/") and n.endswith(".npy")) for n in names)
    assert meta["detector"]["name"] == "attributes"
    assert meta["detector"]["attributes"]["sources"] == ["train1", "train2"]
    loaded = pipe.store.load("squares")
    assert isinstance(loaded.detector, AttributeDetector)
    a = pipe.score(model, squares["test"], describe=False)
    b = pipe.score(loaded, squares["test"], describe=False)
    np.testing.assert_allclose(b.raw_scores, a.raw_scores, atol=1e-6, rtol=0)
    assert b.explanations == a.explanations
    # the frame-only path (embeddings alone) survives the round trip too
    X = a.embeddings
    np.testing.assert_allclose(loaded.decision_function(X), model.decision_function(X), atol=1e-6, rtol=0)


def test_scorer_protocol_fit_paths_score_every_frame(squares, trained):
    # same feature cache and sampling as the Pipeline: features extracted by the other tests are reused
    kw = {"cache_dir": trained["home"] / "cache" / "attributes", "max_side": trained["pipe"].settings.max_side}
    scorer = trained["model"].detector.scorer(encoder=trained["pipe"].encoder, **kw)
    scores = scorer.score(squares["test"])
    assert isinstance(scores, np.ndarray) and scores.shape == (28,)
    fresh = AttributeScorer(trained["pipe"].encoder, **kw).fit(squares["train"][:1])
    assert fresh.state.sources == ["train1"]  # one source: held-aside calibration uses time chunks
    assert fresh.score(squares["test"]).shape == (28,)


def test_detector_on_embeddings_alone_is_the_frame_attribute():
    rng = np.random.default_rng(0)
    normal = rng.normal(size=(200, 16))
    det = create_detector("attributes").fit(normal)
    far = normal[:20] + 6.0
    assert det.decision_function(normal).mean() > 0 > det.decision_function(far).max()
    meta, arrays = det.get_state()
    det2 = AttributeDetector.from_state(json.loads(json.dumps(meta)), arrays)
    np.testing.assert_allclose(det2.decision_function(far), det.decision_function(far), atol=1e-6)
    with pytest.raises(ValueError):
        AttributeDetector.from_state(meta, {k: v for k, v in arrays.items() if k != "bank_frame"})


@pytest.mark.slow
def test_cli_train_and_score_with_attributes(run_cli, squares, trained, tmp_path):
    home = trained["home"]  # same feature cache: the CLI wiring is under test
    r = run_cli("train", "cli-squares", *squares["train"], "--detector", "attributes", "--encoder", "efficientnet",
                "--interval-ms", "0", home=home, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "detector attributes" in r.stdout
    out = tmp_path / "report.json"
    r = run_cli("score", "cli-squares", squares["test"], "--json", out, home=home, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "velocity fired" in r.stdout  # the report says why
    frames = json.loads(out.read_text())["frames"]
    assert len(frames) == 28 and all("explanation" in f for f in frames)
    worst = min(frames, key=lambda f: f["raw_score"])
    assert worst["index"] in FAST_SPAN and worst["explanation"]["attribute"] == "velocity"


def test_live_stream_scores_equal_offline_scores(tmp_path, encoder):
    from vlm_anomaly.synthetic import write_video
    from vlm_anomaly.video import sample_frames

    normal = write_video(tmp_path / "a.mp4", seconds=1.2, fps=10, size=(160, 120), seed=1)
    test = write_video(tmp_path / "t.mp4", seconds=1.0, fps=10, size=(160, 120), seed=1, anomaly_span=(0.3, 0.8))
    scorer = AttributeScorer(encoder).fit([str(normal)])
    offline = scorer.score_detailed(str(test))
    live = list(scorer.score_stream(sample_frames(test, interval_ms=0, with_previous=True)))
    assert [f.index for f, _, _ in live] == offline.frame_indices.tolist()
    np.testing.assert_allclose([s for _, s, _ in live], offline.scores, atol=1e-6)
    assert live[5][2]["attribute"] == "velocity" and live[5][1] < 0  # the intruder is on screen
