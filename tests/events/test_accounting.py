"""Nothing lost silently: frames scored and dropped and failed alerts are counted and shown (watcher
status, the API, /metrics, the watch summary), and a crashed watcher closes its open event."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from vlm_anomaly import Pipeline, load_settings
from vlm_anomaly.api import create_app
from vlm_anomaly.events import AlertDispatcher, AlertSink, EventStore, ListenerSink, SourceWatcher, StoreSink

TOKEN = "accounting-token-0123456789"


def _settings(home, tmp_path, **extra):
    return load_settings(overrides={
        "home": home, "encoder": "efficientnet", "interval_ms": 500,
        "events_db_url": f"sqlite:///{tmp_path}/ev.db", "events_dir": tmp_path / "media", **extra,
    })


def test_crashed_watcher_closes_its_event_with_the_time_and_cause(
    trained_home, clips, webhook, tmp_path, monkeypatch
):
    s = _settings(trained_home, tmp_path, webhook_urls=[webhook.url])
    store, alerts = EventStore.from_settings(s), AlertDispatcher.from_settings(s.alerts)
    armed = []
    w = SourceWatcher(Pipeline(s), "street", str(clips[1]), realtime=False, sinks=[
        StoreSink(store), AlertSink(alerts), ListenerSink(lambda n: n.kind == "start" and armed.append(1))])
    encode = w.scorer.encoder.encode

    def encode_then_fail(images):  # the device goes away while the event is open
        if armed:
            raise RuntimeError("encoder lost its device")
        return encode(images)

    monkeypatch.setattr(w.scorer.encoder, "encode", encode_then_fail)
    before = dt.datetime.now(dt.UTC)
    stats = w.run()
    after = dt.datetime.now(dt.UTC)
    assert alerts.flush(30)
    alerts.close()
    assert stats.status == "failed" and "encoder lost its device" in stats.error
    [ev] = store.list()
    assert ev.status == "closed", ev
    assert ev.end_reason == "watcher failed: RuntimeError: encoder lost its device"
    ended = ev.ended_at if ev.ended_at.tzinfo else ev.ended_at.replace(tzinfo=dt.UTC)
    assert before <= ended <= after  # the time of the crash
    assert ev.end_time == pytest.approx(stats.last_time) and ev.end_time >= ev.start_time
    assert [b["type"] for b in webhook.bodies] == ["new", "end"]  # subscribers hear the end
    assert store.get(ev.id).as_dict()["end_reason"].startswith("watcher failed")
    # and retention, which only ever deletes closed events, frees it and its evidence
    snap = store.media_path(ev.snapshot)
    assert snap is not None and snap.is_file()
    time.sleep(0.01)
    assert store.apply_retention(max_age_days=1e-9) == 1
    assert store.list() == [] and not snap.exists()


def _metric(text: str, name: str, **labels) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    m = re.search(rf"^{name}\{{{re.escape(want)}\}} ([0-9.e+]+)$", text, re.M)
    assert m, f"{name}{{{want}}} not in metrics:\n{text}"
    return float(m.group(1))


def _wait(c, wid, timeout=120):
    deadline = time.monotonic() + timeout
    while (st := c.get(f"/sources/{wid}").json())["status"] == "running":
        assert time.monotonic() < deadline, st
        time.sleep(0.1)
    return st


def test_scored_dropped_and_failed_alerts_in_status_api_and_metrics(
    trained_home, clips, webhook, tmp_path, monkeypatch
):
    webhook.fail_first = 10**6  # the receiver is down for good: every alert fails
    s = _settings(trained_home, tmp_path, interval_ms=100, api_tokens=[TOKEN],
                  webhook_urls=[webhook.url], webhook_retries=0,
                  allowed_media_dirs=[clips[1].parent])
    app = create_app(s)
    video = str(clips[1].resolve())
    with TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        # 1. as fast as possible: every sampled frame is scored, none dropped; alerts fail
        r = c.post("/sources", json={"model": "street", "source": video, "realtime": False})
        st = _wait(c, r.json()["id"])
        assert app.state.services.monitor.alerts.flush(30)
        st = c.get(f"/sources/{st['id']}").json()
        assert st["status"] == "ended" and st["frames"] == 120 and st["dropped"] == 0, st
        assert st["events"] >= 1 and st["alerts_failed"] == 2 * st["events"], st
        assert st["alerts_sent"] == 0
        metrics = c.get("/metrics").text
        assert _metric(metrics, "vlm_anomaly_frames_scored_total", source=video) == 120
        assert _metric(metrics, "vlm_anomaly_frames_dropped_total", source=video) == 0
        assert _metric(metrics, "vlm_anomaly_alerts_total", result="failed") == st["alerts_failed"]

        # 2. in real time with an encoder slower than the 10 samples/s: frames are dropped
        pipe = app.state.services.pipeline
        enc = pipe.encoder_for(pipe.load("street"))
        encode = enc.encode

        def slow(images):
            time.sleep(0.4)
            return encode(images)

        monkeypatch.setattr(enc, "encode", slow)
        r = c.post("/sources", json={"model": "street", "source": video, "realtime": True})
        time.sleep(3.0)
        c.delete(f"/sources/{r.json()['id']}")
        time.sleep(0.5)  # the reader thread notices the stop within 0.1 s
        st = c.get(f"/sources/{r.json()['id']}").json()
        assert st["status"] == "stopped" and st["dropped"] >= 5 and st["frames"] >= 1, st
        assert st["frames"] + st["dropped"] <= 40, st  # ~3 s of 10 samples/s
        [listed] = [x for x in c.get("/sources").json() if x["id"] == st["id"]]
        assert listed["dropped"] == st["dropped"]
        metrics = c.get("/metrics").text
        assert _metric(metrics, "vlm_anomaly_frames_dropped_total", source=video) == st["dropped"]
        assert _metric(metrics, "vlm_anomaly_frames_scored_total", source=video) == 120 + st[
            "frames"]
        # counters never run backwards between scrapes
        assert c.get("/metrics").text.count("vlm_anomaly_frames_scored_total{") == 1


def test_watch_cli_summary_counts_dropped_frames_and_failed_alerts(
    trained_home, clips, webhook, tmp_path
):
    webhook.fail_first = 10**6
    cfg = tmp_path / "vlm.yaml"
    cfg.write_text(
        f"home: {trained_home}\nencoder: efficientnet\ninterval_ms: 500\n"
        f"events_db_url: sqlite:///{tmp_path}/cli.db\nevents_dir: {tmp_path}/ev\n"
        f"webhook_urls: [{webhook.url}]\nwebhook_retries: 0\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "250",
           "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    r = subprocess.run(
        [sys.executable, "-m", "vlm_anomaly.cli", "--config", str(cfg), "watch", "--model",
         "street", "--source", str(clips[1]), "--fast", "--max-seconds", "120"],
        capture_output=True, text=True, env=env, timeout=180,
    )
    assert r.returncode == 0, r.stderr
    assert "24 frames, 1 event(s), 0 gap(s) (0.0 s missed), 0 frame(s) dropped, " \
           "0 alert(s) sent, 2 failed, ended" in r.stdout, r.stdout
    assert "watch summary" in r.stderr and "2 failed" in r.stderr  # logged: something was lost
