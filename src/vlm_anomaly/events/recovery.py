"""Events left open by a process that died are closed by the next one to start: "service restarted".

Why: an event closes when its scores recover or its watcher stops; a process killed mid-event
(SIGKILL, OOM, power cut) does neither, and its event would stay ``open`` for ever - the alarm on in
Home Assistant, retention never freeing it, beside the new run's events. Whether its owner is
dead is :func:`~.lease.owner_alive`'s call (its lock, else its heartbeat); an event another running
process owns is left alone. The event is closed at the last moment known: the source time its
row had reached (:attr:`~.store.EventRecord.last_time`), and its clip - cut off by the crash - is
finished as a plain MP4.
"""

from __future__ import annotations

import datetime as _dt
import logging
from collections.abc import Callable

from .lease import STALE_AFTER_S, Owner, PeriodicJob, aware, owner_alive, sweep_dead_locks, utcnow
from .media import finalise_clip
from .store import EventRecord, EventStore

log = logging.getLogger(__name__)

RESTARTED = "service restarted"


def recover_stale_events(store: EventStore, *, stale_after_s: float = STALE_AFTER_S,
                         now: _dt.datetime | None = None) -> list[EventRecord]:
    """Close every open event whose owner no longer runs; returns the events this call closed.

    Each is logged (WARNING) and closed with ``end_reason`` "service restarted", ``end_time`` the
    last source time known (else its start) and ``ended_at`` the matching wall-clock time. Safe to
    run from several processes at once: each event is closed by one of them.
    """
    now = now or utcnow()
    closed: list[EventRecord] = []
    for rec in store.list(status="open", limit=10_000):
        if rec.owner == store.lease.key:
            continue  # this store's own
        owner = Owner.parse(rec.owner)
        last_seen = aware(rec.heartbeat_at) or (None if owner is not None else aware(rec.started_at))
        if owner_alive(owner, last_seen, store.media_root, now=now, stale_after_s=stale_after_s):
            continue
        end_time = max(rec.start_time, rec.last_time if rec.last_time is not None else rec.start_time)
        ended_at = aware(rec.started_at) + _dt.timedelta(seconds=end_time - rec.start_time)
        if not store.close_if_open(rec.id, rec.owner, end_time=end_time, ended_at=ended_at,
                                   end_reason=RESTARTED, last_time=end_time):
            continue  # another process closed it first
        store.update(rec.id, **_finish_media(store, rec))
        who = owner.describe() if owner is not None else "a process of an earlier version"
        log.warning("event %s on %s was left open by %s, which no longer runs: closed (%s) at %.2f s",
                    rec.id, rec.source, who, RESTARTED, end_time)
        closed.append(store.get(rec.id))
    sweep_dead_locks(store.media_root)
    return closed


def _finish_media(store: EventStore, rec: EventRecord) -> dict:
    """The crashed event's clip finished as a plain MP4, and the size of what it left."""
    size = 0
    snap = store.media_path(rec.snapshot)
    if snap is not None and snap.is_file():
        size += snap.stat().st_size
    clip = store.media_path(rec.clip)
    if clip is not None and clip.is_file():
        size += finalise_clip(clip)
    return {"media_bytes": size}


class RecoveryJob(PeriodicJob):
    """Recover now, then every ``every_s`` seconds (an owner judged by its heartbeat - one on
    another machine - is dead only once that heartbeat is ``stale_after_s`` old, maybe after this
    start). ``on_closed`` gets each event closed (alerts, notices); its errors are logged.

    Example:
        >>> job = RecoveryJob(store, on_closed=print).start()  # doctest: +SKIP
        >>> job.stop()  # doctest: +SKIP
    """

    thread_name = "vlm-recovery"

    def __init__(self, store: EventStore, *, on_closed: Callable[[EventRecord], None] | None = None,
                 every_s: float = STALE_AFTER_S / 2, stale_after_s: float = STALE_AFTER_S):
        super().__init__(every_s)
        self.store = store
        self.on_closed = on_closed
        self.stale_after_s = stale_after_s

    def run_once(self) -> list[EventRecord]:
        try:
            found = recover_stale_events(self.store, stale_after_s=self.stale_after_s)
        except Exception:  # noqa: BLE001 - a failed check must not stop monitoring; the next one retries
            log.exception("recovery of stale open events failed")
            return []
        for rec in found:
            if self.on_closed is not None:
                try:
                    self.on_closed(rec)
                except Exception:  # noqa: BLE001
                    log.exception("reporting recovered event %s failed", rec.id)
        return found

    def start(self) -> RecoveryJob:
        """Run once now (before anything is watched), then on a timer in a daemon thread."""
        self.run_once()
        return super().start()
