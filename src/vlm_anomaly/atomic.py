"""Crash-safe writes and cross-process locks for everything the store keeps on disk."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import io
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .errors import StorageError

#: bytes of the target's name kept in its temp file's name: a name near the file system's limit
#: (255 bytes) must still get a temp file beside it
_TEMP_NAME_BYTES = 120


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[str]:
    """A temp file in ``path``'s folder to write (by name) that is renamed over ``path`` when the
    block ends without error, and removed when it fails.

    Why: a crash (or SIGKILL) mid-write leaves the previous file intact, never a truncated one.
    The file gets the permissions a plain ``open`` would give it (the umask's, or those of the file
    it replaces), not the temp file's private 0600. An I/O failure is a :class:`StorageError` naming
    ``path``, so a shell shows one line.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        stem = path.name.encode()[:_TEMP_NAME_BYTES].decode(errors="ignore")
        fd, tmp = tempfile.mkstemp(prefix=f".{stem}.", suffix=".tmp", dir=path.parent)
        try:
            os.fchmod(fd, _mode_for(path))
        finally:
            os.close(fd)
        yield tmp
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException as exc:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, StorageError):
            raise _cannot_write(path, exc) from exc
        raise


def check_writable(path: str | Path) -> None:
    """Raise :class:`StorageError` now when ``path`` could not be written by :func:`atomic_path`
    (a folder, a name too long, an unwritable folder); creates its missing parent folders.

    Why: a shell checks its output paths before minutes of decoding, not after.
    """
    path = Path(path)
    try:
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
        if path.parent.exists() and not path.parent.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
        path.parent.mkdir(parents=True, exist_ok=True)
        name_max = 255
        with contextlib.suppress(OSError, ValueError):
            name_max = os.pathconf(path.parent, "PC_NAME_MAX")
        if len(path.name.encode()) > name_max:
            raise OSError(errno.ENAMETOOLONG, os.strerror(errno.ENAMETOOLONG))
        fd, tmp = tempfile.mkstemp(prefix=".check.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise _cannot_write(path, exc) from None


def _cannot_write(path: Path, exc: OSError) -> StorageError:
    return StorageError(f"cannot write {path}: {exc.strerror or exc}")


def _mode_for(path: Path) -> int:
    """Permissions for a new version of ``path``: the current file's, else what the umask allows."""
    with contextlib.suppress(OSError):
        st = os.stat(path)
        if stat.S_ISREG(st.st_mode):
            return stat.S_IMODE(st.st_mode)
    return 0o666 & ~_umask()


def _umask() -> int:
    """The process umask, read without changing it where Linux tells it (os.umask only sets)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to a temp file in the same folder, fsync, then rename over ``path``."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n")


def atomic_save_npy(path: str | Path, array: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    atomic_write_bytes(path, buf.getvalue())


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def file_lock(path: str | Path) -> Iterator[None]:
    """An advisory ``flock`` on ``path`` (created if missing): one writer at a time across processes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_NOFOLLOW: a lock file replaced by a symlink must not create or open a file elsewhere
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
