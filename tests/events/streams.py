"""Real parts for the Home Assistant / Frigate tests: an MJPEG camera server and an MQTT reader."""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np
import paho.mqtt.client as mqtt

from vlm_anomaly.video import sample_frames


class _Mjpeg(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        srv = self.server
        srv.paths.append(self.path)
        if time.monotonic() < srv.down_until:
            self.send_response(503)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.end_headers()
        i = 0
        try:
            while not srv.closing:
                if srv.drop_s:  # hang up, and refuse new connections for a while
                    srv.down_until, srv.drop_s = time.monotonic() + srv.drop_s, 0.0
                    return
                if time.monotonic() < srv.down_until:
                    return
                while time.monotonic() < srv.paused_until and not srv.closing:  # stalled: no frame, still connected
                    time.sleep(0.02)
                jpg = srv.jpegs[i % len(srv.jpegs)]
                self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"
                                 % len(jpg) + jpg + b"\r\n")
                self.wfile.flush()
                i += 1
                time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):
            pass


class MjpegCameras:
    """Any path of this server is a 10 fps MJPEG camera showing ``video``'s frames in a loop."""

    def __init__(self, video):
        frames = [f.image for f in sample_frames(video, interval_ms=100)]
        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), _Mjpeg)
        self.srv.daemon_threads = True
        self.srv.jpegs = [cv2.imencode(".jpg", np.ascontiguousarray(f[:, :, ::-1]))[1].tobytes() for f in frames]
        self.srv.paths, self.srv.closing, self.srv.down_until, self.srv.drop_s = [], False, 0.0, 0.0
        self.srv.paused_until = 0.0
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.srv.server_address[1]}"

    @property
    def paths(self) -> list[str]:
        return self.srv.paths

    def drop(self, seconds: float) -> None:
        """Every open stream hangs up; new connections get HTTP 503 for ``seconds``."""
        self.srv.drop_s = seconds
        self.srv.down_until = time.monotonic() + seconds

    def pause(self, seconds: float) -> None:
        """Every open stream sends no frame for ``seconds``, then goes on where it was (a stall)."""
        self.srv.paused_until = time.monotonic() + seconds

    def close(self) -> None:
        self.srv.closing = True
        self.srv.shutdown()
        self.srv.server_close()


class MqttReader:
    """A subscriber that records every message, and reads what the broker retains."""

    def __init__(self, host: str, port: int, topic: str = "#"):
        self.host, self.port = host, port
        self.messages: list[tuple[str, bytes, bool]] = []
        ready = threading.Event()
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.c.on_connect = lambda cl, *a: cl.subscribe(topic, qos=1)
        self.c.on_subscribe = lambda *a: ready.set()
        self.c.on_message = lambda cl, ud, m: self.messages.append((m.topic, m.payload, bool(m.retain)))
        self.c.connect(host, port)
        self.c.loop_start()
        assert ready.wait(10), "could not subscribe"

    def history(self, topic: str) -> list[bytes]:
        return [p for t, p, _ in self.messages if t == topic]

    def wait_for(self, topic: str, payload: bytes, timeout_s: float = 20.0, after: int = 0) -> int:
        """Wait until ``topic`` carried ``payload`` (at index >= ``after`` of its history); its index."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            h = self.history(topic)
            for i in range(after, len(h)):
                if h[i] == payload:
                    return i
            time.sleep(0.05)
        raise AssertionError(f"{topic} never carried {payload!r}; history {self.history(topic)!r}")

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()

    def retained(self, pattern: str = "#") -> dict[str, bytes]:
        """What the broker retains under ``pattern``: a fresh client subscribes and reads it all."""
        got: dict[str, bytes] = {}
        done = threading.Event()
        marker = f"test-marker/{uuid.uuid4().hex}"
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)

        def on_message(cl, ud, m):
            if m.topic == marker:
                done.set()
            elif m.retain:
                got[m.topic] = m.payload

        c.on_message = on_message
        c.connect(self.host, self.port)
        c.loop_start()
        c.subscribe([(pattern, 1), (marker, 1)])
        c.publish(marker, b"x", qos=1)
        assert done.wait(10), "broker did not answer"
        c.loop_stop()
        c.disconnect()
        return got


def as_json(payload: bytes) -> dict:
    return json.loads(payload)
