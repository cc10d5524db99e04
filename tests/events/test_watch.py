"""Watching a video with a known anomalous span: one event, evidence on disk, alerts out."""

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import av
import cv2
import paho.mqtt.client as mqtt
import pytest

from vlm_anomaly import Pipeline, load_settings
from vlm_anomaly.events import AlertDispatcher, EventStore, Monitor
from vlm_anomaly.video import probe

INTERVAL_S = 0.5
SMOOTHING = 5  # the model's causal window, in samples
TOL = INTERVAL_S + SMOOTHING * INTERVAL_S  # the event may lag the truth by the interval + window


def _settings(home, **extra):
    return load_settings(
        overrides={"home": home, "interval_ms": 500, "encoder": "efficientnet", **extra}
    )


def _subscribe(host, port, topic):
    got, ready = [], threading.Event()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    c.on_connect = lambda cl, *a: (cl.subscribe(topic, qos=1), None)
    c.on_subscribe = lambda *a: ready.set()
    c.on_message = lambda cl, ud, msg: got.append((msg.topic, json.loads(msg.payload)))
    c.connect(host, port)
    c.loop_start()
    assert ready.wait(10), "could not subscribe"
    return c, got


def test_watch_gives_one_event_with_evidence_webhook_and_mqtt(
    default_home, clips, webhook, mqtt_broker, anomaly_span
):
    """End to end with the shipped default detector (``motion``): one event, its evidence, the alerts."""
    host, port = mqtt_broker
    webhook.fail_first = 1  # the first POST fails: the alert must be retried, not lost
    s = _settings(
        default_home,
        webhook_urls=[webhook.url],
        mqtt_url=f"mqtt://{host}:{port}",
        mqtt_topic_prefix="site1",
    )
    sub, got = _subscribe(host, port, "site1/+/events")
    store = EventStore.from_settings(s)
    alerts = AlertDispatcher.from_settings(s.alerts)
    notices = []
    mon = Monitor(Pipeline(s), store=store, alerts=alerts, listener=notices.append)
    video = str(clips[1])
    wid = mon.start("street", video, realtime=False)
    assert mon.wait(120)
    assert alerts.flush(30)
    status = mon.status(wid)
    assert status["status"] == "ended" and status["frames"] == 24 and status["events"] == 1

    [ev] = store.list()
    lo, hi = anomaly_span
    assert lo <= ev.start_time <= lo + TOL, ev
    assert hi <= ev.end_time <= hi + TOL, ev
    assert lo <= ev.worst_time <= hi + TOL
    assert ev.status == "closed" and not ev.acknowledged and ev.model == "street"
    assert ev.worst_score <= ev.mean_score < 0
    assert ev.frames >= (hi - lo) / INTERVAL_S - 1 and len(ev.descriptions) == ev.frames
    # each frame says what is unusual and where (a moving object, or something standing where
    # training never saw anything), as an activity, not a camera fault
    assert all(d["kind"] == "activity" and " in the " in d["text"]
               and ("object" in d["text"] or "something" in d["text"]) for d in ev.descriptions), ev.descriptions
    snap = store.media_path(ev.snapshot)
    img = cv2.imread(str(snap))
    assert snap.suffix == ".jpg" and img is not None and img.shape == (240, 320, 3)
    def red(bgr):  # share of the red van's pixels
        return ((bgr[:, :, 2] > 180) & (bgr[:, :, 1] < 80) & (bgr[:, :, 0] < 80)).mean()

    # the snapshot is the worst frame, and shows the intruder - unless the worst frame is the one
    # where the synthetic van vanishes mid-view at the span's end (the flow sees that as the
    # fastest motion of the clip); the evidence clip shows the van either way
    assert red(img) > 0.02 or ev.worst_time >= hi, (ev.worst_time, red(img))
    clip = store.media_path(ev.clip)
    with av.open(str(clip)) as container:
        assert max(red(f.to_ndarray(format="bgr24")) for f in container.decode(video=0)) > 0.02
    info = probe(clip)
    assert info.frame_count >= 4 and ev.media_bytes == snap.stat().st_size + clip.stat().st_size
    assert [n.kind for n in notices] == ["start", "end"]

    # webhook: new + end, retried after the 503
    assert [b["type"] for b in webhook.bodies] == ["new", "end"]
    end = webhook.bodies[1]["after"]
    assert webhook.bodies[1]["before"] == webhook.bodies[0]["after"]  # the state announced at "new"
    # the evidence is on disk from the start: "new" already points at a snapshot and a clip
    new = webhook.bodies[0]["after"]
    assert new["has_snapshot"] and new["has_clip"] and new["end_time"] is None and end["end_time"] is not None
    assert new["snapshot"] == end["snapshot"] == ev.snapshot and new["clip"] == end["clip"] == ev.clip
    assert end["id"] == str(ev.id) and end["label"] == "anomaly" and end["has_snapshot"]
    assert ev.kind == end["kind"] == "activity"  # an intruder, not a camera fault
    assert end["source_start_s"] == round(ev.start_time, 3) and end["top_score"] == round(
        ev.worst_score, 6
    )
    # MQTT: same messages on the source's topic
    import time

    deadline = time.monotonic() + 10
    while len(got) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    sub.loop_stop()
    assert [p["type"] for _, p in got] == ["new", "end"]
    assert got[0][0] == "site1/" + end["camera"] + "/events" and "/" not in end["camera"]
    assert got[1][1]["after"]["id"] == str(ev.id)
    alerts.close()


def test_watch_cli_prints_and_stores_the_event(default_home, clips, webhook, tmp_path):
    """``vlm-anomaly watch`` with a model of the shipped default detector."""
    cfg = tmp_path / "vlm.yaml"
    cfg.write_text(
        f"home: {default_home}\ninterval_ms: 500\n"
        f"events_db_url: sqlite:///{tmp_path}/cli-events.db\nevents_dir: {tmp_path}/ev\n"
        f"webhook_urls: [{webhook.url}]\n"
    )
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(Path(__file__).parents[2] / "src"),
    }
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "vlm_anomaly.cli",
            "--config",
            str(cfg),
            "watch",
            "--model",
            "street",
            "--source",
            str(clips[1]),
            "--fast",
            "--max-seconds",
            "120",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("EVENT START") == 1 and r.stdout.count("EVENT END") == 1, r.stdout
    assert "24 frames, 1 event(s), 0 gap(s)" in r.stdout
    [ev] = EventStore(f"sqlite:///{tmp_path}/cli-events.db", tmp_path / "ev").list()
    assert (tmp_path / "ev" / ev.snapshot).is_file()
    assert [b["type"] for b in webhook.bodies] == ["new", "end"]


def test_missing_model_or_source_fails_clearly(trained_home, tmp_path):
    from vlm_anomaly.errors import InvalidVideoError, ModelNotFoundError
    from vlm_anomaly.video.sources import open_reader

    mon = Monitor(Pipeline(_settings(trained_home)))
    with pytest.raises(ModelNotFoundError):
        mon.start("nope", "x.mp4")
    missing = str(tmp_path / "missing.mp4")
    wid = mon.start("street", missing, realtime=False)
    mon.wait(30)
    st = mon.status(wid)
    # the watcher reports the reader's own InvalidVideoError, word for word: a clean input error,
    # not an unexpected crash (those are reported as "TypeName: message" and logged with a traceback)
    with pytest.raises(InvalidVideoError) as direct:
        open_reader(missing)
    assert st["status"] == "failed" and st["error"] == str(direct.value) == f"{missing}: no such file or folder"


def test_a_pushed_camera_watched_by_the_default_detector_measures_motion(default_home, clips, anomaly_span):
    """The browser camera (frames pushed one by one, as streamlit-webrtc hands them over) watched by a
    model of the shipped default detector: motion is measured against the frame before each sample,
    so the intruder gives one event and the normal part none."""
    from vlm_anomaly.events import LiveFeed, LiveSession, SourceWatcher
    from vlm_anomaly.video import sample_frames
    from vlm_anomaly.video.live import PushSource

    s = _settings(default_home)
    pipe = Pipeline(s)
    model = pipe.store.load("street")
    # samples 600 ms apart: longer than the longest gap motion is measured over (0.5 s), as a camera's
    # jitter makes many samples of the Live page's 500 ms; each then needs the frame before it
    interval = 0.6
    cam = PushSource("browser camera", interval_ms=600, stall_timeout_s=1.0, queue_size=1000)
    w = SourceWatcher(pipe, model, "browser camera", sinks=[LiveFeed()], interval_ms=600, live=cam)
    cam.with_previous = w.scorer.needs_previous  # as the Live page does
    sess = LiveSession(w, "test").start()
    for f in sample_frames(str(clips[1]), interval_ms=0):  # every frame of the 12 s clip, as a camera sends
        cam.push(f.image, f.timestamp)
    assert sess.wait(60), "the camera stopped sending: the source must end"
    view = sess.feed.view()
    assert w.stats.frames >= 18, w.stats
    lo, hi = anomaly_span
    tol = interval + SMOOTHING * interval
    assert len(view.events) == 1, [(e.start_time, e.end_time) for e in view.events]
    [ev] = view.events
    assert lo <= ev.start_time <= lo + tol and hi <= ev.end_time <= hi + tol, ev


def test_watch_names_cameras_and_fails_a_file_that_gives_no_frame(default_home, clips, tmp_path):
    """``watch`` of the settings' cameras: its lines name each camera by the name it was given
    ("lobby", not the file's path), and a camera whose file gives no frame at all (here a
    transport stream cut in the middle, without its headers) fails with the reason, as ``score``
    does, instead of ending quietly with 0 frames."""
    from vlm_anomaly.synthetic import write_video

    whole = write_video(tmp_path / "whole.ts", seconds=6, fps=10, size=(160, 120)).read_bytes()
    headless = tmp_path / "headless.ts"
    headless.write_bytes(whole[(len(whole) // 3 // 188) * 188:])
    cfg = tmp_path / "vlm.yaml"
    cfg.write_text(
        f"home: {default_home}\ninterval_ms: 500\n"
        f"events_db_url: sqlite:///{tmp_path}/cli-events.db\nevents_dir: {tmp_path}/ev\n"
        f"cameras:\n  - {{name: lobby, source: {clips[1]}, model: street}}\n"
        f"  - {{name: yard, source: {headless}, model: street}}\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    r = subprocess.run([sys.executable, "-m", "vlm_anomaly.cli", "--config", str(cfg), "watch", "--fast",
                        "--max-seconds", "120"], capture_output=True, text=True, env=env, timeout=180)
    assert r.returncode == 2, r.stderr  # a camera failed
    assert "watching lobby, yard" in r.stdout
    assert "EVENT START #1 lobby at" in r.stdout and "EVENT END #1 lobby " in r.stdout, r.stdout
    assert "lobby: 24 frames, 1 event(s)" in r.stdout
    [ev] = EventStore(f"sqlite:///{tmp_path}/cli-events.db", tmp_path / "ev").list()
    assert ev.snapshot.startswith("lobby/") and (tmp_path / "ev" / ev.snapshot).is_file()  # media under its name
    assert f"yard: 0 frames, 0 event(s), 0 gap(s) (0.0 s missed), 0 frame(s) dropped, 0 alert(s) sent, 0 failed, " \
           f"failed: {headless}: cannot decode" in r.stdout, r.stdout
    assert f"error: yard: {headless}: cannot decode" in " ".join(r.stderr.split()), r.stderr
