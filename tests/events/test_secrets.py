"""Credentials in a source URL or a database URL never surface: topics, payloads, folders, logs,
errors, the API. Real mosquitto, a real webhook receiver, real SQLite and a real HTTP stream."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote

import paho.mqtt.client as mqtt
import pytest
from fastapi.testclient import TestClient

from tests.helpers import free_port
from vlm_anomaly import Pipeline, load_settings
from vlm_anomaly.api import create_app
from vlm_anomaly.cameras import camera_id
from vlm_anomaly.errors import VlmAnomalyError
from vlm_anomaly.events import (
    AlertDispatcher,
    AlertSink,
    EventStore,
    ListenerSink,
    Monitor,
    SourceWatcher,
    StoreSink,
)
from vlm_anomaly.redact import install_log_redaction, redact_text, redact_url, source_slug
from vlm_anomaly.video.live import Gap, LiveSource

SECRET = "s3cr3t-pw"
USER = "camadmin"
CAMERA = f"rtsp://{USER}:{SECRET}@cam1.lan:554/live?channel=1&password={SECRET}"
TOKEN = "secrets-token-0123456789"


def _clean(text: str) -> None:
    assert SECRET not in text and USER not in text, text


def test_redaction_rules():
    assert redact_url(CAMERA) == "rtsp://***@cam1.lan:554/live?channel=1&password=***"
    assert source_slug(CAMERA) == "cam1.lan_554_live_channel_1"
    assert redact_url("rtsp://u:pa/ss@cam/x") == "rtsp://***@cam/x"  # an unencoded '/'
    assert redact_url("http://cam/snap?user=admin&pwd=1&token=2&res=hd") == (
        "http://cam/snap?user=***&pwd=***&token=***&res=hd"
    )
    assert redact_url("/videos/a@b.mp4") == "/videos/a@b.mp4"  # paths are left alone
    assert redact_url(redact_url(CAMERA)) == redact_url(CAMERA)
    assert redact_text(f"failed: '{CAMERA}' (x)") == f"failed: '{redact_url(CAMERA)}' (x)"
    assert source_slug("site/intruder.mp4") == "site_intruder.mp4"  # unchanged for files


def _subscribe(host, port, topic):
    got, ready = [], threading.Event()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    c.on_connect = lambda cl, *a: (cl.subscribe(topic, qos=1), None)
    c.on_subscribe = lambda *a: ready.set()
    c.on_message = lambda cl, ud, msg: got.append((msg.topic, msg.payload.decode()))
    c.connect(host, port)
    c.loop_start()
    assert ready.wait(10), "could not subscribe"
    return c, got


def test_access_log_masks_the_path_without_letting_it_forge_lines():
    """uvicorn quotes the request path it logs; the masking decodes it to find a credential and
    must quote it again, or ``GET /x%0AWARNING%20...`` writes a forged line into the server's log."""
    install_log_redaction()
    path = f"/x%0AWARNING%20vlm_anomaly:%20forged%0D%1B[2J/{quote(CAMERA, safe='')}?source={quote(CAMERA, safe='')}"
    record = logging.getLogRecordFactory()("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                                           ("127.0.0.1:5000", "GET", path, "1.1", 404), None)
    line = record.getMessage()
    assert not any(ord(c) < 32 for c in line), line
    assert "GET /x%0AWARNING%20vlm_anomaly:%20forged%0D%1B" in line and "***@cam1.lan" in line, line
    _clean(line)


def test_camera_credentials_stay_out_of_alerts_topics_folders_db_and_logs(
    trained_home, clips, webhook, mqtt_broker, tmp_path, caplog
):
    """An event on a camera whose URL holds a user and password: none of it goes anywhere."""
    host, port = mqtt_broker
    s = load_settings(overrides={
        "home": trained_home, "encoder": "efficientnet", "interval_ms": 500,
        "events_db_url": f"sqlite:///{tmp_path}/ev.db", "events_dir": tmp_path / "media",
        "webhook_urls": [webhook.url], "mqtt_url": f"mqtt://{host}:{port}",
        "mqtt_topic_prefix": "site1",
    })
    sub, got = _subscribe(host, port, "site1/#")
    store, alerts = EventStore.from_settings(s), AlertDispatcher.from_settings(s.alerts)
    notices = []
    # the camera's frames come from the intruder clip, read the way a live source reads them
    live = LiveSource(str(clips[1]), interval_ms=500, realtime=False)
    w = SourceWatcher(Pipeline(s), "street", CAMERA, realtime=False, live=live,
                      sinks=[StoreSink(store), AlertSink(alerts), ListenerSink(notices.append)])
    with caplog.at_level(logging.DEBUG, logger="vlm_anomaly"):
        stats = w.run()
        assert alerts.flush(30)
    assert stats.status == "ended" and stats.events == 1
    deadline = time.monotonic() + 10
    while len(got) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    sub.loop_stop()
    alerts.close()

    # MQTT: topics and payloads read back from mosquitto
    # a bare source is named by its credential-free id, the same as its Home Assistant device
    assert [t for t, _ in got] == ["site1/cam1_lan_554_live_channel_1/events"] * 2
    for topic, payload in got:
        _clean(topic + payload)
    after = json.loads(got[1][1])["after"]
    assert after["source"] == redact_url(CAMERA) and after["camera"] == camera_id(CAMERA)
    # webhook bodies as the receiver got them
    assert [b["type"] for b in webhook.bodies] == ["new", "end"]
    _clean(json.dumps(webhook.bodies))
    # event folders and files, the database's every byte, notices and logs
    [ev] = store.list()
    files = [str(p.relative_to(tmp_path / "media")) for p in (tmp_path / "media").rglob("*")]
    assert ev.snapshot in files and files[0].startswith("cam1.lan_554_live_channel_1")
    _clean(" ".join(files))
    db = sqlite3.connect(tmp_path / "ev.db")
    _clean("\n".join(db.iterdump()))
    db.close()
    _clean(" ".join(f"{n.source} {n.message} {n.record and n.record.source}" for n in notices))
    _clean("\n".join(r.getMessage() for r in caplog.records))


def test_stream_failures_mask_credentials_in_gaps_errors_and_logs(caplog):
    url = f"http://{USER}:{SECRET}@127.0.0.1:{free_port()}/cam.mjpg?password={SECRET}"
    with caplog.at_level(logging.DEBUG, logger="vlm_anomaly"):
        items = list(LiveSource(url, interval_ms=100, backoff_initial_s=0.05, max_reconnects=2))
    [gap] = items
    assert isinstance(gap, Gap) and "gave up" in gap.reason
    _clean(f"{gap.source} {gap.reason} {gap.as_dict()}")
    assert gap.source.startswith("http://***@127.0.0.1:")
    assert caplog.records
    _clean("\n".join(r.getMessage() for r in caplog.records))
    from vlm_anomaly.video.sources import AvReader

    with pytest.raises(VlmAnomalyError) as err:
        AvReader(url)
    _clean(str(err.value))
    assert "***@127.0.0.1" in str(err.value)


def test_database_url_password_is_not_in_the_error(tmp_path, run_cli, trained_home):
    url = f"postgresql://{USER}:{SECRET}@127.0.0.1:{free_port()}/vlm"
    with pytest.raises(VlmAnomalyError) as err:
        EventStore(url, tmp_path)
    _clean(str(err.value))
    assert "cannot open events database postgresql://***@127.0.0.1:" in str(err.value)
    r = run_cli("watch", "--model", "street", "--source", "x.mp4", home=trained_home,  # a model that is there
                env={"VLM_ANOMALY_EVENTS_DB_URL": url}, timeout=120)
    assert r.returncode == 2 and "cannot open events database" in r.stderr, r.stderr
    _clean(r.stdout + r.stderr)


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass


def test_api_answers_never_hold_the_credentials(trained_home, clips, tmp_path):
    """Watch a real HTTP stream whose URL holds credentials, and one that is down, through the
    API: sources, events, gaps, metrics and refusals are all masked."""
    srv = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(clips[1].parent)))
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    up = f"http://{USER}:{SECRET}@127.0.0.1:{srv.server_address[1]}/{clips[1].name}"
    down = f"http://{USER}:{SECRET}@127.0.0.1:{free_port()}/cam.mjpg"
    s = load_settings(overrides={
        "home": trained_home, "encoder": "efficientnet", "interval_ms": 500, "api_tokens": [TOKEN],
        "events_db_url": f"sqlite:///{tmp_path}/api.db", "events_dir": tmp_path / "media",
        "allowed_url_schemes": ["http"], "allowed_url_hosts": ["127.0.0.1"],
        "stream_backoff_initial_s": 0.05, "stream_backoff_max_s": 0.1,
    })
    answers = []
    try:
        with TestClient(create_app(s), headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            ids = []
            for src in (up, down):
                r = c.post("/sources", json={"model": "street", "source": src})
                assert r.status_code == 201, r.text
                ids.append(r.json()["id"])
                answers.append(r.text)
            time.sleep(2.0)
            for path in ("/sources", f"/sources/{ids[0]}", "/events", "/metrics"):
                answers.append(c.get(path).text)
            answers += [c.delete(f"/sources/{i}").text for i in ids]
            gaps = c.get("/gaps")
            answers.append(gaps.text)
            assert any(g["source"] == redact_url(down) for g in gaps.json()), gaps.text
            # the camera name the API gave the source finds its gaps (a client never sends the password)
            assert camera_id(down) == json.loads(answers[1])["camera"] != source_slug(down)
            by_camera = c.get("/gaps", params={"source": camera_id(down)}).json()
            assert by_camera and all(g["source"] == redact_url(down) for g in by_camera), by_camera
            r = c.post("/sources", json={"model": "street",
                                         "source": f"rtsp://{USER}:{SECRET}@10.1.1.1/live"})
            assert r.status_code == 403
            answers.append(r.text)
            r = c.post("/sources", json={"model": "street", "source": "http://a:b@[bad/x"})
            answers.append(r.text)
    finally:
        srv.shutdown()
        srv.server_close()
    for text in answers:
        _clean(text)
    assert redact_url(up) in answers[2]


def test_monitor_status_and_errors_are_masked(trained_home):
    mon = Monitor(Pipeline(load_settings(overrides={"home": trained_home, "encoder": "efficientnet"})))
    wid = mon.start("street", f"http://{USER}:{SECRET}@127.0.0.1:{free_port()}/x.mp4")
    time.sleep(0.5)
    mon.stop_all()
    _clean(json.dumps(mon.status(wid)))
