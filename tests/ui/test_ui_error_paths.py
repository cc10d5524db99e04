"""Errors about an uploaded video name the file the user uploaded, not where the server keeps its copies."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from vlm_anomaly.ui import state

TIMEOUT = 240
CORRUPT = b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 500  # an MP4 header, then nothing a decoder reads


def _page(name: str) -> AppTest:
    return AppTest.from_string(f"from vlm_anomaly.ui import {name}\n{name}.render()", default_timeout=TIMEOUT).run()


def _click(at: AppTest, label: str) -> None:
    next(b for b in at.button if b.label == label).click().run()


def _assert_names_only_the_upload(errors: list[str], name: str, home: Path) -> None:
    assert errors, "no error shown"
    for said in errors:
        assert said.startswith(f"{name}: ") and said.count(name) == 1, said
        for server_path in (str(home), str(state.upload_dir()), "/tmp/"):
            assert server_path not in said, said


def test_train_page_corrupt_upload_names_the_upload(dash_env):
    at = _page("train_page")
    at.file_uploader(key="train_upload").set_value([("corrupt clip.mp4", CORRUPT, "video/mp4")]).run()
    _click(at, "Process and add to training set")
    assert not at.exception, at.exception
    _assert_names_only_the_upload([e.value for e in at.error], "corrupt clip.mp4", dash_env)
    assert "not a readable video" in at.error[0].value


def test_test_page_corrupt_upload_names_the_upload(trained, dash_env):
    at = _page("test_page")
    at.file_uploader(key="test_upload").set_value(("night shift.mp4", CORRUPT + b"x", "video/mp4")).run()
    _click(at, "Analyse")
    assert not at.exception, at.exception
    _assert_names_only_the_upload([e.value for e in at.error], "night shift.mp4", dash_env)


def test_live_page_names_an_uploaded_video_not_its_server_copy(trained, dash_clips):
    import time

    at = _page("live_page")
    at.radio[0].set_value("Continuous (server-side source)").run()
    clip = dash_clips["intruder"]
    at.file_uploader(key="live_upload").set_value(("front door.mp4", clip.read_bytes(), "video/mp4")).run()
    at.checkbox(key="live_realtime").uncheck().run()
    _click(at, "Start monitoring")
    deadline = time.monotonic() + 120
    while "live_session" in at.session_state and at.session_state["live_session"].running \
            and time.monotonic() < deadline:
        time.sleep(0.5)
    at.run()
    assert not at.exception, at.exception
    status = [c.value for c in at.caption if c.value.startswith("Source ")]
    assert status and status[0].startswith("Source front door.mp4: ended"), status
    assert str(state.upload_dir()) not in " ".join(c.value for c in at.caption)
