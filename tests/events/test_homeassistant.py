"""Home Assistant MQTT discovery against a real mosquitto: two watched cameras, a stream that drops,
a camera that is removed. What Home Assistant would read is read back from the broker."""

import json
import time

import cv2
import numpy as np

from tests.events.streams import MjpegCameras, MqttReader
from vlm_anomaly import Pipeline, load_settings
from vlm_anomaly.cameras import camera_id
from vlm_anomaly.events import EventStore, Monitor
from vlm_anomaly.events.homeassistant import HomeAssistantBridge

P, D = "vlm-anomaly", "homeassistant"  # state and discovery prefixes (the defaults)
KEYS = {"anomaly": "binary_sensor", "score": "sensor", "last_event": "sensor", "snapshot": "image"}


def _settings(home, host, port, **extra):
    return load_settings(overrides={
        "home": home, "interval_ms": 500, "encoder": "efficientnet", "mqtt_url": f"mqtt://{host}:{port}",
        "stream_stall_timeout_s": 1.0, "stream_backoff_initial_s": 0.2, "stream_backoff_max_s": 0.4, **extra})


def _config_topics(cam):
    return {f"{D}/{comp}/vlm_anomaly/{cam}_{key}/config": key for key, comp in KEYS.items()}


def test_two_cameras_discovery_states_drop_and_removal(trained_home, clips, mqtt_broker, tmp_path):
    host, port = mqtt_broker
    s = _settings(trained_home, host, port, events_db_url=f"sqlite:///{tmp_path}/ev.db", events_dir=tmp_path / "ev")
    cams = MjpegCameras(clips[0][0])  # a live camera showing the normal street
    reader = MqttReader(host, port)
    store = EventStore.from_settings(s)
    bridge = HomeAssistantBridge.from_settings(s.alerts, store=store)
    bridge.poll_s = 0.2
    mon = Monitor(Pipeline(s), store=store, listener=bridge.on_notice)
    gate_url = f"{cams.base}/gate.mjpg".replace("http://", "http://viewer:hunter2@")  # a camera password
    assert bridge.add_camera("yard", str(clips[1])) == "yard"
    assert bridge.add_camera("gate", gate_url) == "gate"
    assert bridge.clear_stale() == []
    bridge.attach(mon)
    try:
        gate = mon.start("street", gate_url)
        first = reader.wait_for(f"{P}/gate/availability", b"online")
        yard = mon.start("street", str(clips[1]), realtime=False)  # the intruder clip, as fast as possible
        # the stream drops: the watchdog notices and the camera turns unavailable, then comes back
        cams.drop(2.5)
        off = reader.wait_for(f"{P}/gate/availability", b"offline", timeout_s=10, after=first + 1)
        back = reader.wait_for(f"{P}/gate/availability", b"online", after=off + 1)
        assert mon.wait(0) is False and mon.status(gate)["gaps"] >= 1
        deadline = time.monotonic() + 120
        while mon.status(yard)["status"] == "running" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert mon.status(yard)["events"] == 1
        reader.wait_for(f"{P}/yard/availability", b"offline")  # the file ended
        bridge.poll()
        assert bridge.flush(10)
        kept = reader.retained()
    finally:
        mon.stop_all()
    [ev] = store.list()

    # -- discovery configs: 4 entities per camera, one device each, stable ids, both availabilities
    for cam in ("yard", "gate"):
        topics = _config_topics(cam)
        assert set(topics) <= set(kept), sorted(kept)
        for topic, key in topics.items():
            c = json.loads(kept[topic])
            assert c["unique_id"] == f"vlm_anomaly_{cam}_{key}"
            assert c["device"]["identifiers"] == [f"vlm_anomaly_{cam}"] and c["device"]["name"] == cam
            assert c["availability"] == [{"topic": f"{P}/availability"}, {"topic": f"{P}/{cam}/availability"}]
            assert c["availability_mode"] == "all" and c["payload_not_available"] == "offline"
        anomaly = json.loads(kept[f"{D}/binary_sensor/vlm_anomaly/{cam}_anomaly/config"])
        assert anomaly["device_class"] == "problem" and anomaly["state_topic"] == f"{P}/{cam}/anomaly"
        assert (anomaly["payload_on"], anomaly["payload_off"]) == ("ON", "OFF")
        image = json.loads(kept[f"{D}/image/vlm_anomaly/{cam}_snapshot/config"])
        assert image["image_topic"] == f"{P}/{cam}/snapshot" and image["content_type"] == "image/jpeg"
        last = json.loads(kept[f"{D}/sensor/vlm_anomaly/{cam}_last_event/config"])
        assert last["value_template"] == "{{ value_json.description }}"
        assert last["json_attributes_topic"] == last["state_topic"] == f"{P}/{cam}/event"

    # -- states: the yard's event (ON then OFF), its description and snapshot; scores; availability
    assert kept[f"{P}/availability"] == b"online"
    assert reader.history(f"{P}/yard/anomaly")[-2:] == [b"ON", b"OFF"] and kept[f"{P}/yard/anomaly"] == b"OFF"
    state = json.loads(kept[f"{P}/yard/event"])
    assert state["event_id"] == ev.id and state["status"] == "closed" and state["camera"] == "yard"
    assert f"event #{ev.id}, " in state["description"] and len(state["description"]) <= 255
    assert state["has_snapshot"] and state["started_at"].endswith("+00:00")
    assert state["worst_score"] == round(ev.worst_score, 6) and state["source_start_s"] == round(ev.start_time, 3)
    jpeg = kept[f"{P}/yard/snapshot"]
    assert jpeg == store.media_path(ev.snapshot).read_bytes()
    img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert ((img[:, :, 2] > 180) & (img[:, :, 1] < 80) & (img[:, :, 0] < 80)).mean() > 0.02  # the red van
    assert float(kept[f"{P}/yard/score"]) == round(mon.status(yard)["last_score"], 4)
    float(kept[f"{P}/gate/score"])
    assert kept[f"{P}/yard/availability"] == b"offline" and kept[f"{P}/gate/availability"] == b"online"
    assert back > off
    assert f"{P}/gate/event" not in kept  # no event on the normal street

    assert not [t for t, p, _ in reader.messages if b"hunter2" in p or "hunter2" in t]  # never published

    # -- graceful stop: the stopped camera and the service say offline themselves
    bridge.close()
    assert reader.retained(f"{P}/+/availability")[f"{P}/gate/availability"] == b"offline"
    assert reader.retained(f"{P}/availability") == {f"{P}/availability": b"offline"}

    # -- restart with the yard removed from the cameras: its entities are cleared, the gate's kept
    again = HomeAssistantBridge.from_settings(s.alerts)
    again.add_camera("gate", gate_url)
    assert again.clear_stale() == ["yard"]
    assert again.flush(10)
    after = reader.retained()
    assert not [t for t in after if "yard" in t], sorted(after)
    assert set(_config_topics("gate")) <= set(after) and after[f"{P}/availability"] == b"online"
    assert json.loads(after[f"{D}/sensor/vlm_anomaly/gate_score/config"])["unique_id"] == "vlm_anomaly_gate_score"
    # Home Assistant restarted (its birth message): everything is announced again
    topic = f"{D}/sensor/vlm_anomaly/gate_score/config"
    seen = len(reader.history(topic))
    reader.c.publish(f"{D}/status", b"online", qos=1)
    deadline = time.monotonic() + 10
    while len(reader.history(topic)) == seen and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(reader.history(topic)) > seen
    again.close()
    reader.close()
    cams.close()
    store.close()


def test_ids_never_hold_credentials():
    src = "rtsp://admin:hunter2@10.0.0.5:554/cam/realmonitor?channel=1&password=hunter2&token=abc"
    cid = camera_id(src)
    assert cid == "10_0_0_5_554_cam_realmonitor_channel_1"
    assert "hunter2" not in cid and "admin" not in cid and "abc" not in cid
    assert camera_id("front_door") == "front_door" and camera_id("/videos/lobby cam.mp4") == "videos_lobby_cam_mp4"


def test_states_survive_a_broker_restart_without_persistence(tmp_path):
    """mosquitto restarted without persistence forgets every retained message: on reconnection the
    cameras' states (problem on/off, last event, score) come back too, not only their configs - Home
    Assistant showed them 'unknown' until the next event."""
    import datetime as dt
    import subprocess

    from tests.events.conftest import mosquitto_binary
    from tests.helpers import free_port
    from vlm_anomaly.events.sinks import WatchNotice
    from vlm_anomaly.events.store import EventRecord

    port = free_port()
    conf = tmp_path / "m.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")

    def broker():
        proc = subprocess.Popen([mosquitto_binary(), "-c", str(conf)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        return proc

    proc = broker()
    bridge = HomeAssistantBridge(f"mqtt://127.0.0.1:{port}")
    try:
        assert bridge.wait_connected(10)
        bridge.add_camera("porch", "rtsp://cam/porch")
        now = dt.datetime.now(dt.UTC)
        rec = EventRecord(id=7, source="rtsp://cam/porch", model="m", status="open", start_time=4.0, end_time=None,
                          started_at=now, ended_at=None, worst_score=-0.9, worst_time=5.0, mean_score=-0.5, frames=3)
        bridge.on_notice(WatchNotice("start", "rtsp://cam/porch", record=rec))
        assert bridge.flush(10)
        reader = MqttReader("127.0.0.1", port)
        before = reader.retained(f"{P}/porch/#")
        reader.close()
        assert before[f"{P}/porch/anomaly"] == b"ON"
        proc.terminate()
        proc.wait(5)
        proc = broker()
        deadline = time.monotonic() + 20
        after: dict = {}
        while time.monotonic() < deadline:
            try:
                reader = MqttReader("127.0.0.1", port)
            except (OSError, AssertionError):
                time.sleep(0.2)
                continue
            after = reader.retained(f"{P}/porch/#")
            reader.close()
            if f"{P}/porch/availability" in after:  # the bridge is back and said so
                break
            time.sleep(0.3)
        time.sleep(0.5)
        reader = MqttReader("127.0.0.1", port)
        after = reader.retained(f"{P}/porch/#")
        configs = reader.retained(f"{D}/#")
        reader.close()
        assert f"{D}/binary_sensor/vlm_anomaly/porch_anomaly/config" in configs
        assert after.get(f"{P}/porch/anomaly") == b"ON", f"retained after the restart: {sorted(after)}"
        assert json.loads(after[f"{P}/porch/event"])["event_id"] == 7
    finally:
        bridge.close()
        proc.terminate()
        proc.wait(5)


def test_a_camera_shows_only_its_own_last_event(mqtt_broker, tmp_path):
    """The same stream watched before under another camera name (a bare source, then named in the
    settings): the named camera starts with no last event, not the other camera's."""
    import datetime as dt

    from vlm_anomaly.events.store import utcnow

    host, port = mqtt_broker
    store = EventStore(f"sqlite:///{tmp_path}/e.db", tmp_path / "media")
    src = "/videos/intr.mp4"
    store.create(source=src, camera=camera_id(src), model="m", status="closed", start_time=8.0, end_time=14.0,
                 started_at=utcnow() - dt.timedelta(hours=1), worst_score=-2, worst_time=10, mean_score=-1)
    bridge = HomeAssistantBridge(f"mqtt://{host}:{port}", store=store)
    try:
        assert bridge.wait_connected(10)
        bridge.add_camera("front_door", src)
        bridge.add_camera(camera_id(src), src)
        assert bridge.flush(10)
        reader = MqttReader(host, port)
        kept = reader.retained(f"{P}/#")
        reader.close()
    finally:
        bridge.close()
    assert f"{P}/front_door/event" not in kept
    assert json.loads(kept[f"{P}/{camera_id(src)}/event"])["camera"] == camera_id(src)
