"""Live monitoring: causal smoothing, alerts on threshold crossings, sources played as streams."""

from __future__ import annotations

import time

import numpy as np
import pytest

from vlm_anomaly import InvalidVideoError, Pipeline, create_encoder, load_settings
from vlm_anomaly.monitor import LiveMonitor, LiveSession, open_live_source
from vlm_anomaly.video.thumbnails import grab_frames


@pytest.fixture(scope="module")
def setup(tmp_path_factory, dash_clips):
    clips = dash_clips
    home = tmp_path_factory.mktemp("monitor")
    s = load_settings(overrides={"detector": "ocsvm",
                                 "home": home, "cache_dir": tmp_path_factory.getbasetemp() / "dash-cache",
                                 "encoder": "efficientnet", "interval_ms": 500})
    pipe = Pipeline(s, encoder=create_encoder("efficientnet"))
    model = pipe.train("live", [clips["normal_a"], clips["normal_b"]])
    return pipe, model, clips


def test_alert_raised_and_closed(setup):
    pipe, model, clips = setup
    mon = LiveMonitor(pipe, model, threshold=-0.1, window=2)
    normal = grab_frames(clips["normal_a"], [10])[10]  # 1.0 s, a frame the model has seen
    odd = grab_frames(clips["intruder"], [35])[35]  # 3.5 s, the intruder on screen
    r0 = mon.process(normal, 0.0)
    assert not r0.alert and r0.description
    r1 = mon.process(odd, 0.5)
    assert r1.raw < -0.1
    assert r1.smoothed == pytest.approx((r0.raw + r1.raw) / 2)  # causal window of 2
    mon.process(odd, 1.0)
    assert mon.alerting
    mon.process(normal, 1.5)
    mon.process(normal, 2.0)
    readings, alerts = mon.snapshot()
    assert not mon.alerting and len(readings) == 5
    assert len(alerts) == 1 and alerts[0].start in (0.5, 1.0) and alerts[0].end in (1.5, 2.0)
    assert alerts[0].worst < -0.1


def test_session_plays_a_file_as_a_stream(setup):
    pipe, model, clips = setup
    sess = LiveSession(LiveMonitor(pipe, model), str(clips["intruder"]), interval_ms=500, realtime=False).start()
    assert sess.wait(120)
    readings, alerts = sess.snapshot()
    assert sess.error is None and sess.frames == len(readings) == 12
    assert alerts, "the intruder must raise an alert"
    assert any(2.5 <= a.start <= 5.5 for a in alerts)
    worst = min(readings, key=lambda r: r.smoothed)
    assert 2.5 <= worst.t <= 5.5


def test_realtime_pacing_and_stop(setup):
    _, _, clips = setup
    t0 = time.monotonic()
    frames = list(open_live_source(str(clips["normal_a"]), interval_ms=1000, realtime=True))
    assert [f.timestamp for f in frames] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert time.monotonic() - t0 >= 4.9  # played at the pace of the video, not as fast as possible


def test_stop_ends_a_session_promptly(setup):
    pipe, model, clips = setup
    sess = LiveSession(LiveMonitor(pipe, model), str(clips["normal_a"]), interval_ms=500, realtime=True).start()
    time.sleep(0.3)
    t0 = time.monotonic()
    sess.stop()
    assert not sess.running and time.monotonic() - t0 < 5


@pytest.mark.parametrize("source, message", [
    ("7", "camera 7 is not available"),
    ("/no/such/video.mp4", "no such file"),
    ("", "no source"),
])
def test_unavailable_sources_fail_clearly(source, message):
    with pytest.raises(InvalidVideoError, match=message):
        open_live_source(source)


def test_corrupt_file_fails_at_start(setup, tmp_path):
    pipe, model, _ = setup
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(np.random.default_rng(0).integers(0, 255, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(InvalidVideoError):
        LiveSession(LiveMonitor(pipe, model), str(bad)).start()
