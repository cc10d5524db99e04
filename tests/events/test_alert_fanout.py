"""A webhook that hangs must not hold back the MQTT alerts (Home Assistant automations, other
subscribers) of the same events, and what is still queued when watching stops is counted failed,
never dropped silently. Real HTTP server on localhost, real mosquitto."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.events.streams import MqttReader, as_json
from vlm_anomaly.events.alerts import AlertDispatcher, MqttSink, WebhookSink


class _Hang(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_POST(self):
        self.server.hits += 1
        self.server.release.wait(60)  # accepts the connection, never answers in time


@pytest.fixture
def hanging_webhook():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Hang)
    srv.daemon_threads, srv.hits, srv.release = True, 0, threading.Event()
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/hook?token=s3cret"
    srv.release.set()
    srv.shutdown()
    srv.server_close()


def _alert(i: int) -> dict:
    ev = {"id": str(i), "camera": "porch", "source": "rtsp://cam/live", "label": "anomaly"}
    return {"type": "new", "before": ev, "after": ev}


def test_hanging_webhook_does_not_delay_mqtt_alerts_and_nothing_is_lost_at_stop(hanging_webhook, mqtt_broker):
    host, port = mqtt_broker
    reader = MqttReader(host, port, "vlm-anomaly/porch/events")
    mqtt_sink = MqttSink(f"mqtt://{host}:{port}", timeout_s=5)
    alerts = AlertDispatcher([WebhookSink(hanging_webhook, retries=0, timeout_s=4), mqtt_sink])
    try:
        t0 = time.monotonic()
        for i in range(3):
            alerts.publish(_alert(i))
        # each webhook delivery takes its whole 4 s timeout; MQTT subscribers hear all three at once
        while len(reader.history("vlm-anomaly/porch/events")) < 3 and time.monotonic() - t0 < 3.5:
            time.sleep(0.05)
        got = [as_json(p)["after"]["id"] for p in reader.history("vlm-anomaly/porch/events")]
        assert got == ["0", "1", "2"], f"MQTT alerts held back by the hanging webhook: {got}"
    finally:
        alerts.close(timeout_s=1)  # the webhook still holds (at least) two alerts
        reader.close()
    assert alerts.sent == 3
    assert alerts.failed == 3, "alerts still queued for the webhook at stop must be counted failed"
    assert alerts.failed_by["rtsp://cam/live"] == 3


class _Redirect(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.hits += 1
        self.send_response(302)
        self.send_header("Location", "http://127.0.0.1:9/elsewhere")
        self.end_headers()


def test_a_webhook_that_redirects_is_a_failed_alert_not_a_sent_one(caplog):
    """The receiver never got the alert (the redirect is not followed): counting it sent hid the loss."""
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Redirect)
    srv.daemon_threads, srv.hits = True, 0
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}/hook?token=s3cret"
    alerts = AlertDispatcher([WebhookSink(url, retries=0, timeout_s=5)])
    try:
        alerts.publish(_alert(1))
        assert alerts.flush(10)
    finally:
        alerts.close()
        srv.shutdown()
        srv.server_close()
    assert srv.hits == 1
    assert (alerts.sent, alerts.failed) == (0, 1)
    assert "redirect" in caplog.text and "s3cret" not in caplog.text


def test_an_alert_being_sent_at_stop_is_counted_failed(hanging_webhook, caplog):
    """A webhook hanging through its retries holds its alert for minutes: stopping gives up on it
    after its wait, and it counts failed (before, it was neither sent nor failed)."""
    alerts = AlertDispatcher([WebhookSink(hanging_webhook, retries=3, timeout_s=4)])
    for i in range(3):
        alerts.publish(_alert(i))
    time.sleep(0.5)  # the first one is being sent
    t0 = time.monotonic()
    alerts.close(timeout_s=1)
    assert time.monotonic() - t0 < 10
    assert (alerts.sent, alerts.failed) == (0, 3)
    assert "1 alert still being sent at stop, counted failed" in caplog.text and "s3cret" not in caplog.text


def test_ctrl_c_while_watch_waits_for_alerts_still_prints_the_summary(hanging_webhook, default_home, clips,
                                                                      tmp_path):
    """``watch`` waits for its alerts when the file ends, and says so; Ctrl-C then stops the wait
    and the summary still counts what was not delivered (before: exit 130, nothing said)."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    cfg = tmp_path / "vlm.yaml"
    cfg.write_text(f"home: {default_home}\ninterval_ms: 500\nevents_db_url: sqlite:///{tmp_path}/e.db\n"
                   f"events_dir: {tmp_path}/ev\nwebhook_urls: ['{hanging_webhook}']\nwebhook_timeout_s: 5\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "vlm_anomaly.cli", "--config", str(cfg), "watch", "--model",
                             "street", "--source", str(clips[1]), "--fast"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    err = ""
    deadline = time.monotonic() + 120
    while "waiting up to" not in err:  # the file has ended; its two alerts hang
        assert time.monotonic() < deadline and proc.poll() is None, err
        err += proc.stderr.readline()
    proc.send_signal(signal.SIGINT)
    out, rest = proc.communicate(timeout=20)
    assert "1 event(s)" in out and "0 alert(s) sent, 2 failed" in out, (out, err + rest)
    assert "s3cret" not in out + err + rest


def test_an_mqtt_password_with_reserved_signs_is_written_escaped(tmp_path):
    """A broker password holding "@" or "/" is written %-escaped in ``mqtt_url`` (as in any URL);
    it was sent still escaped, and the broker refused it. Real mosquitto with a password file."""
    import shutil
    import socket
    import subprocess

    import paho.mqtt.client as mqtt

    from tests.events.conftest import mosquitto_binary
    from tests.helpers import free_port

    secret = "Hun@ter/2pw"
    passwd = tmp_path / "passwd"
    subprocess.run([shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd", "-b", "-c", str(passwd), "bob",
                    secret], check=True, capture_output=True)
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    # "user root": started as root, mosquitto would read the password file as user mosquitto, which
    # cannot enter pytest's private folder (started as another user, the setting does nothing)
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {passwd}\n"
                    "persistence false\nuser root\n")
    broker = subprocess.Popen([mosquitto_binary(), "-c", str(conf)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "mosquitto did not start"
                time.sleep(0.05)
        got, ready = [], threading.Event()
        sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        sub.username_pw_set("bob", secret)
        sub.on_connect = lambda cl, *a: cl.subscribe("vlm-anomaly/#", qos=1)
        sub.on_subscribe = lambda *a: ready.set()
        sub.on_message = lambda cl, ud, m: got.append(m.topic)
        sub.connect("127.0.0.1", port)
        sub.loop_start()
        assert ready.wait(10)
        alerts = AlertDispatcher([MqttSink(f"mqtt://bob:Hun%40ter%2F2pw@127.0.0.1:{port}", timeout_s=5)])
        alerts.publish(_alert(1))
        assert alerts.flush(15)
        alerts.close()
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            time.sleep(0.05)
        sub.loop_stop()
        assert (alerts.sent, alerts.failed) == (1, 0) and got == ["vlm-anomaly/porch/events"]
    finally:
        broker.terminate()
        broker.wait(5)
