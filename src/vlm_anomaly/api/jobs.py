"""Background jobs (train, score) with progress, run one at a time in a worker thread.

Why one worker: encoding saturates the CPU; parallel jobs would only slow each other down.
Uploaded files live in the job's folder and are removed when the job finishes.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, computed_field

from ..errors import VlmAnomalyError
from ..redact import redact_text
from ..values import utc_stamp

log = logging.getLogger(__name__)

MAX_JOBS_KEPT = 200
#: jobs that may wait for the worker, their uploads on disk; one more is refused (429) before its upload is saved
MAX_WAITING_JOBS = 16


class JobNotFoundError(VlmAnomalyError):
    status_code = 404


class TooManyJobsError(VlmAnomalyError):
    status_code = 429


class Progress(BaseModel):
    done: int = 0
    total: int = Field(0, description="an estimate while the job runs")
    stage: str = "queued"

    @computed_field
    @property
    def fraction(self) -> float | None:
        return round(self.done / self.total, 4) if self.total else None


class JobSummary(BaseModel):
    """A train or score job, as ``GET /jobs`` lists it (without its result)."""

    id: str
    kind: str = Field(description="train | score")
    params: dict[str, Any] = Field(default_factory=dict)
    status: str = Field("queued", description="queued | running | done | failed")
    created: str = Field(default_factory=utc_stamp)
    finished: str | None = None
    progress: Progress = Field(default_factory=Progress)  # replaced whole, so a reader never sees half of it
    error: str | None = None


class Job(JobSummary):
    """A job as the worker updates it and ``GET /jobs/{id}`` shows it."""

    result: Any = Field(None, description="train: model, frames, videos, encoder; score: summary and per-frame rows")


class JobManager:
    """Jobs of this process; their uploads live in a folder of its own under ``workdir``, marked by a
    lock held while the process lives, so that the next start removes what a crash (or a stop with
    jobs still waiting) left behind, and never the uploads of another live API on the same home."""

    def __init__(self, workdir: str | Path, *, on_finish: Callable[[Job], None] | None = None):
        _remove_dead_folders(Path(workdir))
        self.workdir = Path(workdir) / uuid.uuid4().hex[:12]
        self.workdir.mkdir(parents=True)
        self._owner = os.open(self.workdir / ".owner", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        fcntl.flock(self._owner, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released when this process ends
        self.on_finish = on_finish
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="job")
        self._saving = 0  # folders being filled, jobs to be
        self._uploads: dict[str, dict[str, str]] = {}  # per job: saved path -> the client's name

    @contextlib.contextmanager
    def folder(self) -> Iterator[tuple[str, Path]]:
        """A new job's id and folder (for its uploads), removed again if anything before
        :meth:`submit` fails (saving the uploads: empty, over the limit).

        Refused while ``MAX_WAITING_JOBS`` wait for the one worker: each holds its uploads on disk
        until it runs, so an unbounded queue would fill the disk."""
        with self._lock:
            waiting = self._saving + sum(j.status == "queued" for j in self._jobs.values())
            if waiting >= MAX_WAITING_JOBS:
                raise TooManyJobsError(f"{waiting} jobs are waiting to run, the most accepted; "
                                       "try again when one has started")
            self._saving += 1
        jid = uuid.uuid4().hex[:12]
        d = self.workdir / jid
        try:
            d.mkdir(parents=True, exist_ok=True)
            yield jid, d
        except BaseException:
            shutil.rmtree(d, ignore_errors=True)
            raise
        finally:
            with self._lock:
                self._saving -= 1

    def submit(self, jid: str, kind: str, fn: Callable[[Callable[[int, int, str], None]], Any],
               params: dict | None = None, uploads: dict[str, str] | None = None) -> Job:
        """Run ``fn`` as job ``jid``; ``uploads``: each saved upload's path -> the name its client
        gave it (what the job's error says instead of the path)."""
        job = Job(id=jid, kind=kind, params=params or {})
        with self._lock:
            self._uploads[jid] = dict(uploads or {})
            self._jobs[jid] = job
            while len(self._jobs) > MAX_JOBS_KEPT:
                old_id, old = next(iter(self._jobs.items()))
                if old.status in ("queued", "running"):
                    break
                self._jobs.pop(old_id)
        self._pool.submit(self._run, job, fn)
        return job

    def _run(self, job: Job, fn) -> None:
        job.status, job.progress = "running", Progress(stage="starting")

        def progress(done: int, total: int, stage: str) -> None:
            job.progress = Progress(done=done, total=total, stage=stage)

        try:
            job.result = fn(progress)
            job.status, job.progress = "done", job.progress.model_copy(update={"stage": "done"})
        except VlmAnomalyError as exc:
            job.status, job.error = "failed", self._shown(job, str(exc))
        except Exception as exc:  # noqa: BLE001 - reported through the job, logged in full
            log.exception("job %s failed", job.id)
            job.status, job.error = "failed", self._shown(job, redact_text(f"{type(exc).__name__}: {exc}"))
        finally:
            self._uploads.pop(job.id, None)
            job.finished = utc_stamp()
            shutil.rmtree(self.workdir / job.id, ignore_errors=True)
            if self.on_finish:
                self.on_finish(job)

    def _shown(self, job: Job, message: str) -> str:
        """An error as a client sees it: an upload by the name its client gave it, not by its place
        on the server (nor the numbered name it was saved under)."""
        for path, name in sorted(self._uploads.pop(job.id, {}).items(), key=lambda kv: -len(kv[0])):
            message = message.replace(path, name).replace(Path(path).name, name)
        folder = str(self.workdir / job.id)
        return message.replace(folder + "/", "").replace(folder, "upload")

    def get(self, jid: str) -> Job:
        try:
            return self._jobs[jid]
        except KeyError:
            raise JobNotFoundError(f"no job with id {jid!r}") from None

    def list(self) -> list[Job]:
        return list(reversed(self._jobs.values()))

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        for job in self.list():  # jobs that will never run: their uploads go now
            if job.status == "queued":
                shutil.rmtree(self.workdir / job.id, ignore_errors=True)


def _remove_dead_folders(root: Path, legacy_age_s: float = 60.0) -> None:
    """Remove the upload folders of API processes that ended (their ``.owner`` lock is free), and
    job folders of the old flat layout (no ``.owner``) older than ``legacy_age_s``."""
    if not root.is_dir():
        return
    for d in root.iterdir():
        if not d.is_dir() or d.is_symlink():
            continue
        owner = d / ".owner"
        if not owner.exists():
            with contextlib.suppress(OSError):
                if time.time() - d.stat().st_mtime > legacy_age_s:
                    shutil.rmtree(d, ignore_errors=True)
            continue
        try:
            fd = os.open(owner, os.O_RDWR | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # its process is alive
            os.close(fd)
            continue
        try:
            log.info("removing uploads an ended API process left: %s", d)
            shutil.rmtree(d, ignore_errors=True)
        finally:
            os.close(fd)
