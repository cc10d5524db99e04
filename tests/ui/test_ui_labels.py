"""The Test page's optional ground-truth labels: a hostile file is a one-line error."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest


def test_deeply_nested_labels_file_is_a_one_line_error(trained, dash_clips):
    at = AppTest.from_string("from vlm_anomaly.ui import test_page\ntest_page.render()", default_timeout=240).run()
    clip = dash_clips["intruder"]
    at.file_uploader(key="test_upload").set_value((clip.name, clip.read_bytes(), "video/mp4")).run()
    next(b for b in at.button if b.label == "Analyse").click().run()
    at.file_uploader(key="test_labels").set_value(("labels.json", b"[" * 100_000, "application/json")).run()
    assert not at.exception, at.exception
    assert [e.value for e in at.error] == ["labels.json: labels file is not valid JSON: nested too deeply"]
    assert at.metric  # the scores are still shown
