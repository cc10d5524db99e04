"""A sink of the caller's own, plugged into the engine every shell builds: it hears each event's open
and close from a real video, and a sink that raises is counted while the others still hear."""

from __future__ import annotations

from vlm_anomaly import load_settings
from vlm_anomaly.events import EventSink, Monitor


class Recorder(EventSink):
    """What a user would write: keep what the engine says."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, str]] = []
        self.states: list[str] = []
        self.frames = 0
        self.closed_sinks = 0

    def opened(self, w, rec):
        self.calls.append(("opened", rec.id, rec.status))

    def closed(self, w, rec):
        self.calls.append(("closed", rec.id, rec.status))

    def frame(self, w, reading, image):
        self.frames += 1

    def status(self, w, state, reason=""):
        self.states.append(state)

    def close(self):
        self.closed_sinks += 1


class Broken(EventSink):
    """A sink whose every event call raises."""

    def opened(self, w, rec):
        raise RuntimeError("sink down")

    closed = opened


def test_own_sink_hears_open_and_close_and_a_raising_sink_is_counted(trained_home, clips, tmp_path):
    s = load_settings(overrides={"home": trained_home, "encoder": "efficientnet", "interval_ms": 500,
                                 "events_db_url": f"sqlite:///{tmp_path}/ev.db", "events_dir": tmp_path / "media"})
    rec = Recorder()
    with Monitor.from_settings(s, sinks=[Broken(), rec]) as mon:  # the broken one first: the next still hears
        wid = mon.start("street", str(clips[1]), realtime=False)  # the intruder clip
        assert mon.wait(120)
        st = mon.status(wid)
        [stored] = mon.store.list()
    assert st["status"] == "ended" and st["events"] == 1, st
    assert st["sink_errors"] == 2, st  # its open and its close, counted and shown
    assert rec.calls == [("opened", stored.id, "open"), ("closed", stored.id, "closed")]
    assert stored.status == "closed" and stored.snapshot  # the store, ahead of them, still wrote it
    assert rec.frames == st["frames"] == 24
    assert rec.states == ["running", "ended"]
    assert rec.closed_sinks == 1  # the monitor owns its sinks: closed with it
