"""Child processes for the crash, concurrency and resource tests.

Run as ``python workers.py zygote``: the process imports the library once, then forks one worker
per JSON command read from stdin (``{"task": ..., "args": {...}}``), answering
``{"forked": pid}``. Workers report progress as JSON lines on the shared stdout. Why a zygote:
every worker is a real, separately killable process, without paying the library's import time
(seconds on a busy 2-core machine) once per kill.

Forking is safe here because the zygote never runs torch (no thread pool exists yet).
"""

from __future__ import annotations

import json
import logging
import os
import resource
import signal
import sys
import time
from pathlib import Path

import numpy as np

from vlm_anomaly.config import load_settings
from vlm_anomaly.detectors import OneClassSVMDetector
from vlm_anomaly.encoders.base import EncoderIdentity
from vlm_anomaly.model import AnomalyModel
from vlm_anomaly.pipeline import Pipeline
from vlm_anomaly.store import ModelStore


def emit(**event) -> None:
    event["pid"] = os.getpid()
    os.write(1, (json.dumps(event) + "\n").encode())  # one write: lines never interleave


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def big_model(version: int, *, frames: int = 4000, dim: int = 512, seed: int = 0) -> AnomalyModel:
    """A valid model of a few MB whose ``extra["version"]`` tells which save it came from."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(64, dim))
    det = OneClassSVMDetector().fit(X)
    ident = EncoderIdentity("efficientnet", "efficientnet-lite0", "imagenet", dim)
    emb = rng.normal(size=(frames, dim)).astype(np.float16)
    refs = np.stack([np.zeros(frames), np.arange(frames), np.arange(frames) * 100], 1).astype(np.int64)
    return AnomalyModel(encoder=ident, detector=det, train_embeddings=emb, train_refs=refs,
                        extra={"version": version, "writer": os.getpid()})


def obey_write_permissions() -> None:
    """Make this process honour file write permissions even as root, by dropping CAP_DAC_OVERRIDE
    and CAP_FOWNER from its capability sets (capset(2); dropping needs no privilege).

    Why not switch to an ordinary user: that user might not be able to read the checkout or the
    virtualenv (a clone in a private folder), and every lazy import would then fail. Reading
    stays unrestricted (CAP_DAC_READ_SEARCH is kept); only writing obeys the mode bits."""
    import ctypes

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    libc = ctypes.CDLL(None, use_errno=True)
    hdr, data = Header(0x20080522, 0), (Data * 2)()  # _LINUX_CAPABILITY_VERSION_3: two 32-bit words
    if libc.capget(ctypes.byref(hdr), data) != 0:
        raise OSError(ctypes.get_errno(), "capget failed")
    drop = ~((1 << 1) | (1 << 3))  # CAP_DAC_OVERRIDE, CAP_FOWNER
    for field in ("effective", "permitted", "inheritable"):
        setattr(data[0], field, getattr(data[0], field) & drop)
    if libc.capset(ctypes.byref(hdr), data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")


def may_write_into(folder: str) -> bool:
    """Whether this process can really create a file in ``folder`` (tried, not guessed)."""
    probe = Path(folder) / f".probe-{os.getpid()}"
    try:
        probe.write_bytes(b"")
    except OSError:
        return False
    probe.unlink()
    return True


# -- tasks --------------------------------------------------------------------------------------

def task_save_loop(models_dir: str, name: str, start: int = 0, count: int = 10**9, frames: int = 4000):
    """Save ever newer versions of one model; report each committed version."""
    store = ModelStore(models_dir)
    for v in range(start, start + count):
        store.save(big_model(v, frames=frames, seed=v % 7), name)
        emit(event="committed", version=v)
    emit(event="done")


def _pipeline(home: str, **over) -> Pipeline:
    s = load_settings(overrides={"detector": "ocsvm", "home": home, "encoder": "efficientnet", "interval_ms": 500,
                                 "embedding_cache": False, "batch_size": 8, "threads": 1, **over})
    return Pipeline(s)


def task_train_score_loop(home: str, clips: list[str], test_clip: str, results: str, cache: bool = False):
    """Train (and save) a model, score a clip and write its results, again and again."""
    pipe = _pipeline(home, embedding_cache=cache)
    out = Path(results)
    for i in range(10**9):
        if cache:  # a new sampling interval each round: new cache entries to write every time
            pipe.settings.interval_ms = 500 + 100 * (i % 16)
        emit(event="stage", stage="train", i=i)
        pipe.train("m", clips)
        emit(event="stage", stage="score", i=i)
        r = pipe.score("m", test_clip, describe=False)
        emit(event="stage", stage="write", i=i)
        r.write_json(out / f"r{i}.json")
        r.write_csv(out / f"r{i}.csv")
        emit(event="committed", i=i, frames=r.n_frames)


def task_score_memory(home: str, model: str, video: str, interval_ms: int):
    """Score one video (no cache) and report the peak resident memory of this process."""
    pipe = _pipeline(home, interval_ms=interval_ms)
    before = peak_rss_mb()
    r = pipe.score(model, video, describe=False, interval_ms=interval_ms)
    emit(event="memory", frames=r.n_frames, peak_mb=peak_rss_mb(), before_mb=before)


def task_degraded_cache(home: str, cache_dir: str, model: str, video: str, fsize_limit: int = 0,
                        obey_permissions: bool = False):
    """Score with a cache that cannot be written (read-only folder, or a file-size limit)."""
    pipe = _pipeline(home, embedding_cache=True, cache_dir=cache_dir)
    if fsize_limit:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize_limit, fsize_limit))
    if obey_permissions:  # root ignores file permissions: make it obey them for writing
        obey_write_permissions()
    cache_writable = may_write_into(cache_dir) if Path(cache_dir).is_dir() else None
    records: list[str] = []

    class Grab(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    logging.getLogger("vlm_anomaly").addHandler(Grab(level=logging.WARNING))
    r = pipe.score(model, video, describe=False)
    r2 = pipe.score(model, video, describe=False)  # must encode again (nothing cached), same answer
    save_error = ""
    if fsize_limit:
        from vlm_anomaly.errors import StorageError

        try:
            pipe.store.save(big_model(99), model)
        except StorageError as exc:
            save_error = str(exc)
    emit(event="result", frames=r.n_frames, same=bool(np.allclose(r.raw_scores, r2.raw_scores)),
         from_cache=bool(r2.timing.get("from_cache")), warnings=records, save_error=save_error,
         cache_writable=cache_writable)


TASKS = {name[5:]: fn for name, fn in globals().items() if name.startswith("task_")}


def run_task(cmd: dict) -> None:
    try:
        TASKS[cmd["task"]](**cmd.get("args", {}))
    except BaseException as exc:  # noqa: BLE001 - reported to the test, which fails on it
        emit(event="error", error=f"{type(exc).__name__}: {exc}")
        os._exit(1)
    os._exit(0)


def zygote() -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # workers are reaped automatically
    emit(event="ready")
    for line in sys.stdin:
        if not line.strip():
            continue
        cmd = json.loads(line)
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            run_task(cmd)
        emit(event="forked", child=pid, tag=cmd.get("tag", ""))
        time.sleep(0.01)


if __name__ == "__main__":
    zygote()
