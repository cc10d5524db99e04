"""Model files edited by hand in the store: listed or refused with one line, never a traceback."""

from __future__ import annotations

import json
import zipfile

from streamlit.testing.v1 import AppTest

from tests.helpers import rendered
from vlm_anomaly.ui import state


def _page(name: str) -> AppTest:
    return AppTest.from_string(f"from vlm_anomaly.ui import {name}\n{name}.render()", default_timeout=240).run()


def _tamper(name: str, new: str, change) -> None:
    store = state.model_store()
    with zipfile.ZipFile(store.path_for(name)) as src, zipfile.ZipFile(store.path_for(new), "w") as out:
        for item in src.namelist():
            data = src.read(item)
            if item == "model.json":
                meta = json.loads(data)
                change(meta)
                data = json.dumps(meta).encode()
            out.writestr(item, data)


def test_models_page_lists_the_store_around_a_tampered_model(trained):
    _tamper(trained, "bad-training", lambda m: m.update(training="x"))
    try:
        at = _page("models_page")
        assert not at.exception, at.exception
        assert at.selectbox(key="models_pick").options == [trained]  # the readable ones
    finally:
        state.model_store().path_for("bad-training").unlink()


def test_test_page_refuses_a_model_with_a_tampered_calibration(trained, dash_clips):
    _tamper(trained, "bad-target", lambda m: m.setdefault("extra", {}).update(target_false_alarm="abc"))
    try:
        at = _page("test_page")
        at.selectbox(key="test_model").set_value("bad-target").run()
        clip = dash_clips["intruder"]
        at.file_uploader(key="test_upload").set_value((clip.name, clip.read_bytes(), "video/mp4")).run()
        next(b for b in at.button if b.label == "Analyse").click().run()
        assert not at.exception, at.exception
        assert len(at.error) == 1 and "target_false_alarm" in rendered(at.error[0].value)
    finally:
        state.model_store().path_for("bad-target").unlink()
