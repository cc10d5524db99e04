"""Who owns an open event, and whether that owner still runs.

Why: a process killed while an event is open (SIGKILL, OOM, power cut) cannot close it; the next
start must tell such an event from one that another running process (the API beside ``watch``, a
second container on the same volume) is still building, and close only the first kind.

Each :class:`OwnerLease` is one owner: a random id, stamped on every event it opens, and an
exclusive ``flock`` on ``<media_root>/.owners/<id>.lock`` held for as long as it lives. The kernel
drops the lock the moment the process dies, however it dies, so anyone sharing that folder on the
same kernel (other processes, other containers) knows for certain: lock free = owner dead. Where
the lock file cannot be seen (another machine with its own media folder on a shared database) the
owner's heartbeat decides: the lease stamps ``heartbeat_at`` on its open events every
``HEARTBEAT_S``; no beat for ``STALE_AFTER_S`` = dead.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import fcntl
import json
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..atomic import atomic_path

log = logging.getLogger(__name__)

#: how often a live owner stamps its open events (seconds)
HEARTBEAT_S = 5.0
#: an owner whose lock cannot be checked is dead after this long without a beat (12 missed beats)
STALE_AFTER_S = 60.0
OWNERS_DIR = ".owners"


def utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


def aware(t: _dt.datetime | None) -> _dt.datetime | None:
    """``t`` with its time zone: the store keeps UTC, and SQLite drops the zone."""
    return None if t is None else (t if t.tzinfo else t.replace(tzinfo=_dt.UTC))


@dataclass(frozen=True)
class Owner:
    """What an event row says about its owner (``owner`` column, JSON): the lease id, host and pid
    (the last two only for people reading logs; liveness never trusts a pid)."""

    id: str
    host: str = ""
    pid: int = 0

    def key(self) -> str:
        return json.dumps({"id": self.id, "host": self.host, "pid": self.pid}, separators=(",", ":"))

    @classmethod
    def parse(cls, text: str | None) -> Owner | None:
        """The owner of a row, or None for rows written before owners existed (or garbled ones)."""
        if not text:
            return None
        try:
            d = json.loads(text)
            return cls(str(d["id"]), str(d.get("host", "")), int(d.get("pid", 0)))
        except (ValueError, TypeError, KeyError):
            return None

    def describe(self) -> str:
        return f"process {self.pid} on {self.host}" if self.pid else "an unknown process"


def lock_path(media_root: str | Path, owner_id: str) -> Path:
    return Path(media_root) / OWNERS_DIR / f"{owner_id}.lock"


class PeriodicJob:
    """:meth:`run_once` every ``every_s`` seconds in a daemon thread until :meth:`stop` (the heartbeat,
    retention, recovery); ``run_first``: also once as the thread starts. ``run_once`` logs its own errors."""

    thread_name = "vlm-job"
    run_first = False

    def __init__(self, every_s: float):
        self.every_s = max(0.05, float(every_s))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> object:
        raise NotImplementedError

    def start(self):
        if not self.running:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name=self.thread_name, daemon=True)
            self._thread.start()
        return self

    def _loop(self) -> None:
        if self.run_first:
            self.run_once()
        while not self._stop.wait(self.every_s):
            self.run_once()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()


class OwnerLease(PeriodicJob):
    """This process' claim on the events it opens: a held lock file and a heartbeat thread.

    Started on the first :meth:`claim` (a process that only reads events holds nothing);
    :meth:`release` on a clean stop. ``beat`` is called with the owner key every ``every_s``
    seconds (the store stamps ``heartbeat_at`` on that owner's open events).

    Example:
        >>> lease = OwnerLease(store.media_root, beat=store.heartbeat)  # doctest: +SKIP
        >>> store.create(..., owner=lease.claim())  # doctest: +SKIP
    """

    thread_name = "vlm-event-heartbeat"

    def __init__(self, media_root: str | Path, beat: Callable[[str], None], *, every_s: float = HEARTBEAT_S):
        super().__init__(every_s)
        self.media_root = Path(media_root)
        self.owner = Owner(uuid.uuid4().hex, socket.gethostname(), os.getpid())
        self._beat = beat
        self._fd: int | None = None
        self._path: Path | None = None
        self._mutex = threading.Lock()

    @property
    def key(self) -> str:
        return self.owner.key()

    def claim(self) -> str:
        """The owner key to stamp on a new open event; takes the lock and starts beating once."""
        with self._mutex:
            if self._thread is None:
                self._take_lock()
                self.start()
        return self.key

    def _take_lock(self) -> None:
        """Lock a temp file, then rename it into place: a sweeper never sees it unlocked."""
        path = lock_path(self.media_root, self.owner.id)
        try:
            with atomic_path(path) as tmp:
                fd = os.open(tmp, os.O_RDWR | os.O_NOFOLLOW)
                os.fchmod(fd, 0o644)  # other users' sweepers read it
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:  # a read-only or odd media folder: the heartbeat alone speaks for us
            log.warning("events: cannot hold an owner lock in %s (%s); open events rely on the heartbeat",
                        path.parent, exc)
            return
        self._fd, self._path = fd, path

    def run_once(self) -> None:
        try:
            self._beat(self.key)
        except Exception as exc:  # noqa: BLE001 - a busy database must not end the heartbeat
            log.warning("events: heartbeat failed: %s", exc)

    def release(self) -> None:
        """Stop beating and drop the lock (a clean stop: nothing of ours is left to recover)."""
        with self._mutex:
            self.stop(self.every_s + 5)
            self._thread = None
            if self._fd is not None:
                with contextlib.suppress(OSError):
                    self._path.unlink()
                os.close(self._fd)
                self._fd = self._path = None


def lock_state(media_root: str | Path, owner_id: str) -> bool | None:
    """True: the owner's lock is held (it runs); False: free (it died); None: no lock file to ask."""
    if not owner_id or "/" in owner_id or owner_id.startswith("."):
        return None
    path = lock_path(media_root, owner_id)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return True
        return None
    finally:
        os.close(fd)  # (closing drops a lock we took)
    return False


def owner_alive(owner: Owner | None, heartbeat_at: _dt.datetime | None, media_root: str | Path, *,
                now: _dt.datetime | None = None, stale_after_s: float = STALE_AFTER_S) -> bool:
    """Whether an open event's owner still runs: its lock if we can see it, else its heartbeat.

    A row with no owner was written before owners existed, by a version that closed events only
    when it stopped cleanly: it counts as dead once its last stamp is ``stale_after_s`` old.
    """
    if owner is not None:
        held = lock_state(media_root, owner.id)
        if held is not None:
            return held
    if heartbeat_at is None:
        return False
    return ((now or utcnow()) - aware(heartbeat_at)).total_seconds() < stale_after_s


def sweep_dead_locks(media_root: str | Path) -> int:
    """Remove the lock files of owners that died (free locks); returns how many."""
    folder = Path(media_root) / OWNERS_DIR
    removed = 0
    try:
        names = [p for p in folder.iterdir() if p.suffix == ".lock" and not p.name.startswith(".")]
    except OSError:
        return 0
    for p in names:
        if lock_state(media_root, p.stem) is False:
            with contextlib.suppress(OSError):
                p.unlink()
                removed += 1
    return removed
