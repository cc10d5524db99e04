"""Retention as its own periodic job: processing never waits on clean-up, clean-up runs when idle too.

Why separate: deleting old events and their media is slow on a full disk and has nothing to do with
scoring a frame; mature recorders run it on a timer. One job per process that owns an event store.
"""

from __future__ import annotations

import logging

from ..config import EventSettings
from .lease import PeriodicJob
from .store import EventStore

log = logging.getLogger(__name__)


class RetentionJob(PeriodicJob):
    """Apply the store's retention now and then every ``every_s`` seconds, in a daemon thread.

    Example:
        >>> job = RetentionJob.from_settings(store, settings.events).start()  # doctest: +SKIP
        >>> job.stop()  # doctest: +SKIP
    """

    thread_name = "vlm-retention"
    run_first = True

    def __init__(self, store: EventStore, *, max_age_days: float = 0, max_bytes: int = 0,
                 every_s: float = 300.0):
        super().__init__(every_s)
        self.store = store
        self.max_age_days = max_age_days
        self.max_bytes = max_bytes
        self.runs = 0
        self.deleted = 0

    @classmethod
    def from_settings(cls, store: EventStore, events: EventSettings) -> RetentionJob:
        """The job of the ``events`` section (``settings.events``): its age, size and timer."""
        return cls(store, max_age_days=events.retention_days,
                   max_bytes=int(events.retention_max_mb * 1024 * 1024),
                   every_s=events.retention_interval_s)

    def run_once(self) -> int:
        """One pass; returns how many events were deleted (errors are logged, the job goes on)."""
        try:
            n = self.store.apply_retention(max_age_days=self.max_age_days, max_bytes=self.max_bytes)
        except Exception:  # noqa: BLE001 - a failed clean-up must not end the job; the next one retries
            log.exception("retention failed")
            return 0
        self.runs += 1
        self.deleted += n
        return n

    def start(self) -> RetentionJob:
        """Start the timer, unless neither an age nor a size limit is set."""
        return super().start() if self.max_age_days > 0 or self.max_bytes > 0 else self
