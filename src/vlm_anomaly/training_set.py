"""A persistent training set: normal videos, their embeddings, thumbnails and descriptions on disk.

Why: building a training set is slow, interactive work (upload, check the descriptions, add more,
remove a bad clip). It must survive a browser refresh or a restart, and training from it must not
encode anything again. Layout under ``root``::

    items.json                 one entry per video (name, hash, frames, encoder, interval)
    settings.json              the training parameters last chosen (encoder, interval, nu, ...)
    videos/<id><ext>           a copy of each video (to re-embed when the encoder/interval change)
    embeddings/<id>.npz        frame indices, timestamps, embeddings
    thumbs/<id>/<index>.jpg    a small JPEG of each sampled frame
    descriptions/<id>.json     zero-shot descriptions, with the prompt-set key they were made with

Every file is written atomically; a lock serialises writers across processes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .atomic import atomic_path, atomic_write_bytes, atomic_write_json, file_lock
from .config import REMOVED_DETECTORS, Settings, load_settings
from .detectors.contract import Progress, no_progress
from .encoders import build_prompts
from .errors import ConfigError, InvalidVideoError, VlmAnomalyError
from .store.embeddings import CachedEmbeddings, read_embeddings, write_embeddings
from .values import EmbeddedVideo, utc_stamp
from .video import VIDEO_EXTENSIONS, content_hash, source_kind
from .video.thumbnails import encode_jpeg, iter_frames_at

if TYPE_CHECKING:
    from .model import AnomalyModel
    from .pipeline import Pipeline

#: the training parameters chosen on the dashboard's Train page, kept in settings.json
TRAIN_PARAMS = ("encoder", "clip_model", "clip_pretrained", "interval_ms", "nu", "gamma", "expected_objects",
                "detector", "features", "target_false_alarm", "motion_appearance")
THUMB_SIDE = 320

log = logging.getLogger(__name__)


@dataclass
class TrainingItem:
    """One video of the training set."""

    id: str
    name: str
    sha256: str
    file: str  # file name under videos/
    frames: int
    duration_s: float
    interval_ms: int
    encoder_key: str
    encoder_label: str
    added: str

    def as_row(self) -> dict:
        return {"id": self.id, "video": self.name, "frames": self.frames,
                "duration_s": round(self.duration_s, 2), "interval_ms": self.interval_ms,
                "encoder": self.encoder_label, "added": self.added}


class TrainingSet:
    """The normal videos a model will be trained on, kept on disk.

    Example:
        >>> ts = TrainingSet.for_settings(pipe.settings)  # doctest: +SKIP
        >>> ts.add(pipe, "normal1.mp4", progress=print)  # doctest: +SKIP
        >>> model = ts.train(pipe, "office-day")  # doctest: +SKIP
    """

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser()

    @classmethod
    def for_settings(cls, settings) -> TrainingSet:
        return cls(Path(settings.home) / "training_set")

    # -- paths and index -------------------------------------------------------------------
    def _lock(self):
        return file_lock(self.root / ".lock")

    def _index_path(self) -> Path:
        return self.root / "items.json"

    def items(self) -> list[TrainingItem]:
        p = self._index_path()
        if not p.is_file():
            return []
        try:
            data = json.loads(p.read_text())
            return [TrainingItem(**d) for d in data]
        except (ValueError, TypeError) as exc:
            raise VlmAnomalyError(f"training set index {p} is unreadable ({exc})") from None

    def _write_items(self, items: list[TrainingItem]) -> None:
        atomic_write_json(self._index_path(), [asdict(i) for i in items])

    def find_sha(self, sha256: str) -> TrainingItem | None:
        return next((it for it in self.items() if it.sha256 == sha256), None)

    def video_path(self, item: TrainingItem) -> Path:
        return self.root / "videos" / item.file

    def locate(self, name: str) -> Path | None:
        """The kept copy of a training video known by its file name here or its original name."""
        base = Path(str(name)).name
        it = next((it for it in self.items() if base in (it.file, it.name)), None)
        return self.video_path(it) if it is not None and self.video_path(it).is_file() else None

    def thumbnail_path(self, item: TrainingItem, frame_index: int) -> Path:
        return self.root / "thumbs" / item.id / f"{int(frame_index)}.jpg"

    def summary(self) -> dict:
        items = self.items()
        return {"videos": len(items), "frames": sum(i.frames for i in items),
                "duration_s": round(sum(i.duration_s for i in items), 2)}

    # -- parameters ------------------------------------------------------------------------
    def load_params(self) -> dict[str, Any]:
        """Training parameters last saved (empty if none): the ``saved`` layer of :func:`load_settings`.

        Keys that are no longer training parameters are dropped, so an old file never sets more; so
        are a removed detector or feature mode (the defaults apply again), so the dashboard still opens.
        """
        p = self.root / "settings.json"
        try:
            data = json.loads(p.read_text()) if p.is_file() else {}
        except ValueError:
            return {}
        if not isinstance(data, dict):
            return {}
        removed = {"detector": REMOVED_DETECTORS, "features": ("patches",)}
        gone = [k for k, names in removed.items() if data.get(k) in names]
        if gone:
            log.warning("saved training parameters name removed %s; using the defaults instead",
                        ", ".join(f"{k} {data[k]!r}" for k in gone))
        return {k: v for k, v in data.items() if k in TRAIN_PARAMS and k not in gone}

    def save_params(self, params: dict[str, Any]) -> None:
        """Keep the parameters chosen for training, after the settings loader accepted them."""
        unknown = sorted(set(params) - set(TRAIN_PARAMS))
        if unknown:
            raise ConfigError(f"not a training parameter: {', '.join(unknown)} (they are: {', '.join(TRAIN_PARAMS)})")
        load_settings(saved=params)  # the same validation as every other layer: ConfigError if bad
        atomic_write_json(self.root / "settings.json", params)

    def settings(self, config_file: str | Path | None = None, *, overrides: dict[str, Any] | None = None) -> Settings:
        """The settings with these saved training parameters as their ``saved`` layer."""
        return load_settings(config_file, saved=self.load_params(), overrides=overrides)

    # -- adding and removing ---------------------------------------------------------------
    def add(self, pipeline: Pipeline, source: str | Path, *, name: str | None = None,
            progress: Progress | None = None) -> TrainingItem:
        """Copy a normal video in, embed it, keep thumbnails and descriptions; returns its entry.

        The same content added twice is kept once (refreshed if the encoder or interval changed).
        """
        src = Path(source)
        if source_kind(src) != "file":
            raise InvalidVideoError(f"{src}: only video files can be added to the training set")
        if src.suffix.lower() not in VIDEO_EXTENSIONS:
            raise InvalidVideoError(f"{src.name}: not a video file ({', '.join(VIDEO_EXTENSIONS)})")
        if not src.is_file():
            raise InvalidVideoError(f"{src}: no such file")
        sha = content_hash(src)
        item_id = sha[:16]
        existing = self.find_sha(sha)
        dest = self.root / "videos" / f"{item_id}{src.suffix.lower()}"
        if not dest.is_file():
            with atomic_path(dest) as tmp:
                shutil.copyfile(src, tmp)
        try:
            item = self._embed_item(pipeline, item_id, name or (existing.name if existing else src.name),
                                    sha, dest, existing.added if existing else None, progress)
        except BaseException:
            if existing is None:
                self._delete_files(item_id, dest.name)
            raise
        with self._lock():
            items = [i for i in self.items() if i.id != item_id]
            items.append(item)
            self._write_items(items)
        return item

    def _embed_item(self, pipeline: Pipeline, item_id: str, name: str, sha: str, path: Path,
                    added: str | None, progress: Progress | None) -> TrainingItem:
        progress = progress or no_progress
        [ev] = pipeline.embed([path], progress=progress)
        n = ev.n_frames
        tdir = self.root / "thumbs" / item_id
        if tdir.exists():
            shutil.rmtree(tdir)
        for done, (index, img) in enumerate(iter_frames_at(path, ev.frame_indices, max_side=THUMB_SIDE), 1):
            atomic_write_bytes(tdir / f"{index}.jpg", encode_jpeg(img, 80))
            progress(done, n, "thumbnails")
        write_embeddings(self.root / "embeddings" / f"{item_id}.npz",
                         CachedEmbeddings(ev.frame_indices, ev.timestamps, ev.embeddings))
        self._write_descriptions(pipeline, item_id, ev.embeddings)
        enc = pipeline.encoder.identity
        return TrainingItem(
            id=item_id, name=name, sha256=sha, file=path.name, frames=n, duration_s=ev.duration_s,
            interval_ms=pipeline.settings.interval_ms, encoder_key=enc.key, encoder_label=enc.label,
            added=added or utc_stamp(),
        )

    def remove(self, item_id: str) -> None:
        with self._lock():
            items = self.items()
            gone = next((i for i in items if i.id == item_id), None)
            if gone is None:
                raise VlmAnomalyError(f"no video {item_id!r} in the training set")
            self._write_items([i for i in items if i is not gone])
        self._delete_files(item_id, gone.file)

    def _delete_files(self, item_id: str, file: str) -> None:
        (self.root / "videos" / file).unlink(missing_ok=True)
        (self.root / "embeddings" / f"{item_id}.npz").unlink(missing_ok=True)
        (self.root / "descriptions" / f"{item_id}.json").unlink(missing_ok=True)
        shutil.rmtree(self.root / "thumbs" / item_id, ignore_errors=True)

    # -- embeddings and descriptions -------------------------------------------------------
    def is_stale(self, item: TrainingItem, pipeline: Pipeline) -> bool:
        """True when the item was embedded with another encoder or interval than the pipeline's."""
        return (item.encoder_key != pipeline.encoder.identity.key
                or item.interval_ms != pipeline.settings.interval_ms)

    def _load_embedded(self, item: TrainingItem) -> EmbeddedVideo:
        path = self.root / "embeddings" / f"{item.id}.npz"
        try:
            z = read_embeddings(path)
            return EmbeddedVideo(item.name, item.sha256, z.indices, z.timestamps, z.embeddings, True)
        except (OSError, ValueError, KeyError) as exc:
            raise VlmAnomalyError(f"embeddings of {item.name} are unreadable ({exc}); remove and re-add it") \
                from None

    def embedded(self, pipeline: Pipeline, *, progress: Progress | None = None) -> list[EmbeddedVideo]:
        """Embeddings of every video, re-embedding those made with another encoder or interval."""
        out = []
        for item in self.items():
            if self.is_stale(item, pipeline):
                item = self.add(pipeline, self.video_path(item), name=item.name, progress=progress)
            out.append(self._load_embedded(item))
        return out

    def _descriptions_key(self, pipeline: Pipeline) -> str:
        enc = pipeline.encoder
        prompts = build_prompts(pipeline.settings.expected_objects) if enc.supports_text else []
        raw = json.dumps([enc.identity.key, prompts, pipeline.settings.top_k])
        return hashlib.sha256(raw.encode()).hexdigest()[:16]

    def _write_descriptions(self, pipeline: Pipeline, item_id: str, embeddings: np.ndarray) -> dict:
        descs = pipeline.describe_embeddings(None, embeddings)
        data = {"key": self._descriptions_key(pipeline), "texts": [d.text for d in descs],
                "confidences": [round(d.confidence, 4) for d in descs],
                "alternatives": [", ".join(d.labels[1:]) for d in descs]}
        atomic_write_json(self.root / "descriptions" / f"{item_id}.json", data)
        return data

    def review_rows(self, pipeline: Pipeline, *, describe: bool = True) -> list[dict]:
        """One row per sampled training frame: video, time, thumbnail file, and with ``describe``
        its zero-shot description, confidence and next best descriptions.

        Descriptions made with other prompts (expected objects changed) are recomputed from the
        stored embeddings - no decoding or image encoding. Without ``describe`` (detectors that
        explain frames in their own words when they score) nothing is described.
        """
        rows: list[dict] = []
        key = self._descriptions_key(pipeline) if describe else ""
        for item in self.items():
            ev = self._load_embedded(item)
            data: dict = {}
            if describe:
                p = self.root / "descriptions" / f"{item.id}.json"
                try:
                    data = json.loads(p.read_text())
                except (OSError, ValueError):
                    data = {}
                if (data.get("key") != key or len(data.get("texts", [])) != ev.n_frames) and not self.is_stale(
                        item, pipeline):
                    data = self._write_descriptions(pipeline, item.id, ev.embeddings)
            texts = data.get("texts", [""] * ev.n_frames)
            confs = data.get("confidences", [0.0] * ev.n_frames)
            alts = data.get("alternatives", [""] * ev.n_frames)
            for k in range(ev.n_frames):
                ix = int(ev.frame_indices[k])
                row = {"video": item.name, "item_id": item.id, "frame": ix,
                       "time": round(float(ev.timestamps[k]), 2),
                       "thumbnail": str(self.thumbnail_path(item, ix))}
                if describe:
                    row.update({"description": texts[k] if k < len(texts) else "",
                                "confidence": float(confs[k]) if k < len(confs) else 0.0,
                                "alternatives": alts[k] if k < len(alts) else ""})
                rows.append(row)
        return rows

    # -- training --------------------------------------------------------------------------
    def fit(self, pipeline: Pipeline, *, progress: Progress | None = None) -> AnomalyModel:
        """An unsaved model fitted on the whole training set (nothing encoded twice)."""
        items = self.items()
        if not items:
            raise InvalidVideoError("the training set is empty: add at least one normal video first")
        # detectors that read the video use the kept copies; the others the stored embeddings
        return pipeline.fit([self.video_path(it) for it in items], names=[it.name for it in items],
                            progress=progress, embedded=lambda: self.embedded(pipeline, progress=progress))

    def train(self, pipeline: Pipeline, name: str, *, progress: Progress | None = None,
              overwrite: bool = True) -> AnomalyModel:
        """Fit on the training set and save the model as ``name`` (name checked before any work)."""
        return pipeline.fit_and_save(name, lambda: self.fit(pipeline, progress=progress), overwrite=overwrite)

    def frame_image(self, sha256: str, frame_index: int) -> bytes | None:
        """JPEG bytes of a training frame (by video hash and frame index), if still kept here."""
        item = self.find_sha(sha256)
        if item is None:
            return None
        p = self.thumbnail_path(item, frame_index)
        if p.is_file():
            return p.read_bytes()
        for _, img in iter_frames_at(self.video_path(item), [frame_index], max_side=THUMB_SIDE):
            return encode_jpeg(img, 80)
        return None

    def nearest_normal_frame(self, model: AnomalyModel, embedding: np.ndarray) -> NearestFrame | None:
        """The training frame of ``model`` most similar to one frame embedding, with its picture
        when the training set still holds that video; None for models without training embeddings."""
        if model.train_embeddings is None or model.train_refs is None or not len(model.train_embeddings):
            return None
        idx, sims = model.nearest_training_frames(np.asarray(embedding).reshape(1, -1), k=1)
        video_no, frame_index, ms = (int(v) for v in model.train_refs[int(idx[0, 0])])
        vid = model.videos[video_no] if video_no < len(model.videos) else None
        jpeg = self.frame_image(vid.sha256, frame_index) if vid else None
        return NearestFrame(vid.name if vid else f"video {video_no}", frame_index, ms / 1000.0,
                            float(sims[0, 0]), jpeg)


@dataclass(frozen=True)
class NearestFrame:
    """The most similar normal training frame: where it is, how similar (cosine), its picture."""

    video: str
    frame_index: int
    time_s: float
    similarity: float
    jpeg: bytes | None
