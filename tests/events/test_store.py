"""Events store on a real SQLite file: create, list, acknowledge, retention by age and size."""

import datetime as dt

import pytest

from vlm_anomaly.events import EventNotFoundError, EventStore
from vlm_anomaly.events.store import utcnow


def _event(store, i, *, age_days=0.0, media=1000):
    snap = f"cam/event-{i}.jpg"
    (store.media_root / snap).parent.mkdir(parents=True, exist_ok=True)
    (store.media_root / snap).write_bytes(b"x" * media)
    return store.create(
        source="cam",
        model="m",
        status="closed",
        start_time=i,
        end_time=i + 1,
        started_at=utcnow() - dt.timedelta(days=age_days),
        worst_score=-1.0,
        worst_time=i + 0.5,
        mean_score=-0.5,
        frames=3,
        descriptions=[],
        snapshot=snap,
        media_bytes=media,
    )


def test_create_list_ack_delete(tmp_path):
    store = EventStore(f"sqlite:///{tmp_path}/e.db", tmp_path / "media")
    a = _event(store, 1)
    b = _event(store, 2)
    assert [e.id for e in store.list()] == [b, a]
    rec = store.acknowledge(a, by="token-x")
    assert rec.acknowledged and rec.acknowledged_by == "token-x" and rec.acknowledged_at is not None
    assert [e.id for e in store.list(acknowledged=False)] == [b]
    # a second store on the same file sees the same rows (the API and the watcher share it)
    assert EventStore(f"sqlite:///{tmp_path}/e.db", tmp_path / "media").get(a).acknowledged
    store.delete(b)
    assert not (tmp_path / "media/cam/event-2.jpg").exists()
    with pytest.raises(EventNotFoundError):
        store.get(b)
    assert store.media_path("../../etc/passwd") is None


def test_events_and_gaps_are_found_by_the_camera_name_they_were_watched_under(tmp_path):
    """A client names a camera ("front") when it starts a source: ``?source=front`` finds its
    events and gaps, as the source itself or its made-up id do."""
    from vlm_anomaly.values import Gap

    store = EventStore(f"sqlite:///{tmp_path}/e.db", tmp_path / "media")
    ev = store.create(source="/media/cam1/clip.mp4", camera="front", model="m", status="closed", start_time=1,
                      worst_score=-1, worst_time=1, mean_score=-1, started_at=utcnow())
    store.add_gap(Gap("/media/cam1/clip.mp4", 2.0, 9.0, "stalled", 1), camera="front")
    for name in ("front", "/media/cam1/clip.mp4", "media_cam1_clip_mp4"):
        assert [e.id for e in store.list(source=name)] == [ev], name
        assert [g["reason"] for g in store.gaps(name)] == ["stalled"], name
    assert store.list(source="back") == [] and store.gaps("back") == []
    assert store.get(ev).camera == "front"


def test_a_deleted_events_id_is_never_given_again(tmp_path):
    """A client holding an old id (a dashboard tab, an automation) must not acknowledge or delete
    another event with it: SQLite gave the last event's id again once it was deleted."""
    store = EventStore(f"sqlite:///{tmp_path}/e.db", tmp_path / "media")
    first = _event(store, 1)
    store.delete(first)
    assert _event(store, 2) != first
    assert EventStore(f"sqlite:///{tmp_path}/e.db", tmp_path / "media").create(  # after a restart too
        source="cam", model="m", status="closed", start_time=3, worst_score=-1, worst_time=3, mean_score=-1,
        started_at=utcnow()) > first + 1


def test_an_open_event_is_not_deleted_under_its_watcher(tmp_path):
    """Its watcher still writes its row and media: deleted, the watcher failed on every frame and
    left a snapshot no route or retention would ever remove. 409 (EventOpenError) until it ends."""
    from vlm_anomaly.events.store import EventOpenError

    store = EventStore(f"sqlite:///{tmp_path}/e.db", tmp_path / "media")
    open_id = store.create(source="cam", model="m", start_time=9, worst_score=-1, worst_time=9, mean_score=-1,
                           started_at=utcnow())
    with pytest.raises(EventOpenError, match=f"event {open_id} is still open") as refused:
        store.delete(open_id)
    assert refused.value.status_code == 409
    assert store.get(open_id).status == "open"
    store.update(open_id, status="closed", end_time=10.0)
    store.delete(open_id)
    with pytest.raises(EventNotFoundError):
        store.get(open_id)


def test_retention_by_age_and_size(tmp_path):
    store = EventStore(f"sqlite:///{tmp_path}/e.db", tmp_path / "media")
    old = _event(store, 1, age_days=40)
    ids = [_event(store, i, age_days=10 - i) for i in range(2, 6)]  # oldest first
    assert store.apply_retention(max_age_days=30) == 1
    assert not (tmp_path / "media/cam/event-1.jpg").exists()
    with pytest.raises(EventNotFoundError):
        store.get(old)
    # 4 events x 1000 bytes, limit 2500: the two oldest go
    assert store.apply_retention(max_bytes=2500) == 2
    assert sorted(e.id for e in store.list()) == ids[2:]
    open_id = store.create(
        source="cam",
        model="m",
        start_time=9,
        worst_score=-1,
        worst_time=9,
        mean_score=-1,
        started_at=utcnow() - dt.timedelta(days=99),
    )
    assert store.apply_retention(max_age_days=1) == 2 and store.get(open_id).status == "open"


def test_database_of_an_older_version_gains_the_end_reason_column(tmp_path):
    """Events stored before `end_reason` existed stay readable; new events record why they ended."""
    import sqlite3

    db = tmp_path / "old.db"
    EventStore(f"sqlite:///{db}", tmp_path / "media").close()
    con = sqlite3.connect(db)
    con.execute("ALTER TABLE events DROP COLUMN end_reason")  # the schema of the previous version
    con.execute("INSERT INTO events (source, model, status, start_time, started_at, worst_score, worst_time, "
                "mean_score, frames, descriptions, media_bytes, acknowledged) "
                "VALUES ('cam', 'm', 'closed', 0, '2026-01-01 00:00:00', -1, 0, -1, 1, '[]', 0, 0)")
    con.commit()
    con.close()
    store = EventStore(f"sqlite:///{db}", tmp_path / "media")
    [old] = store.list()
    assert old.end_reason is None and old.worst_score == -1
    new = _event(store, 5)
    store.update(new, end_reason="stopped")
    assert store.get(new).end_reason == "stopped"


def test_database_of_an_older_version_gains_the_event_kind(tmp_path):
    """Events stored before events had a kind read as activity; a camera event keeps its kind, and
    Home Assistant's ``event`` entity fires ``camera_tamper`` for it (``anomaly_start`` otherwise)."""
    import sqlite3

    from vlm_anomaly.events.homeassistant import event_state, event_type
    from vlm_anomaly.events.store import event_kind

    db = tmp_path / "old.db"
    EventStore(f"sqlite:///{db}", tmp_path / "media").close()
    con = sqlite3.connect(db)
    con.execute("ALTER TABLE events DROP COLUMN kind")  # the schema of the previous version
    con.execute("INSERT INTO events (source, model, status, start_time, started_at, worst_score, worst_time, "
                "mean_score, frames, descriptions, media_bytes, acknowledged) "
                "VALUES ('cam', 'm', 'closed', 0, '2026-01-01 00:00:00', -1, 0, -1, 1, '[]', 0, 0)")
    con.commit()
    con.close()
    store = EventStore(f"sqlite:///{db}", tmp_path / "media")
    [old] = store.list()
    assert old.kind == "activity" and old.as_dict()["kind"] == "activity"
    frames = [{"time": 1.0, "text": "image dark", "kind": "camera"},
              {"time": 1.5, "text": "image dark", "kind": "camera"}]
    assert event_kind(frames) == "camera"
    assert event_kind([{"time": 1.0, "text": "fast object in the left", "kind": "activity"}, frames[0],
                       {"time": 2.0, "text": "fast object", "kind": "activity"}]) == "activity"
    cam = _event(store, 5)
    store.update(cam, descriptions=frames, kind=event_kind(frames))
    rec = store.get(cam)
    assert rec.kind == "camera" and event_type("start", rec) == "camera_tamper"
    assert event_state("street", rec)["kind"] == "camera"
    assert event_type("start", old) == "anomaly_start"
