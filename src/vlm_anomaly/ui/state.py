"""What the pages share: settings, the encoder (loaded once per process), stores, uploads, errors.

Why: the encoder is the heavy object - building it per rerun would freeze every click. Everything
else here is a thin adapter from Streamlit's world (uploads, session state) to the library's.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import streamlit as st

from ..config import Settings, load_settings
from ..encoders import Encoder, EncoderIdentity, encoder_from_options, encoder_options
from ..errors import InvalidVideoError, VlmAnomalyError
from ..events import Monitor
from ..model import AnomalyModel
from ..pipeline import Pipeline
from ..source_policy import SourcePolicy
from ..store import ModelStore
from ..training_set import TrainingSet
from ..video import VIDEO_EXTENSIONS

#: upload types the file pickers accept (without dots, as Streamlit wants them)
VIDEO_TYPES = [e.lstrip(".") for e in VIDEO_EXTENSIONS]  # the picker offers what save_upload accepts


#: the signs that make markdown inside a line: emphasis, links, code, HTML, strike, maths, tables
_MARKDOWN = re.compile(r"([\\`*_\[\]<>#~$|])")


def plain(text: object) -> str:
    """``text`` shown as it is where Streamlit renders markdown (messages, captions, progress
    labels): a file or model name like ``**x** [l](http://e).mp4`` was shown bold with a link."""
    return _MARKDOWN.sub(r"\\\1", str(text))


@contextlib.contextmanager
def user_errors(prefix: str = "", name: str | None = None) -> Iterator[None]:
    """Show any error the user caused as a friendly message instead of a traceback; ``name`` is the
    uploaded file's name, shown in place of the server's copies of it (:func:`hide_server_paths`)."""
    try:
        yield
    except VlmAnomalyError as exc:
        said = hide_server_paths(str(exc), name)
        st.error(plain(said if prefix and said.startswith(prefix) else f"{prefix}{said}"))


def hide_server_paths(message: str, name: str | None = None) -> str:
    """``message`` with the server's own paths of uploaded videos replaced by their names (or ``name``).

    Why: the library names the file it failed on, and for an upload that is the server's temporary copy
    (``/tmp/vlm-anomaly-uploads/<digest>/clip.mp4``) or the training set's copy (``<home>/training_set/
    videos/<digest>.mp4``) - where the server keeps things, not what the user uploaded.
    """
    for path in st.session_state.get("_uploads", {}).values():
        message = message.replace(str(path), name or Path(path).name)
    roots = [upload_dir()]
    with contextlib.suppress(VlmAnomalyError, OSError):
        roots.append(training_set().root / "videos")
    for root in roots:  # what the session cache does not know: the file's name, or the path's last part
        message = re.sub(re.escape(str(root)) + r"/(?:[0-9a-f]+/)?([^/\s:]+)",
                         (lambda m: name or m.group(1)), message)
    return message


def settings(**overrides) -> Settings:
    """Settings from file/env, with the saved training parameters and ``overrides`` on top."""
    return TrainingSet.for_settings(load_settings()).settings(overrides=overrides)


def source_policy() -> SourcePolicy:
    """What a dashboard user may open on the server: the REST API's allow-lists, from the settings file and
    environment only (never from parameters saved on the dashboard). The owner's CLI is not limited."""
    return SourcePolicy.from_settings(load_settings().api)


def allowed_source(source: str) -> str:
    """``source`` if a dashboard user may read it: a video uploaded here, or what the REST API's allow-lists
    let anyone open (:func:`source_policy`); a clear error otherwise."""
    try:
        if Path(source).resolve().is_relative_to(upload_dir().resolve()):
            return source
    except (OSError, ValueError):
        pass
    return source_policy().check(source)


def training_set(s: Settings | None = None) -> TrainingSet:
    return TrainingSet.for_settings(s or settings())


def model_store(s: Settings | None = None) -> ModelStore:
    return ModelStore((s or settings()).models_path)


@st.cache_resource(show_spinner="Loading the encoder (once per process)…")
def _encoder(options_json: str, identity_json: str | None = None) -> Encoder:
    """Built once per process and per encoder option set (the library's one encoder factory)."""
    ident = EncoderIdentity.from_dict(json.loads(identity_json)) if identity_json else None
    return encoder_from_options(json.loads(options_json), ident)


def _options(s: Settings) -> str:
    return json.dumps(encoder_options(s), sort_keys=True)


def pipeline(s: Settings | None = None) -> Pipeline:
    """A pipeline over the cached encoder of the configured backend."""
    s = s or settings()
    return Pipeline(s, encoder=_encoder(_options(s)))


def pipeline_for(model: AnomalyModel, s: Settings | None = None) -> Pipeline:
    """A pipeline whose (cached) encoder is the one ``model`` was trained with."""
    s = s or settings()
    if model.encoder is None:  # it embeds nothing
        return Pipeline(s)
    return Pipeline(s, encoder=_encoder(_options(s), json.dumps(model.encoder.as_dict(), sort_keys=True)))


def saved_model(name: str, s: Settings | None = None) -> tuple[AnomalyModel, Pipeline]:
    """The saved model ``name`` and a pipeline over its (cached) encoder."""
    s = s or settings()
    model = model_store(s).load(name)
    return model, pipeline_for(model, s)


def upload_dir() -> Path:
    d = Path(tempfile.gettempdir()) / "vlm-anomaly-uploads"
    d.mkdir(parents=True, exist_ok=True)
    return d


#: uploads not used for this long are deleted (the training set keeps its own copies of its videos)
UPLOAD_MAX_AGE_S = 24 * 3600


def prune_uploads() -> int:
    """Delete uploaded videos not used for :data:`UPLOAD_MAX_AGE_S`, so the temp folder does not grow forever."""
    now = time.time()
    gone = 0
    for folder in upload_dir().iterdir():
        try:
            if folder.is_dir() and now - folder.stat().st_mtime > UPLOAD_MAX_AGE_S:
                shutil.rmtree(folder, ignore_errors=True)
                gone += 1
        except OSError:
            continue  # another session removed it first
    return gone


def save_upload(uploaded, max_mb: int) -> Path:
    """Write an uploaded video to a temp file (named by content, so reruns reuse it)."""
    name = Path(uploaded.name).name
    ext = Path(name).suffix.lower()
    if ext not in VIDEO_EXTENSIONS:
        raise InvalidVideoError(f"{name}: not a video file - use one of {', '.join(VIDEO_TYPES)}")
    size = uploaded.size
    if size > max_mb * 1024 * 1024:
        raise InvalidVideoError(f"{name} is {size / 2**20:.0f} MB; the limit is {max_mb} MB (max_upload_mb)")
    if size == 0:
        raise InvalidVideoError(f"{name}: empty file")
    cache = st.session_state.setdefault("_uploads", {})
    key = f"{uploaded.file_id}:{name}"
    if key in cache and Path(cache[key]).is_file():
        os.utime(Path(cache[key]).parent)  # in use: not pruned
        return Path(cache[key])
    prune_uploads()
    data = uploaded.getbuffer()
    digest = hashlib.sha256(data).hexdigest()[:16]
    folder = upload_dir() / digest
    folder.mkdir(exist_ok=True)
    os.utime(folder)
    path = folder / name
    if not path.is_file():
        tmp = path.with_suffix(path.suffix + ".part")
        tmp.write_bytes(data)
        tmp.replace(path)
    cache[key] = str(path)
    return path


def progress_bar(label: str) -> Callable[[int, int, str], None]:
    """A Streamlit progress bar fed by the library's (done, total, stage) callback.

    The bar appears at the first report, so work that turns out to be cached shows nothing.
    """
    slot = st.empty()

    def update(done: int, total: int, stage: str) -> None:
        frac = min(1.0, done / total) if total else 0.0
        slot.progress(frac, text=plain(f"{label} - {stage} {done}/{total or '?'} frames"))

    return update


def model_names(s: Settings | None = None) -> list[str]:
    return model_store(s).names()


@st.cache_resource(show_spinner=False)
def _live_monitor(key: str, _s: Settings) -> Monitor:
    # (no Home Assistant node: the page's sources are no cameras of the service)
    return Monitor.from_settings(_s, home_assistant=False)


def live_monitor(s: Settings | None = None) -> Monitor:
    """The live engine the Live page starts its sources on - the same store, alerts, retention and
    crash recovery as ``watch``'s for the same settings - once per process."""
    s = s or settings()
    keys = ("events_url", "events_path", "webhook_urls", "mqtt_url", "mqtt_topic_prefix", "retention_days",
            "retention_max_mb", "retention_interval_s", "max_watchers")
    return _live_monitor(json.dumps({k: str(getattr(s, k)) for k in keys}), s)
