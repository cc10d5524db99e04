"""The Test page's annotated MP4s are temporary files: deleted with the uploads once unused."""

from __future__ import annotations

import os
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

from vlm_anomaly.ui import state


def test_rendered_mp4_is_pruned_like_the_uploads(trained, dash_clips):
    at = AppTest.from_string("from vlm_anomaly.ui import test_page\ntest_page.render()", default_timeout=240).run()
    clip = dash_clips["intruder"]
    at.file_uploader(key="test_upload").set_value((clip.name, clip.read_bytes(), "video/mp4")).run()
    next(b for b in at.button if b.label == "Analyse").click().run()
    next(b for b in at.button if b.label == "Render annotated MP4").click().run()
    assert not at.exception, at.exception
    assert [b.proto.label for b in at.get("download_button")][-1] == "Download annotated MP4"
    out = Path(at.session_state["test_mp4"]["path"])
    assert out.is_file() and out.stat().st_size > 0
    past = time.time() - state.UPLOAD_MAX_AGE_S - 60  # unused for longer than the uploads are kept
    os.utime(out.parent, (past, past))
    state.prune_uploads()
    assert not out.exists(), f"{out} is kept forever"
