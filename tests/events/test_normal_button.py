"""Home Assistant's "Last anomaly was normal" button against a real mosquitto: announced with the
camera, pressed as Home Assistant presses it (a command on its topic) while the service watches,
handled by the service: the camera's last ended event is learnt by its model, the outcome read back
from the broker; a running stream then scores with what the model learnt."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest

from tests.events.streams import MqttReader
from vlm_anomaly import Pipeline, load_settings
from vlm_anomaly.cameras import Camera
from vlm_anomaly.events import EventStore, StreamScorer
from vlm_anomaly.normal import mark_normal, normal_additions, undo_normal
from vlm_anomaly.service import watch_cameras
from vlm_anomaly.synthetic import write_video
from vlm_anomaly.video import sample_frames

P, D = "vlm-anomaly", "homeassistant"


@pytest.fixture(scope="module")
def front(tmp_path_factory):
    """20 s of the street from the moment its training footage starts, with an intruder during 3-6 s:
    the intruder's event ends while the clip still plays (the press is handled by a running
    service). Why not a later moment: there the synthetic walkers (uniform rectangles sliding
    slowly) stand in places training never saw them, which the ``scene`` attribute reports as
    something standing there, held while walkers pass in front - one event to the clip's end."""
    return write_video(tmp_path_factory.mktemp("front") / "front.mp4", seconds=20, seed=0, start_s=0,
                       anomaly_span=(3.0, 6.0))


def test_the_button_is_announced_and_a_press_teaches_the_model(default_home, front, mqtt_broker, tmp_path):
    host, port = mqtt_broker
    s = load_settings(overrides={"home": default_home, "mqtt_url": f"mqtt://{host}:{port}",
                                 "events_db_url": f"sqlite:///{tmp_path}/ev.db", "events_dir": tmp_path / "ev"})
    reader = MqttReader(host, port)
    done: list = []
    th = threading.Thread(target=lambda: done.append(watch_cameras(
        s, [Camera("front", str(front), "street")], realtime=True, max_seconds=60)), daemon=True)
    th.start()
    try:
        # discovery: the button, on the camera's device, with the command topic Home Assistant presses
        cfg_topic = f"{D}/button/vlm_anomaly/front_normal/config"
        deadline = time.monotonic() + 20
        while not reader.history(cfg_topic) and time.monotonic() < deadline:
            time.sleep(0.05)
        cfg = json.loads(reader.history(cfg_topic)[-1])
        assert cfg["name"] == "Last anomaly was normal" and cfg["command_topic"] == f"{P}/front/normal/press"
        assert cfg["payload_press"] == "PRESS" and cfg["unique_id"] == "vlm_anomaly_front_normal"
        assert cfg["device"]["identifiers"] == ["vlm_anomaly_front"]
        assert cfg["availability"][1] == {"topic": f"{P}/front/availability"}

        # the intruder's event ends (the anomaly sensor goes ON, then OFF): the user presses the button
        on = reader.wait_for(f"{P}/front/anomaly", b"ON", timeout_s=30)
        reader.wait_for(f"{P}/front/anomaly", b"OFF", timeout_s=30, after=on + 1)
        ev = json.loads(reader.history(f"{P}/front/event")[-1])
        assert ev["status"] == "closed"
        reader.c.publish(f"{P}/front/normal/press", b"PRESS", qos=1)
        deadline = time.monotonic() + 30
        while not reader.history(f"{P}/front/normal") and time.monotonic() < deadline:
            time.sleep(0.05)
        result = json.loads(reader.history(f"{P}/front/normal")[-1])
        assert th.is_alive(), "the service was still watching when the press was handled"
    finally:
        th.join(90)
    assert result["ok"] and result["event_id"] == ev["event_id"] and result["model"] == "street", result
    assert result["source"] == "front.mp4" and result["frames"] > 0
    [a] = normal_additions(Pipeline(s).store, "street")
    assert a.id == result["id"] and a.note == "Home Assistant: last anomaly was normal"
    assert reader.retained(f"{P}/front/normal")[f"{P}/front/normal"] == reader.history(f"{P}/front/normal")[-1]

    undo_normal(Pipeline(s).store, "street", a.id, settings=s)
    reader.close()


def test_a_press_without_an_ended_event_says_why(default_home, mqtt_broker, tmp_path, normal_video):
    from vlm_anomaly.events.homeassistant import HomeAssistantBridge
    from vlm_anomaly.events.normal_button import NormalButton

    host, port = mqtt_broker
    s = load_settings(overrides={"home": default_home, "mqtt_url": f"mqtt://{host}:{port}",
                                 "events_db_url": f"sqlite:///{tmp_path}/ev.db", "events_dir": tmp_path / "ev"})
    reader = MqttReader(host, port)
    # a press left retained on the broker (by mistake) is not a press: the service ignores it
    reader.c.publish(f"{P}/yard/normal/press", b"PRESS", qos=1, retain=True).wait_for_publish(5)
    store = EventStore.from_settings(s)
    bridge = HomeAssistantBridge.from_settings(s.alerts, store=store)
    button = NormalButton(bridge, store, s)
    bridge.add_camera("yard", str(normal_video))
    assert bridge.wait_connected(10)
    time.sleep(1.0)
    assert reader.history(f"{P}/yard/normal") == []
    reader.c.publish(f"{P}/yard/normal/press", b"PRESS", qos=1)
    deadline = time.monotonic() + 10
    while not reader.history(f"{P}/yard/normal") and time.monotonic() < deadline:
        time.sleep(0.05)
    button.join()
    [msg] = reader.history(f"{P}/yard/normal")
    assert json.loads(msg)["ok"] is False and "no ended anomaly" in json.loads(msg)["error"]
    reader.c.publish(f"{P}/yard/normal/press", b"", qos=1, retain=True)
    bridge.close()
    store.close()
    reader.close()


def test_a_running_stream_scores_with_what_the_model_learnt(default_home, front):
    """The live scorer notices the model's file changed and scores with the new version."""
    s = load_settings(overrides={"home": default_home})
    pipe = Pipeline(s)
    model = pipe.store.load("street")
    sc = StreamScorer(pipe, model)
    frames = list(sample_frames(str(front), interval_ms=model.interval_ms, with_previous=True))[:40]
    before = np.array([x.score for x in sc.score(frames)])
    assert before.min() < 0  # the intruder (3-6 s)
    a = mark_normal(pipe.store, "street", front, start_s=2.0, end_s=8.0, settings=s)
    try:
        sc.reload_every_s = 0.0
        after = np.array([x.score for x in sc.score(frames)])
        assert sc.model.normal_additions and after[1:].min() > before.min()
        assert (after[1:] < 0).sum() < (before[1:] < 0).sum()
    finally:
        undo_normal(pipe.store, "street", a.id, settings=s)
