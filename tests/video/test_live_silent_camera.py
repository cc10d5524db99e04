"""A camera that accepts the connection and never answers (a hung HTTP server, a firewall that
holds the socket) is reported as timed out, not as a redirect or a playlist the operator never used."""

from __future__ import annotations

import socket
import threading

import pytest

from vlm_anomaly.errors import InvalidVideoError
from vlm_anomaly.video.sources import AvReader


def test_a_silent_camera_is_a_timeout():
    srv = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept():  # accept, read nothing, say nothing
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except TimeoutError:
                continue

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    url = f"http://viewer:hunter2@127.0.0.1:{srv.getsockname()[1]}/video.mjpg"
    try:
        with pytest.raises(InvalidVideoError) as e:
            AvReader(url, read_timeout_s=1.0)
    finally:
        stop.set()
        acceptor.join(5)  # out of accept() before its socket is closed
        for c in held:
            c.close()
        srv.close()
    msg = str(e.value)
    assert "timed out" in msg, msg
    assert "redirect" not in msg and "Immediate exit" not in msg and "hunter2" not in msg
