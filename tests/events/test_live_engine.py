"""The one live engine (stream scorer -> event builder -> sinks) run as a session: what a page and
`watch` see - readings, events with one worst score, the source's state - and what happens when the
source stops or drops while an alert is open."""

from __future__ import annotations

import datetime as dt
import time

import numpy as np
import pytest

from vlm_anomaly import InvalidVideoError, Pipeline, create_encoder, load_settings
from vlm_anomaly.events import EventStore, LiveFeed, LiveSession, Monitor, RetentionJob, SourceWatcher, StoreSink
from vlm_anomaly.video.live import LiveSource, PushSource
from vlm_anomaly.video.sources import check_source
from vlm_anomaly.video.thumbnails import grab_frames

INTRUDER = (2.5, 4.5)  # the dash clips' intruder span


@pytest.fixture(scope="module")
def setup(tmp_path_factory, dash_clips):
    home = tmp_path_factory.mktemp("engine")
    s = load_settings(overrides={"detector": "ocsvm", "home": home,
                                 "cache_dir": tmp_path_factory.getbasetemp() / "dash-cache",
                                 "encoder": "efficientnet", "interval_ms": 500})
    pipe = Pipeline(s, encoder=create_encoder("efficientnet"))
    model = pipe.train("live", [dash_clips["normal_a"], dash_clips["normal_b"]])
    return pipe, model, dash_clips


def _session(pipe, model, source, *, store=None, **kw) -> LiveSession:
    sinks = [*([StoreSink(store)] if store else []), LiveFeed()]
    return LiveSession(SourceWatcher(pipe, model, str(source), sinks=sinks, **kw)).start()


def test_session_plays_a_file_as_a_stream(setup):
    pipe, model, clips = setup
    sess = _session(pipe, model, clips["intruder"], realtime=False)
    assert sess.wait(120)
    view = sess.feed.view()
    assert sess.stats.error is None and sess.stats.frames == len(view.readings) == 12
    assert view.state == "ended" and view.reason == "source ended"
    assert view.events, "the intruder must raise an alert"
    ev = view.events[0]
    assert INTRUDER[0] <= ev.start_time <= INTRUDER[1] + 1 and ev.status == "closed"
    # one worst score: the event's, which is the lowest smoothed reading during it
    during = [r.smoothed for r in view.readings if ev.start_time <= r.t <= ev.end_time]
    assert ev.worst_score == pytest.approx(min(during))
    assert all(r.description for r in view.readings)


def test_stop_closes_the_open_alert_with_time_and_reason(setup, tmp_path):
    pipe, model, clips = setup
    store = EventStore(f"sqlite:///{tmp_path}/ev.db", tmp_path / "media")
    sess = _session(pipe, model, clips["intruder"], store=store, realtime=True)
    deadline = time.monotonic() + 60
    while sess.feed.view().open_event is None and sess.running and time.monotonic() < deadline:
        time.sleep(0.05)
    opened = sess.feed.view().open_event
    assert opened is not None and opened.end_time is None, "an alert is open while the intruder is on screen"
    t0 = time.monotonic()
    sess.stop()
    assert not sess.running and time.monotonic() - t0 < 10
    view = sess.feed.view()
    assert view.state == "stopped" and view.open_event is None
    [ev] = view.events
    last_t = view.readings[-1].t
    assert ev.id == opened.id and ev.status == "closed" and ev.end_reason == "stopped"
    assert ev.end_time == pytest.approx(last_t) and ev.ended_at is not None
    assert store.get(ev.id).end_reason == "stopped" and store.get(ev.id).status == "closed"
    assert store.get(ev.id).worst_score == pytest.approx(ev.worst_score)


def test_a_camera_that_drops_closes_the_open_alert(setup):
    """A pushed camera (the browser's) that stops sending frames: alert closed, source shown dropped."""
    pipe, model, clips = setup
    odd = grab_frames(clips["intruder"], [35])[35]
    cam = PushSource("browser camera", interval_ms=100, stall_timeout_s=1.0)
    sess = _session(pipe, model, "browser camera", live=cam, interval_ms=100)
    for i in range(40):  # 4 s of the intruder
        cam.push(odd, i * 0.1)
        time.sleep(0.02)
    deadline = time.monotonic() + 30
    while sess.feed.view().open_event is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sess.feed.view().open_event is not None
    assert sess.wait(30), "a camera that sends nothing must count as dropped"
    view = sess.feed.view()
    assert view.state == "dropped" and "no frame from the camera" in view.reason
    [ev] = view.events
    assert ev.status == "closed" and ev.end_reason.startswith("source dropped")


def test_a_stream_drop_closes_the_open_alert_and_shows_offline(setup):
    """A server-side stream that drops: the engine closes the alert at the drop, says offline."""
    pipe, model, clips = setup
    w = SourceWatcher(pipe, model, str(clips["intruder"]), sinks=[LiveFeed()], realtime=False)
    frames = list(LiveSource(str(clips["intruder"]), interval_ms=500, realtime=False))
    w._set_status("running")
    w._on_frames([f for f in frames if f.timestamp <= 4.5])
    assert w.feed.view().open_event is not None
    w.live.on_drop(4.5, "dropped (connection reset)")  # what LiveSource calls at the moment of a drop
    view = w.feed.view()
    assert view.state == "offline" and view.reason == "dropped (connection reset)"
    assert view.open_event is None and view.events[-1].end_reason == "source dropped: dropped (connection reset)"
    w._on_frames([f for f in frames if f.timestamp > 4.5])
    assert w.feed.view().state == "running"  # frames again: back online


def test_realtime_pacing(setup):
    _, _, clips = setup
    t0 = time.monotonic()
    frames = list(LiveSource(str(clips["normal_a"]), interval_ms=1000, realtime=True))
    assert [f.timestamp for f in frames] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert time.monotonic() - t0 >= 4.9  # played at the pace of the video, not as fast as possible


@pytest.mark.parametrize("source, message", [
    ("7", "camera 7 is not available"),
    ("/no/such/video.mp4", "no such file"),
    ("", "no source"),
])
def test_unavailable_sources_fail_clearly(source, message):
    with pytest.raises(InvalidVideoError, match=message):
        check_source(source)


def test_corrupt_file_fails_at_once(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(np.random.default_rng(0).integers(0, 255, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(InvalidVideoError):
        check_source(str(bad))


def test_retention_is_a_periodic_job_apart_from_scoring(setup, tmp_path):
    pipe, model, clips = setup
    store = EventStore(f"sqlite:///{tmp_path}/ev.db", tmp_path / "media")
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=40)
    stale = store.create(source="cam", model="m", status="closed", start_time=0, started_at=old,
                         worst_score=-1, worst_time=0, mean_score=-1)
    job = RetentionJob(store, max_age_days=30, every_s=0.1).start()
    try:
        deadline = time.monotonic() + 10
        while not job.deleted and time.monotonic() < deadline:
            time.sleep(0.05)
        assert job.deleted == 1 and [e.id for e in store.list()] == []  # no source watched at all
        fresh = store.create(source="cam", model="m", status="closed", start_time=0, started_at=old,
                             worst_score=-1, worst_time=0, mean_score=-1)
        runs = job.runs
        while job.runs < runs + 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert fresh not in [e.id for e in store.list()]  # and it keeps running
    finally:
        job.stop()
    assert not job.running and stale
    # a monitor with a store runs the job (also while it watches nothing), and stops it with the sources
    mon = Monitor(pipe, store=store)
    assert mon.retention is not None and mon.retention.running
    mon.start(model, str(clips["normal_a"]), realtime=False)
    assert mon.retention.running
    mon.wait(60)
    mon.stop_all()
    assert not mon.retention.running
