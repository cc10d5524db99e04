"""A live stream watched by the shipped default detector (``motion``) when the loop is held up or the
stream stalls: the time missed is a counted gap, the event open then ends at the last frame seen,
and scoring starts afresh after it (no smoothing or explanation mixing frames across the gap)."""

import sqlite3
import threading
import time

from tests.events.streams import MjpegCameras
from vlm_anomaly import Pipeline, load_settings
from vlm_anomaly.events import EventStore, Monitor
from vlm_anomaly.events.sinks import EventSink

STALL_S = 8.0  # longer than a stream may send nothing before it counts as stalled (5 s)
#: the event's row is written every 2 s (sinks.PROGRESS_EVERY_S), so the watcher waits for the lock
#: up to 2 s less than it lasts, and the stream's queue then hands over its last ~1 s of frames
LOCK_S = 12.0


class _Readings(EventSink):
    """Every scored frame's reading and every gap, in order, as the watcher told them."""

    def __init__(self):
        self.items = []

    def frame(self, w, reading, image):
        self.items.append(reading)

    def gap(self, w, gap):
        self.items.append(gap)


def _watch(home, tmp_path, clip, disturb):
    """Watch ``clip`` looping as a 10 fps MJPEG camera; ``disturb(cams, db)`` runs once the first
    event has opened. Returns (status row, stored events, stored gaps, readings and gaps in order)."""
    db = tmp_path / "events.db"
    s = load_settings(overrides={"home": home, "events_db_url": f"sqlite:///{db}", "events_dir": str(tmp_path / "ev")})
    cams = MjpegCameras(clip)
    opened = threading.Event()
    rec = _Readings()
    mon = Monitor(Pipeline(s), store=EventStore.from_settings(s), sinks=[rec],
                  listener=lambda n: opened.set() if n.kind == "start" else None)
    try:
        wid = mon.start("street", cams.base + "/cam")
        assert opened.wait(60), "the intruder gave no event"
        disturb(cams, db)
        time.sleep(4.0)  # frames after the gap
        status = mon.stop(wid)
        store = mon.store
        return status, store.list(), store.gaps(), rec.items
    finally:
        mon.close()
        cams.close()


def _explained_after(reading, gap) -> bool:
    """The reading is explained by itself or by a frame after the gap (``from_time``: ms precision)."""
    return (reading.explanation or {}).get("from_time", gap.end_time) >= gap.end_time - 1e-3


def _after_gap(items):
    """The gap and the readings that follow it."""
    [k] = [i for i, it in enumerate(items) if not hasattr(it, "raw")]
    return items[k], items[k + 1:]


def test_a_locked_event_store_shows_as_a_gap_and_scoring_restarts_after_it(default_home, clips, tmp_path):
    """Another process holds the event store locked (``BEGIN EXCLUSIVE``) while an event is open: the
    watcher waits for it, the stream keeps only its newest frames, and the frames scored jump ahead
    by about the lock's length. The user must see that jump as a gap, the event must not claim time
    nobody watched, and the scores after it must not average in the frames before it."""

    def lock(cams, db):
        c = sqlite3.connect(db, timeout=30, isolation_level=None)
        c.execute("BEGIN EXCLUSIVE")
        time.sleep(LOCK_S)
        c.execute("COMMIT")
        c.close()

    status, events, gaps, items = _watch(default_home, tmp_path, clips[1], lock)
    assert status["gaps"] == 1 and status["missed_s"] >= LOCK_S - 4, status
    [gap] = gaps
    assert "held up" in gap["reason"] and gap["missed_s"] >= LOCK_S - 4, gap
    g, after = _after_gap(items)
    held = [e for e in events if e.start_time <= g.start_time]
    assert held, [(e.start_time, e.end_time) for e in events]
    first = held[-1]  # the event the lock came in
    assert first.status == "closed" and first.end_time <= g.start_time + 1e-6, first
    assert first.end_reason.startswith("missed"), first.end_reason
    assert after and after[0].smoothed == after[0].raw, after[:2]  # nothing from before the gap
    assert all(_explained_after(r, g) for r in after), [(r.t, (r.explanation or {}).get("from_time")) for r in after]


def test_a_stalled_stream_restarts_its_scoring_after_the_gap(default_home, clips, tmp_path):
    """The camera sends nothing for a while during the intruder, then starts again where its loop
    begins (normal walkers): no frame after the gap is explained by a frame from before it."""

    def stall(cams, db):
        cams.pause(STALL_S)
        time.sleep(STALL_S)

    status, events, gaps, items = _watch(default_home, tmp_path, clips[1], stall)
    assert status["gaps"] == 1, status
    g, after = _after_gap(items)
    assert after and after[0].smoothed == after[0].raw
    assert all(_explained_after(r, g) for r in after), [(r.t, (r.explanation or {}).get("from_time")) for r in after]
