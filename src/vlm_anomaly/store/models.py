"""Named models in a folder, one file each, never unpickled.

File format (``NAME.vlmodel``, format version 1) - a ZIP archive holding:

* ``model.json`` - metadata: format name and version, encoder identity, detector name, parameters
  and threshold, prompts, training summary (videos with SHA-256, frame counts, interval, date);
* ``arrays/<name>.npy`` - numeric arrays in NumPy's ``.npy`` format, read with
  ``allow_pickle=False`` (object arrays are refused), sizes checked before reading.

Writes go to a temp file then ``os.replace``: a crash mid-save leaves the previous model intact.
A lock file serialises writers across processes; temp files left by a killed writer are removed
by the next save.

Model files are untrusted input. Reading checks, before using anything: a regular file (never a
FIFO or device), the file size, the declared size of every member (total
:data:`MAX_ARRAY_BYTES`), each ``.npy`` header's dtype (numbers only) and shape against the bytes
actually present, JSON without NaN/Infinity, then every value's range and every array's shape.

Paths: a model name is a safe file name, never a path. Model files that are symlinks are refused
(read and write), so the store never reads or writes outside its folder through them. The store
root itself may be a symlink (a store moved to a bigger disk): it is resolved once, and that
folder is "the store".
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import os
import re
import stat
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import atomic_write_bytes, check_writable, file_lock
from ..errors import CorruptModelError, InvalidModelNameError, ModelNotFoundError, StorageError
from ..model import LEGACY_NO_ENCODER, AnomalyModel

log = logging.getLogger(__name__)

SUFFIX = ".vlmodel"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_FILE_BYTES = 1 << 30  # 1 GiB per model file
MAX_JSON_BYTES = 4 << 20
MAX_ARRAYS = 64
MAX_ARRAY_BYTES = 1 << 30  # decompressed size of all arrays together (zip bombs stop here)
_ALLOWED_DTYPES = {"f2", "f4", "f8", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "b1"}


def validate_name(name: str) -> str:
    """Return ``name`` if it is a safe model name, else raise :class:`InvalidModelNameError`."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name) or ".." in name or name.endswith("."):
        shown = repr(name)[:70]
        raise InvalidModelNameError(
            f"invalid model name {shown}: use 1-64 letters, digits, '.', '_' or '-', starting with a "
            "letter or digit"
        )
    return name


@dataclass(frozen=True)
class ModelInfo:
    """One row of ``models list``."""

    name: str
    encoder: str
    detector: str
    frames: int
    videos: int
    created: str
    size_bytes: int


def _encoder_label(enc: dict | None) -> str:
    """How a listing names a model's encoder ("none" for detectors that embed nothing)."""
    if enc is None or enc.get("backend") == LEGACY_NO_ENCODER:
        return "none"
    return f"{enc['backend']}:{enc['model']}/{enc.get('pretrained', '')}"


class ModelStore:
    """Save, load, list, show, rename and delete named models under one folder.

    Example:
        >>> store = ModelStore("~/.vlm-anomaly/models")  # doctest: +SKIP
        >>> store.save(model, "office-day")  # doctest: +SKIP
        >>> store.load("office-day").n_frames  # doctest: +SKIP
    """

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser()

    # -- paths ----------------------------------------------------------------------------
    def path_for(self, name: str) -> Path:
        validate_name(name)
        root = self.root.resolve()
        path = root / f"{name}{SUFFIX}"
        if path.parent != root:
            raise InvalidModelNameError(f"invalid model name {name!r}")
        return path

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        lock = file_lock(self.root / ".lock")
        try:
            lock.__enter__()
        except OSError as exc:
            raise StorageError(f"cannot lock the model store {self.root}: {exc.strerror or exc}") from None
        try:
            yield
        finally:
            lock.__exit__(None, None, None)

    def _write(self, path: Path, data: bytes) -> None:
        try:
            atomic_write_bytes(path, data)
        except StorageError as exc:  # every I/O failure of the write, already naming the file
            raise StorageError(f"{exc}; the previous version (if any) is unchanged") from None

    def _remove_stale_temps(self) -> None:
        """Temp files of writers killed mid-save (callers hold the lock, so none is in use)."""
        for p in self.root.glob(f".*{SUFFIX}.*.tmp"):
            with contextlib.suppress(OSError):
                p.unlink()

    # -- API ------------------------------------------------------------------------------
    def exists(self, name: str) -> bool:
        p = self.path_for(name)
        return p.is_file() and not p.is_symlink()

    def check_writable(self, name: str) -> None:
        """Raise :class:`StorageError` now when a model ``name`` could not be saved (a store folder
        that is a file or read-only): callers check before minutes of training, not after."""
        check_writable(self.path_for(name))

    def save(self, model: AnomalyModel, name: str, *, overwrite: bool = True, update: bool = False) -> Path:
        """Write ``model`` as ``name``. ``update``: it is a saved model changed (footage learnt as
        normal), so it must still be there: deleted meanwhile, it is not brought back."""
        path = self.path_for(name)
        model.name = name
        data = encode_model(model)
        with self._lock():
            if path.is_symlink():
                raise InvalidModelNameError(f"refusing to write through a symlink: {path.name}")
            if path.exists() and not overwrite:
                raise InvalidModelNameError(f"a model named {name!r} already exists")
            if update and not path.exists():
                raise ModelNotFoundError(f"model {name!r} was deleted meanwhile: nothing was learnt", folder=self.root)
            self._remove_stale_temps()
            self._write(path, data)
        log.info("saved model %s (%d bytes)", name, len(data))
        return path

    def load(self, name: str) -> AnomalyModel:
        path = self.path_for(name)
        if path.is_symlink():
            raise CorruptModelError(f"model {name!r} is a symlink; refusing to follow it")
        if not path.is_file():
            raise ModelNotFoundError(f"no model named {name!r}", folder=self.root)
        model = read_model_file(path)
        model.name = name
        return model

    def show(self, name: str) -> dict:
        model = self.load(name)
        info = model.summary()
        info["file"] = str(self.path_for(name))
        info["size_bytes"] = self.path_for(name).stat().st_size
        return info

    def list(self) -> list[ModelInfo]:
        return [info for info, _ in self.entries()]

    def entries(self) -> list[tuple[ModelInfo, dict]]:
        """Each listed model with its metadata, read once (a page that shows more than the listing
        needs no second read, and cannot see a file replaced in between)."""
        if not self.root.is_dir():
            return []
        out = []
        for p in sorted(self.root.glob(f"*{SUFFIX}")):
            name = p.name[: -len(SUFFIX)]
            if p.is_symlink() or not p.is_file() or not NAME_RE.fullmatch(name):
                continue  # a FIFO named like a model would block a reader: skip anything odd
            try:
                meta = read_model_meta(p)
                training = meta.get("training", {})
                out.append((ModelInfo(name=name, encoder=_encoder_label(meta["encoder"]),
                                      detector=str(meta["detector"]["name"]), frames=int(training.get("frames", 0)),
                                      videos=len(training.get("videos", [])), created=str(meta.get("created", "")),
                                      size_bytes=p.stat().st_size), meta))
            except (CorruptModelError, AttributeError, KeyError, TypeError, ValueError) as exc:
                log.warning("skipping unreadable model file %s: %s", p.name, exc)
        return out

    def names(self) -> list[str]:
        return [m.name for m in self.list()]

    def delete(self, name: str) -> None:
        path = self.path_for(name)
        with self._lock():
            if not (path.is_file() or path.is_symlink()):
                raise ModelNotFoundError(f"no model named {name!r}", folder=self.root)
            path.unlink()

    def rename(self, old: str, new: str) -> None:
        src, dst = self.path_for(old), self.path_for(new)
        with self._lock():
            if not src.is_file() or src.is_symlink():
                raise ModelNotFoundError(f"no model named {old!r}", folder=self.root)
            if dst.exists():
                raise InvalidModelNameError(f"a model named {new!r} already exists")
            model = read_model_file(src)
            model.name = new
            self._write(dst, encode_model(model))
            src.unlink()


# -- file format -------------------------------------------------------------------------

def encode_model(model: AnomalyModel) -> bytes:
    meta, arrays = model.to_state()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("model.json", json.dumps(meta, indent=2, allow_nan=False))
        for key, arr in arrays.items():
            b = io.BytesIO()
            np.save(b, np.ascontiguousarray(arr), allow_pickle=False)
            zf.writestr(f"arrays/{key}.npy", b.getvalue())
    return buf.getvalue()


class _Archive:
    """Open a model file as a ZIP archive, only if it is a regular file of sane size.

    ``O_NONBLOCK``: a FIFO named like a model cannot block the reader; ``fstat`` on the open
    descriptor checks the very file that is read.
    """

    def __init__(self, path: Path):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except OSError as exc:
            raise CorruptModelError(f"{path.name}: cannot open model file ({exc.strerror or exc})") from None
        self.fh = os.fdopen(fd, "rb")
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise CorruptModelError(f"{path.name}: not a regular file")
            if st.st_size > MAX_FILE_BYTES:
                raise CorruptModelError(f"{path.name}: file too large ({st.st_size} bytes)")
            self.zf = zipfile.ZipFile(self.fh)
        except CorruptModelError:
            self.fh.close()
            raise
        except Exception as exc:  # noqa: BLE001 - zipfile raises many kinds on hostile bytes: all mean a bad file
            self.fh.close()
            raise CorruptModelError(f"{path.name}: not a model file ({_short(exc)})") from None

    def __enter__(self) -> zipfile.ZipFile:
        return self.zf

    def __exit__(self, *exc) -> None:
        self.zf.close()
        self.fh.close()


def _reject_constant(name: str):
    raise ValueError(f"{name} is not allowed in a model file")


def _read_json(zf: zipfile.ZipFile, name: str) -> dict:
    try:
        info = zf.getinfo("model.json")
    except KeyError:
        raise CorruptModelError(f"{name}: model.json missing") from None
    if info.file_size > MAX_JSON_BYTES:
        raise CorruptModelError(f"{name}: model.json too large")
    try:
        meta = json.loads(zf.read(info).decode("utf-8"), parse_constant=_reject_constant)
    except RecursionError:
        raise CorruptModelError(f"{name}: model.json nested too deeply") from None
    except Exception as exc:  # noqa: BLE001 - hostile bytes: decompression, decoding, parsing errors alike
        raise CorruptModelError(f"{name}: unreadable model.json ({_short(exc)})") from None
    if not isinstance(meta, dict):
        raise CorruptModelError(f"{name}: model.json is not an object")
    return meta


def _short(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]


def read_model_meta(path: Path) -> dict:
    with _Archive(path) as zf:
        return _read_json(zf, path.name)


def _read_array(zf: zipfile.ZipFile, info: zipfile.ZipInfo, budget: list[int]) -> np.ndarray:
    if info.file_size > budget[0]:
        raise CorruptModelError(f"array {info.filename} declares {info.file_size} bytes: too large")
    with zf.open(info) as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise CorruptModelError(f"array {info.filename}: unsupported npy version {version}")
        if dtype.hasobject or dtype.str[1:] not in _ALLOWED_DTYPES:
            raise CorruptModelError(f"array {info.filename}: dtype {dtype} not allowed")
        if any(not isinstance(d, int) or d < 0 for d in shape):
            raise CorruptModelError(f"array {info.filename}: invalid shape {shape}")
        count = math.prod(shape)  # exact: a hostile header may declare a shape that overflows int64
        nbytes = count * dtype.itemsize
        if nbytes > budget[0] or nbytes > info.file_size:
            raise CorruptModelError(f"array {info.filename}: declared shape {shape} is too large")
        data = fh.read(nbytes)
        if len(data) != nbytes:
            raise CorruptModelError(f"array {info.filename}: truncated")
        budget[0] -= nbytes
        arr = np.frombuffer(data, dtype=dtype)
        return arr.reshape(shape, order="F" if fortran else "C").copy()


def read_model_file(path: Path) -> AnomalyModel:
    """Load and validate a model file; any problem raises :class:`CorruptModelError`."""
    with _Archive(path) as zf:
        meta = _read_json(zf, path.name)
        arrays: dict[str, np.ndarray] = {}
        budget = [MAX_ARRAY_BYTES]
        members = [i for i in zf.infolist() if i.filename != "model.json"]
        if len(members) > MAX_ARRAYS:
            raise CorruptModelError(f"{path.name}: too many members")
        names = [i.filename for i in zf.infolist()]
        if len(set(names)) != len(names):
            raise CorruptModelError(f"{path.name}: duplicate members")
        declared = sum(i.file_size for i in members)
        if declared > MAX_ARRAY_BYTES:
            raise CorruptModelError(f"{path.name}: arrays declare {declared} bytes, over the limit")
        for info in members:
            m = re.fullmatch(r"arrays/([A-Za-z0-9_.]{1,64})\.npy", info.filename)
            if not m:
                raise CorruptModelError(f"{path.name}: unexpected member {info.filename[:80]!r}")
            try:
                arrays[m.group(1)] = _read_array(zf, info, budget)
            except CorruptModelError:
                raise
            except Exception as exc:  # noqa: BLE001 - numpy's header parser raises many kinds (ValueError,
                # SyntaxError, tokenize.TokenError, ...) on hostile bytes: all mean a bad file
                raise CorruptModelError(f"{path.name}: bad array {info.filename} ({_short(exc)})") from None
    try:
        return AnomalyModel.from_state(meta, arrays)
    except CorruptModelError:
        raise
    except Exception as exc:  # noqa: BLE001 - any inconsistency means a bad file
        raise CorruptModelError(f"{path.name}: invalid model ({type(exc).__name__}: {exc})") from None
