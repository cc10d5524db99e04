"""`vlm-anomaly service`: watch + API + dashboard from one YAML file under one supervisor; a crashed
process is restarted, SIGTERM stops everything cleanly (cameras say offline themselves)."""

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.events.streams import MjpegCameras, MqttReader
from tests.helpers import cli_env, free_port
from vlm_anomaly.synthetic import write_video

pytestmark = pytest.mark.slow


def _wait_http(url: str, timeout_s: float, **kw) -> httpx.Response:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            r = httpx.get(url, timeout=2, **kw)
            if r.status_code == 200:
                return r
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url} did not answer within {timeout_s} s")


def _pids(stderr: Path) -> dict[str, int]:
    """The latest pid of each child, from the supervisor's log."""
    return {name: int(pid) for name, pid in re.findall(r"started (\w+) \(pid (\d+)\)", stderr.read_text())}


def _start_service(cfg: Path, env: dict[str, str], log: Path, *args: str) -> subprocess.Popen:
    """``vlm-anomaly --config CFG service ARGS`` with its stderr (the supervisor's log) in ``log``."""
    with log.open("w") as err:
        return subprocess.Popen([sys.executable, "-m", "vlm_anomaly.cli", "--config", str(cfg), "service", *args],
                                stdout=subprocess.PIPE, stderr=err, env=env, text=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def test_service_runs_watch_api_dashboard_and_stops_gracefully(trained_home, clips, mqtt_broker, tmp_path):
    host, port = mqtt_broker
    streams = MjpegCameras(clips[0][0])
    api_port, ui_port = free_port(), free_port()
    cfg = tmp_path / "service.yaml"
    cfg.write_text(
        f"home: {trained_home}\nencoder: efficientnet\ninterval_ms: 500\n"
        f"events_db_url: sqlite:///{tmp_path}/ev.db\nevents_dir: {tmp_path}/ev\n"
        f"mqtt_url: mqtt://{host}:{port}\napi_tokens: [t0ken]\napi_port: {api_port}\n"
        f"ui_port: {ui_port}\nui_address: 127.0.0.1\nwatch_model: street\n"
        f"cameras:\n  - name: lobby\n    source: {streams.base}/lobby.mjpg\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    reader = MqttReader(host, port)
    log = tmp_path / "stderr"
    proc = _start_service(cfg, env, log, "--grace-s", "20")
    try:
        api = f"http://127.0.0.1:{api_port}"
        assert _wait_http(f"{api}/health", 120).json()["status"] == "ok"
        assert _wait_http(f"http://127.0.0.1:{ui_port}/_stcore/health", 120).text == "ok"
        reader.wait_for("vlm-anomaly/lobby/availability", b"online", timeout_s=120)
        assert httpx.get(f"{api}/models", headers={"Authorization": "Bearer t0ken"}).json()[0]["name"] == "street"
        first = _pids(log)
        assert set(first) == {"watch", "api", "dashboard"}

        # the API crashes: the supervisor starts it again, the others keep running
        os.kill(first["api"], signal.SIGKILL)
        deadline = time.monotonic() + 30
        while _pids(log)["api"] == first["api"] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _pids(log)["api"] != first["api"] and "api exited with code -9; restart 1" in log.read_text()
        _wait_http(f"{api}/health", 120)
        assert _alive(first["watch"]) and _alive(first["dashboard"])

        # docker stop: SIGTERM; everything stops within the grace period, the camera says offline itself
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, log.read_text()[-2000:]
        assert "service stopped" in out
        assert not [n for n, pid in _pids(log).items() if _alive(pid)]
        reader.wait_for("vlm-anomaly/lobby/availability", b"offline", timeout_s=5)
        assert reader.retained("vlm-anomaly/availability") == {"vlm-anomaly/availability": b"offline"}
    finally:
        if proc.poll() is None:
            proc.kill()
            for pid in _pids(log).values():
                if _alive(pid):
                    os.kill(pid, signal.SIGKILL)
        reader.close()
        streams.close()


def test_a_restarted_api_keeps_the_one_time_token(tmp_path):
    """Without api_tokens the supervisor makes one token for the run: the API restarted after a
    crash still takes it (each `serve` made its own, so clients were locked out by a restart)."""
    api_port = free_port()
    cfg = tmp_path / "service.yaml"
    cfg.write_text(f"home: {tmp_path}/home\nencoder: efficientnet\napi_port: {api_port}\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    env.pop("VLM_ANOMALY_API_TOKENS", None)
    log = tmp_path / "stderr"
    proc = _start_service(cfg, env, log, "--no-ui", "--no-watch")
    try:
        api = f"http://127.0.0.1:{api_port}"
        _wait_http(f"{api}/health", 120)
        [token] = set(re.findall(r"one-time token for this run: (\S+)", log.read_text()))
        auth = {"Authorization": f"Bearer {token}"}
        assert httpx.get(f"{api}/models", headers=auth).status_code == 200
        first = _pids(log)["api"]
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while _pids(log)["api"] == first and time.monotonic() < deadline:
            time.sleep(0.2)
        _wait_http(f"{api}/health", 120)
        assert httpx.get(f"{api}/models", headers=auth).status_code == 200
        assert len(set(re.findall(r"one-time token for this run: (\S+)", log.read_text()))) == 1
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
        assert proc.returncode == 0, log.read_text()[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid in _pids(log).values():
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("stop_signals", [(signal.SIGTERM,), (signal.SIGINT, signal.SIGTERM)],
                         ids=["sigterm", "ctrl-c-then-service-sigterm"])
def test_sigterm_stops_watch_with_its_open_event_closed(trained_home, tmp_path, stop_signals):
    """SIGTERM (what `service` and `docker stop` send to `watch`) during an event: the event is
    closed as "stopped" with its end reported, the camera's row says stopped, exit status 0. (On
    Python < 3.13 the signal interrupted a Thread.join, which then took the watcher for finished:
    the process left without closing the event.) The same when the stop arrives twice - Ctrl-C at
    the terminal reaches `service`'s children, then the supervisor's SIGTERM does: the second must
    not cut the first's graceful stop short."""
    # the street with an intruder all along, in a loop: an event opens and stays open
    streams = MjpegCameras(write_video(tmp_path / "intruder.mp4", seconds=6, seed=0, anomaly_span=(0.0, 6.0)))
    db = tmp_path / "ev.db"
    out = tmp_path / "stdout"
    with out.open("w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "vlm_anomaly.cli", "watch", "--model", "street",
                                 "--source", f"{streams.base}/cam.mjpg"], stdout=fh, stderr=subprocess.STDOUT,
                                env=cli_env(trained_home, VLM_ANOMALY_EVENTS_DB_URL=f"sqlite:///{db}",
                                            VLM_ANOMALY_EVENTS_DIR=str(tmp_path / "ev")), text=True)
    try:
        deadline = time.monotonic() + 120
        while (t := out.read_text()).count("EVENT START") <= t.count("EVENT END"):  # until one is open
            assert proc.poll() is None and time.monotonic() < deadline, out.read_text()[-2000:]
            time.sleep(0.2)
        for sig in stop_signals:  # back to back, as a terminal's Ctrl-C and the supervisor's SIGTERM come
            proc.send_signal(sig)
        assert proc.wait(60) == 0, out.read_text()[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
        streams.close()
    text = out.read_text()
    assert "EVENT END" in text and re.search(r"^http://\S+/cam.mjpg: .*, stopped$", text, re.M), text[-2000:]
    rows = sqlite3.connect(db).execute("SELECT status, end_reason FROM events ORDER BY id").fetchall()
    assert rows and all(status == "closed" for status, _ in rows) and rows[-1][1] == "stopped", (rows, text[-1500:])
