"""Each dashboard page's main flows through Streamlit's AppTest, with real clips and a real model."""

from __future__ import annotations

import json
import time
from pathlib import Path

import av
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from streamlit.testing.v1 import AppTest

from vlm_anomaly.store import ModelStore
from vlm_anomaly.training_set import TrainingSet
from vlm_anomaly.video import probe
from vlm_anomaly.video.thumbnails import encode_jpeg, grab_frames

APP = Path(__file__).parents[2] / "src" / "vlm_anomaly" / "ui" / "app.py"
TIMEOUT = 240


def page(name: str) -> AppTest:
    at = AppTest.from_string(f"from vlm_anomaly.ui import {name}\n{name}.render()", default_timeout=TIMEOUT)
    return at.run()


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def mp4(path: Path) -> tuple[str, bytes, str]:
    return (path.name, path.read_bytes(), "video/mp4")


def assert_no_traceback(at: AppTest) -> None:
    assert not at.exception, at.exception


def test_app_starts_on_the_train_page(dash_env):
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    assert_no_traceback(at)
    assert at.title[0].value == "Train"


def test_train_page_builds_a_set_and_trains(dash_env, dash_clips):
    at = page("train_page")
    assert_no_traceback(at)
    assert "The training set is empty" in at.info[0].value
    at.file_uploader(key="train_upload").set_value([mp4(dash_clips["normal_a"]), mp4(dash_clips["normal_b"])]).run()
    button(at, "Process and add to training set").click().run()
    assert_no_traceback(at)
    assert [s.value for s in at.success] == ["Added 2 video(s) to the training set."]
    assert metrics(at) == {"Videos": "2", "Frames": "24", "Duration": "11.0 s"}
    assert list(at.dataframe[0].value["video"]) == ["normal_a.mp4", "normal_b.mp4"]

    review = at.dataframe[1].value
    assert len(review) == 24 and review["thumbnail"].str.startswith("data:image/jpeg;base64,").all()
    word = review["description"].iloc[0]
    at.text_input(key="review_filter").set_value(word).run()
    filtered = at.dataframe[1].value
    assert 0 < len(filtered) <= 24 and filtered["description"].str.contains(word, regex=False).all() | \
        filtered["alternatives"].str.contains(word, regex=False).all()
    at.slider(key="review_conf").set_value(1.0).run()
    assert len(at.dataframe[1].value) == 0

    at.text_input(key="train_model_name").set_value("ui-model")
    button(at, "Train model").click().run()
    assert_no_traceback(at)
    assert any("Model **ui-model** saved: 24 frames from 2 video(s)" in s.value for s in at.success)
    assert ModelStore(dash_env / "models").load("ui-model").n_frames == 24

    # the set survives a "browser refresh": a new session sees the same videos
    again = page("train_page")
    assert metrics(again)["Videos"] == "2"
    # removing a video
    ts = TrainingSet(dash_env / "training_set")
    first = ts.items()[0].id
    again.multiselect(key="train_remove_0").set_value([first]).run()
    button(again, "Remove selected").click().run()
    assert_no_traceback(again)
    assert metrics(again)["Videos"] == "1" and [i.name for i in ts.items()] == ["normal_b.mp4"]


def test_train_page_friendly_errors(dash_env, tmp_path):
    at = page("train_page")
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x01" * 500)
    at.file_uploader(key="train_upload").set_value([("broken.mp4", broken.read_bytes(), "video/mp4")]).run()
    button(at, "Process and add to training set").click().run()
    assert_no_traceback(at)
    assert len(at.error) == 1 and at.error[0].value.startswith("broken.mp4: ")
    # an invalid name, written as markdown: refused, and shown as written, not bold with a link
    at.text_input(key="train_model_name").set_value("**x** [y](http://e)").run()
    button(at, "Train model").click().run()
    assert_no_traceback(at)
    assert any("invalid model name" in e.value for e in at.error)
    assert any(r"invalid model name '\*\*x\*\* \[y\](http://e)'" in e.value for e in at.error), \
        [e.value for e in at.error]


def analyse(model: str, clip: Path) -> AppTest:
    """The Test page after analysing ``clip`` with ``model``."""
    at = page("test_page")
    at.selectbox(key="test_model").set_value(model)
    at.file_uploader(key="test_upload").set_value(mp4(clip)).run()
    button(at, "Analyse").click().run()
    assert_no_traceback(at)
    return at


def test_test_page_scores_relabels_and_downloads(trained, dash_clips):
    at = analyse(trained, dash_clips["intruder"])
    m = metrics(at)
    assert m["Frames"] == "12" and int(m["Anomalies"]) > 0
    assert len(at.get("plotly_chart")) == 1
    result = at.session_state["test"]["result"]
    worst = float(result.timestamps[int(np.argmin(result.smoothed_scores))])
    assert 2.5 <= worst <= 5.0  # the intruder's span (plus smoothing)

    # the threshold slider relabels without re-encoding
    at.slider(key="test_thr").set_value(-2.0).run()
    assert metrics(at)["Anomalies"] == "0"
    assert at.session_state["test"]["result"] is result
    at.slider(key="test_thr").set_value(0.0).run()
    assert int(metrics(at)["Anomalies"]) == result.n_anomalies

    # jumping to an incident selects its worst frame and plays the video from its start
    at.selectbox(key="test_seg").set_value(0).run()
    assert_no_traceback(at)
    seg = result.relabel(0.0).incidents()[0]
    assert at.session_state["test_pos"] == seg.worst_position
    assert len(at.get("video")) == 1
    captions = [img.proto.imgs[0].caption for img in at.get("image")]
    assert any(c.startswith("most similar normal training frame: normal_a.mp4 at ") for c in captions), captions

    # ground-truth labels of the clip (one per video frame) rate the scores: AUC as scikit-learn computes it
    info = probe(dash_clips["intruder"])
    y = [int(2.5 <= i / info.fps < 4.5) for i in range(info.frame_count)]
    at.file_uploader(key="test_labels").set_value(("intruder.json", json.dumps(y).encode(), "application/json"))
    at.run()
    assert_no_traceback(at)
    truth = [y[int(i)] for i in result.frame_indices]
    expected = roc_auc_score(truth, -result.smoothed_scores)
    assert metrics(at)["Frame AUC"] == f"{expected:.3f}" and expected > 0.8
    assert metrics(at)["Labelled anomalous"] == f"{sum(truth)} of 12"

    labels = [d.label for d in at.get("download_button")]
    assert labels[:2] == ["Download CSV", "Download JSON"]
    button(at, "Render annotated MP4").click().run()
    assert_no_traceback(at)
    assert "Download annotated MP4" in [d.label for d in at.get("download_button")]
    out = Path(at.session_state["test_mp4"]["path"])
    with av.open(str(out)) as c:
        assert c.streams.video[0].frames == 12


def test_test_page_corrupt_video_is_a_friendly_error(trained):
    at = page("test_page")
    at.file_uploader(key="test_upload").set_value(("clip.mp4", b"\x00garbage" * 300, "video/mp4")).run()
    button(at, "Analyse").click().run()
    assert_no_traceback(at)
    assert len(at.error) == 1 and "clip.mp4" in at.error[0].value and "video" in at.error[0].value


def test_live_snapshot_and_continuous(trained, dash_clips):
    at = page("live_page")
    assert_no_traceback(at)
    odd = grab_frames(dash_clips["intruder"], [35])[35]
    at.camera_input(key="live_camera").set_value(("shot.jpg", encode_jpeg(odd), "image/jpeg")).run()
    assert_no_traceback(at)
    assert at.error and at.error[0].value.startswith("ANOMALY: score")

    at.radio(key="live_mode").set_value("Continuous (server-side source)").run()
    at.text_input(key="live_source").set_value("7")
    button(at, "Start monitoring").click().run()
    assert_no_traceback(at)
    assert [e.value for e in at.error] == ["camera 7 is not available on this machine"]

    at.text_input(key="live_source").set_value(str(dash_clips["intruder"]))
    at.checkbox(key="live_realtime").uncheck()
    button(at, "Start monitoring").click().run()
    sess = at.session_state["live_session"]
    assert sess.wait(TIMEOUT)
    at.run()
    assert_no_traceback(at)
    assert sess.stats.frames == 12 and sess.stats.error is None
    alerts = at.table[0].value
    assert len(alerts) >= 1 and (alerts["worst score"].astype(float) < 0).all()
    assert (alerts["ended because"] != "").all()
    assert len(at.get("plotly_chart")) == 1
    assert any(w.value.startswith("Source ended at 5.5 s") for w in at.warning), [w.value for w in at.warning]


def _events(view) -> list[tuple]:
    return [(e.start_time, e.end_time, round(e.worst_score, 5), e.worst_time, e.frames, e.end_reason)
            for e in view]


def test_live_page_and_watch_give_the_same_events(trained, dash_clips, dash_env, tmp_path):
    """One engine: the dashboard's live session and `watch` on the same file store the same events."""
    import os
    import subprocess
    import sys

    from vlm_anomaly.events import EventStore

    at = page("live_page")
    at.radio(key="live_mode").set_value("Continuous (server-side source)").run()
    at.text_input(key="live_source").set_value(str(dash_clips["intruder"]))
    at.checkbox(key="live_realtime").uncheck()
    button(at, "Start monitoring").click().run()
    sess = at.session_state["live_session"]
    assert sess.wait(TIMEOUT)
    at.run()
    assert_no_traceback(at)
    dashboard = sess.feed.view().events
    assert dashboard and all(e.status == "closed" for e in dashboard)
    # the dashboard's events went to the event store too, with the same values
    stored = sorted(EventStore.from_settings(sess.watcher.settings), key=lambda e: e.id)
    assert _events(stored[-len(dashboard):]) == _events(dashboard)

    env = {**os.environ, "VLM_ANOMALY_EVENTS_DB_URL": f"sqlite:///{tmp_path}/watch.db",
           "VLM_ANOMALY_EVENTS_DIR": str(tmp_path / "media"),
           "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    r = subprocess.run([sys.executable, "-m", "vlm_anomaly.cli", "watch", "--model", trained,
                        "--source", str(dash_clips["intruder"]), "--fast"],
                       capture_output=True, text=True, env=env, timeout=TIMEOUT, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    watched = sorted(EventStore(f"sqlite:///{tmp_path}/watch.db", tmp_path / "media"), key=lambda e: e.id)
    assert _events(watched) == _events(dashboard), r.stdout


def test_webrtc_session_scores_annotates_and_stop_closes_the_alert(trained, dash_clips):
    """The browser-camera mode: frames pushed by the WebRTC callback run the same engine; the camera
    stopping (the page sees it stop playing) closes the open alert."""
    from vlm_anomaly.ui.live_page import start_session, sync_camera_session, webrtc_callback
    from vlm_anomaly.video.live import PushSource

    holder: dict = {"session": None, "playing": False}
    cb = webrtc_callback(holder)
    sync_camera_session(holder, True, lambda: start_session(
        trained, "browser camera", threshold=0.0, interval_ms=100, live=PushSource(interval_ms=100)))
    sess = holder["session"]
    odd = grab_frames(dash_clips["intruder"], [35])[35]
    out = []
    deadline = time.monotonic() + TIMEOUT
    while sess.feed.view().open_event is None and time.monotonic() < deadline:
        out.append(cb(av.VideoFrame.from_ndarray(odd, format="rgb24")))
        time.sleep(0.03)
    assert sess.feed.view().open_event is not None
    img = out[-1].to_ndarray(format="rgb24")
    assert img.shape == odd.shape and tuple(img[-1, 100]) == (220, 40, 40)  # the anomaly banner is drawn
    sync_camera_session(holder, False, lambda: None)  # the user pressed STOP on the camera
    view = sess.feed.view()
    assert not sess.running and view.state == "stopped"
    assert view.open_event is None and view.events[-1].end_reason == "stopped"


def test_models_page_rename_compare_delete(trained, dash_clips):
    from vlm_anomaly import load_settings
    from vlm_anomaly.ui import state

    state.pipeline(load_settings()).train("office-small", [dash_clips["normal_a"]])
    at = page("models_page")
    assert_no_traceback(at)
    table = at.dataframe[0].value
    assert {"office", "office-small"} <= set(table["name"])
    row = table.set_index("name").loc["office"]
    assert row["videos"] == 2 and row["frames"] == 24 and row["encoder"].startswith("efficientnet")

    at.selectbox(key="models_pick").set_value("office-small").run()
    at.text_input(key="models_new_name").set_value("office-tiny")
    button(at, "Rename").click().run()
    assert_no_traceback(at)
    assert "Renamed office-small to office-tiny." in [s.value for s in at.success]
    assert "office-tiny" in list(at.dataframe[0].value["name"])

    at.selectbox(key="cmp_a").set_value("office")
    at.selectbox(key="cmp_b").set_value("office-tiny")
    at.file_uploader(key="cmp_upload").set_value(mp4(dash_clips["intruder"])).run()
    button(at, "Compare").click().run()
    assert_no_traceback(at)
    m = [(x.label, x.value) for x in at.metric]
    assert [v for k, v in m if k == "Anomalies"] and all(v.endswith("/ 12") for k, v in m if k == "Anomalies")
    assert len(at.get("plotly_chart")) == 1

    at.selectbox(key="models_pick").set_value("office-tiny").run()
    assert button(at, "Delete model").disabled
    at.checkbox(key="models_confirm_office-tiny").check().run()
    button(at, "Delete model").click().run()
    assert_no_traceback(at)
    assert "Deleted model office-tiny." in [s.value for s in at.success]
    assert "office-tiny" not in list(at.dataframe[0].value["name"])


@pytest.mark.parametrize("name", ["test_page", "live_page", "models_page"])
def test_pages_say_when_there_is_no_model(name, tmp_path, monkeypatch):
    monkeypatch.setenv("VLM_ANOMALY_HOME", str(tmp_path))
    monkeypatch.setenv("VLM_ANOMALY_ENCODER", "efficientnet")
    at = page(name)
    assert_no_traceback(at)
    assert "No model yet" in at.info[0].value


def test_live_banner_while_a_camera_runs_follows_its_scores_and_alert(trained, dash_clips):
    """While a live camera runs, the banner says "Normal" or "ALERT #id" with the latest smoothed score
    and the model's entry threshold; a looping MJPEG camera of the intruder clip shows both in turn.
    The model is this module's ocsvm one (see ``dash_env``), not the shipped default: the banner reads
    only the watcher's smoothed scores and hysteresis, the same for every detector."""
    import re

    from tests.events.streams import MjpegCameras

    cam = MjpegCameras(dash_clips["intruder"])
    at = page("live_page")
    at.radio(key="live_mode").set_value("Continuous (server-side source)").run()
    at.text_input(key="live_source").set_value(f"{cam.base}/door.mjpg")
    button(at, "Start monitoring").click().run()
    sess = at.session_state["live_session"]
    seen: dict[str, list] = {"Normal": [], "ALERT": []}
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (seen["Normal"] and seen["ALERT"]) and sess.running:
            at.run()
            assert_no_traceback(at)
            view = sess.feed.view()
            for text in [s.value for s in at.success] + [e.value for e in at.error]:
                if text.startswith(("Normal:", "ALERT #")):
                    seen[text.split(" ")[0].rstrip(":")].append((text, view))
            time.sleep(0.3)
    finally:
        sess.stop()
        cam.close()
    assert seen["Normal"] and seen["ALERT"], (seen, sess.stats)
    enter = f"(events start below {sess.watcher.hysteresis.enter:+.2f})"
    ids = {e.id for e in sess.feed.view().events}
    for text, view in seen["Normal"] + seen["ALERT"]:
        assert enter in text, text
        shown = float(re.search(r"smoothed score ([-+]\d+\.\d+)", text).group(1))
        # the banner was drawn from a reading at or before the view taken just after it
        assert any(abs(r.smoothed - shown) < 5e-4 for r in view.readings), (text, view.readings[-3:])
    for text, _ in seen["ALERT"]:
        assert int(re.match(r"ALERT #(\d+) since", text).group(1)) in ids, (text, ids)
