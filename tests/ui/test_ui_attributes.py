"""The motion/object (attribute) detector from the dashboard: chosen on the Train page, explained on
the Test page (which attribute fired, where, the nearest normal crop) and scored live with motion."""

from __future__ import annotations

import numpy as np
import pytest

from tests.ui.test_ui_pages import analyse, assert_no_traceback, button, mp4, page

SPAN = (2.5, 4.5)  # the intruder of dash_clips["intruder"]


def intruder_box(t: float, w: int = 320, h: int = 240) -> tuple[int, int, int, int]:
    """Where vlm_anomaly.synthetic draws the intruder at ``t`` seconds."""
    cx, cy = int((0.2 + 0.6 * ((t * 0.5) % 1.0)) * w), int(h * 0.6)
    bw, bh = w // 4, h // 4
    return cx - bw // 2, cy - bh // 2, cx + bw // 2, cy + bh // 2 + bh // 4


def overlap(a, b) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    return ix * iy / max(1, (a[2] - a[0]) * (a[3] - a[1]))


@pytest.fixture(scope="module")
def attr_model(dash_env, dash_clips) -> str:
    """Train an attribute model through the Train page: pick the detector, upload, train."""
    at = page("train_page")
    next(s for s in at.selectbox if s.label == "Detector").set_value("attributes")
    button(at, "Save parameters").click().run()
    assert_no_traceback(at)
    at.file_uploader(key="train_upload").set_value([mp4(dash_clips["normal_a"]), mp4(dash_clips["normal_b"])]).run()
    button(at, "Process and add to training set").click().run()
    at.text_input(key="train_model_name").set_value("moves").run()
    button(at, "Train model").click().run()
    assert_no_traceback(at)
    assert not at.error, [e.value for e in at.error]
    last = at.session_state["train_last"]
    assert last["detector"] == "attributes" and last["videos"] == 2
    return "moves"


def test_test_page_explains_where_and_why(attr_model, dash_clips):
    at = analyse(attr_model, dash_clips["intruder"])
    r = at.session_state["test"]["result"]
    pos = int(np.argmin(r.smoothed_scores))
    t = float(r.timestamps[pos])
    assert SPAN[0] <= t <= SPAN[1] + 1.0, t
    why = r.explanations[pos]
    assert why["attribute"] in why["fired"], why
    # the blamed region is the intruder, at the time of the frame shown
    assert "box" in why and overlap(why["box"], intruder_box(float(r.timestamps[pos]))) > 0.3, why
    # the inspector opens on the worst frame and says why, with the nearest normal crop from training
    assert any(m.value.startswith("**Why:** ") for m in at.markdown)
    captions = [img.proto.imgs[0].caption for img in at.get("image")]
    # named as uploaded (not by the training set's internal file names)
    assert any(c.startswith("nearest normal ") and ("normal_a.mp4" in c or "normal_b.mp4" in c) for c in captions), \
        (captions, why, [i.value for i in at.info])
    assert why["nearest_normal"]["source"] in ("normal_a.mp4", "normal_b.mp4")
    assert r.n_anomalies > 0


def test_live_session_scores_motion_and_explains(attr_model, dash_clips):
    from vlm_anomaly.ui.live_page import start_session

    sess = start_session(attr_model, str(dash_clips["intruder"]), threshold=0.0, interval_ms=500, realtime=False)
    assert sess.watcher.scorer.needs_previous
    assert sess.wait(180)
    view = sess.feed.view()
    readings = view.readings
    assert sess.stats.error is None and len(readings) == 12
    assert view.events and SPAN[0] <= view.events[0].start_time <= SPAN[1] + 1.0, view.events
    worst = min(readings, key=lambda x: x.raw)
    assert SPAN[0] <= worst.t <= SPAN[1] and worst.explanation and worst.explanation.get("box")
    assert worst.description and worst.explanation["attribute"] in worst.description
