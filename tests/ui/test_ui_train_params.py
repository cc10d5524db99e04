"""The Train page offers a detector's parameters only for the detectors that take them."""

from __future__ import annotations

import json

from tests.ui.test_ui_pages import assert_no_traceback, button, page
from vlm_anomaly.training_set import TrainingSet


def _fields(at) -> tuple[bool, bool]:
    """(nu slider shown, gamma field shown)."""
    return (any(s.label.startswith("nu ") for s in at.slider), any(t.label == "gamma" for t in at.text_input))


def test_nu_and_gamma_only_for_the_detectors_that_take_them(dash_env):
    at = page("train_page")
    assert_no_traceback(at)
    detector = at.selectbox(key="train_detector")
    assert detector.value == "ocsvm" and _fields(at) == (True, True)
    # the built-in ones, not the removed ones (a test may have registered an example detector)
    assert {"ocsvm", "patch-knn", "motion"} <= set(detector.options)
    assert not {"gaussian", "knn", "attributes", "patchcore"} & set(detector.options)
    detector.set_value("patch-knn").run()
    assert _fields(at) == (True, False)
    at.selectbox(key="train_detector").set_value("motion").run()
    assert _fields(at) == (False, False)
    button(at, "Save parameters").click().run()
    assert_no_traceback(at)
    saved = TrainingSet(dash_env / "training_set").load_params()
    assert saved["detector"] == "motion" and saved["nu"] == 0.1 and saved["gamma"] == "scale"


def test_saved_parameters_naming_a_removed_detector_still_open_the_page(dash_env):
    path = dash_env / "training_set" / "settings.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"detector": "gaussian", "features": "patches", "interval_ms": 250}))
    at = page("train_page")
    assert_no_traceback(at)
    assert not at.error, [e.value for e in at.error]
    assert at.selectbox(key="train_detector").value == "ocsvm"  # the environment's, below the saved layer
    assert TrainingSet(dash_env / "training_set").load_params() == {"interval_ms": 250}
