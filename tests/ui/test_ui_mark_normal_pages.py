"""“This was normal” on the dashboard's pages through Streamlit's AppTest (the browser test,
test_ui_mark_normal.py, drives the incident, Live page and Models page flows): a time range of the
scored video, with the shipped default detector, and what the dashboard lets a user read."""

from __future__ import annotations

import pytest

from tests.ui.test_ui_pages import assert_no_traceback, button, metrics, mp4, page
from vlm_anomaly.errors import SourceNotAllowedError
from vlm_anomaly.store import ModelStore


@pytest.fixture(scope="module")
def street(tmp_path_factory, dash_clips):
    """A fresh home with the shipped default detector (nothing pins it) and a model 'street' trained
    through the library on the two normal clips; the Live page may open the test clips' folder only."""
    home = tmp_path_factory.mktemp("normal-home")
    env = {"VLM_ANOMALY_HOME": str(home), "VLM_ANOMALY_ENCODER": "efficientnet", "VLM_ANOMALY_INTERVAL_MS": "500",
           "VLM_ANOMALY_CACHE_DIR": str(tmp_path_factory.getbasetemp() / "dash-cache"), "HF_HUB_OFFLINE": "1",
           "VLM_ANOMALY_ALLOWED_MEDIA_DIRS": str(dash_clips["intruder"].parent)}
    from streamlit import config as st_config

    before = st_config.get_option("server.address")
    st_config.set_option("server.address", "localhost")
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        for k in ("VLM_ANOMALY_CONFIG", "VLM_ANOMALY_DETECTOR"):
            mp.delenv(k, raising=False)
        from vlm_anomaly import load_settings
        from vlm_anomaly.training_set import TrainingSet
        from vlm_anomaly.ui import state

        s = load_settings()
        assert s.detector == "motion"
        ts = TrainingSet.for_settings(s)
        for clip in (dash_clips["normal_a"], dash_clips["normal_b"]):
            ts.add(state.pipeline(s), clip)
        ts.train(state.pipeline(s), "street")
        yield home
    st_config.set_option("server.address", before)


def test_time_range_marked_normal_then_undone(street, dash_clips):
    store = ModelStore(street / "models")
    flagged = store.load("street").extra.get("heldout_flagged")
    at = page("test_page")
    at.selectbox(key="test_model").set_value("street")
    at.file_uploader(key="test_upload").set_value(mp4(dash_clips["intruder"])).run()
    button(at, "Analyse").click().run()
    assert_no_traceback(at)
    assert int(metrics(at)["Anomalies"]) > 0

    # the stretch with the intruder (from 1.5 s: the centred smoothing flags it early) to the end: the
    # samples at 1.5, 2.0, ... 5.5 s
    at.slider(key="test_normal_range").set_value((1.5, 5.5)).run()
    button(at, "Mark this range normal").click().run()
    assert_no_traceback(at)
    said = [s.value for s in at.success]
    assert "Learned 4.0 s of intruder.mp4 (9 frames) as normal: model street recalibrated." in said, said
    [added] = store.load("street").normal_additions
    assert (added["source"], added["start_s"], added["end_s"]) == ("intruder.mp4", 1.5, 5.5)
    assert added["note"] == "time range of intruder.mp4 (Test page)"
    button(at, "Analyse again").click().run()
    assert_no_traceback(at)
    assert metrics(at)["Anomalies"] == "0"
    assert "No incident at this threshold." in [i.value for i in at.info]

    button(at, "Undo").click().run()
    assert_no_traceback(at)
    assert any(i.value.startswith("Undone: model street no longer counts") for i in at.info)
    model = store.load("street")
    assert model.normal_additions == [] and model.extra.get("heldout_flagged") == flagged
    button(at, "Analyse again").click().run()
    assert int(metrics(at)["Anomalies"]) > 0


def test_dashboard_reads_only_uploads_and_allowed_files(street, dash_clips, tmp_path):
    """What "This was normal" may read: a video uploaded to the dashboard, or a file the source policy
    (the REST API's allow-lists) lets anyone open - never any other file on the server."""
    from vlm_anomaly.ui import state

    up = state.upload_dir() / "abc" / "x.mp4"
    assert state.allowed_source(str(up)) == str(up)
    assert state.allowed_source(str(dash_clips["intruder"])) == str(dash_clips["intruder"].resolve())
    outside = tmp_path / "secret.mp4"
    outside.write_bytes(dash_clips["intruder"].read_bytes())
    with pytest.raises(SourceNotAllowedError):
        state.allowed_source(str(outside))
    with pytest.raises(SourceNotAllowedError):  # a way out of the upload folder
        state.allowed_source(str(state.upload_dir() / ".." / outside.name))


def test_a_model_that_cannot_learn_says_so(street, dash_clips):
    """A One-Class SVM keeps no normal examples to add to: marking says to retrain, nothing changes."""
    from vlm_anomaly import load_settings
    from vlm_anomaly.training_set import TrainingSet
    from vlm_anomaly.ui import state

    s = load_settings(overrides={"detector": "ocsvm"})
    TrainingSet.for_settings(s).train(state.pipeline(s), "svm")
    store = ModelStore(street / "models")
    before = store.path_for("svm").read_bytes()
    at = page("test_page")
    at.selectbox(key="test_model").set_value("svm")
    at.file_uploader(key="test_upload").set_value(mp4(dash_clips["intruder"])).run()
    button(at, "Analyse").click().run()
    button(at, "Mark this range normal").click().run()
    assert_no_traceback(at)
    assert any("cannot learn without retraining" in e.value for e in at.error), [e.value for e in at.error]
    assert not at.success
    assert store.path_for("svm").read_bytes() == before  # the model file is untouched
