"""Anomalies inside the tools people watch: a Frigate event per anomaly of a Frigate camera (read back
from a stand-in Frigate: FastAPI under uvicorn), Home Assistant's `event` entity and alert topics named
by camera (read back from a real mosquitto), and sources started through the REST API announced to
Home Assistant."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI, Request

from tests.events.streams import MqttReader
from tests.events.test_frigate import FRIGATE_CONFIG
from tests.helpers import serve_app
from vlm_anomaly import load_settings
from vlm_anomaly.api import create_app

pytestmark = pytest.mark.slow


@pytest.fixture
def frigate_with_events():
    """A stand-in Frigate: its config, and the manual-event endpoints Frigate documents
    (``POST /api/events/<camera>/<label>/create`` answering ``event_id``, ``PUT /api/events/<id>/end``)."""
    app = FastAPI()
    app.state.created, app.state.ended = [], []

    @app.get("/api/config")
    def config():
        return FRIGATE_CONFIG

    @app.post("/api/events/{camera}/{label}/create")
    async def create(camera: str, label: str, request: Request):
        if camera not in FRIGATE_CONFIG["cameras"]:
            return {"success": False, "message": f"{camera} is not a valid camera."}
        body = await request.json()
        eid = f"{time.time():.6f}-fake{len(app.state.created)}"
        app.state.created.append({"camera": camera, "label": label, "id": eid, **body})
        return {"success": True, "message": "Successfully created event.", "event_id": eid}

    @app.put("/api/events/{event_id}/end")
    async def end(event_id: str, request: Request):
        app.state.ended.append({"id": event_id, **(await request.json())})
        return {"success": True, "message": "Event successfully ended."}

    url, server, th = serve_app(app)
    app.state.url = url
    yield app.state
    server.should_exit = True
    th.join(10)


def test_frigate_camera_anomaly_becomes_a_frigate_event_and_a_home_assistant_event(
        trained_home, clips, frigate_with_events, mqtt_broker, tmp_path):
    """`watch --frigate`: the intruder on front_door is one Frigate event (created, then ended, label
    "anomaly", the reason as sub-label), Home Assistant's `event` entity fires start then end, and the
    alert topic carries the camera's name; the normal back yard creates nothing."""
    normal, intruder = clips
    streams = tmp_path / "restreams"
    streams.mkdir()
    shutil.copy(intruder, streams / "front_door_sub.mp4")
    shutil.copy(normal[0], streams / "back_yard.mp4")
    host, port = mqtt_broker
    cfg = tmp_path / "vlm.yaml"
    cfg.write_text(
        f"home: {trained_home}\nencoder: efficientnet\ninterval_ms: 250\n"
        f"events_db_url: sqlite:///{tmp_path}/ev.db\nevents_dir: {tmp_path}/ev\n"
        f"mqtt_url: mqtt://{host}:{port}\n"
        f'frigate_rtsp_url: "{streams}/{{stream}}.mp4"\n'  # Frigate's restreams, as files here
    )
    reader = MqttReader(host, port)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    try:
        done = subprocess.run([sys.executable, "-m", "vlm_anomaly.cli", "--config", str(cfg), "watch",
                               "--frigate", frigate_with_events.url, "--model", "street", "--fast"],
                              env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        time.sleep(1.0)  # the reader's last messages
        activity = [json.loads(p) for p in reader.history("vlm-anomaly/front_door/activity")]
        alerts = [json.loads(p) for p in reader.history("vlm-anomaly/front_door/events")]
        discovery = json.loads(reader.retained("homeassistant/event/#")[
            "homeassistant/event/vlm_anomaly/front_door_activity/config"])
    finally:
        reader.close()
    created, ended = frigate_with_events.created, frigate_with_events.ended
    assert created, f"no Frigate event created; watch said:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    assert {c["camera"] for c in created} == {"front_door"}  # the back yard stayed normal
    assert all(c["label"] == "anomaly" and c["sub_label"] and c["duration"] is None
               and c["include_recording"] is True and 0.0 <= c["score"] <= 1.0 for c in created)
    assert sorted(e["id"] for e in ended) == sorted(c["id"] for c in created)  # each one ended
    # Home Assistant: an `event` entity with our event types, fired at the start and the end
    assert discovery["event_types"] == ["anomaly_start", "anomaly_end", "camera_tamper"]
    assert discovery["state_topic"] == "vlm-anomaly/front_door/activity"
    types = [a["event_type"] for a in activity]
    assert types.count("anomaly_start") == len(created) and types.count("anomaly_end") == len(created)
    assert all(a["camera"] == "front_door" for a in activity)
    assert not reader.retained("vlm-anomaly/front_door/activity")  # never replayed to a restarted HA
    # the alert topic is the camera's name, not a slug of the restream's path
    assert alerts and all(a["after"]["camera"] == "front_door" for a in alerts)
    assert not [t for t, _, _ in reader.messages if t.endswith("/events") and "front_door_sub" in t]


def test_api_sources_are_announced_to_home_assistant(trained_home, clips, mqtt_broker, tmp_path):
    """POST /sources with a camera name: Home Assistant gets the camera's device (retained discovery
    configs under that name, on the API's own node and Last Will, apart from `watch`'s) and its event
    topic; DELETE removes it again."""
    host, port = mqtt_broker
    settings = load_settings(overrides={
        "home": trained_home, "encoder": "efficientnet", "interval_ms": 250, "api_tokens": ["tok-0123456789"],
        "allowed_media_dirs": [clips[1].parent], "mqtt_url": f"mqtt://{host}:{port}",
        "events_db_url": f"sqlite:///{tmp_path}/ev.db", "events_dir": str(tmp_path / "ev"),
    })
    url, server, th = serve_app(create_app(settings))
    reader = MqttReader(host, port)
    try:
        with httpx.Client(base_url=url, headers={"Authorization": "Bearer tok-0123456789"}, timeout=60) as c:
            r = c.post("/sources", json={"model": "street", "source": str(clips[1]), "camera": "porch",
                                         "realtime": False})
            assert r.status_code == 201, r.text
            assert r.json()["camera"] == "porch"
            wid = r.json()["id"]
            reader.wait_for("vlm-anomaly/porch/anomaly", b"OFF", timeout_s=30)
            kept = reader.retained("homeassistant/#")
            for key, comp in (("anomaly", "binary_sensor"), ("score", "sensor"), ("activity", "event")):
                conf = json.loads(kept[f"homeassistant/{comp}/vlm_anomaly_api/porch_{key}/config"])
                assert conf["device"]["name"] == "porch"
                assert {"topic": "vlm-anomaly/api/availability"} in conf["availability"]
            deadline = time.monotonic() + 240
            while c.get(f"/sources/{wid}").json()["status"] == "running" and time.monotonic() < deadline:
                time.sleep(0.5)
            time.sleep(1.0)
            starts = [json.loads(p)["event_type"] for p in reader.history("vlm-anomaly/porch/activity")]
            assert "anomaly_start" in starts  # the intruder clip, announced as the porch camera
            assert c.delete(f"/sources/{wid}").status_code == 200
            time.sleep(1.0)
            assert not [t for t in reader.retained("homeassistant/#") if "porch" in t]
            # a hostile camera name is refused before anything is announced
            bad = c.post("/sources", json={"model": "street", "source": str(clips[1]), "camera": "a/b#"})
            assert bad.status_code == 422
    finally:
        reader.close()
        server.should_exit = True
        th.join(15)
