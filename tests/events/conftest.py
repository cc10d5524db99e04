"""Real collaborators of the watch tests: a trained model, a webhook receiver, an MQTT broker."""

import json
import shutil
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.helpers import free_port
from vlm_anomaly.synthetic import write_video

ANOMALY_SPAN = (4.0, 8.0)


@pytest.fixture(scope="session")
def anomaly_span():
    return ANOMALY_SPAN


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Normal clips (same scene, two codecs) and a test clip with an intruder during 4-8 s."""
    d = tmp_path_factory.mktemp("clips")
    normal = [
        write_video(d / "normal.mp4", seconds=12, seed=0),
        write_video(d / "normal.avi", seconds=12, seed=0),
    ]
    test = write_video(d / "intruder.mp4", seconds=12, seed=0, anomaly_span=ANOMALY_SPAN)
    return normal, test


@pytest.fixture(scope="module")
def trained_home(tmp_path_factory, street_model):
    """A home folder holding model "street" (the shared one: the same scene, EfficientNet-Lite0)."""
    return street_model.install(tmp_path_factory.mktemp("home"))


@pytest.fixture(scope="module")
def default_home(tmp_path_factory, default_street_model):
    """A home folder holding model "street" trained with the shipped defaults (``motion``)."""
    return default_street_model.install(tmp_path_factory.mktemp("default-home"))


class _Receiver(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        srv = self.server
        if srv.fail_first > 0:  # exercise the retry: the first attempts get HTTP 503
            srv.fail_first -= 1
            self.send_response(503)
            self.end_headers()
            return
        srv.bodies.append(json.loads(body))
        self.send_response(204)
        self.end_headers()


@pytest.fixture
def webhook():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    srv.bodies, srv.fail_first = [], 0
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}/hook"
    yield srv
    srv.shutdown()
    srv.server_close()



def mosquitto_binary() -> str:
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(exe).is_file():
        pytest.fail("mosquitto is not installed (run scripts/system-deps.sh as make test does)")
    return exe


@pytest.fixture
def mqtt_broker(tmp_path):
    """Debian's mosquitto on a free loopback port; yields (host, port)."""
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    proc = subprocess.Popen(
        [mosquitto_binary(), "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("mosquitto did not start")
    yield "127.0.0.1", port
    proc.terminate()
    proc.wait(5)
