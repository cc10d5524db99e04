"""Nothing lost in a crash: processes are SIGKILLed while an event is open, and started again.

What the kill leaves (a snapshot, a clip that decodes) and what the next start does (closes the
event as "service restarted" at the last time known, says so in the log, the API and Home
Assistant, and leaves alone an event a running process still owns) is read back from the real
SQLite file, the media folder, a real API server and a real mosquitto.
"""

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import cv2
import httpx
import numpy as np
import pytest
import uvicorn

from tests.events.streams import MqttReader
from tests.helpers import free_port
from vlm_anomaly import load_settings
from vlm_anomaly.api import create_app
from vlm_anomaly.events.lease import OWNERS_DIR, Owner
from vlm_anomaly.events.recovery import recover_stale_events
from vlm_anomaly.events.store import EventStore, utcnow
from vlm_anomaly.synthetic import write_video
from vlm_anomaly.video import probe

ROOT = Path(__file__).parents[2]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT / "src") + os.pathsep + str(ROOT)}


class Proc:
    """A child process whose stdout lines are collected as they come."""

    def __init__(self, args: list[str]):
        self.p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                                  cwd=ROOT)
        self.lines: list[str] = []
        self.err: list[str] = []
        threading.Thread(target=self._read, args=(self.p.stdout, self.lines), daemon=True).start()
        threading.Thread(target=self._read, args=(self.p.stderr, self.err), daemon=True).start()

    @staticmethod
    def _read(stream, into) -> None:
        for line in stream:
            into.append(line.rstrip("\n"))

    def wait_line(self, prefix: str, timeout_s: float = 240, after: int = 0) -> tuple[int, str]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for i in range(after, len(self.lines)):
                if self.lines[i].startswith(prefix):
                    return i, self.lines[i]
            if self.p.poll() is not None and not any(s.startswith(prefix) for s in self.lines[after:]):
                time.sleep(0.5)  # let the readers drain
                if not any(s.startswith(prefix) for s in self.lines[after:]):
                    raise AssertionError(f"exited {self.p.returncode} before {prefix!r}:\n"
                                         + "\n".join(self.lines + self.err[-30:]))
            time.sleep(0.05)
        raise AssertionError(f"no {prefix!r} within {timeout_s} s:\n" + "\n".join(self.lines + self.err[-30:]))

    def kill(self) -> None:
        self.p.send_signal(signal.SIGKILL)
        self.p.wait(30)

    def finish(self, timeout_s: float = 300) -> int:
        code = self.p.wait(timeout_s)
        time.sleep(0.3)
        return code


def _decoded_frames(path: Path) -> int:
    n = 0
    with av.open(str(path)) as c:
        try:
            for _ in c.decode(video=0):
                n += 1
        except av.error.FFmpegError:  # the fragment the kill cut off
            pass
    return n


def _red(img: np.ndarray) -> float:
    """Share of strongly red pixels (BGR): the intruder / the worker's red box."""
    return float(((img[:, :, 2] > 180) & (img[:, :, 1] < 80) & (img[:, :, 0] < 80)).mean())


def _row(db: Path, eid: int):
    return EventStore(f"sqlite:///{db}", db.parent / "unused-media").get(eid)


# -- the store's rules, with a real process holding an event ------------------------------------------
def test_a_running_owner_keeps_its_event_a_killed_one_leaves_evidence_and_is_closed(tmp_path):
    db, media = tmp_path / "events.db", tmp_path / "media"
    worker = Proc([sys.executable, "-m", "tests.events.crash_worker", str(db), str(media)])
    try:
        _, line = worker.wait_line("opened ")
        eid = int(line.split()[1])
        worker.wait_line("frames 12")
        store = EventStore(f"sqlite:///{db}", media)
        # the worker runs: its event is its own, whatever the next start finds
        assert recover_stale_events(store) == []
        assert store.get(eid).status == "open" and store.get(eid).end_reason is None
    finally:
        worker.kill()
    printed = [ln for ln in worker.lines if ln.startswith("frames ")]
    written, last_t = int(printed[-1].split()[1]), float(printed[-1].split()[2])

    # what the kill left: the row still open, a whole snapshot, a clip that decodes to the last frames
    ev = store.get(eid)
    assert ev.status == "open" and ev.end_time is None and ev.last_time >= last_t
    snap = cv2.imread(str(store.media_path(ev.snapshot)))
    assert snap is not None and snap.shape == (240, 320, 3) and _red(snap) > 0.01
    clip = store.media_path(ev.clip)
    decoded = _decoded_frames(clip)
    assert written - 2 <= decoded <= written + 1, (written, decoded)

    # the next start: closed as "service restarted" at the last source time the row had reached
    [rec] = recover_stale_events(store)
    again = store.get(eid)
    assert rec.id == eid and again.status == "closed" and again.end_reason == "service restarted"
    assert again.end_time == ev.last_time and again.ended_at is not None
    started = again.started_at.replace(tzinfo=dt.UTC)
    assert again.ended_at.replace(tzinfo=dt.UTC) == started + dt.timedelta(seconds=ev.last_time - ev.start_time)
    # the cut-off clip was finished as a plain MP4 holding every frame that decoded
    info = probe(clip)
    assert info.frame_count == decoded and info.codec == "h264"
    assert again.media_bytes == clip.stat().st_size + store.media_path(again.snapshot).stat().st_size
    assert not [p for p in clip.parent.iterdir() if p.name.startswith(".")]  # no temp file left
    assert not list((media / OWNERS_DIR).glob("*.lock"))  # the dead owner's lock file is swept
    # the API shows why; the owner's identity stays in the store
    shown = again.as_dict()
    assert shown["end_reason"] == "service restarted" and "owner" not in shown
    # a second start finds nothing more to do
    assert recover_stale_events(EventStore(f"sqlite:///{db}", media)) == []


def test_owners_only_a_heartbeat_speaks_for_are_dead_once_it_goes_quiet(tmp_path):
    """Owners whose lock file this machine cannot see (another host, its own media folder) are judged
    by their heartbeat; rows written before owners existed, by their age."""
    store = EventStore(f"sqlite:///{tmp_path / 'events.db'}", tmp_path / "media")
    now = utcnow()
    elsewhere = Owner("0f" * 16, "other-host", 4242).key()

    def open_event(**kw):
        base = dict(source="cam", model="m", start_time=10.0, started_at=now - dt.timedelta(hours=1),
                    worst_score=-1.0, worst_time=11.0, mean_score=-0.8, frames=3, descriptions=[])
        return store.create(**{**base, **kw})

    mine = open_event()  # this store's own (lock held)
    beating = open_event(owner=elsewhere, heartbeat_at=now - dt.timedelta(seconds=10), last_time=30.0)
    quiet = open_event(owner=Owner("1e" * 16, "other-host", 4243).key(),
                       heartbeat_at=now - dt.timedelta(minutes=5), last_time=42.5)
    legacy_old = open_event(owner=None, heartbeat_at=None)
    legacy_new = open_event(owner=None, heartbeat_at=None, started_at=now)

    other_start = EventStore(f"sqlite:///{tmp_path / 'events.db'}", tmp_path / "media")
    closed = {r.id: r for r in recover_stale_events(other_start)}
    assert set(closed) == {quiet, legacy_old}
    assert closed[quiet].end_time == 42.5 and closed[quiet].end_reason == "service restarted"
    assert closed[legacy_old].end_time == 10.0  # no progress known: closed at its start
    for eid in (mine, beating, legacy_new):
        assert store.get(eid).status == "open" and store.get(eid).end_reason is None
    # the heartbeat keeps the beating owner's event alive; it stops, and a later check closes it
    # (and the old-version row, now old enough); this store's own event stays open
    assert store.heartbeat(elsewhere) == 1
    later = utcnow() + dt.timedelta(minutes=2)
    assert sorted(r.id for r in recover_stale_events(other_start, now=later)) == [beating, legacy_new]
    assert store.get(mine).status == "open"


# -- the real `watch`, killed mid-event and started again ---------------------------------------------
def _config(path: Path, home: Path, tmp: Path, **extra) -> Path:
    lines = [f"home: {home}", "encoder: efficientnet", "interval_ms: 500",
             f"events_db_url: sqlite:///{tmp}/events.db", f"events_dir: {tmp}/ev"]
    lines += [f"{k}: {v}" for k, v in extra.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def _watch(cfg: Path, source: Path, *flags: str) -> Proc:
    return Proc([sys.executable, "-m", "vlm_anomaly.cli", "--config", str(cfg), "watch", "--model", "street",
                 "--source", str(source), *flags, "--max-seconds", "400"])


@pytest.mark.slow
def test_watch_killed_mid_event_then_started_again(trained_home, clips, mqtt_broker, tmp_path):
    """`watch` (realtime, Home Assistant on) is killed with SIGKILL while the intruder is in view;
    meanwhile another process on the same store must not touch its event; the next `watch` closes it."""
    host, port = mqtt_broker
    long_clip = write_video(tmp_path / "long-intruder.mp4", seconds=150, fps=4, seed=0,
                            anomaly_span=(4.0, 146.0))
    ha = _config(tmp_path / "ha.yaml", trained_home, tmp_path, mqtt_url=f"mqtt://{host}:{port}")
    plain = _config(tmp_path / "plain.yaml", trained_home, tmp_path)
    reader = MqttReader(host, port)
    db = tmp_path / "events.db"

    first = _watch(ha, long_clip)  # realtime: the event stays open for minutes
    try:
        _, line = first.wait_line("EVENT START", timeout_s=300)
        eid = int(line.split("#")[1].split()[0])
        # another process starts on the same store while that event is open: it leaves it alone
        other = _watch(plain, clips[0][0], "--fast")
        assert other.finish() == 0, "\n".join(other.lines + other.err[-20:])
        assert first.p.poll() is None, "the first watcher ended before it could be killed"
        ev = _row(db, eid)
        assert ev.status == "open" and ev.end_reason is None
        assert not [ln for ln in other.lines + other.err if "service restarted" in ln]
        time.sleep(3)  # a few more frames into the clip
    finally:
        first.kill()

    # -- what the kill left
    ev = _row(db, eid)
    assert ev.status == "open" and ev.end_time is None and ev.snapshot and ev.clip
    snap = cv2.imread(str(tmp_path / "ev" / ev.snapshot))
    assert snap is not None and _red(snap) > 0.01  # the intruder, in the worst frame so far
    frames_left = _decoded_frames(tmp_path / "ev" / ev.clip)
    assert frames_left >= 6  # the second before the event and what followed, in a file that decodes
    cam = next(t.split("/")[1] for t, p, _ in reader.messages
               if t.endswith("/event") and json.loads(p or b"{}").get("event_id") == eid)
    assert json.loads(reader.history(f"vlm-anomaly/{cam}/event")[-1])["status"] == "open"
    assert reader.history(f"vlm-anomaly/{cam}/anomaly")[-1] == b"ON"
    reader.wait_for("vlm-anomaly/availability", b"offline", timeout_s=20)  # the Last Will

    # -- started again on the same store and camera (as fast as possible this time)
    seen = len(reader.messages)
    again = _watch(ha, long_clip, "--fast")
    assert again.finish() == 0, "\n".join(again.lines + again.err[-20:])
    closed = _row(db, eid)
    assert closed.status == "closed" and closed.end_reason == "service restarted"
    assert ev.start_time <= closed.end_time == closed.last_time and closed.ended_at is not None
    assert probe(tmp_path / "ev" / closed.clip).frame_count >= frames_left - 1  # finished as a plain MP4
    # the log and the run's output say so
    assert [ln for ln in again.err if f"event {eid} " in ln and "no longer runs" in ln
            and f"process {first.p.pid} " in ln], again.err[-20:]
    assert [ln for ln in again.lines if ln.startswith(f"EVENT END #{eid} ") and "(service restarted)" in ln]
    # the new run's events are normal ones
    store = EventStore(f"sqlite:///{db}", tmp_path / "ev")
    new = [e for e in store.list() if e.id > eid]
    assert new and all(e.status == "closed" and e.end_reason != "service restarted" and e.snapshot
                       and e.clip for e in new)
    assert not store.list(status="open")

    # -- Home Assistant: the last-event sensor shows it closed, and why; the alarm is off
    states = [json.loads(p) for t, p, _ in reader.messages[seen:] if t == f"vlm-anomaly/{cam}/event" and p]
    mine = [s for s in states if s["event_id"] == eid]
    assert mine and mine[0]["status"] == "closed" and mine[0]["end_reason"] == "service restarted"
    assert "(service restarted)" in mine[0]["description"] and mine[0]["source_end_s"] is not None
    assert reader.retained(f"vlm-anomaly/{cam}/anomaly")[f"vlm-anomaly/{cam}/anomaly"] == b"OFF"
    fired = [json.loads(p) for t, p, _ in reader.messages[seen:] if t == f"vlm-anomaly/{cam}/activity"]
    assert [f["event_type"] for f in fired if f["event_id"] == eid] == ["anomaly_end"]
    # and the alert sinks get the "end" the killed process never sent
    ends = [json.loads(p) for t, p, _ in reader.messages[seen:] if t.endswith("/events")]
    assert [m["after"]["end_reason"] for m in ends if m["type"] == "end" and m["after"]["id"] == str(eid)] \
        == ["service restarted"]

    # -- the API answers the event with its end reason
    settings = load_settings(overrides={"home": trained_home, "encoder": "efficientnet",
                                        "events_db_url": f"sqlite:///{db}", "events_dir": tmp_path / "ev",
                                        "api_tokens": ["crash-test-token-0123"]})
    port_api = free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port_api,
                                        log_level="warning", lifespan="on"))
    th = threading.Thread(target=srv.run, daemon=True)
    th.start()
    try:
        url = f"http://127.0.0.1:{port_api}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "API did not start"
            time.sleep(0.2)
        r = httpx.get(f"{url}/events/{eid}", headers={"Authorization": "Bearer crash-test-token-0123"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["status"] == "closed" and body["end_reason"] == "service restarted"
        assert body["end_time"] == round(closed.end_time, 3) and body["ended_at"] and "owner" not in body
    finally:
        srv.should_exit = True
        th.join(15)
        reader.close()
