"""The dashboard with the shipped default detector (motion): the Train page offers motion's settings,
shows the training frames without zero-shot labels and a readable model summary; the Test page draws
the score bands of the model's own calibration on an axis that follows the scores."""

from __future__ import annotations

import json

import pytest

from tests.ui.test_ui_pages import assert_no_traceback, button, metrics, mp4, page
from vlm_anomaly.results import CALIBRATED_BANDS, SCORE_BANDS, score_bands
from vlm_anomaly.store import ModelStore
from vlm_anomaly.training_set import TrainingSet


@pytest.fixture(scope="module")
def motion_env(tmp_path_factory):
    """A fresh home with the shipped default detector (nothing pins it); the encoder is pinned to the
    offline one and the interval to 500 ms, as in the other dashboard tests."""
    home = tmp_path_factory.mktemp("motion-home")
    env = {"VLM_ANOMALY_HOME": str(home), "VLM_ANOMALY_ENCODER": "efficientnet", "VLM_ANOMALY_INTERVAL_MS": "500",
           "VLM_ANOMALY_CACHE_DIR": str(tmp_path_factory.getbasetemp() / "dash-cache"), "HF_HUB_OFFLINE": "1"}
    from streamlit import config as st_config

    before = st_config.get_option("server.address")
    st_config.set_option("server.address", "localhost")
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        for k in ("VLM_ANOMALY_CONFIG", "VLM_ANOMALY_DETECTOR"):
            mp.delenv(k, raising=False)
        yield home
    st_config.set_option("server.address", before)


def _texts(at) -> list[str]:
    """Every text the page shows (markdown, captions, tables, metrics, messages)."""
    out = [e.value for kind in ("markdown", "caption", "success", "info", "subheader") for e in at.get(kind)]
    out += [m.value for m in at.metric]
    for t in at.table:
        out += [str(v) for v in t.value.reset_index().to_numpy().ravel()] + [str(c) for c in t.value.columns]
    return out


def test_train_page_speaks_the_motion_detector(motion_env, dash_clips):
    at = page("train_page")
    assert_no_traceback(at)
    assert at.selectbox(key="train_detector").value == "motion"  # the shipped default
    # the settings that matter for motion, not the embedding detectors'
    labels = [w.label for kind in ("selectbox", "text_input", "slider", "number_input", "checkbox")
              for w in at.get(kind)]
    assert "False-alarm target (share of normal frames)" in labels and "Appearance of moving objects" in labels
    assert not {"Encoder", "OpenCLIP model", "Expected objects (comma-separated)", "Features", "gamma"} & set(labels)
    assert not any(lab.startswith("nu ") for lab in labels)
    at.number_input(key="train_target_fa").set_value(0.02)
    at.checkbox(key="train_appearance").uncheck()
    button(at, "Save parameters").click().run()
    assert_no_traceback(at)
    saved = TrainingSet(motion_env / "training_set").load_params()
    assert saved["target_false_alarm"] == 0.02 and saved["motion_appearance"] is False

    at.file_uploader(key="train_upload").set_value([mp4(dash_clips["normal_a"]), mp4(dash_clips["normal_b"])]).run()
    button(at, "Process and add to training set").click().run()
    assert_no_traceback(at)
    assert metrics(at)["Frames"] == "24"
    # the review shows the sampled frames, not ImageNet labels of them
    assert "3. Review the frames" in [h.value for h in at.subheader]
    review = at.dataframe[1].value
    assert len(review) == 24 and list(review.columns) == ["thumbnail", "video", "time"]
    assert review["thumbnail"].str.startswith("data:image/jpeg;base64,").all()

    at.text_input(key="train_model_name").set_value("street")
    button(at, "Train model").click().run()
    assert_no_traceback(at)
    model = ModelStore(motion_env / "models").load("street")
    assert model.detector.name == "motion" and model.extra["target_false_alarm"] == 0.02
    summary = at.table[-1].value
    rows = dict(zip(summary.index, summary["street"]))
    assert rows["False-alarm target"] == "2.0 % of normal frames"
    assert rows["Threshold"].startswith(f"{model.threshold:+.2f} (score scale: 0 = threshold")
    assert rows["Calibration"].endswith(f"{100 * model.extra['heldout_flagged']:.1f} % of their frames flagged")
    # the motion default reads its training clips every 100 ms (denser than the 500 ms it scores at: 24 review frames)
    assert model.n_frames > 4 * 24
    assert rows["Training"] == f"2 clip(s), {model.n_frames} frames (a frame every 100 ms; scores a frame every 500 ms)"
    looks_at = rows["Detector"].removeprefix("motion (looks at: ").removesuffix(")").split(", ")
    assert {"object", "shape", "scene", "camera"} <= set(looks_at) and "appearance" not in looks_at  # appearance off
    assert "Encoder" in rows
    # two clips are too few for a trustworthy threshold: the page says so, as `train` does
    assert [w.value for w in at.warning] == [f"Warning: {model.extra['warning']}"]
    assert "only 2 training clips" in model.extra["warning"]
    # no raw parameter dict anywhere on the page
    assert not [t for t in _texts(at) if "{" in t or "'config'" in t], _texts(at)


def test_test_page_bands_and_axis_follow_the_model(motion_env, dash_clips):
    assert ModelStore(motion_env / "models").load("street")  # trained by the test above
    at = page("test_page")
    at.selectbox(key="test_model").set_value("street")
    at.file_uploader(key="test_upload").set_value(mp4(dash_clips["intruder"])).run()
    button(at, "Analyse").click().run()
    assert_no_traceback(at)
    assert int(metrics(at)["Anomalies"]) > 0
    result = at.session_state["test"]["result"]
    model = ModelStore(motion_env / "models").load("street")
    assert at.session_state["test"]["bands"] == score_bands(model.extra) == CALIBRATED_BANDS

    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    layout = fig["layout"]
    bands = {a["text"] for a in layout.get("annotations", [])} - {"threshold +0.00"}
    assert "anomalous" in bands and not {"strong anomaly", "borderline", "very normal"} & bands, bands
    rects = [s for s in layout["shapes"] if s.get("type") == "rect"]
    edges = {round(v, 6) for s in rects for v in (s["y0"], s["y1"])}
    assert 0.0 in edges and (1.0 in edges or result.smoothed_scores.max() < 1.0)  # threshold, median normal
    lo, hi = layout["yaxis"]["range"]
    scores = [*result.raw_scores, *result.smoothed_scores, 0.0]
    pad = max(0.08 * (max(scores) - min(scores)), 0.25)
    assert lo == pytest.approx(min(scores) - pad) and hi == pytest.approx(max(scores) + pad)
    cap = next(c.value for c in at.caption if c.value.startswith("Score bands from the model's calibration"))
    assert "flags 2.0 % of them" in cap


def test_models_page_lists_what_a_motion_model_has(motion_env):
    at = page("models_page")
    assert_no_traceback(at)
    table = at.dataframe[0].value.set_index("name")
    assert table.loc["street", "false-alarm target"] == 0.02
    assert not {"nu", "gamma"} & set(table.columns)  # the One-Class SVM's, not this model's


def test_models_without_calibration_keep_the_svm_bands():
    assert score_bands({"runtime": "torch"}) == SCORE_BANDS
    assert score_bands({"target_false_alarm": 0.01, "heldout_flagged": 0.008}) == CALIBRATED_BANDS
