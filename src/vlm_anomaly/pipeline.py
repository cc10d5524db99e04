"""source → frame sampler → encoder → detector → results: the one path every interface calls.

The CLI, the dashboard and the REST API only collect options and show what comes back.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .config import Settings, load_settings
from .detectors import create_detector, get_detector_class
from .encoders import Encoder, build_prompts, create_encoder, encoder_for_identity
from .encoders.base import Description
from .errors import InvalidVideoError, VlmAnomalyError
from .model import AnomalyModel, TrainingVideo
from .results import ScoreResult
from .store import CachedEmbeddings, EmbeddingCache, ModelStore
from .video import Frame, batched, content_hash, prefetch, probe, sample_frames, source_kind

log = logging.getLogger(__name__)

#: progress callback: (frames done, frames expected or 0 if unknown, stage text)
Progress = Callable[[int, int, str], None]


def _noop(done: int, total: int, stage: str) -> None:
    pass


@dataclass
class EmbeddedVideo:
    """Embeddings of the sampled frames of one source."""

    source: str
    sha256: str
    frame_indices: np.ndarray
    timestamps: np.ndarray
    embeddings: np.ndarray
    from_cache: bool = False
    frames: list[Frame] | None = field(default=None, repr=False)

    @property
    def n_frames(self) -> int:
        return len(self.embeddings)

    @property
    def duration_s(self) -> float:
        return float(self.timestamps[-1]) if len(self.timestamps) else 0.0


def expected_samples(source: str | Path, interval_ms: int, max_frames: int = 0) -> int:
    """Estimate of how many frames sampling will yield (for progress bars); 0 if unknown."""
    try:
        info = probe(source)
    except VlmAnomalyError:
        return 0
    if info.frame_count <= 0:
        return 0
    if interval_ms <= 0 or info.fps <= 0:
        n = info.frame_count
    else:
        last_t = (info.frame_count - 1) / info.fps  # the last frame starts here, not at duration_s
        n = int(math.floor((last_t + 1e-3) * 1000 / interval_ms)) + 1
        n = min(n, info.frame_count)
    return min(n, max_frames) if max_frames else n


class Pipeline:
    """Holds the settings, the encoder (built once) and the stores; runs train/score/describe.

    Example:
        >>> pipe = Pipeline(load_settings(overrides={"encoder": "efficientnet"}))  # doctest: +SKIP
        >>> model = pipe.train("office-day", ["normal1.mp4", "normal2.mp4"])  # doctest: +SKIP
        >>> result = pipe.score("office-day", "test.mp4")  # doctest: +SKIP
        >>> result.n_anomalies, result.anomaly_rate  # doctest: +SKIP
    """

    def __init__(self, settings: Settings | None = None, *, encoder: Encoder | None = None):
        self.settings = settings or load_settings()
        self._encoder = encoder
        self.store = ModelStore(self.settings.models_path)
        self.cache = EmbeddingCache(self.settings.cache_path, enabled=self.settings.embedding_cache)
        self._configure_threads()

    def _configure_threads(self) -> None:
        from .threads import configure_threads

        self.threads = configure_threads(self.settings.threads)

    # -- encoders ---------------------------------------------------------------------------
    def _encoder_kwargs(self) -> dict:
        s = self.settings
        return {
            "clip_model": s.clip_model,
            "clip_pretrained": s.clip_pretrained,
            "clip_weights": s.clip_weights,
            "device": s.device,
            "batch_size": s.batch_size,
            "cache_dir": s.cache_path,
            "features": s.features,
            "runtime": s.runtime,
            "threads": s.threads,
            "tiles": (s.tile_rows, s.tile_cols, s.tile_overlap),
        }

    @property
    def encoder(self) -> Encoder:
        """The configured encoder, built on first use."""
        if self._encoder is None:
            self._encoder = create_encoder(self.settings.encoder, **self._encoder_kwargs())
        return self._encoder

    def encoder_for(self, model: AnomalyModel) -> Encoder:
        """The encoder a model was trained with: the current one if it matches, else rebuilt."""
        if model.encoder.backend == "motion":  # a motion model embeds nothing
            return encoder_for_identity(model.encoder)
        if self._encoder is not None:
            try:
                model.check_encoder(self._encoder.identity)
                return self._encoder
            except VlmAnomalyError:
                if self.settings.encoder != "auto":
                    raise
        enc = encoder_for_identity(model.encoder, **self._encoder_kwargs())
        self._encoder = enc
        return enc

    # -- embedding --------------------------------------------------------------------------
    def embed(
        self,
        sources: Sequence[str | Path],
        *,
        encoder: Encoder | None = None,
        progress: Progress | None = None,
        keep_frames: bool = False,
        interval_ms: int | None = None,
    ) -> list[EmbeddedVideo]:
        """Embed several sources as one stream of batches (no per-video reloads), cache-aware.

        Every source is checked (exists, opens, within the limits) before the encoder is built,
        so a bad path fails in a second, not after loading a model.
        """
        s = self.settings
        for src in sources:
            if source_kind(str(src)) not in ("file", "folder"):
                raise InvalidVideoError(f"{src}: only video files and frame folders can be embedded offline")
            probe(src, max_duration_s=s.max_duration_s)
        enc = encoder or self.encoder
        interval = s.interval_ms if interval_ms is None else interval_ms
        progress = progress or _noop
        results: list[EmbeddedVideo | None] = [None] * len(sources)
        todo: list[tuple[int, str, str, str]] = []
        for i, src in enumerate(sources):
            src = str(src)
            sha = content_hash(src)
            key = EmbeddingCache.key(sha, enc.cache_key, interval, s.max_side, s.max_frames,
                                     s.max_duration_s)
            hit = None if keep_frames else self.cache.get(key, enc.dim)
            if hit is not None:
                results[i] = EmbeddedVideo(src, sha, hit.indices, hit.timestamps, hit.embeddings, True)
            else:
                todo.append((i, src, sha, key))
        total = sum(expected_samples(src, interval, s.max_frames) for _, src, _, _ in todo)
        done = 0
        progress(0, total, "encoding")
        if todo:
            parts: dict[int, list] = {i: [[], [], [], []] for i, *_ in todo}

            def frames() -> Iterator[tuple[int, Frame]]:
                for i, src, _, _ in todo:
                    for f in sample_frames(src, interval_ms=interval, max_side=s.max_side,
                                           max_frames=s.max_frames, max_duration_s=s.max_duration_s):
                        yield i, f

            for batch in batched(prefetch(frames(), maxsize=max(2 * s.batch_size, 32)), s.batch_size):
                emb = enc.encode([f.image for _, f in batch])
                for (i, f), e in zip(batch, emb):
                    p = parts[i]
                    p[0].append(f.index)
                    p[1].append(f.timestamp)
                    p[2].append(e)
                    if keep_frames:
                        p[3].append(f)
                done += len(batch)
                progress(done, max(total, done), "encoding")
            for i, src, sha, key in todo:
                idx, ts, embs, frs = parts[i]
                if not embs:
                    raise InvalidVideoError(f"{src}: no decodable frame")
                ev = EmbeddedVideo(src, sha, np.asarray(idx, np.int64), np.asarray(ts, np.float64),
                                   np.stack(embs).astype(np.float32), False, frs if keep_frames else None)
                self.cache.put(key, CachedEmbeddings(ev.frame_indices, ev.timestamps, ev.embeddings))
                results[i] = ev
        progress(max(total, done), max(total, done), "done")
        return [r for r in results if r is not None]

    # -- train ------------------------------------------------------------------------------
    def fit(
        self,
        sources: Sequence[str | Path],
        *,
        progress: Progress | None = None,
        embedded: list[EmbeddedVideo] | None = None,
        names: Sequence[str] | None = None,
    ) -> AnomalyModel:
        """Learn normality from normal videos; returns an unsaved :class:`AnomalyModel`.

        ``names``: what the model calls the videos (e.g. the names users uploaded them under).
        """
        if not sources and not embedded:
            raise InvalidVideoError("training needs at least one normal video or frame folder")
        s = self.settings
        cls = get_detector_class(s.detector)
        if cls.needs_video and embedded is None:  # motion detectors learn from the videos themselves
            return cls.fit_video(self, sources, progress=progress, names=names)
        vids = embedded if embedded is not None else self.embed(sources, progress=progress)
        enc = self.encoder
        X = np.concatenate([v.embeddings for v in vids])
        if len(X) < 2:
            raise InvalidVideoError(
                f"training needs at least 2 sampled frames, got {len(X)}: use longer videos or a "
                "shorter interval"
            )
        det = create_detector(s.detector, nu=s.nu, gamma=_gamma(s.gamma), k=s.knn_k, groups=enc.groups,
                              members=tuple(s.ensemble)).fit(X)
        prompts = build_prompts(s.expected_objects) if enc.supports_text else []
        refs = np.concatenate([
            np.stack([np.full(v.n_frames, k), v.frame_indices, np.round(v.timestamps * 1000)], 1)
            for k, v in enumerate(vids)
        ]).astype(np.int64)
        return AnomalyModel(
            encoder=enc.identity,
            detector=det,
            prompts=prompts,
            expected_objects=list(s.expected_objects),
            videos=[TrainingVideo(Path(v.source).name, v.sha256, v.n_frames, v.duration_s) for v in vids],
            interval_ms=s.interval_ms,
            smoothing_window=s.smoothing_window,
            threshold=s.threshold,
            train_embeddings=X.astype(np.float16),
            train_refs=refs,
            extra={"runtime": enc.runtime},
        )

    def train(self, name: str, sources: Sequence[str | Path], *, progress: Progress | None = None,
              overwrite: bool = True) -> AnomalyModel:
        """Fit on normal videos and save the model under ``name`` (validated before any work)."""
        return self.fit_and_save(name, lambda: self.fit(sources, progress=progress), overwrite=overwrite)

    def fit_and_save(self, name: str, fit: Callable[[], AnomalyModel], *, overwrite: bool = True) -> AnomalyModel:
        """Check ``name`` first (a bad or taken name fails before minutes of encoding), then fit and save."""
        self.store.path_for(name)
        if not overwrite and self.store.exists(name):
            from .errors import InvalidModelNameError

            raise InvalidModelNameError(f"a model named {name!r} already exists")
        model = fit()
        self.store.save(model, name, overwrite=overwrite)
        return model

    # -- score ------------------------------------------------------------------------------
    def load(self, model: str | AnomalyModel) -> AnomalyModel:
        return self.store.load(model) if isinstance(model, str) else model

    def score(
        self,
        model: str | AnomalyModel,
        source: str | Path,
        *,
        progress: Progress | None = None,
        describe: bool = True,
        keep_frames: bool = False,
        threshold: float | None = None,
        interval_ms: int | None = None,
    ) -> ScoreResult:
        """Score every sampled frame of a video with a saved (or given) model."""
        m = self.load(model)
        if m.detector.needs_video:  # motion detectors score the video itself
            return m.detector.score_video(self, m, source, progress=progress, describe=describe,
                                          threshold=threshold, interval_ms=interval_ms)
        enc = self.encoder_for(m)
        t0 = time.perf_counter()
        [ev] = self.embed([source], encoder=enc, progress=progress, keep_frames=keep_frames,
                          interval_ms=interval_ms)
        t1 = time.perf_counter()
        return self.score_embedded(m, ev, describe=describe, threshold=threshold, encoder=enc,
                                   timing={"embed_s": round(t1 - t0, 4), "runtime": enc.runtime,
                                           "threads": self.threads})

    def score_embedded(
        self,
        model: AnomalyModel,
        ev: EmbeddedVideo,
        *,
        describe: bool = True,
        threshold: float | None = None,
        encoder: Encoder | None = None,
        timing: dict | None = None,
    ) -> ScoreResult:
        t1 = time.perf_counter()
        raw, smooth, _ = model.score(ev.embeddings)
        descs: list[Description] = []
        if describe:
            descs = self.describe_embeddings(model, ev.embeddings, encoder=encoder)
        timing = dict(timing or {})
        timing["score_s"] = round(time.perf_counter() - t1, 4)
        timing["frames"] = ev.n_frames
        timing["from_cache"] = ev.from_cache
        return ScoreResult(
            source=ev.source,
            model=model.name,
            frame_indices=ev.frame_indices,
            timestamps=ev.timestamps,
            raw_scores=raw,
            smoothed_scores=smooth,
            threshold=model.threshold if threshold is None else threshold,
            smoothing_window=model.smoothing_window,
            descriptions=[d.text for d in descs],
            confidences=[d.confidence for d in descs],
            embeddings=ev.embeddings,
            timing=timing,
        )

    # -- describe ---------------------------------------------------------------------------
    def describe_embeddings(
        self, model: AnomalyModel | None, embeddings: np.ndarray, *, encoder: Encoder | None = None
    ) -> list[Description]:
        enc = encoder or self.encoder
        kwargs = {"top_k": self.settings.top_k}
        if model is not None and model.prompts and enc.supports_text:
            kwargs["prompts"] = model.prompts
        elif enc.supports_text:
            kwargs["prompts"] = build_prompts(self.settings.expected_objects)
        return enc.describe(embeddings, **kwargs)

    def describe(self, source: str | Path, *, progress: Progress | None = None
                 ) -> tuple[EmbeddedVideo, list[Description]]:
        """Zero-shot description of each sampled frame of a video."""
        [ev] = self.embed([source], progress=progress)
        return ev, self.describe_embeddings(None, ev.embeddings)


def _gamma(g: str | float) -> str | float:
    if isinstance(g, str) and g not in ("scale", "auto"):
        try:
            return float(g)
        except ValueError:
            raise VlmAnomalyError(f"gamma must be 'scale', 'auto' or a number, not {g!r}") from None
    return g


def iter_embeddings(encoder: Encoder, frames: Iterable[Frame], batch_size: int
                    ) -> Iterator[tuple[list[Frame], np.ndarray]]:
    """Batched embedding of a frame stream (live sources): yields (frames, embeddings)."""
    for batch in batched(frames, batch_size):
        yield batch, encoder.encode([f.image for f in batch])
