"""Fixtures for the dashboard tests: real clips, an isolated home folder, a real small model."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def dash_env(tmp_path_factory):
    """Point the app at a fresh home (models, training set) with the offline encoder, 500 ms sampling."""
    home = tmp_path_factory.mktemp("dash-home")
    env = {"VLM_ANOMALY_HOME": str(home), "VLM_ANOMALY_ENCODER": "efficientnet", "VLM_ANOMALY_INTERVAL_MS": "500",
           # the page tests check the embedding pipeline's review (descriptions, filters by word, prompts);
           # the browser test (test_ui_browser.py) drives the shipped default, motion
           "VLM_ANOMALY_DETECTOR": "ocsvm",
           "VLM_ANOMALY_CACHE_DIR": str(tmp_path_factory.getbasetemp() / "dash-cache"), "HF_HUB_OFFLINE": "1",
           # what the Live page may open on the server (as the REST API): the test clips, camera 7 (absent:
           # its error is tested), the tests' HTTP servers on 127.0.0.1
           "VLM_ANOMALY_ALLOWED_MEDIA_DIRS": str(tmp_path_factory.getbasetemp() / "dash-clips"),
           "VLM_ANOMALY_ALLOWED_CAMERAS": "7", "VLM_ANOMALY_ALLOWED_URL_SCHEMES": "http",
           "VLM_ANOMALY_ALLOWED_URL_HOSTS": "127.0.0.1"}
    from streamlit import config as st_config

    before = st_config.get_option("server.address")
    # AppTest serves nothing; the app is told it listens on localhost, as `vlm-anomaly ui` runs it
    st_config.set_option("server.address", "localhost")
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        mp.delenv("VLM_ANOMALY_CONFIG", raising=False)
        yield home
    st_config.set_option("server.address", before)


@pytest.fixture(scope="module")
def trained(dash_env, dash_clips):
    """A model named 'office' trained (through the library) on a training set of the two normal clips."""
    from vlm_anomaly import load_settings
    from vlm_anomaly.training_set import TrainingSet
    from vlm_anomaly.ui import state

    s = load_settings()
    pipe = state.pipeline(s)
    ts = TrainingSet.for_settings(s)
    for clip in (dash_clips["normal_a"], dash_clips["normal_b"]):
        ts.add(pipe, clip)
    ts.train(pipe, "office")
    return "office"
