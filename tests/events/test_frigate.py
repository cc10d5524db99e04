"""Frigate as a source: a stand-in for Frigate's HTTP API (FastAPI served by uvicorn) and local
camera streams; `watch --frigate` announces Frigate's cameras to Home Assistant, and its MQTT Last
Will turns them unavailable when the process is killed."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi import FastAPI

from tests.events.streams import MjpegCameras, MqttReader
from tests.helpers import free_port, serve_app
from vlm_anomaly.errors import ConfigError
from vlm_anomaly.video.frigate import FrigateError, list_cameras

# the shape of Frigate's GET /api/config (its running config: cameras with ffmpeg inputs and roles,
# go2rtc restreams; Frigate masks camera passwords as *:*)
FRIGATE_CONFIG = {
    "mqtt": {"enabled": True, "host": "mqtt", "port": 1883, "topic_prefix": "frigate"},
    "go2rtc": {"streams": {
        "front_door": ["rtsp://*:*@192.168.1.20:554/cam/realmonitor?channel=1&subtype=0"],
        "front_door_sub": ["rtsp://*:*@192.168.1.20:554/cam/realmonitor?channel=1&subtype=1"],
        "back_yard": ["rtsp://*:*@192.168.1.21:554/Streaming/Channels/101"],
    }},
    "cameras": {
        "front_door": {
            "name": "front_door", "enabled": True,
            "ffmpeg": {"inputs": [
                {"path": "rtsp://127.0.0.1:8554/front_door", "input_args": "preset-rtsp-restream",
                 "roles": ["record"]},
                {"path": "rtsp://127.0.0.1:8554/front_door_sub", "input_args": "preset-rtsp-restream",
                 "roles": ["detect"]},
            ]},
            "detect": {"enabled": True, "width": 640, "height": 360, "fps": 5},
            "record": {"enabled": True}, "snapshots": {"enabled": True},
        },
        "back_yard": {
            "name": "back_yard", "enabled": True,
            "ffmpeg": {"inputs": [{"path": "rtsp://127.0.0.1:8554/back_yard?video=copy&audio=aac",
                                   "input_args": "preset-rtsp-restream", "roles": ["detect", "record"]}]},
            "detect": {"enabled": True, "width": 1280, "height": 720, "fps": 5},
        },
        "garage": {
            "name": "garage", "enabled": False,
            "ffmpeg": {"inputs": [{"path": "rtsp://127.0.0.1:8554/garage", "roles": ["detect"]}]},
        },
        "porch": {  # reads the camera directly: nothing for a third party to open
            "name": "porch", "enabled": True,
            "ffmpeg": {"inputs": [{"path": "rtsp://*:*@192.168.1.30:554/live", "roles": ["detect"]}]},
        },
    },
}


@pytest.fixture
def frigate():
    """A stand-in Frigate API on localhost; yields its URL."""
    app = FastAPI()

    @app.get("/api/config")
    def config():
        return FRIGATE_CONFIG

    url, server, th = serve_app(app)
    yield url
    server.should_exit = True
    th.join(10)


def test_frigate_cameras_are_its_restreams(frigate):
    cams, skipped = list_cameras(frigate)
    assert [(c.name, c.url) for c in cams] == [
        ("front_door", "rtsp://127.0.0.1:8554/front_door_sub"),  # the detect stream
        ("back_yard", "rtsp://127.0.0.1:8554/back_yard"),
    ]
    assert skipped["garage"] == "disabled in Frigate" and "not restreamed" in skipped["porch"]
    # the record stream, and a Frigate reached by name with another restream URL (e.g. with go2rtc credentials)
    host = frigate.replace("127.0.0.1", "localhost")
    rec, _ = list_cameras(host, role="record", rtsp_url="rtsp://viewer:pw@{host}:8554/{stream}")
    assert [c.url for c in rec] == ["rtsp://viewer:pw@localhost:8554/front_door",
                                    "rtsp://viewer:pw@localhost:8554/back_yard"]


def test_frigate_errors_are_clear_and_hide_passwords(frigate):
    dead = f"http://user:s3cret@127.0.0.1:{free_port()}"
    with pytest.raises(FrigateError, match=r"cannot reach Frigate at http://\*\*\*@127.0.0.1") as e:
        list_cameras(dead)
    assert "s3cret" not in str(e.value)
    with pytest.raises(FrigateError, match="HTTP 404"):
        list_cameras(frigate + "/nothing")
    from vlm_anomaly.cameras import resolve_cameras
    from vlm_anomaly.config import load_settings

    s = load_settings(overrides={"frigate_url": frigate, "cameras": [{"name": "attic"}], "watch_model": "m"})
    with pytest.raises(ConfigError, match="attic: no source, and Frigate watches no such camera"):
        resolve_cameras(s)
    s = load_settings(overrides={"frigate_url": frigate, "cameras": [{"name": "back_yard", "model": "yard-night"}]})
    with pytest.raises(ConfigError, match="front_door: no model"):
        resolve_cameras(s)
    s = load_settings(overrides={"frigate_url": frigate, "watch_model": "street",
                                 "cameras": [{"name": "back_yard", "model": "yard-night"},
                                             {"name": "lobby", "source": "lobby.mp4"}]})
    cams, _ = resolve_cameras(s)
    assert [(c.name, c.model) for c in cams] == [("lobby", "street"), ("front_door", "street"),
                                                 ("back_yard", "yard-night")]
    s.max_watchers = 2
    with pytest.raises(ConfigError, match=r"3 cameras to watch, more than max_watchers \(2\)"):
        resolve_cameras(s)


def test_watch_frigate_announces_its_cameras_and_dies_offline(trained_home, clips, frigate, mqtt_broker, tmp_path):
    host, port = mqtt_broker
    streams = MjpegCameras(clips[0][0])
    cfg = tmp_path / "vlm.yaml"
    cfg.write_text(
        f"home: {trained_home}\nencoder: efficientnet\ninterval_ms: 500\n"
        f"events_db_url: sqlite:///{tmp_path}/ev.db\nevents_dir: {tmp_path}/ev\n"
        f"mqtt_url: mqtt://{host}:{port}\n"
        f'frigate_rtsp_url: "{streams.base}/{{stream}}.mjpg"\n'  # the restreams, served here over HTTP
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    reader = MqttReader(host, port)
    err = (tmp_path / "stderr").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "vlm_anomaly.cli", "--config", str(cfg), "watch",
                             "--frigate", frigate, "--model", "street"],
                            stdout=subprocess.DEVNULL, stderr=err, env=env)
    try:
        for cam in ("front_door", "back_yard"):
            reader.wait_for(f"vlm-anomaly/{cam}/availability", b"online", timeout_s=120)
        alive = reader.wait_for("vlm-anomaly/availability", b"online")
        assert "/front_door_sub.mjpg" in streams.paths and "/back_yard.mjpg" in streams.paths
        assert not [p for p in streams.paths if "garage" in p or "porch" in p]
        kept = reader.retained("homeassistant/#")
        for cam in ("front_door", "back_yard"):
            c = json.loads(kept[f"homeassistant/binary_sensor/vlm_anomaly/{cam}_anomaly/config"])
            assert c["device"]["name"] == cam and c["unique_id"] == f"vlm_anomaly_{cam}_anomaly"
        assert not [t for t in kept if "garage" in t or "porch" in t]
        # a crash: no goodbye from the process, the broker publishes its Last Will
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        reader.wait_for("vlm-anomaly/availability", b"offline", after=alive + 1, timeout_s=10)
        assert reader.retained("vlm-anomaly/availability") == {"vlm-anomaly/availability": b"offline"}
    finally:
        if proc.poll() is None:
            proc.kill()
        err.close()
        reader.close()
        streams.close()
    stderr = (tmp_path / "stderr").read_text()
    assert "Frigate camera porch skipped" in stderr and "garage skipped: disabled in Frigate" in stderr


def test_a_hostile_or_broken_frigate_gets_a_clear_error_not_a_crash():
    """What /api/config says comes from the network: a malformed camera entry or a name Frigate itself
    would refuse skips that camera with the reason (it was 'error: AttributeError', exit 1), and a
    config too large to be Frigate's is refused before it fills memory (it was read whole)."""
    from fastapi.responses import StreamingResponse

    good = FRIGATE_CONFIG["cameras"]["back_yard"]
    app = FastAPI()

    @app.get("/broken/api/config")
    def broken():
        return {"go2rtc": ["not", "a", "mapping"], "cameras": {
            "back_yard": good, "attic": "x", "cellar": {"ffmpeg": {"inputs": ["rtsp://127.0.0.1:8554/cellar"]}},
            "shed": {"ffmpeg": "z"}, "bad/#+ name": good, "\x1b[31mred": good,
            "odd_url": {"ffmpeg": {"inputs": [{"path": "rtsp://[::1:8554/x", "roles": ["detect"]}]}}}}

    @app.get("/huge/api/config")
    def huge():
        def body():
            yield b'{"pad": "'
            for _ in range(64):
                yield b"x" * (256 * 1024)
            yield b'", ' + json.dumps({"cameras": {"back_yard": good}}).encode()[1:]
        return StreamingResponse(body(), media_type="application/json")

    url, server, th = serve_app(app)
    try:
        cams, skipped = list_cameras(url + "/broken")
        assert [c.url for c in cams] == ["rtsp://127.0.0.1:8554/back_yard"]
        assert skipped["attic"] == skipped["cellar"] == skipped["shed"] == "its entry in Frigate's config is malformed"
        assert "not a Frigate camera name" in skipped["bad/#+ name"]
        assert "\x1b" not in "".join(skipped) and "not a Frigate camera name" in skipped["\\x1b[31mred"]
        assert "not restreamed" in skipped["odd_url"]
        with pytest.raises(FrigateError, match="/api/config is over 8 MB"):
            list_cameras(url + "/huge")
    finally:
        server.should_exit = True
        th.join(10)
